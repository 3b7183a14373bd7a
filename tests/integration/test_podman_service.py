"""scripts/ensure-podman.sh started cold, the way the test suite (and any program) calls it:
reading its output to the end. A background shell that kept the script's stdout made that
caller wait forever, and CI ran out of time after the Docker suite had passed."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from ..conftest import ROOT, TEST_ENGINE

pytestmark = pytest.mark.skipif(TEST_ENGINE != "podman",
                                reason="Podman runs only (scripts/test-podman.sh)")


def test_a_cold_start_returns_the_socket_and_leaves_the_service_up():
    folder = Path("/run") / f"mlbox-podman-test-{uuid.uuid4().hex[:8]}"
    socket_url = f"unix://{folder}/podman.sock"
    try:
        started = subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure-podman.sh")], capture_output=True,
            text=True, timeout=120, env={**os.environ, "MLBOX_PODMAN_SOCKET": socket_url})
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip().splitlines()[-1] == socket_url
        assert "starting podman system service" in started.stderr
        answered = subprocess.run(["podman", "--url", socket_url, "version", "--format",
                                   "{{.Server.Version}}"], capture_output=True, text=True,
                                  timeout=60)
        assert answered.returncode == 0 and answered.stdout.strip(), answered.stderr
    finally:
        subprocess.run(["pkill", "-f", f"podman system service --time=0 {socket_url}"])
        subprocess.run(["rm", "-rf", str(folder)])

