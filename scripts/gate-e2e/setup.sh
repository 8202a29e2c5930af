#!/usr/bin/env bash
# Installs the reverse proxies the gate's end-to-end tests (TestGateNginx,
# TestGateCaddy in cmd/signet) and scripts/gateload run: Debian's nginx
# (nginx-light has auth_request) and caddy, only what is missing. Quick and
# silent when both are there.
set -euo pipefail

log() { printf '==> gate-e2e: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
have nginx || missing+=(nginx-light)
have caddy || missing+=(caddy)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  log "${missing[*]} missing and this user cannot install them; install the Debian packages ${missing[*]}"
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log "installing ${missing[*]}"
$SUDO apt-get update -qq
# The packages' own services are not wanted: the tests start their own
# proxies on free loopback ports.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
