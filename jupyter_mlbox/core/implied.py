"""Dependencies a notebook needs that no import statement shows.

A small table, applied when the code shows the pattern: IPython extensions loaded by name,
pandas I/O engines, sample-data helpers, sub-packages that are separate distributions. What is
implied is added (pinned) when the kernel has it installed — the kernel ran the notebook, so it
is the verified choice — and otherwise said as a warning that names ``--pip``: a guess here is
never installed unverified.

Pure: reads syntax trees, knows nothing of the kernel.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

#: IPython's own extensions: loading them names no distribution.
BUILTIN_EXTENSIONS = {"autoreload", "storemagic"}

#: Module (or dotted prefix) imported → distributions it needs that its own package lacks.
#: (Extras a submodule needs, such as dask.dataframe's pandas, come from the distribution's own
#: metadata instead: extras.py.)
BY_IMPORT = {
    "skimage.data": ("pooch",),
    "transformers.pipelines": ("torch",),
}

#: Name called or read (``pd.read_excel``, ``load_iris(as_frame=True)``) → distributions.
BY_NAME = {
    "read_excel": ("openpyxl",), "to_excel": ("openpyxl",),
    "read_parquet": ("pyarrow",), "to_parquet": ("pyarrow",),
    "read_feather": ("pyarrow",), "to_feather": ("pyarrow",),
    "read_hdf": ("tables",), "to_hdf": ("tables",), "HDFStore": ("tables",),
    "read_sql": ("sqlalchemy",), "read_sql_query": ("sqlalchemy",),
    "read_sql_table": ("sqlalchemy",), "to_sql": ("sqlalchemy",),
    "read_html": ("lxml",), "read_xml": ("lxml",),
    "load_sample_image": ("pillow",), "load_sample_images": ("pillow",),
}

#: Magics → distributions: ``%matplotlib inline`` plots with no import statement,
#: ``%matplotlib widget`` needs ipympl, a ``%%cython`` cell needs Cython (and a C compiler:
#: system_packages.py). Built-ins such as ``%timeit`` need nothing.
BY_MAGIC = {("line", "matplotlib"): ("matplotlib",), ("cell", "cython"): ("cython",)}
MATPLOTLIB_BACKENDS = {"widget": ("ipympl",), "ipympl": ("ipympl",)}

#: Keyword arguments → distributions (scikit-learn's loaders return DataFrames with pandas).
BY_KEYWORD = {("as_frame", True): ("pandas",)}


@dataclass(frozen=True)
class Implied:
    distribution: str
    because: str  # the pattern, as the user wrote it


def extension_modules(tree: ast.AST) -> set[str]:
    """Modules named by ``%load_ext NAME`` / ``%reload_ext NAME`` (IPython's transformer turns
    them into ``get_ipython().run_line_magic('load_ext', 'NAME')``)."""
    found = set()
    for kind, name, arguments in magics(tree):
        if kind == "line" and name in {"load_ext", "reload_ext"}:
            found |= {module for module in arguments.split()
                      if module.replace(".", "").replace("_", "").isalnum()
                      and module.split(".")[0] not in BUILTIN_EXTENSIONS}
    return found


def magics(tree: ast.AST) -> list[tuple[str, str, str]]:
    """``(kind, name, arguments)`` of every magic in ``tree`` (IPython's transformer turns
    ``%name args`` into ``run_line_magic('name', 'args')`` and ``%%name`` cells into
    ``run_cell_magic('name', 'args', body)``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in {"run_line_magic", "run_cell_magic"} \
                and len(node.args) >= 2 \
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                        for a in node.args[:2]):
            kind = "line" if node.func.attr == "run_line_magic" else "cell"
            found.append((kind, node.args[0].value, node.args[1].value))
    return found


def implied_by(tree: ast.AST, imported: set[str]) -> list[Implied]:
    """What ``tree`` implies beyond its imports (``imported``: every module it imports)."""
    found: list[Implied] = []
    for kind, name, arguments in magics(tree):
        written = f"{'%' if kind == 'line' else '%%'}{name} {arguments}".strip()
        found += [Implied(d, written) for d in BY_MAGIC.get((kind, name), ())]
        if name == "matplotlib":
            backend = arguments.split()[0] if arguments.split() else ""
            found += [Implied(d, written) for d in MATPLOTLIB_BACKENDS.get(backend, ())]
    for module in sorted(imported):
        for prefix, distributions in BY_IMPORT.items():
            if module == prefix or module.startswith(prefix + "."):
                found += [Implied(d, f"import {module}") for d in distributions]
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else \
            node.id if isinstance(node, ast.Name) else None
        if name in BY_NAME:
            found += [Implied(d, f"{name}(…)") for d in BY_NAME[name]]
        if isinstance(node, ast.keyword) and isinstance(node.value, ast.Constant):
            distributions = BY_KEYWORD.get((node.arg, node.value.value), ())
            found += [Implied(d, f"{node.arg}={node.value.value!r}") for d in distributions]
    return found
