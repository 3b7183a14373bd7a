"""System (Debian) packages a notebook needs: ``apt.txt``, ``--apt`` and a small inferred table.

Three sources, merged in this order:

* ``apt.txt`` beside the notebook (repo2docker's convention): one Debian package per line,
  ``#`` starts a comment;
* ``--apt PKG`` (repeatable; ``c.MlboxDefaults.apt`` configures it);
* a small table of packages implied by the code (``BY_IMPORT`` … below), each added with a warning
  that says why; ``--exclude-apt NAME`` drops one.

They are installed in the image's final stage with ``apt-get`` (the base image is Debian), before
the virtual environment is copied in, as root. Every name is checked against Debian's package name
grammar first, so nothing but a package name ever reaches the ``RUN`` line.

Pure: reads files and syntax trees, no Docker, no network.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import RequirementError
from .implied import magics

APT_FILE = "apt.txt"

#: Debian policy §5.6.7: lower case letters, digits, + - . ; at least two characters, starting
#: with a letter or digit.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")

#: The inferred table: pattern → Debian packages. Documented in the README.
#: * saving a matplotlib animation (``FuncAnimation``/``ArtistAnimation`` and ``.save(…)`` or
#:   ``.to_html5_video()``) → ffmpeg, matplotlib's default movie writer (a ``.gif`` file or
#:   ``writer="pillow"`` needs no ffmpeg and adds nothing);
#: * ``import graphviz`` / ``import pydot`` or a ``!dot …`` shell line → graphviz (the ``dot``
#:   program those Python packages call);
#: * ``import pytesseract`` → tesseract-ocr (the program it wraps);
#: * ``import pymc`` / ``import pytensor`` → g++ (PyTensor compiles its C code; without a
#:   compiler it falls back to slow Python and warns);
#: * opencv-python or opencv-contrib-python (not the -headless builds) among the requirements →
#:   libgl1 and libglib2.0-0, which ``cv2`` loads and slim images lack;
#: * a shared object of an installed requirement that needs a library of shared_libraries.py's
#:   table (``libgomp.so.1`` → libgomp1 …) and does not bundle it.
BY_IMPORT = {
    "graphviz": ("graphviz",),
    "pydot": ("graphviz",),
    "pytesseract": ("tesseract-ocr",),
    "pymc": ("g++",),
    "pytensor": ("g++",),
}
BY_SHELL_COMMAND = {"dot": ("graphviz",)}
#: ``%%cython`` compiles at run time: a C compiler and the C library's headers.
BY_CELL_MAGIC = {"cython": ("gcc", "libc6-dev")}
BY_REQUIREMENT = {
    "opencv-python": ("libgl1", "libglib2.0-0"),
    "opencv-contrib-python": ("libgl1", "libglib2.0-0"),
}
ANIMATIONS = {"FuncAnimation", "ArtistAnimation"}
ANIMATION_PACKAGES = ("ffmpeg",)


@dataclass(frozen=True)
class SystemPackage:
    """One Debian package for the image; ``origin`` is "apt.txt", "explicit" (``--apt`` or
    configured) or "inferred", ``because`` the pattern that implied it."""

    name: str
    origin: str
    because: str = ""


def validate_package_name(name: str, where: str = "") -> str:
    """``name`` if it is a Debian package name, else a RequirementError naming it (and
    ``where`` it came from, e.g. ``apt.txt:3``)."""
    if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
        prefix = f"{where}: " if where else ""
        raise RequirementError(
            f"{prefix}{name!r} is not a valid Debian package name (lower case letters, digits "
            f"and + - . only, at least two characters, e.g. ffmpeg or libglib2.0-0)")
    return name


def read_apt_file(path: Path) -> list[str]:
    """Package names in an ``apt.txt``: one a line, ``#`` comments; a bad line raises."""
    names = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.partition("#")[0].strip()
        if line:
            names.append(validate_package_name(line, f"{Path(path).name}:{number}"))
    return names


def _shell_commands(tree: ast.AST) -> list[str]:
    """First words of ``!cmd …`` lines (IPython turns them into ``get_ipython().system(…)``)."""
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in {"system", "getoutput"} and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and node.args[0].value.split():
            words.append(node.args[0].value.split()[0])
    return words


def _name(node: ast.AST) -> str | None:
    return node.attr if isinstance(node, ast.Attribute) else \
        node.id if isinstance(node, ast.Name) else None


def _saves_without_ffmpeg(call: ast.Call) -> bool:
    """``anim.save("x.gif")`` or ``writer="pillow"``: matplotlib writes it with Pillow."""
    for keyword in call.keywords:
        if keyword.arg == "writer":
            value = keyword.value
            text = value.value if isinstance(value, ast.Constant) else \
                _name(value.func) if isinstance(value, ast.Call) else _name(value)
            return isinstance(text, str) and text.lower().startswith("pillow")
    first = call.args[0] if call.args else None
    return isinstance(first, ast.Constant) and isinstance(first.value, str) \
        and first.value.lower().endswith(".gif")


def _animation_saves(trees: list[ast.AST]) -> str | None:
    """The call that saves a matplotlib animation, as written (None when there is none)."""
    names = {_name(node) for tree in trees for node in ast.walk(tree)}
    if not names & ANIMATIONS:
        return None
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "to_html5_video":
                    return ".to_html5_video()"
                if node.func.attr == "save" and not _saves_without_ffmpeg(node):
                    return ".save(…) of a matplotlib animation"
    return None


def inferred_packages(trees: Iterable[ast.AST], imported: Iterable[str],
                      requirements: Iterable[str]) -> list[SystemPackage]:
    """The table applied to the code (``trees``), its imports and its pip requirements."""
    trees = list(trees)
    found: list[SystemPackage] = []
    for module in sorted(set(imported)):
        for name in BY_IMPORT.get(module.split(".")[0], ()):
            found.append(SystemPackage(name, "inferred", f"import {module.split('.')[0]}"))
    for tree in trees:
        for word in _shell_commands(tree):
            for name in BY_SHELL_COMMAND.get(word, ()):
                found.append(SystemPackage(name, "inferred", f"!{word}"))
        for kind, magic, _ in magics(tree):
            for name in BY_CELL_MAGIC.get(magic, ()) if kind == "cell" else ():
                found.append(SystemPackage(name, "inferred", f"%%{magic}"))
    saving = _animation_saves(trees)
    if saving:
        found += [SystemPackage(name, "inferred", saving) for name in ANIMATION_PACKAGES]
    for requirement in requirements:
        try:
            key = canonicalize_name(Requirement(requirement).name)
        except InvalidRequirement:
            continue
        found += [SystemPackage(name, "inferred", f"requirement {key}")
                  for name in BY_REQUIREMENT.get(key, ())]
    return found


@dataclass
class SystemPackages:
    packages: list[SystemPackage]
    warnings: list[str]

    def names(self) -> tuple[str, ...]:
        """Sorted, without duplicates: the order never changes the image's tag."""
        return tuple(sorted({p.name for p in self.packages}))


def system_packages(*, search_dir: Path | None, explicit: Iterable[str] = (),
                    trees: Iterable[ast.AST] = (), imported: Iterable[str] = (),
                    requirements: Iterable[str] = (),
                    exclude: Iterable[str] = (),
                    linked: Iterable[SystemPackage] = ()) -> SystemPackages:
    """Everything the image needs from apt: ``apt.txt`` in ``search_dir``, ``explicit``
    (``--apt``), the inferred table and ``linked`` (what the wheels' binaries need) minus
    ``exclude`` (``--exclude-apt``); a warning for each inferred one."""
    packages: list[SystemPackage] = []
    if search_dir is not None and (Path(search_dir) / APT_FILE).is_file():
        packages += [SystemPackage(n, APT_FILE) for n in read_apt_file(Path(search_dir) / APT_FILE)]
    packages += [SystemPackage(validate_package_name(n, "--apt"), "explicit") for n in explicit]
    given = {p.name for p in packages}
    excluded = set(exclude)
    warnings, seen = [], set()
    for package in [*inferred_packages(trees, imported, requirements), *linked]:
        if package.name in given or package.name in excluded or package.name in seen:
            continue
        seen.add(package.name)
        packages.append(package)
        warnings.append(f"system package {package.name} added (inferred from {package.because}); "
                        f"--exclude-apt {package.name} drops it")
    return SystemPackages(packages, warnings)


def plan_system_packages(sources: Iterable[str], *, search_dir: Path | None,
                         explicit: Iterable[str] = (), exclude: Iterable[str] = (),
                         requirements: Iterable[str] = ()) -> SystemPackages:
    """:func:`system_packages` for code cells ``sources`` (parsed as the kernel would)."""
    from .inference import imported_modules
    from .notebook import parse_cells

    trees = [cell.tree for cell in parse_cells(list(sources)) if cell.tree is not None]
    imported = {module for tree in trees for module in imported_modules(tree)}
    requirements = list(requirements)
    return system_packages(search_dir=search_dir, explicit=explicit, trees=trees,
                           imported=imported, requirements=requirements, exclude=exclude,
                           linked=linked_packages(requirements))


def linked_packages(requirements: Iterable[str]) -> list[SystemPackage]:
    """Packages the binaries of the requirements' installed wheels (this kernel's, the same
    versions the image gets) need: see shared_libraries.py."""
    from .shared_libraries import packages_for_distributions

    names = []
    for requirement in requirements:
        try:
            names.append(Requirement(requirement).name)
        except InvalidRequirement:
            continue
    return [SystemPackage(package, "inferred", f"{soname}, which {distribution} links")
            for package, soname, distribution in packages_for_distributions(names)]
