"""Leaner images without breaking imports (issue 11 item 2): the packages' own test suites are
left out, and every module of every installed distribution imports in the pruned image
exactly as it does with ``--keep-tests`` (the same image but for the pruning)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.notebook import new_notebook_from_cells
from jupyter_mlbox.core.options import BuildOptions
from jupyter_mlbox.core.run import RunOptions, run_notebook

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]

CELLS = ["import numpy, pandas, sklearn, matplotlib"]

#: Runs in the container: every module (submodules too, test suites aside) of every top-level
#: name of every installed distribution, and what failed to import; the tests folders left.
IMPORT_ALL = r"""
import importlib, importlib.metadata as md, json, os, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import matplotlib; matplotlib.use("Agg")
tops = set()
for dist in md.distributions():
    text = dist.read_text("top_level.txt") or ""
    tops |= {t for t in text.split() if t.isidentifier()}
    for f in dist.files or ():
        first = f.parts[0]
        if first.endswith(".py") and first[:-3].isidentifier():
            tops.add(first[:-3])
        elif len(f.parts) > 1 and first.isidentifier() and f.parts[-1] == "__init__.py":
            tops.add(first)
failed, count = set(), 0
def attempt(name):
    global count
    count += 1
    try:
        importlib.import_module(name)
    except BaseException as err:
        failed.add(f"{name}: {type(err).__name__}")
for top in sorted(tops):
    attempt(top)
    module = sys.modules.get(top)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []) or [], top + ".",
                                      onerror=lambda name: None):
        parts = info.name.split(".")
        if "tests" in parts or parts[-1] == "__main__" or "_precompute" in parts:
            continue
        attempt(info.name)
site = next(p for p in sys.path if p.endswith("site-packages"))
left = sorted(os.path.relpath(root, site) for root, dirs, _ in os.walk(site)
              if os.path.basename(root) == "tests")
dists = sorted(d.metadata["Name"].lower() for d in md.distributions())
print(json.dumps({"failed": sorted(failed), "count": count, "tests_folders": left,
                  "dists": dists}))
"""


def imports_in(engine, tag):
    result = run_notebook(engine, tag, new_notebook_from_cells([IMPORT_ALL]),
                          options=RunOptions(network_mode="none", timeout=900))
    text = "".join(o.get("text", "") for o in result.notebook.cells[0].outputs)
    return json.loads(text.strip().splitlines()[-1])


def test_pruned_image_imports_everything_the_full_one_does_and_is_smaller(engine):
    pruned = plan_image(CELLS, notebook_name="pruned.ipynb", search_dir=None)
    full = plan_image(CELLS, notebook_name="pruned.ipynb", search_dir=None,
                      options=replace(BuildOptions(), keep_tests=True))
    assert pruned.tag != full.tag
    pruned_build, full_build = build_image(engine, pruned), build_image(engine, full)

    lean, whole = imports_in(engine, pruned.tag), imports_in(engine, full.tag)

    assert lean["count"] > 1000  # numpy, pandas, scikit-learn, matplotlib and their closure
    assert set(lean["failed"]) == set(whole["failed"]), (
        set(lean["failed"]) ^ set(whole["failed"]))
    assert not any(f.startswith(("numpy/", "pandas/", "sklearn/")) for f in
                   lean["tests_folders"]), lean["tests_folders"]
    assert any(f.startswith("pandas/") for f in whole["tests_folders"])
    saved = full_build.size - pruned_build.size
    assert saved > 50e6, f"{saved / 1e6:.0f} MB"
    # the runtime stack's tools are left out of both (the kernel that ran this never loads
    # them), and IPython and ipykernel import whole without them
    for dists in (lean["dists"], whole["dists"]):
        assert {"ipython", "ipykernel"} <= set(dists)
        assert not {"jedi", "parso", "debugpy", "pip", "setuptools"} & set(dists), dists
    users = ("IPython.core.completer", "IPython.core.interactiveshell", "ipykernel.debugger",
             "ipykernel.ipkernel", "ipykernel.kernelapp")  # the modules that would load them
    assert lean["count"] and not [f for f in lean["failed"] if f.split(":")[0] in users], \
        lean["failed"]


def test_a_notebook_that_runs_pip_keeps_it(engine):
    """%pip in a cell: pip is a requirement at the kernel's version, and it runs in the image
    (the venv grows from the one above, which left pip out)."""
    plan = plan_image([*CELLS, "%pip --version"], notebook_name="pip.ipynb", search_dir=None)
    assert "pip" not in plan.spec.leave_out
    build_image(engine, plan)
    result = run_notebook(engine, plan.tag, new_notebook_from_cells(["%pip --version"]),
                          options=RunOptions(network_mode="none"))
    text = "".join(o.get("text", "") for o in result.notebook.cells[0].outputs)
    assert text.startswith("pip ") and "/opt/venv/" in text, text
