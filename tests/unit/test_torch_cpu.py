"""torch CPU builds: a kernel whose torch is ``+cpu`` gets PyTorch's CPU index in the build,
not PyPI's CUDA build. Rendering only: no torch image is built."""
from __future__ import annotations

import pytest

from jupyter_mlbox.core import inference
from jupyter_mlbox.core.build import plan_image
from jupyter_mlbox.core.dockerfile import ImageSpec, render_build_context
from jupyter_mlbox.core.distributions import PYTORCH_CPU_INDEX, installable_pin, is_pytorch_cpu_pin
from jupyter_mlbox.core.pip_settings import PipSettings

INDEX_FLAGS = f"--extra-index-url {PYTORCH_CPU_INDEX} --index-strategy unsafe-best-match"


@pytest.mark.parametrize("name", ["torch", "torchvision", "torchaudio"])
def test_cpu_builds_keep_their_pin_and_say_where_they_come_from(name):
    pin, warning = installable_pin(name, "2.3.0+cpu")
    assert pin == f"{name}==2.3.0+cpu"
    assert PYTORCH_CPU_INDEX in warning and "CPU-only" in warning
    assert f"--pip {name}==2.3.0" in warning


@pytest.mark.parametrize("name, version, pin", [
    ("torch", "2.3.0+cu121", "torch==2.3.0"),  # a CUDA build: PyPI's Linux torch is one
    ("torch", "2.3.0", "torch==2.3.0"),
    ("numpy", "2.1.0+cpu", "numpy==2.1.0"),  # only PyTorch's packages are on its index
])
def test_other_versions_are_unchanged(name, version, pin):
    assert installable_pin(name, version)[0] == pin


def test_which_pins_need_the_cpu_index():
    assert is_pytorch_cpu_pin("torch==2.3.0+cpu")
    assert is_pytorch_cpu_pin("torchvision==0.18.0+cpu")
    assert not is_pytorch_cpu_pin("torch==2.3.0")
    assert not is_pytorch_cpu_pin("torch>=2")
    assert not is_pytorch_cpu_pin("numpy==2.1.0")
    assert not is_pytorch_cpu_pin("not a requirement!")


def test_the_builder_install_carries_the_cpu_index_only_for_cpu_builds():
    cpu = render_build_context(ImageSpec(("numpy==2.0.0", "torch==2.3.0+cpu",
                                          "torchvision==0.18.0+cpu"), "n.ipynb"))
    builder, final = cpu.dockerfile.split("\nFROM ", 2)[1:]
    install = " ".join(builder.replace("\\\n", " ").split())
    assert f"uv pip install --python /opt/venv/bin/python {INDEX_FLAGS} -r " \
           f"/mlbox-build/requirements.txt" in install
    assert "torch==2.3.0+cpu\ntorchvision==0.18.0+cpu\n" in cpu.files["requirements.txt"].decode()
    assert "download.pytorch.org" not in final  # the index is a build setting only
    assert "must reach" in builder  # the comment says what the build needs

    public = render_build_context(ImageSpec(("numpy==2.0.0", "torch==2.3.0"), "n.ipynb"))
    assert "download.pytorch.org" not in public.dockerfile
    assert "--index-strategy" not in public.dockerfile
    assert public.tag != cpu.tag


@pytest.fixture
def kernel_with_cpu_torch(tmp_path, monkeypatch):
    """A kernel whose installed torch is 2.3.0+cpu (a stand-in distribution on sys.path)."""
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("")
    info = site / "torch-2.3.0+cpu.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.3.0+cpu\n")
    (info / "top_level.txt").write_text("torch\n")
    (info / "RECORD").write_text("torch/__init__.py,,\n")
    monkeypatch.syspath_prepend(str(site))
    inference._packages_distributions.cache_clear()
    yield
    inference._packages_distributions.cache_clear()


def test_a_kernel_with_cpu_torch_gets_the_cpu_index(kernel_with_cpu_torch):
    plan = plan_image(["import torch"], notebook_name="n.ipynb", search_dir=None,
                      pip=PipSettings())
    assert "torch==2.3.0+cpu" in plan.spec.requirements
    assert any(PYTORCH_CPU_INDEX in w and "CPU-only" in w for w in plan.warnings)
    assert INDEX_FLAGS in " ".join(plan.context.dockerfile.replace("\\\n", " ").split())


def test_pip_flag_chooses_pypi_instead(kernel_with_cpu_torch):
    from jupyter_mlbox.core.build import BuildOptions

    plan = plan_image(["import torch"], notebook_name="n.ipynb", search_dir=None,
                      options=BuildOptions(pip=("torch==2.3.0",)), pip=PipSettings())
    assert [r for r in plan.spec.requirements if r.startswith("torch")] == ["torch==2.3.0"]
    assert "download.pytorch.org" not in plan.context.dockerfile
