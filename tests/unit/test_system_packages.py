"""System packages: apt.txt, --apt, the inferred table and how they are rendered (no Docker)."""
from __future__ import annotations

import argparse
import ast
import json

import pytest
from traitlets import TraitError

from jupyter_mlbox.config import MlboxDefaults
from jupyter_mlbox.core.build import BuildOptions, plan_image
from jupyter_mlbox.core.dockerfile import APT_LABEL, ImageSpec, render_build_context
from jupyter_mlbox.core.notebook import python_source
from jupyter_mlbox.core.options import OptionError, add_arguments, resolve_options
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.system_packages import (inferred_packages, read_apt_file,
                                                system_packages, validate_package_name)
from jupyter_mlbox.errors import RequirementError
from tests.conftest import write_notebook
from tests.integration.helpers import cli


def inferred(*cells: str, requirements=()) -> set[str]:
    trees = [ast.parse(python_source(cell)) for cell in cells]
    imported = {a.name for t in trees for n in ast.walk(t) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module for t in trees for n in ast.walk(t)
                 if isinstance(n, ast.ImportFrom) and n.module}
    return {p.name for p in inferred_packages(trees, imported, requirements)}


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["jq", "ffmpeg", "g++", "libglib2.0-0", "tesseract-ocr", "r-base"])
def test_debian_names_are_accepted(name):
    assert validate_package_name(name) == name


@pytest.mark.parametrize("name", ["Jq", "j", "-rf", "jq; rm -rf /", "jq\nRUN echo", "lib_gl",
                                  "jq=1.6", "", "jq bash"])
def test_bad_names_are_refused_naming_the_name(name):
    with pytest.raises(RequirementError) as caught:
        validate_package_name(name, "apt.txt:2")
    assert repr(name) in str(caught.value) and "apt.txt:2" in str(caught.value)
    assert "not a valid Debian package name" in str(caught.value)


def test_apt_txt_one_package_a_line_with_comments(tmp_path):
    path = tmp_path / "apt.txt"
    path.write_text("# tools the notebook shells out to\njq\n\n  ffmpeg   # videos\n#curl\n")
    assert read_apt_file(path) == ["jq", "ffmpeg"]
    path.write_text("jq\nImageMagick\n")
    with pytest.raises(RequirementError, match=r"apt.txt:2: 'ImageMagick'"):
        read_apt_file(path)


# --- the inferred table ---------------------------------------------------------------------------

ANIMATION = "from matplotlib.animation import FuncAnimation\nanim = FuncAnimation(fig, update)\n"


@pytest.mark.parametrize("cells, expected", [
    ([ANIMATION, "anim.save('wave.mp4')"], {"ffmpeg"}),
    ([ANIMATION + "HTML(anim.to_html5_video())"], {"ffmpeg"}),
    (["import matplotlib.animation as animation\n"
      "a = animation.ArtistAnimation(fig, frames)\na.save('x.mp4', writer='ffmpeg')"], {"ffmpeg"}),
    ([ANIMATION + "anim.save('wave.gif')"], set()),
    ([ANIMATION + "anim.save('wave.mp4', writer='pillow')"], set()),
    ([ANIMATION + "anim.save('wave.mp4', writer=PillowWriter(fps=20))"], set()),
    ([ANIMATION + "HTML(anim.to_jshtml())"], set()),
    (["model.save('m.keras')"], set()),
    (["import graphviz\ng = graphviz.Digraph()"], {"graphviz"}),
    (["!dot -Tpng graph.dot -o graph.png"], {"graphviz"}),
    (["!ls -la"], set()),
    (["import pytesseract"], {"tesseract-ocr"}),
    (["import pymc as pm"], {"g++"}),
    (["import pytensor.tensor as pt"], {"g++"}),
    (["import numpy"], set()),
])
def test_each_pattern_of_the_table(cells, expected):
    assert inferred(*cells) == expected


def test_opencv_gui_build_needs_libgl_headless_does_not():
    assert inferred("import cv2", requirements=["opencv-python==4.10.0.84"]) == \
        {"libgl1", "libglib2.0-0"}
    assert inferred("import cv2", requirements=["opencv-python-headless==4.10.0.84"]) == set()


def test_sources_merge_explicit_first_inferred_said_and_excludable(tmp_path):
    (tmp_path / "apt.txt").write_text("jq\n")
    trees = [ast.parse("import pytesseract")]
    found = system_packages(search_dir=tmp_path, explicit=["curl", "jq"], trees=trees,
                            imported={"pytesseract"})
    assert found.names() == ("curl", "jq", "tesseract-ocr")
    assert [(p.name, p.origin) for p in found.packages] == [
        ("jq", "apt.txt"), ("curl", "explicit"), ("jq", "explicit"),
        ("tesseract-ocr", "inferred")]
    assert found.warnings == ["system package tesseract-ocr added (inferred from import "
                              "pytesseract); --exclude-apt tesseract-ocr drops it"]
    dropped = system_packages(search_dir=None, trees=trees, imported={"pytesseract"},
                              exclude=["tesseract-ocr"])
    assert dropped.names() == () and dropped.warnings == []
    # named by the user: no warning about inferring it
    assert system_packages(search_dir=None, explicit=["tesseract-ocr"], trees=trees,
                           imported={"pytesseract"}).warnings == []


# --- rendering ----------------------------------------------------------------------------------

def test_apt_runs_in_the_final_stage_as_root_before_the_venv(tmp_path):
    ca = tmp_path / "corp.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    pip = PipSettings(index_url="https://pypi.corp/simple", cert_file=ca, cert_source="PIP_CERT")
    context = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb", pip=pip,
                                             apt=("jq", "ffmpeg", "jq")))
    builder, final = context.dockerfile.split("\nFROM ", 2)[1:]
    assert "apt-get" not in builder
    install = ("apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y "
               "--no-install-recommends ffmpeg jq \\\n && rm -rf /var/lib/apt/lists/*")
    assert install in final
    assert final.index("apt-get install") < final.index("COPY --from=builder")
    assert final.index("apt-get install") < final.index("USER 1000")
    assert "ca.pem" not in final and "mlbox-build" not in final and "pypi.corp" not in final
    assert context.labels[APT_LABEL] == "ffmpeg,jq"
    assert 'io.jupyter-mlbox.apt="ffmpeg,jq"' in final


def test_apt_list_is_part_of_the_tag_order_not():
    plain = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb"))
    jq = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb", apt=("jq", "curl")))
    same = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb", apt=("curl", "jq")))
    assert plain.tag != jq.tag and jq.tag == same.tag
    assert "apt-get" not in plain.dockerfile and APT_LABEL not in plain.labels


def test_a_bad_name_never_reaches_the_dockerfile():
    with pytest.raises(RequirementError, match="not a valid Debian package name"):
        render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb", apt=("jq && curl evil",)))


def test_plan_reads_apt_txt_flags_and_the_table(tmp_path):
    (tmp_path / "apt.txt").write_text("jq\n")
    plan = plan_image(["import json\n!dot -V"], notebook_name="n.ipynb", search_dir=tmp_path,
                      options=BuildOptions(apt=("curl",)), pip=PipSettings())
    assert plan.spec.apt == ("curl", "graphviz", "jq")
    assert any(w.startswith("system package graphviz added (inferred from !dot)")
               for w in plan.warnings)
    assert "--no-install-recommends curl graphviz jq" in plan.context.dockerfile
    assert plan.as_dict()["system_packages"][0] == {"name": "jq", "origin": "apt.txt",
                                                    "because": ""}
    (tmp_path / "apt.txt").write_text("jq\nnot_a_package\n")
    with pytest.raises(RequirementError, match="apt.txt:2: 'not_a_package'"):
        plan_image(["import json"], notebook_name="n.ipynb", search_dir=tmp_path,
                   pip=PipSettings())


# --- the option -----------------------------------------------------------------------------------

def test_apt_option_from_flags_json_and_configured_defaults():
    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--apt", "jq", "--apt", "ffmpeg", "--exclude-apt", "g++"])
    build, _ = resolve_options(vars(args), MlboxDefaults(apt=["curl"]))
    assert build.apt == ("curl", "jq", "ffmpeg") and build.exclude_apt == ("g++",)
    assert resolve_options({"apt": ["jq"]})[0].apt == ("jq",)
    assert resolve_options({"apt": "jq, curl"})[0].apt == ("jq", "curl")
    with pytest.raises(OptionError, match=r"^--apt: 'Jq!' is not a valid Debian package name"):
        resolve_options({"apt": ["Jq!"]})
    with pytest.raises(OptionError, match="--apt"):
        resolve_options({"apt": [3]})
    with pytest.raises(TraitError, match="c.MlboxDefaults.apt"):
        MlboxDefaults(apt=["no way"])


def test_cli_dockerfile_shows_the_apt_line_and_refuses_bad_names(tmp_path):
    nb = write_notebook(tmp_path, ["import json"], name="n.ipynb")
    (tmp_path / "apt.txt").write_text("jq\n")
    result = cli("dockerfile", str(nb), "--apt", "curl")
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y --no-install-recommends curl jq" in result.stdout
    result = cli("dockerfile", str(nb), "--apt", "curl;reboot")
    assert result.returncode == 2 and "'curl;reboot' is not a valid Debian package name" \
        in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "apt.txt").write_text("JQ\n")
    result = cli("dockerfile", str(nb))
    assert result.returncode == 3 and "apt.txt:1: 'JQ'" in result.stderr
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_mlbox_config.json").write_text(json.dumps(
        {"MlboxDefaults": {"apt": ["ffmpeg"]}}))
    (tmp_path / "apt.txt").unlink()
    result = cli("dockerfile", str(nb), env={"JUPYTER_CONFIG_DIR": str(config)})
    assert "--no-install-recommends ffmpeg" in result.stdout, result.stderr
