"""Which earlier cells ``%%mlbox --with-setup`` runs again before the cell: the ones that only
import or define (functions, classes, constants), so running them twice has no side effect."""
from __future__ import annotations

import ast


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_constant(k) for k in node.keys) \
            and all(_is_constant(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    return False


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):  # a docstring
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and (node.value is None
                                                      or _is_constant(node.value))
    if isinstance(node, ast.Try):  # try: import x / except ImportError: x = None
        return all(_is_definition(n) for n in node.body + node.orelse + node.finalbody) \
            and all(_is_definition(n) for h in node.handlers for n in h.body)
    return False


def is_setup_cell(source: str) -> bool:
    """Whether a cell only imports or defines (functions, classes, constants): safe to run again
    before a ``%%mlbox --with-setup`` cell."""
    from ..core.notebook import python_source

    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return False
    return bool(tree.body) and all(_is_definition(node) for node in tree.body)


def is_mlbox_cell(source: str) -> bool:
    return source.lstrip().startswith("%%mlbox")


def setup_cells(earlier: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(label, source)`` cells of ``earlier`` that ``--with-setup`` runs, in order."""
    return [(label, source) for label, source in earlier
            if not is_mlbox_cell(source) and is_setup_cell(source)]
