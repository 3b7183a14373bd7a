"""Which Docker daemon to talk to, chosen as the docker CLI chooses it, and how to say so.

``--host`` (a context name or a daemon URL) > ``DOCKER_HOST`` > ``DOCKER_CONTEXT`` > the current
context of ``docker context use`` > the local socket. A GPU box is usually reached over ssh:
``ssh://`` endpoints go through the user's own ``ssh`` client (what the docker CLI does), so
``~/.ssh/config`` aliases, ``ProxyJump``, the agent and ``known_hosts`` work as in a terminal.
docker-py would force port 22 onto an alias (``ssh://box`` → ``-p 22``), so the user and port are
read from ``ssh -G`` first. When the connection fails, one ``ssh`` call says which part failed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Endpoint:
    """A daemon URL and the setting that chose it (said by ``doctor``)."""

    url: str
    chosen_by: str
    tls: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_ssh(self) -> bool:
        return self.url.startswith("ssh://")

    def shown(self) -> str:
        """The URL without credentials (it goes into notebooks' metadata and the panel)."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = f"{parts.username}:***@{parts.hostname}" + (
                f":{parts.port}" if parts.port else "")
            return parts._replace(netloc=netloc).geturl()
        return self.url

    def client_kwargs(self) -> dict:
        """Keyword arguments of docker.DockerClient / docker.APIClient."""
        kwargs: dict[str, Any] = {"base_url": ssh_url(self.url) if self.is_ssh else self.url,
                                  **self.extra}
        if self.tls is not None:
            kwargs["tls"] = self.tls
        if self.is_ssh:
            kwargs["use_ssh_client"] = True  # the system ssh: config, agent, known_hosts
        return kwargs


def resolve_endpoint(host: str | None = None,
                     environ: Mapping[str, str] | None = None) -> Endpoint:
    """The daemon for ``host`` (``--host``: a URL or a context name), else the environment."""
    environ = os.environ if environ is None else environ
    if host:
        if "://" in host:
            return Endpoint(host, "--host")
        return _from_context(host, f"--host {host} (docker context)")
    if environ.get("DOCKER_HOST"):
        import docker

        kwargs = docker.utils.kwargs_from_env(environment=dict(environ))
        url = kwargs.pop("base_url", environ["DOCKER_HOST"])
        return Endpoint(url, "DOCKER_HOST", kwargs.pop("tls", None), kwargs)
    name = environ.get("DOCKER_CONTEXT") or _current_context_name()
    if name and name != "default":
        how = "DOCKER_CONTEXT" if environ.get("DOCKER_CONTEXT") else "docker context use"
        return _from_context(name, f"context {name} ({how})")
    return Endpoint(DEFAULT_SOCKET, "default (local socket)")


def _current_context_name() -> str | None:
    from docker.context.config import get_current_context_name

    return get_current_context_name()


def _from_context(name: str, chosen_by: str) -> Endpoint:
    from docker.context import ContextAPI

    from ..errors import DaemonUnavailableError

    try:
        context = ContextAPI.get_context(name)
    except Exception as err:  # noqa: BLE001 - a broken meta.json: say which context
        raise DaemonUnavailableError(f"docker context {name!r} cannot be read: {err}") from err
    if context is None and name != "default":
        host = _context_host(name)  # docker-py looks beside config.json only when it exists
        if host:
            return Endpoint(host, chosen_by)
    if context is None:
        raise DaemonUnavailableError(
            f"there is no docker context {name!r} (see `docker context ls`; create one with "
            f"`docker context create {name} --docker host=ssh://HOST`)")
    if not context.Host:
        raise DaemonUnavailableError(f"docker context {name!r} names no Docker endpoint")
    return Endpoint(context.Host, chosen_by, context.TLSConfig)


def _contexts_dir():
    from pathlib import Path

    root = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return root / "contexts" / "meta"


def context_names() -> list[str]:
    """The docker contexts this user made (``docker context ls``, less ``default``), sorted:
    the daemons a server may offer its users by name."""
    import json

    names = []
    for meta in _contexts_dir().glob("*/meta.json"):
        try:
            names.append(str(json.loads(meta.read_text())["Name"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(set(names) - {"default"})


def _context_host(name: str) -> str | None:
    """The docker endpoint of context ``name`` read from its meta.json, where the docker CLI
    keeps it (``$DOCKER_CONFIG`` or ``~/.docker``, ``contexts/meta/<sha256 of the name>``)."""
    import hashlib
    import json

    meta = _contexts_dir() / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    try:
        return json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ssh_client() -> str | None:
    """The system ssh client docker talks through (``doctor`` names it)."""
    return shutil.which("ssh")


def _ssh_settings(host: str) -> dict[str, str]:
    """What the user's ssh makes of ``host`` (``ssh -G``: config applied, nothing connected)."""
    try:
        out = subprocess.run(["ssh", "-G", host], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def ssh_url(url: str) -> str:
    """``ssh://alias`` with the user and port the user's ssh config gives the alias, so
    docker-py's default port 22 does not override them."""
    parts = urlsplit(url)
    if parts.port and parts.username or not parts.hostname:
        return url
    settings = _ssh_settings(parts.hostname)
    user = parts.username or settings.get("user")
    port = parts.port or settings.get("port") or "22"
    return f"ssh://{user + '@' if user else ''}{parts.hostname}:{port}{parts.path or ''}"


#: ssh's own words → what failed, and the fix.
_SSH_FAILURES = (
    (r"Could not resolve hostname", "ssh cannot resolve the host name {host}: check the name "
                                    "(or add a Host alias to ~/.ssh/config)"),
    (r"Permission denied \(", "ssh to {host} was refused: the server did not accept your key "
                              "(ssh-add it to your agent, or set IdentityFile in ~/.ssh/config)"),
    (r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED",
     "ssh does not trust the host key of {host}: connect once with `ssh {host}` to check and "
     "accept it (or fix ~/.ssh/known_hosts)"),
    (r"Connection refused|Connection timed out|No route to host|Network is unreachable",
     "no ssh server answers at {host} ({line})"),
    (r"docker: (command )?not found|command not found",
     "{host} has no `docker` command: the ssh transport runs `docker system dial-stdio` there; "
     "install the Docker CLI on {host}"),
    (r"Cannot connect to the Docker daemon|Is the docker daemon running",
     "ssh to {host} works, but its Docker daemon does not answer: start Docker there "
     "(e.g. `ssh {host} sudo systemctl start docker`)"),
)


def ssh_diagnosis(url: str, timeout: float = 20) -> str | None:
    """After a failed connection: one ssh call that runs what the transport runs, and the
    sentence for what failed (None when it works or says nothing known)."""
    parts = urlsplit(ssh_url(url))
    args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}"]
    if parts.username:
        args += ["-l", parts.username]
    if parts.port:
        args += ["-p", str(parts.port)]
    args += ["--", parts.hostname or "", "docker version --format '{{.Server.Version}}'"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"ssh to {parts.hostname} did not finish ({type(err).__name__})"
    text = f"{out.stderr}\n{out.stdout}"
    for pattern, sentence in _SSH_FAILURES:
        found = re.search(pattern, text)
        if found:
            line = next((l for l in text.splitlines() if found.group(0) in l), "").strip()
            return sentence.format(host=parts.hostname, line=line[:160])
    return None
