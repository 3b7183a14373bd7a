"""A second, real dockerd for tests that must change the daemon itself: a GPU hook on its
PATH, or a daemon killed and started again. It runs in a network namespace of its own with no
bridge (a second dockerd must never touch the host's docker0), so its containers use
``--network none``; images come from the main daemon with ``docker save | docker load``."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from jupyter_mlbox.core.docker_engine import DockerEngine


class SecondDaemon:
    """``start()``, ``kill()`` (SIGKILL, as a crash or the OOM killer would), ``stop()``;
    ``socket`` is its DOCKER_HOST URL. The data root survives a kill, as on a real host."""

    def __init__(self, path_prefix: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="/tmp/mlbox-dockerd-"))
        self.socket = f"unix://{self.root}/docker.sock"
        self.path_prefix = path_prefix
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60) -> DockerEngine:
        self._log = open(self.root / "dockerd.log", "a")
        path = os.environ["PATH"]
        if self.path_prefix is not None:
            path = f"{self.path_prefix}:{path}"
        self.process = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--host", self.socket,
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "docker.pid"), "--bridge", "none",
             "--iptables=false", "--ip-masq=false"],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, "PATH": path},
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return DockerEngine.connect(self.socket)
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        raise RuntimeError("the second dockerd did not start: " + self.log())

    def load(self, image: str) -> None:
        """Copy ``image`` from the main daemon into this one."""
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.socket, "load", "-q"], stdin=saved.stdout,
                       check=True, capture_output=True)
        saved.wait()

    def kill(self) -> None:
        """SIGKILL dockerd and the containerd it started, as a crash or the OOM killer would;
        the containers' shims live on (they have sessions of their own), as on a real host."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        # The killed containerd may stay a zombie here (this sandbox's init does not reap
        # orphans), and dockerd would wait for its pid forever: drop the stale pid file.
        (self.root / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)
        self._log.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        # a killed dockerd leaves its containerd (and shims) behind: end the whole group
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log is not None and not self._log.closed:
            self._log.close()
        subprocess.run(["umount", "-R", str(self.root / "exec")], capture_output=True)
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text()[-3000:]
        except OSError:
            return ""
