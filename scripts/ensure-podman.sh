#!/usr/bin/env bash
# Make sure a Podman service answers on Podman's Docker-compatible API, for the tests that run
# against Podman (MLBOX_TEST_ENGINE=podman) and for trying jupyter_mlbox with Podman:
# installs Debian's podman when missing, starts a rootful `podman system service` on
# $MLBOX_PODMAN_SOCKET (default unix:///run/mlbox-podman/podman.sock) and loads the base image
# into Podman's storage when it is absent there (from dockerd's copy: no registry is needed).
# Idempotent. Prints the DOCKER_HOST to use on stdout. Never touches Docker's containers/images.
set -euo pipefail

SOCKET_URL="${MLBOX_PODMAN_SOCKET:-unix:///run/mlbox-podman/podman.sock}"
SOCKET="${SOCKET_URL#unix://}"
IMAGE="${1:-${MLBOX_BASE_IMAGE:-python:3.11-slim}}"
LOG=/var/log/mlbox-podman.log
log() { printf '[ensure-podman] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
answers() {  # GET /_ping on the socket says 200 (python3: no curl needed)
  python3 - "$SOCKET" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
sys.exit(0 if s.recv(64).split(b" ")[1:2] == [b"200"] else 1)
PY
}

if ! command -v podman >/dev/null 2>&1; then
  log "installing Podman (Debian package podman)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq podman >/dev/null
fi

if answers; then
  log "podman service answers at $SOCKET_URL"
else
  log "starting podman system service on $SOCKET_URL (log: $LOG)"
  as_root mkdir -p "$(dirname "$SOCKET")"
  as_root rm -f "$SOCKET"
  # Rootful Podman gives every container (and build step) RLIMIT_NOFILE/NPROC far above what a
  # sandboxed host (a CI runner, a container) may grant, and then runc fails with "error
  # setting rlimit type 7: operation not permitted". The service gets its own containers.conf
  # whose default ulimits fit under this host's own hard limits (dockerd just inherits them).
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
  as_root bash -c "printf '[containers]\ndefault_ulimits = [\"nofile=%s:%s\", \"nproc=%s:%s\"]\n' \
    $nofile $nofile $nproc $nproc >'$(dirname "$SOCKET")/containers.conf'"
  # --time=0: never exit for being idle (the tests connect and disconnect for an hour). It runs
  # in its own folder: conmon drops files (an empty "oom") in the service's working directory,
  # which was the checkout. Only the service goes to the background, with none of this script's
  # descriptors: a background `cd && podman` list kept a shell holding our stdout, and a caller
  # that reads it to the end (the test suite) waited forever.
  as_root bash -c "cd '$(dirname "$SOCKET")' || exit 1
    CONTAINERS_CONF='$(dirname "$SOCKET")/containers.conf' \
      nohup podman system service --time=0 '$SOCKET_URL' </dev/null >'$LOG' 2>&1 &"
  for _ in $(seq 1 60); do
    answers && break
    sleep 1
  done
  if ! answers; then
    log "podman service did not come up; last lines of its log:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  log "podman service is up"
fi

if as_root podman image exists "$IMAGE"; then
  log "$IMAGE is in Podman's storage"
else
  log "loading $IMAGE into Podman's storage from dockerd's copy"
  # dockerd's own socket, whatever DOCKER_HOST says (it may name this very Podman service)
  if ! DOCKER_HOST= docker image inspect "$IMAGE" >/dev/null 2>&1; then
    DOCKER_HOST= bash "$(dirname "$0")/ensure-base-image.sh" "$IMAGE"
  fi
  DOCKER_HOST= docker save "$IMAGE" | as_root podman load -q >/dev/null
  as_root podman image exists "$IMAGE" || { log "loading $IMAGE failed"; exit 1; }
  log "loaded $IMAGE"
fi
echo "$SOCKET_URL"
