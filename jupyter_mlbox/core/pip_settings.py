"""The host's pip settings, carried into the builder stage of an image.

Corporate networks (and this project's CI) reach PyPI through a proxy with its own CA, or through
a private index. pip on the host already knows this from its environment and pip.conf; a build
inside a container knows nothing unless told. We read the same places pip reads and hand the
result to the builder stage only: the final image never holds a CA copy, a pip config or an index
credential.
"""
from __future__ import annotations

import configparser
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

#: Variables that name a CA bundle, most specific first.
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@dataclass(frozen=True)
class PipSettings:
    """Index and CA settings a build needs; what could not be carried over is in ``warnings``."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    cert_file: Path | None = None
    cert_source: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> list[str]:
        """Human lines for ``doctor`` (credentials masked)."""
        lines = [f"index: {_mask(self.index_url) if self.index_url else 'PyPI (default)'}"]
        lines += [f"extra index: {_mask(url)}" for url in self.extra_index_urls]
        lines += [f"trusted host: {host}" for host in self.trusted_hosts]
        lines.append(f"CA bundle: {self.cert_file} (from {self.cert_source})" if self.cert_file
                     else "CA bundle: system default")
        return lines


def _mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        return url.replace(parts.netloc, "***@" + parts.netloc.rsplit("@", 1)[-1])
    return url


def pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's config files in pip's own order (later ones override earlier ones)."""
    if environ.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    home = Path(environ.get("HOME", str(Path.home())))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf",
              Path(environ.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf"]
    if environ.get("PIP_CONFIG_FILE"):
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    venv = environ.get("VIRTUAL_ENV") or (sys.prefix if sys.prefix != sys.base_prefix else "")
    if venv:
        files.append(Path(venv) / "pip.conf")
    return files


def _read_pip_config(environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for path in pip_config_files(environ):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update({k.replace("_", "-"): v for k, v in parser.items(section)})
    return values


def host_pip_settings(environ: Mapping[str, str] | None = None) -> PipSettings:
    """Read the settings pip on this host would use (environment first, then pip.conf)."""
    environ = os.environ if environ is None else environ
    config = _read_pip_config(environ)
    warnings: list[str] = []

    def setting(name: str) -> str | None:
        return environ.get("PIP_" + name.upper().replace("-", "_")) or config.get(name)

    def reachable(url: str) -> bool:
        if urlsplit(url).scheme in {"http", "https"}:
            return True
        warnings.append(f"index {url} is local to this host and cannot be used inside a build; "
                        f"skipped")
        return False

    index_url = setting("index-url")
    if index_url and not reachable(index_url):
        index_url = None
    extras = tuple(u for u in (setting("extra-index-url") or "").split() if reachable(u))
    trusted = tuple((setting("trusted-host") or "").split())

    cert_file, cert_source = None, None
    candidates = [(var, environ.get(var)) for var in CA_VARIABLES] + [("pip.conf cert",
                                                                         config.get("cert"))]
    for source, value in candidates:
        if value:
            if Path(value).is_file():
                cert_file, cert_source = Path(value), source
                break
            warnings.append(f"{source}={value} does not exist; ignored")
    return PipSettings(index_url, extras, trusted, cert_file, cert_source, tuple(warnings))
