#!/usr/bin/env bash
# Make sure a Docker Engine answers: install Debian's docker.io when missing, start dockerd when
# not running. A DOCKER_HOST that already answers is used as it is (remote daemons included).
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if docker info >/dev/null 2>&1; then
  log "daemon answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local daemon in its place"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Docker Engine (Debian package docker.io)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq docker.io >/dev/null
fi

log "starting dockerd in the background (log: /var/log/mlbox-dockerd.log)"
as_root bash -c 'nohup dockerd >/var/log/mlbox-dockerd.log 2>&1 &'
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then log "dockerd is up"; exit 0; fi
  sleep 1
done
log "dockerd did not come up; last lines of its log:"
tail -n 20 /var/log/mlbox-dockerd.log >&2 || true
exit 1
