"""System packages on the real daemon: apt.txt beside the notebook puts a Debian package into the
image, where the notebook's shell lines find it; a bad name stops before any build."""
from __future__ import annotations

import nbformat
import pytest

from jupyter_mlbox.core.dockerfile import APT_LABEL

from ..conftest import write_notebook
from .helpers import cli, outputs

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]


def test_apt_txt_package_is_in_the_container(tmp_path, engine):
    path = write_notebook(tmp_path, ["!jq --version",
                                     "import shutil, subprocess\n"
                                     "print('which', shutil.which('jq'))\n"
                                     "print(subprocess.run(['jq', '-n', '{a: 1} | .a'], "
                                     "capture_output=True, text=True).stdout)"],
                          name="apt-jq.ipynb")
    (tmp_path / "apt.txt").write_text("# one Debian package a line\njq\n")
    result = cli("run", str(path), "-o", str(tmp_path / "out.ipynb"))
    assert result.returncode == 0, result.stderr
    text = "".join(o.get("text", "") for o in outputs(nbformat.read(tmp_path / "out.ipynb", 4)))
    assert "jq-1." in text  # jq --version, from inside the container
    assert "which /usr/bin/jq" in text and "\n1\n" in text

    build = cli("build", str(path))
    tag = build.stdout.strip().splitlines()[-1]
    assert "reused" in build.stderr
    assert engine.image_attrs(tag)["Config"]["Labels"][APT_LABEL] == "jq"


def test_a_bad_package_name_is_a_clear_error_before_any_build(tmp_path, engine):
    path = write_notebook(tmp_path, ["print(1)"], name="apt-bad.ipynb")
    result = cli("run", str(path), "--apt", "jq;rm")
    assert result.returncode == 2
    assert "--apt: 'jq;rm' is not a valid Debian package name" in result.stderr
    (tmp_path / "apt.txt").write_text("jq\nLibFoo\n")
    result = cli("run", str(path))
    assert result.returncode == 3 and "apt.txt:2: 'LibFoo'" in result.stderr
    for output in (result.stderr, result.stdout):
        assert "building" not in output and "Traceback" not in output
    assert not (tmp_path / "apt-bad.mlbox.ipynb").exists()
