"""Ask the configured package index whether a distribution exists and provides a module.

A guessed requirement (an import the kernel lacks, mapped to a distribution name) is only
installed when the index has that distribution *and* one of its wheels really contains the
imported module — the check pigar's database is built on. Without it, a helper module that
happens to share a name with a PyPI project would be installed from PyPI (dependency confusion),
and a namespace import such as ``google.generativeai`` would become ``protobuf``.

How: the PEP 691 JSON simple API (``GET <index>/<name>/``, HTML pages are read too), then the
newest release's pure-Python wheel (else its smallest wheel) is opened as a zip *through HTTP
range requests*: the end of the file holds the central directory, which lists every file the
wheel installs, so only a few kilobytes travel even for a wheel of hundreds of megabytes (pip's
``lazy_wheel`` does the same). Servers without range support are read whole, up to
:data:`MAX_DOWNLOAD_BYTES`; a project with no wheel at all falls back to its sdist under the same
cap.

The index, extra indexes, trusted hosts and CA bundle are the host pip's own
(:func:`~jupyter_mlbox.core.pip_settings.host_pip_settings`). Standard library only. A network
failure is a result (``status == "unreachable"``), never an exception; answers are cached for
the life of the process, failures are not.
"""
from __future__ import annotations

import base64
import io
import json
import ssl
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Iterable
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name,
                             parse_sdist_filename, parse_wheel_filename)

from .pip_settings import PipSettings, host_pip_settings

PYPI_SIMPLE = "https://pypi.org/simple/"
#: A file is read whole only when the server cannot serve ranges, and only up to this size.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
#: Seconds per request.
TIMEOUT = 15.0
#: First request: the end of the wheel (end-of-central-directory record and, usually, the whole
#: central directory); later reads fetch at least this much.
TAIL_BYTES = 64 * 1024
#: An index that could not be reached is not asked again for this long (one plan asks many times).
RETRY_AFTER_SECONDS = 60.0

_ACCEPT = ("application/vnd.pypi.simple.v1+json, "
           "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1")


@dataclass(frozen=True)
class IndexCheck:
    """What the index says about ``distribution`` providing ``module``.

    ``status``: "verified" (a file of the distribution installs the module), "missing" (no index
    has the distribution), "not-provided" (it exists, its newest wheel lacks the module),
    "unreadable" (it exists but no file could be inspected) or "unreachable" (no answer).
    ``detail`` says why in words; ``index`` is where the answer came from.
    """

    distribution: str
    module: str
    status: str
    detail: str = ""
    index: str | None = None

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    @property
    def exists(self) -> bool | None:
        """Whether the distribution exists (None: could not be told)."""
        if self.status == "unreachable":
            return None
        return self.status != "missing"


class _Unreachable(Exception):
    """The index (or a file on it) did not answer; never cached."""


class _NotFound(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Client:
    """How to talk to the indexes: URLs, trusted hosts, CA bundle (hashable: a cache key)."""

    indexes: tuple[str, ...]
    trusted_hosts: tuple[str, ...] = ()
    cert_file: str | None = None

    @classmethod
    def from_settings(cls, settings: PipSettings | None) -> "_Client":
        settings = host_pip_settings() if settings is None else settings
        indexes = (settings.index_url or PYPI_SIMPLE,) + tuple(settings.extra_index_urls)
        return cls(tuple(u if u.endswith("/") else u + "/" for u in indexes),
                   tuple(settings.trusted_hosts),
                   str(settings.cert_file) if settings.cert_file else None)

    def _context(self, host: str) -> ssl.SSLContext:
        if host in {h.split(":")[0] for h in self.trusted_hosts}:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return _ssl_context(self.cert_file)

    def open(self, url: str, headers: dict[str, str] | None = None):
        """urlopen ``url``; credentials in the URL become a Basic Authorization header.

        Raises _NotFound for 404/410 and _Unreachable for anything else that went wrong."""
        parts = urlsplit(url)
        headers = dict(headers or {})
        if parts.username or parts.password:
            token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        headers.setdefault("User-Agent", "jupyter-mlbox (index check)")
        request = urllib.request.Request(url, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT,
                                          context=self._context(parts.hostname or ""))
        except urllib.error.HTTPError as err:
            if err.code in (404, 410):
                raise _NotFound(url) from err
            raise _Unreachable(f"HTTP {err.code} from {_masked(url)}") from err
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise _Unreachable(f"{_masked(url)}: {reason}") from err


@lru_cache(maxsize=8)
def _ssl_context(cert_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert_file) if cert_file \
        else ssl.create_default_context()


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    return url


def describe_index(url: str) -> str:
    """``PyPI`` for PyPI, else the (masked) URL."""
    return "PyPI" if url.rstrip("/") == PYPI_SIMPLE.rstrip("/") else _masked(url)


_down: dict[str, float] = {}
_down_lock = threading.Lock()


def _is_down(index: str) -> bool:
    with _down_lock:
        since = _down.get(index)
        return since is not None and time.monotonic() - since < RETRY_AFTER_SECONDS


def _mark_down(index: str) -> None:
    with _down_lock:
        _down[index] = time.monotonic()


def clear_cache() -> None:
    """Forget every answer and every index marked unreachable (tests, long-lived servers)."""
    _project_files.cache_clear()
    _file_paths.cache_clear()
    with _down_lock:
        _down.clear()


# ---------------------------------------------------------------------------------------------
# the simple API
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    filename: str
    url: str
    size: int | None = None
    yanked: bool = False


class _AnchorParser(HTMLParser):
    """PEP 503 HTML pages: every ``<a href>`` with its text and ``data-yanked``."""

    def __init__(self) -> None:
        super().__init__()
        self._href: str | None = None
        self._yanked = False
        self._text: list[str] = []
        self.files: list[tuple[str, str, bool]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            self._href, self._yanked, self._text = attrs.get("href"), "data-yanked" in attrs, []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            name = "".join(self._text).strip() or self._href.split("#")[0].rsplit("/", 1)[-1]
            self.files.append((name, self._href, self._yanked))
            self._href = None


@lru_cache(maxsize=512)
def _project_files(client: _Client, index: str, name: str) -> tuple[str, tuple[_File, ...]] | None:
    """The files ``index`` lists for ``name`` (None: the index has no such project)."""
    page = index + canonicalize_name(name) + "/"
    try:
        with client.open(page, {"Accept": _ACCEPT}) as response:
            body = response.read(50 * 1024 * 1024)
            kind = response.headers.get("Content-Type", "")
            page = response.geturl() or page
    except _NotFound:
        return None
    files: list[_File] = []
    if "json" in kind:
        try:
            data = json.loads(body)
        except ValueError as err:
            raise _Unreachable(f"{_masked(page)}: not a PEP 691 page ({err})") from err
        for item in data.get("files", []):
            if isinstance(item, dict) and item.get("filename") and item.get("url"):
                size = item.get("size")
                files.append(_File(item["filename"], urljoin(page, item["url"]),
                                   size if isinstance(size, int) else None,
                                   bool(item.get("yanked"))))
    else:
        parser = _AnchorParser()
        parser.feed(body.decode("utf-8", "replace"))
        files = [_File(fname, urljoin(page, href), None, yanked)
                 for fname, href, yanked in parser.files]
    return page, tuple(files)


def _choose_file(files: tuple[_File, ...]) -> _File | None:
    """The newest release's pure-Python wheel, else its smallest wheel, else its sdist."""
    wheels, sdists = [], []
    for f in files:
        if f.yanked:
            continue
        try:
            if f.filename.endswith(".whl"):
                _, version, _, tags = parse_wheel_filename(f.filename)
                wheels.append((version, f, tags))
            elif f.filename.endswith((".tar.gz", ".zip")):
                sdists.append((parse_sdist_filename(f.filename)[1], f, frozenset()))
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
    for group in (wheels, sdists):
        if not group:
            continue
        finals = [g for g in group if not g[0].is_prerelease] or group
        newest = max(v for v, _, _ in finals)
        candidates = [(f, tags) for v, f, tags in finals if v == newest]

        def key(item):
            f, tags = item
            pure = any(t.platform == "any" and t.interpreter.startswith("py") for t in tags)
            return (not pure, f.size if f.size is not None else float("inf"), f.filename)

        return min(candidates, key=key)[0]
    return None


# ---------------------------------------------------------------------------------------------
# reading a zip over HTTP ranges
# ---------------------------------------------------------------------------------------------

class RangeReader(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests (enough for :mod:`zipfile`).

    ``fetched`` counts the bytes that came over the wire. A server that ignores ``Range``
    answers with the whole file, which is kept when it is under ``max_download`` bytes.
    """

    def __init__(self, client: _Client, url: str, *, max_download: int | None = None,
                 tail: int | None = None) -> None:
        super().__init__()
        max_download = MAX_DOWNLOAD_BYTES if max_download is None else max_download
        tail = TAIL_BYTES if tail is None else tail
        self._client, self._url, self._max = client, url, max_download
        self._chunks: list[tuple[int, bytes]] = []
        self._pos = 0
        self.fetched = 0
        with client.open(url, {"Range": f"bytes=-{tail}"}) as response:
            if response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range", ""))
                data = response.read()
                self.size = total if total is not None else start + len(data)
            else:  # no range support: the whole file, under the cap
                length = response.headers.get("Content-Length")
                if length and int(length) > max_download:
                    raise _TooLarge(int(length))
                start, data = 0, response.read(max_download + 1)
                if len(data) > max_download:
                    raise _TooLarge(len(data))
                self.size = len(data)
        self.fetched += len(data)
        self._chunks.append((start, data))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        for start, data in self._chunks:
            if start <= self._pos and end <= start + len(data):
                out = data[self._pos - start:end - start]
                self._pos = end
                return out
        first = self._pos
        last = min(self.size, max(end, first + TAIL_BYTES)) - 1
        with self._client.open(self._url, {"Range": f"bytes={first}-{last}"}) as response:
            if response.status == 206:
                data = response.read()
            else:  # range ignored this time: the whole file comes; keep what was asked
                data = response.read(last + 1)[first:]
        self.fetched += len(data)
        self._chunks.append((first, data))
        out = data[:end - first]
        self._pos = first + len(out)
        return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _TooLarge(Exception):
    pass


def _content_range(value: str) -> tuple[int, int | None]:
    """``bytes 100-199/1000`` → (100, 1000)."""
    try:
        span, total = value.split(" ", 1)[1].split("/")
        return int(span.split("-")[0]), (None if total == "*" else int(total))
    except (IndexError, ValueError) as err:
        raise _Unreachable(f"bad Content-Range {value!r}") from err


@lru_cache(maxsize=256)
def _file_paths(client: _Client, file: _File) -> tuple[str, ...]:
    """Every path a wheel (its zip directory, plus ``top_level.txt`` names as ``NAME/``) or an
    sdist (member paths without the leading folder) contains."""
    if file.filename.endswith(".whl"):
        reader = RangeReader(client, file.url)
        with zipfile.ZipFile(reader) as archive:
            names = archive.namelist()
            paths = [_strip_data_dir(n) for n in names]
            for name in names:
                if name.endswith(".dist-info/top_level.txt") and name.count("/") == 1:
                    text = archive.read(name).decode("utf-8", "replace")
                    paths += [line.strip().replace(".", "/") + "/" for line in text.splitlines()
                              if line.strip()]
        return tuple(paths)
    with client.open(file.url) as response:  # an sdist is read whole, under the cap
        length = response.headers.get("Content-Length")
        if length and int(length) > MAX_DOWNLOAD_BYTES:
            raise _TooLarge(int(length))
        body = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise _TooLarge(len(body))
    data = io.BytesIO(body)
    if file.filename.endswith(".zip"):
        names = zipfile.ZipFile(data).namelist()
    else:
        with tarfile.open(fileobj=data, mode="r:*") as archive:
            names = archive.getnames()
    paths = []
    for name in names:
        inner = name.split("/", 1)[1] if "/" in name else name
        paths.append(inner)
        if inner.startswith("src/"):
            paths.append(inner[4:])
    return tuple(paths)


def _strip_data_dir(path: str) -> str:
    """``pkg-1.0.data/purelib/pkg/x.py`` → ``pkg/x.py``."""
    parts = path.split("/", 2)
    if len(parts) == 3 and parts[0].endswith(".data") and parts[1] in {"purelib", "platlib"}:
        return parts[2]
    return path


def provides(paths: Iterable[str], module: str) -> bool:
    """Whether files at ``paths`` install ``module`` (a package folder, a ``.py``, an extension)."""
    return provided_depth(paths, module) == module.count(".") + 1


_MODULE_SUFFIXES = {"py", "so", "pyd", "pyc", "pyi"}


def regular_depth(paths: Iterable[str], module: str) -> int:
    """Like :func:`provided_depth`, counting only regular modules (a package's
    ``__init__.py``, a ``.py`` or an extension): a namespace folder such as ``google/cloud/``
    that google-cloud-core also installs into does not count."""
    parts = module.split(".")
    best = 0
    for path in paths:
        pieces = path.split("/")
        if pieces[-1] == "__init__.py":
            found = pieces[:-1]
        elif pieces[-1].rsplit(".", 1)[-1] in _MODULE_SUFFIXES and "." in pieces[-1]:
            found = pieces[:-1] + [pieces[-1].split(".")[0]]
        else:
            continue
        if len(found) > best and found == parts[:len(found)]:
            best = len(found)
    return best


def provided_depth(paths: Iterable[str], module: str) -> int:
    """How many leading parts of dotted ``module`` the files at ``paths`` install: 2 for
    ``google.generativeai.types`` in google-generativeai's wheel, 1 in protobuf's (``google/``
    only), 0 when none."""
    parts = module.split(".")
    best = 0
    for path in paths:
        pieces = path.split("/")
        depth = 0
        for index, piece in enumerate(pieces[:len(parts)]):
            last = index == len(pieces) - 1
            if not last and piece == parts[index]:
                depth = index + 1
                continue
            if last and piece != parts[index] and piece.split(".")[0] == parts[index] \
                    and piece.rsplit(".", 1)[-1] in _MODULE_SUFFIXES:
                depth = index + 1
            break
        best = max(best, depth)
        if best == len(parts):
            break
    return best


# ---------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------

def check_module(distribution: str, module: str, settings: PipSettings | None = None
                 ) -> IndexCheck:
    """Does the configured index have ``distribution``, and does it install ``module``?"""
    client = _Client.from_settings(settings)
    unreachable: list[str] = []
    found: list[IndexCheck] = []
    for index in client.indexes:
        where = describe_index(index)
        if _is_down(index):
            unreachable.append(f"{where} could not be reached")
            continue
        try:
            listing = _project_files(client, index, distribution)
        except _Unreachable as err:
            _mark_down(index)
            unreachable.append(str(err))
            continue
        if listing is None:
            continue
        _, files = listing
        chosen = _choose_file(files)
        if chosen is None:
            found.append(IndexCheck(distribution, module, "unreadable",
                                    f"{where} lists no wheel or sdist of {distribution}", index))
            continue
        try:
            paths = _file_paths(client, chosen)
        except _Unreachable as err:
            unreachable.append(str(err))
            continue
        except _TooLarge:
            found.append(IndexCheck(distribution, module, "unreadable",
                                    f"{chosen.filename} is larger than "
                                    f"{MAX_DOWNLOAD_BYTES / 2**20:g} MB and the server cannot "
                                    f"send parts of it", index))
            continue
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            found.append(IndexCheck(distribution, module, "unreadable",
                                    f"{chosen.filename} could not be read ({err})", index))
            continue
        if provides(paths, module):
            return IndexCheck(distribution, module, "verified",
                              f"{chosen.filename} on {where} installs {module}", index)
        found.append(IndexCheck(distribution, module, "not-provided",
                                f"{distribution} exists on {where} but its {chosen.filename} "
                                f"does not install {module}", index))
    if unreachable:
        return IndexCheck(distribution, module, "unreachable",
                          "the index could not be reached (" + "; ".join(unreachable) + ")")
    if found:
        return found[0]
    where = " or ".join(describe_index(i) for i in client.indexes)
    return IndexCheck(distribution, module, "missing", f"{where} has no distribution "
                                                       f"'{distribution}'")
