#!/usr/bin/env bash
# System packages the export and browser tests need, installed only when missing:
#   docker-registry  a real local registry for `export --push` tests (started by the tests)
#   chromium, chromium-driver  the headless browser Playwright drives (never downloaded by it)
#   nodejs, npm      to build the JupyterLab extension from source (node >= 18)
#   openssh-server   a real sshd in front of the daemon: the ssh:// tests (started by the tests)
set -euo pipefail

log() { printf '[install-test-deps] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)

if [ "${#missing[@]}" -eq 0 ]; then
  log "docker-registry, chromium, chromium-driver, node, npm and sshd are present"
  exit 0
fi
log "installing: ${missing[*]}"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
# Debian's packages enable services (a registry on :5000, sshd on :22); the tests start their own
# on loopback.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null \
    && [[ " ${missing[*]} " == *" openssh-server "* ]]; then
  as_root systemctl disable --now ssh >/dev/null 2>&1 || true
fi
log "done"
