"""A GPU box over ssh, as Docker users reach it (issue 15, items 1-2): a real OpenSSH server on
loopback, with its own host key and a key pair, in front of the real dockerd; a ``~/.ssh/config``
Host alias (the file is restored afterwards). ``DOCKER_HOST=ssh://ALIAS``, the current docker
context (in a private DOCKER_CONFIG), and each way it fails, with its own sentence."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.conftest import free_port, write_notebook
from tests.integration.helpers import cli

pytestmark = pytest.mark.docker

ALIAS, DEAD, REFUSED = "mlbox-test-box", "mlbox-dead-box", "mlbox-refused-box"


@pytest.fixture(scope="module")
def ssh_box(tmp_path_factory):
    """sshd on 127.0.0.1:PORT; Host aliases for it in ~/.ssh/config (restored afterwards)."""
    if not Path("/usr/sbin/sshd").exists() or not shutil.which("ssh"):
        pytest.fail("sshd and ssh are missing: scripts/install-test-deps.sh installs them")
    root = tmp_path_factory.mktemp("sshbox")
    for key in ("host", "user", "stranger"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)],
                       check=True)
    shutil.copy(root / "user.pub", root / "authorized_keys")
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\n"
        "UsePAM no\nAcceptEnv DOCKER_HOST\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
                            stderr=open(root / "sshd.log", "w"))
    user = os.environ.get("USER") or "root"
    common = (f"  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentitiesOnly yes\n"
              f"  UserKnownHostsFile {root / 'known_hosts'}\n"
              f"  StrictHostKeyChecking accept-new\n")
    aliases = (f"Host {ALIAS}\n{common}  IdentityFile {root / 'user'}\n"
               f"Host {DEAD}\n{common}  IdentityFile {root / 'user'}\n"
               f"  SetEnv DOCKER_HOST=unix://{root}/no-daemon.sock\n"
               f"Host {REFUSED}\n{common}  IdentityFile {root / 'stranger'}\n")
    config = Path.home() / ".ssh" / "config"
    saved = config.read_bytes() if config.exists() else None
    config.parent.mkdir(mode=0o700, exist_ok=True)
    config.write_text(aliases + ("\n" + saved.decode() if saved else ""))
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield root
    finally:
        sshd.terminate()
        sshd.wait(10)
        if saved is None:
            config.unlink()
        else:
            config.write_bytes(saved)


def test_doctor_and_a_run_through_docker_host_ssh(ssh_box, tmp_path, no_leftover_containers):
    env = {"DOCKER_HOST": f"ssh://{ALIAS}"}
    doctor = cli("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"ssh://{ALIAS}" in doctor.stdout and "chosen by DOCKER_HOST" in doctor.stdout
    assert f"over ssh with {shutil.which('ssh')}" in doctor.stdout
    data = os.urandom(6 << 20)  # a data file the notebook reads: it travels, with progress
    (tmp_path / "weights.bin").write_bytes(data)
    path = write_notebook(tmp_path / "remote.ipynb", [
        "import hashlib, platform\nprint('ran', 6 * 7)",
        "print(hashlib.sha256(open('weights.bin', 'rb').read()).hexdigest())"])
    result = cli("run", str(path), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    executed = nbformat.read(tmp_path / "remote.mlbox.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "ran 42\n"
    assert executed.cells[1].outputs[0]["text"] == hashlib.sha256(data).hexdigest() + "\n"
    uploads = [line for line in result.stderr.splitlines() if "uploading" in line]
    assert uploads and f"to ssh://{ALIAS}: 0%" in uploads[0], result.stderr[-2000:]
    assert uploads[-1].endswith(": 100%")
    assert f"on CPU at ssh://{ALIAS}" in result.stderr  # the summary line names the host
    ran = executed.metadata["mlbox"]  # the notebook says where it ran (issue 15 item 5)
    assert ran["host"] == f"ssh://{ALIAS}" and ran["image"].startswith("mlbox/remote:")
    assert ran["image_id"].startswith("sha256:") and ran["gpu"] is False and ran["seconds"] > 0


def test_the_current_docker_context_is_used_when_docker_host_is_unset(ssh_box, tmp_path):
    docker_config = tmp_path / "docker-config"  # a private DOCKER_CONFIG: the user's is untouched
    env = {**os.environ, "DOCKER_CONFIG": str(docker_config)}
    env.pop("DOCKER_HOST", None)
    subprocess.run(["docker", "context", "create", "gpu-box", "--docker",
                    f"host=ssh://{ALIAS}"], env=env, check=True, capture_output=True)
    subprocess.run(["docker", "context", "use", "gpu-box"], env=env, check=True,
                   capture_output=True)
    doctor = subprocess.run([sys.executable, "-m", "jupyter_mlbox.cli", "doctor"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"ssh://{ALIAS}" in doctor.stdout, doctor.stdout
    assert "chosen by context gpu-box (docker context use)" in doctor.stdout


@pytest.mark.parametrize("alias, said", [
    ("mlbox-no-such-host", "ssh cannot resolve the host name mlbox-no-such-host"),
    (REFUSED, f"ssh to {REFUSED} was refused: the server did not accept your key"),
    (DEAD, f"ssh to {DEAD} works, but its Docker daemon does not answer"),
])
def test_each_way_ssh_fails_has_its_own_sentence(ssh_box, alias, said):
    result = cli("doctor", env={"DOCKER_HOST": f"ssh://{alias}"})
    assert result.returncode != 0
    assert said in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_host_picks_the_daemon_per_command_and_per_cell(ssh_box, tmp_path,
                                                        no_leftover_containers):
    """--host NAME|URL: a docker context by name (CLI) or a URL (%%mlbox), DOCKER_HOST unset."""
    from tests.magics.helpers import execute_notebook, streams

    docker_config = tmp_path / "docker-config"
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["DOCKER_CONFIG"] = str(docker_config)
    subprocess.run(["docker", "context", "create", "gpu-box", "--docker",
                    f"host=ssh://{ALIAS}"], env=env, check=True, capture_output=True)
    path = write_notebook(tmp_path / "picked.ipynb", ["print('picked', 2 + 2)"])
    result = subprocess.run([sys.executable, "-m", "jupyter_mlbox.cli", "run", str(path),
                             "--host", "gpu-box"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert nbformat.read(tmp_path / "picked.mlbox.ipynb",
                         as_version=4).cells[0].outputs[0]["text"] == "picked 4\n"

    nb = execute_notebook(["%load_ext jupyter_mlbox",
                           f"%%mlbox --quiet --no-trace --host ssh://{ALIAS}\nprint('cell', 3 * 3)",
                           "%mlbox status --host ssh://" + ALIAS], tmp_path,
                          DOCKER_CONFIG=str(docker_config))
    assert streams(nb.cells[1], "stdout") == "cell 9\n", nb.cells[1].outputs
    assert f"ssh://{ALIAS}" in streams(nb.cells[2], "stdout")


def test_nothing_is_left_on_the_remote_daemon_after_an_error_or_ctrl_c(
        ssh_box, tmp_path, no_leftover_containers):
    """The sshd fronts the suite's own dockerd, so no_leftover_containers checks the remote."""
    from tests.integration.test_interrupt import interrupt_when

    env = {"DOCKER_HOST": f"ssh://{ALIAS}"}
    failing = write_notebook(tmp_path / "remote-boom.ipynb", ["raise ValueError('remote boom')"])
    failed = cli("run", str(failing), env=env)
    assert failed.returncode == 1 and "remote boom" in failed.stderr, failed.stderr[-2000:]

    slow = write_notebook(tmp_path / "remote-slow.ipynb",
                          ["import time\nprint('working', flush=True)\ntime.sleep(300)"])
    stopped = interrupt_when(["run", str(slow)], "executing remote-slow.ipynb", env=env)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "interrupted" in stopped.stderr

