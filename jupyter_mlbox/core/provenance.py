"""Where each kernel distribution came from: an index, or a local path, an archive or a VCS.

PEP 610: pip and uv write ``direct_url.json`` into the ``.dist-info`` of anything installed
from a URL (``pip install -e .``, ``pip install ./pkg``, ``pip install x.whl``,
``pip install git+https://…``); a distribution from an index has none. Only that file tells
``acme-tools 0.3.0`` built from ``~/src/acme`` apart from PyPI's ``acme-tools 0.3.0``: pinning
the former by name would install the latter (or fail), so the plan must know. Pure reading of
the kernel's metadata: no network, no build (local_wheels.py builds).
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

#: ``Provenance.kind`` values: from an index, or from a direct URL of one of these kinds.
INDEX, EDITABLE, DIRECTORY, ARCHIVE, VCS, URL = (
    "index", "editable", "directory", "archive", "vcs", "url")
#: The kinds whose source lies on this host: built (or shipped) from there, never by name.
LOCAL_KINDS = (EDITABLE, DIRECTORY, ARCHIVE)


@dataclass(frozen=True)
class Provenance:
    """Where one installed distribution came from (``kind``: one of the constants above).

    ``path`` is the local source (a folder, or an archive / wheel file) for the local kinds;
    ``url`` the URL as recorded; ``vcs``/``commit``/``subdirectory`` for a VCS install."""

    kind: str = INDEX
    url: str | None = None
    path: Path | None = None
    vcs: str | None = None
    commit: str | None = None
    subdirectory: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind in LOCAL_KINDS

    def describe(self) -> str:
        """How the plan names it: ``editable /home/me/acme``, ``git https://…@1a2b3c4``."""
        if self.kind == INDEX:
            return "index"
        if self.kind == VCS:
            return f"{self.vcs} {self.url}@{(self.commit or '')[:12]}"
        if self.is_local:
            return f"{self.kind} {self.path}"
        return f"url {self.url}"


def file_url_path(url: str) -> Path | None:
    """The local path of a ``file:`` URL (None for any other scheme)."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(url2pathname(unquote(parsed.path)))


def parse_direct_url(text: str | None) -> Provenance:
    """The provenance a ``direct_url.json`` text records (None or empty: an index install).

    Raises ValueError for a file that is not PEP 610 JSON."""
    if not text:
        return Provenance()
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise ValueError("direct_url.json without a url")
    url = data["url"]
    subdirectory = data.get("subdirectory") or None
    if "vcs_info" in data:
        info = data["vcs_info"] or {}
        return Provenance(VCS, url, vcs=info.get("vcs", "git"),
                          commit=info.get("commit_id"), subdirectory=subdirectory)
    path = file_url_path(url)
    if "dir_info" in data:
        editable = bool((data["dir_info"] or {}).get("editable"))
        return Provenance(EDITABLE if editable else DIRECTORY, url, path,
                          subdirectory=subdirectory)
    if path is not None:  # archive_info of a local sdist or wheel
        return Provenance(ARCHIVE, url, path, subdirectory=subdirectory)
    return Provenance(URL, url, subdirectory=subdirectory)


def provenance_of(dist_name: str) -> Provenance:
    """The provenance of the installed distribution ``dist_name`` (an index install when it
    is not installed or records nothing readable)."""
    try:
        dist = metadata.distribution(dist_name)
        return parse_direct_url(dist.read_text("direct_url.json"))
    except (metadata.PackageNotFoundError, ValueError):
        return Provenance()


def vcs_requirement(name: str, provenance: Provenance) -> str:
    """``name @ git+URL@COMMIT`` (``#subdirectory=…`` kept): the exact commit the kernel has."""
    url = provenance.url or ""
    prefix = f"{provenance.vcs}+"
    if not url.startswith(prefix):
        url = prefix + url
    if provenance.commit:
        url += f"@{provenance.commit}"
    if provenance.subdirectory:
        url += f"#subdirectory={provenance.subdirectory}"
    return f"{canonicalize_name(name)} @ {url}"


def _editable_roots(dist: metadata.Distribution) -> dict[str, Path]:
    """Top-level module → source path of an editable install, read from what it installed:
    a ``.pth`` naming a folder (hatchling, flit, setuptools' compat mode) or setuptools'
    ``__editable___*_finder.py`` MAPPING."""
    found: dict[str, Path] = {}
    for file in dist.files or []:
        name = file.name
        try:
            if name.endswith(".pth"):
                for line in Path(file.locate()).read_text(encoding="utf-8").splitlines():
                    folder = Path(line.strip())
                    if not line.strip() or line.startswith(("#", "import")) \
                            or not folder.is_dir():
                        continue
                    for entry in folder.iterdir():
                        if entry.suffix == ".py" and entry.stem.isidentifier():
                            found.setdefault(entry.stem, entry)
                        elif entry.is_dir() and entry.name.isidentifier() \
                                and any(entry.glob("*.py")):
                            found.setdefault(entry.name, entry)
            elif name.startswith("__editable__") and name.endswith("_finder.py"):
                tree = ast.parse(Path(file.locate()).read_text(encoding="utf-8"))
                for node in ast.walk(tree):
                    if isinstance(node, ast.Assign) and any(
                            isinstance(t, ast.Name) and t.id == "MAPPING" for t in node.targets):
                        for module, path in ast.literal_eval(node.value).items():
                            found.setdefault(module, Path(path))
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            continue
    return found


def editable_modules() -> dict[str, list[str]]:
    """Top-level module → editable distributions providing it, for the editable installs whose
    modules ``importlib.metadata.packages_distributions`` cannot see (their RECORD lists a
    ``.pth`` file, not the package)."""
    found: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if not name or provenance_of_dist(dist).kind != EDITABLE:
            continue
        roots = _editable_roots(dist)
        if not roots:  # its source is gone (or unreadable): the name is the best guess, so
            # that the plan says the source is missing rather than guessing from an index
            roots = {canonicalize_name(name).replace("-", "_"): None}
        for module in roots:
            found.setdefault(module, []).append(name)
    return found


def provenance_of_dist(dist: metadata.Distribution) -> Provenance:
    try:
        return parse_direct_url(dist.read_text("direct_url.json"))
    except ValueError:
        return Provenance()


#: How ``--explain`` names each PinnedRequirement origin that is served by an index.
_INDEX_BECAUSE = {"installed": "import", "traced": "traced", "implied": "implied by",
                  "extra": "extra for", "guess": "guess for", "pip-magic": "%pip install"}


def requirement_from(origin: str, where: str = "", imports: tuple[str, ...] = ()) -> str:
    """Where a requirement line comes from, as ``requirements --explain`` says it: ``index
    (import pandas)``, ``local build of editable /src/acme (import acme_tools)``, ``vcs git
    https://…@1a2b3c``, ``explicit (--pip)``, ``file (requirements file)``."""
    because = f" ({', '.join(imports)})" if imports else ""
    if origin == "explicit":
        return "explicit (--pip)"
    if origin == "file":
        return f"file ({where or 'requirements file'})"
    if origin == "local":
        return f"{where}{because}"
    if origin == "vcs":
        return f"vcs {where}{because}"
    if origin == "url":
        return f"{where}{because}"
    return f"index ({_INDEX_BECAUSE.get(origin, origin)}{' ' if imports else ''}" \
           f"{', '.join(imports)})"
