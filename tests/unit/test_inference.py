"""Inference on real code against the real installed environment (no Docker)."""
from __future__ import annotations

import importlib.metadata as metadata
import sys
import textwrap

import pytest

from jupyter_mlbox.core import inference
from jupyter_mlbox.core.inference import (imported_modules, infer_requirements, installable_pin,
                                          pip_install_arguments, validate_requirement)
from jupyter_mlbox.core.notebook import parse_cells
from jupyter_mlbox.errors import RequirementError


def names(result):
    return {r.name for r in result.requirements}


def test_ipython_syntax_does_not_break_parsing():
    cells = [
        "%matplotlib inline\nimport numpy as np",
        "!ls -la\nfiles = !ls\nimport pandas",
        "np.arange?\nimport json",
        "%%time\nimport sklearn.ensemble",
        "%%bash\necho not python; import nothing_here",
    ]
    result = infer_requirements(cells)
    assert {"numpy", "pandas", "scikit-learn"} <= names(result)
    assert "nothing-here" not in names(result)  # %%bash bodies are not Python
    assert not [w for w in result.warnings if "syntax error" in w]


def test_imports_at_any_depth():
    source = textwrap.dedent("""
        import os.path
        def load():
            import pandas as pd
            return pd
        try:
            import ujson as json
        except ImportError:
            import json
        if True:
            from matplotlib import pyplot
        class A:
            def f(self):
                from numpy.linalg import norm
        from . import sibling
        from __future__ import annotations
    """)
    tree = parse_cells([source])[0].tree
    modules = {m.split(".")[0] for m in imported_modules(tree)}
    assert {"os", "pandas", "ujson", "json", "matplotlib", "numpy", "__future__"} <= modules
    assert "sibling" not in modules  # relative imports are local


def test_stdlib_and_future_are_dropped_and_installed_ones_pinned():
    result = infer_requirements(["from __future__ import annotations\nimport os, sys, json\n"
                                 "import numpy"])
    assert [r.requirement for r in result.requirements] == [f"numpy=={metadata.version('numpy')}"]
    assert result.requirements[0].origin == "installed"


def test_import_name_differs_from_distribution_name():
    result = infer_requirements(["import sklearn", "from dateutil import parser"])
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in \
        [r.requirement for r in result.requirements]
    assert "python-dateutil" in names(result)


def test_missing_package_falls_back_to_pipreqs_mapping_with_a_warning():
    assert inference.pipreqs_mapping()["cv2"] == "opencv-python"
    result = infer_requirements(["import cv2"])
    (req,) = result.requirements
    assert req.requirement == "opencv-python" and req.origin == "guess"
    assert any("cv2" in w and "guess" in w for w in result.warnings)


def test_pip_magic_lines_are_requirements_and_win_over_inference():
    cells = ["%pip install -q 'numpy<3' --index-url https://example.org/simple requests==2.32.3",
             "!pip install -U tqdm",
             "import numpy"]
    tree_args = [a for c in parse_cells(cells) if c.tree for a in pip_install_arguments(c.tree)]
    assert tree_args == ["numpy<3", "requests==2.32.3", "tqdm"]
    result = infer_requirements(cells)
    by_name = {r.name: r for r in result.requirements}
    assert by_name["numpy"].requirement == "numpy<3" and by_name["numpy"].origin == "pip-magic"
    assert by_name["requests"].requirement == "requests==2.32.3"


def test_crafted_pip_line_cannot_inject_dockerfile_instructions():
    result = infer_requirements(['%pip install "numpy;RUN curl evil"'])
    assert "numpy" not in names(result)
    assert any("not a valid requirement" in w for w in result.warnings)
    for bad in ["numpy\nRUN rm -rf /", "x; $(evil)", "pkg @ https://evil/x.whl", ""]:
        with pytest.raises(RequirementError):
            validate_requirement(bad)


def test_local_modules_are_not_requirements(tmp_path):
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    result = infer_requirements(["import helpers\nfrom mypkg import thing\nimport numpy"],
                                search_dir=tmp_path)
    assert names(result) == {"numpy"}
    assert sorted(p.name for p in result.local_modules) == ["helpers.py", "mypkg"]


def test_requirements_file_pip_and_exclude_override_inference(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned by hand\nrequests==2.31.0\n"
                                               "--extra-index-url https://x\npandas\n")
    result = infer_requirements(["import numpy"], search_dir=tmp_path,
                                extra=["tqdm>=4"], exclude=["pandas"])
    assert [r.requirement for r in result.requirements] == ["requests==2.31.0", "tqdm>=4"]
    assert any("ignored" in w for w in result.warnings)
    with pytest.raises(RequirementError):
        infer_requirements(["import numpy"], extra=["not a requirement!"])


def test_local_version_label_is_made_installable():
    pin, warning = installable_pin("torch", "2.13.0+cu121")
    assert pin == "torch==2.13.0"
    assert "+cu121" in warning and "torch==2.13.0" in warning
    assert installable_pin("numpy", "2.1.0") == ("numpy==2.1.0", None)


def test_syntax_error_in_a_cell_is_a_warning_not_a_crash():
    result = infer_requirements(["def broken(:\n  pass", "import numpy"])
    assert names(result) == {"numpy"}
    assert any("cell 1" in w and "syntax error" in w for w in result.warnings)


def test_namespace_package_resolves_to_the_right_distribution(tmp_path, monkeypatch):
    """Two distributions share the top-level ``nsdemo``; the dotted import decides."""
    for dist, sub in [("nsdemo_alpha", "alpha"), ("nsdemo_beta", "beta")]:
        pkg = tmp_path / "nsdemo" / sub
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        info = tmp_path / f"{dist}-1.{len(sub)}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\n"
                                       f"Version: 1.{len(sub)}\n")
        (info / "RECORD").write_text(f"nsdemo/{sub}/__init__.py,,\n")
        (info / "top_level.txt").write_text("nsdemo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    inference._packages_distributions.cache_clear()
    try:
        beta = infer_requirements(["from nsdemo import beta"])
        alpha = infer_requirements(["import nsdemo.alpha"])
    finally:
        inference._packages_distributions.cache_clear()
    assert [r.requirement for r in beta.requirements] == ["nsdemo-beta==1.4"]
    assert [r.requirement for r in alpha.requirements] == ["nsdemo-alpha==1.5"]


def test_the_tool_itself_is_never_a_requirement():
    assert "jupyter-mlbox" not in names(infer_requirements(["import jupyter_mlbox"]))


def test_stdlib_list_is_the_running_pythons():
    assert "tomllib" in sys.stdlib_module_names  # 3.11+: the list we rely on
    assert names(infer_requirements(["import tomllib, asyncio, zoneinfo"])) == set()


def test_optional_imports_are_pinned_when_installed_and_skipped_when_not():
    source = textwrap.dedent("""
        try:
            import numpy
            import surely_not_a_module_xyz
        except ImportError:
            surely_not_a_module_xyz = None
        try:
            import cv2
        except (ValueError, TypeError):
            pass
    """)
    result = infer_requirements([source])
    assert names(result) == {"numpy", "opencv-python"}  # cv2's guard does not catch ImportError
    assert any("surely_not_a_module_xyz: optional import" in w for w in result.warnings)
    both = infer_requirements([source, "import surely_not_a_module_xyz"])
    assert "surely-not-a-module-xyz" in names(both)  # imported unguarded elsewhere: required
