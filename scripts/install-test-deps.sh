#!/usr/bin/env bash
# System packages the export and browser tests need, installed only when missing:
#   docker-registry  a real local registry for `export --push` tests (started by the tests)
#   chromium, chromium-driver  the headless browser Playwright drives (never downloaded by it)
#   nodejs, npm      to build the JupyterLab extension from source (node >= 18)
set -euo pipefail

log() { printf '[install-test-deps] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -eq 0 ]; then
  log "docker-registry, chromium, chromium-driver, node and npm are present"
  exit 0
fi
log "installing: ${missing[*]}"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
# Debian's package enables a registry service on :5000; the tests start their own on loopback.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
log "done"
