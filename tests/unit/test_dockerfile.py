"""Rendering and host pip settings (pure, no Docker)."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from jupyter_mlbox.core.build import BuildOptions, plan_image, runtime_requirements
from jupyter_mlbox.core.dockerfile import ImageSpec, notebook_slug, render_build_context
from jupyter_mlbox.core.pip_settings import PipSettings, host_pip_settings
from jupyter_mlbox.errors import RequirementError

CA = "/etc/ssl/certs/ca-certificates.crt"


def test_tag_is_a_content_hash():
    a = render_build_context(ImageSpec(("numpy==2.0.0",), "My Analysis.ipynb"))
    b = render_build_context(ImageSpec(("numpy==2.0.0",), "My Analysis.ipynb"))
    c = render_build_context(ImageSpec(("numpy==2.0.1",), "My Analysis.ipynb"))
    assert a.tag == b.tag and a.tar_bytes() == b.tar_bytes()
    assert a.tag != c.tag
    assert a.tag.startswith("mlbox/my-analysis:") and len(a.tag.split(":")[1]) == 12


def test_multi_stage_non_root_and_requirements_before_what_changes_often():
    text = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb")).dockerfile
    assert text.count("FROM ") == 2 and " AS builder" in text
    final = text.split("\nFROM ", 2)[2]
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "mlbox-build" not in final  # no CA, pip config or requirements in the final stage
    assert "io.jupyter-mlbox.build-step" not in final  # the step label marks the builder only
    assert "USER 1000" in final
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in final
    assert text.index("uv pip install") < text.index("COPY runner.py")


def test_labels_name_notebook_requirements_hash_and_version():
    context = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb"))
    assert context.labels["io.jupyter-mlbox.notebook"] == "n.ipynb"
    assert len(context.labels["io.jupyter-mlbox.requirements-sha256"]) == 64
    assert "io.jupyter-mlbox.version" in context.labels
    assert 'io.jupyter-mlbox.notebook="n.ipynb"' in context.dockerfile


def test_invalid_requirement_is_refused_before_rendering():
    with pytest.raises(RequirementError):
        render_build_context(ImageSpec(("numpy\nRUN echo pwned",), "n.ipynb"))


def test_ca_and_index_go_to_the_builder_only(tmp_path):
    ca = tmp_path / "corp.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    pip = PipSettings(index_url="https://user:secret@pypi.corp/simple",
                      trusted_hosts=("pypi.corp",), cert_file=ca, cert_source="PIP_CERT")
    context = render_build_context(ImageSpec(("numpy==2.0.0",), "n.ipynb", pip=pip))
    assert context.files["mlbox-build/ca.pem"] == ca.read_bytes()
    conf = context.files["mlbox-build/pip.conf"].decode()
    assert "index-url = https://user:secret@pypi.corp/simple" in conf
    assert "cert = /mlbox-build/ca.pem" in conf
    final_stage = context.dockerfile.split("\nFROM ", 2)[2]
    assert "secret" not in final_stage and "ca.pem" not in final_stage
    assert "secret" not in "".join(context.labels.values())
    with tarfile.open(fileobj=io.BytesIO(context.tar_bytes())) as tar:
        assert all(m.uid == 0 and m.mtime == 0 for m in tar.getmembers())


def test_host_pip_settings_read_env_and_pip_conf(tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n"
                    "extra-index-url = file:///opt/local/simple https://extra.example/simple\n"
                    "trusted-host = mirror.example\n")
    env = {"HOME": str(tmp_path), "PIP_CONFIG_FILE": str(conf), "XDG_CONFIG_DIRS": str(tmp_path),
           "SSL_CERT_FILE": CA}
    settings = host_pip_settings(env)
    assert settings.index_url == "https://mirror.example/simple"
    assert settings.extra_index_urls == ("https://extra.example/simple",)
    assert settings.trusted_hosts == ("mirror.example",)
    assert settings.cert_file == Path(CA) and settings.cert_source == "SSL_CERT_FILE"
    assert any("file:///opt/local/simple" in w for w in settings.warnings)
    env["PIP_CERT"] = str(tmp_path / "missing.pem")
    settings = host_pip_settings(env)
    assert settings.cert_source == "SSL_CERT_FILE"
    assert any("missing.pem" in w for w in settings.warnings)


def test_runtime_packages_are_added_pinned_unless_the_notebook_pins_them():
    pins = runtime_requirements(["nbformat"])
    assert not any(p.startswith("nbformat") for p in pins)
    assert any(p.startswith("ipykernel==") for p in pins)
    plan = plan_image(["import nbformat"], notebook_name="n.ipynb", search_dir=None,
                      options=BuildOptions(pip=("nbformat==5.10.4",)), pip=PipSettings())
    assert [r for r in plan.spec.requirements if r.startswith("nbformat")] == ["nbformat==5.10.4"]


def test_slug():
    assert notebook_slug("Sales Report (2024).ipynb") == "sales-report-2024"
    assert notebook_slug("???.ipynb") == "notebook"


def test_the_kernel_stack_is_pinned_whole_to_the_kernel_s_versions():
    """A helper that imports from IPython must get the kernel's IPython (issue 13, item 2)."""
    import importlib.metadata as metadata

    pins = runtime_requirements([], "3.11")
    for dist in ("ipython", "traitlets", "jupyter-client", "comm", "tornado", "pyzmq"):
        assert f"{dist}=={metadata.version(dist)}" in pins, dist
    assert not any(p.startswith("appnope") for p in pins)  # macOS-only: markers read as Linux


def test_venv_pruning_leaves_out_test_suites_nothing_imports(tmp_path):
    from jupyter_mlbox.core.venv_pruning import prune

    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"

    def write(path, text=""):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write(site / "numlike" / "__init__.py", "from . import core\n")
    write(site / "numlike" / "core" / "tests" / "test_a.py", "x = 1\n" * 1000)
    write(site / "numlike" / "tests" / "__init__.py")
    write(site / "numlike" / "testing" / "__init__.py", "def assert_close(): pass\n")
    write(site / "needs" / "__init__.py", "from .tests.helpers import fixture_data\n")
    write(site / "needs" / "tests" / "helpers.py", "fixture_data = 1\n")
    write(site / "data" / "tests" / "sample.csv", "a,b\n")  # no Python: not a test suite
    # SciPy's way: one private module imports one sub-package's tests; the others still go
    write(site / "sci" / "special" / "_pre" / "data.py",
          "from sci.special.tests.test_x import reference\n")
    write(site / "sci" / "special" / "tests" / "test_x.py", "reference = 1\n")
    write(site / "sci" / "linalg" / "tests" / "test_y.py", "y = 2\n" * 500)
    write(site / "rel" / "a" / "b.py", "from ..tests import shared\nfrom . import tests\n")
    write(site / "rel" / "tests" / "shared.py")
    write(site / "rel" / "a" / "tests" / "__init__.py")
    write(site / "rel" / "c" / "tests" / "test_z.py")
    write(site / "numlike-1.0.dist-info" / "tests" / "x.py")

    removed, freed = prune(str(tmp_path / "venv"))

    assert sorted(removed) == ["numlike/core/tests", "numlike/tests", "rel/c/tests",
                               "sci/linalg/tests"]
    assert (site / "sci" / "special" / "tests" / "test_x.py").exists()
    assert (site / "rel" / "tests" / "shared.py").exists()
    assert (site / "rel" / "a" / "tests" / "__init__.py").exists()
    assert freed >= 6000
    assert (site / "numlike" / "testing" / "__init__.py").exists()  # public API stays
    assert (site / "needs" / "tests" / "helpers.py").exists()  # its own code imports it
    assert (site / "data" / "tests" / "sample.csv").exists()


def test_the_builder_prunes_unless_keep_tests():
    from jupyter_mlbox.core.dockerfile import ImageSpec, render_build_context

    pruned = render_build_context(ImageSpec(requirements=("numpy==2.0.0",)))
    kept = render_build_context(ImageSpec(requirements=("numpy==2.0.0",), keep_tests=True))
    assert "venv_pruning.py /opt/venv" in pruned.dockerfile
    assert "venv_pruning.py" not in kept.dockerfile and "venv_pruning.py" not in kept.files
    assert pruned.tag != kept.tag
