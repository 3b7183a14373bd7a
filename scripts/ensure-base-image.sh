#!/usr/bin/env bash
# Make sure the base image exists (default python:3.11-slim). The normal path is `docker pull`;
# where no registry is reachable, an equivalent image is bootstrapped from Debian packages and
# imported under the same name, so the default configuration is the one that gets exercised.
set -euo pipefail
IMAGE="${1:-${MLBOX_BASE_IMAGE:-python:3.11-slim}}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '[ensure-base-image] %s\n' "$*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE is present"; exit 0
fi
log "pulling $IMAGE"
if timeout 120 docker pull -q "$IMAGE" >/dev/null 2>&1; then
  log "pulled $IMAGE"; exit 0
fi

log "no registry reachable: bootstrapping $IMAGE from Debian bookworm packages (offline fallback, ~1 min)"
command -v debootstrap >/dev/null 2>&1 || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
root=$(mktemp -d /tmp/mlbox-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Slim it the way the official image is slim: no apt lists, docs or caches.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change 'LABEL org.opencontainers.image.description="debootstrap bookworm minbase + python3 (jupyter_mlbox offline fallback)"' \
  --change 'LABEL io.github.jupyter_mlbox.bootstrapped=true' \
  - "$IMAGE" >/dev/null
log "imported $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
