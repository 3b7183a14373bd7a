"""Dependencies no import statement shows (issue 8, item 1): pinned when the kernel has them,
a warning naming --pip otherwise; IPython's own extensions name nothing."""
from __future__ import annotations

import importlib.metadata as metadata
import importlib.util

from jupyter_mlbox.core.inference import infer_requirements


def by_name(result) -> dict:
    return {r.name: r for r in result.requirements}


def test_sklearn_as_frame_implies_pandas_and_sample_images_imply_pillow():
    result = infer_requirements([
        "from sklearn.datasets import load_iris, load_sample_image",
        "X, y = load_iris(return_X_y=True, as_frame=True)\nchina = load_sample_image('china.jpg')"])
    found = by_name(result)
    assert found["pandas"].requirement == f"pandas=={metadata.version('pandas')}"
    assert found["pandas"].origin == "implied" and "as_frame=True" in found["pandas"].imports
    assert found["pillow"].requirement == f"pillow=={metadata.version('pillow')}"
    assert "load_sample_image(…)" in found["pillow"].imports


def test_an_engine_the_kernel_lacks_is_a_warning_that_names_the_flag_not_a_guess():
    assert importlib.util.find_spec("tables") is None, "this test needs a kernel without tables"
    result = infer_requirements(["import pandas as pd\ndf = pd.read_hdf('x.h5')"])
    assert "tables" not in by_name(result)
    assert any("read_hdf(…) needs tables" in w and "--pip tables" in w
               for w in result.warnings), result.warnings


def test_an_implied_package_that_is_also_imported_stays_an_import():
    result = infer_requirements(["import pandas as pd\nfrom sklearn.datasets import load_iris\n"
                                 "load_iris(as_frame=True)"])
    assert by_name(result)["pandas"].origin == "installed"


def test_load_ext_names_a_module_and_builtin_extensions_name_nothing():
    result = infer_requirements(["%load_ext matplotlib\n%load_ext autoreload\n%autoreload 2",
                                 "%reload_ext storemagic"])
    names = set(by_name(result))
    assert "matplotlib" in names
    assert not names & {"autoreload", "storemagic"}


def test_dask_distributed_is_its_own_distribution():
    result = infer_requirements(["from dask.distributed import Client"])
    assert any("needs distributed" in w for w in result.warnings) \
        or "distributed" in by_name(result)


def test_magics_imply_packages_with_no_import_statement():
    """%matplotlib plots without an import; %matplotlib widget needs ipympl; %%cython needs
    Cython and a C compiler (issue 13, item 3)."""
    from jupyter_mlbox.core.build import plan_image

    plan = plan_image(["%matplotlib inline\nimport json", "%matplotlib widget",
                       "%%cython\ncdef int a = 0", "%timeit 1 + 1"],
                      notebook_name="n.ipynb", search_dir=None)
    found = by_name(plan.inference)
    assert found["matplotlib"].requirement == f"matplotlib=={metadata.version('matplotlib')}"
    assert "%matplotlib inline" in found["matplotlib"].imports
    assert any("needs ipympl" in w for w in plan.warnings)  # not in this kernel: said
    assert {"gcc", "libc6-dev"} <= set(plan.spec.apt)
    assert "timeit" not in found
