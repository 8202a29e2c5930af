#!/usr/bin/env bash
# Installs what the browser test of the web UI needs, only what is missing:
# Debian's chromium (/usr/bin/chromium) and playwright-core from
# package-lock.json. Quick and silent when both are already there.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '==> ui-e2e: %s\n' "$*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    log "/usr/bin/chromium is missing and this user cannot install it; install the chromium package"
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules/playwright-core ]; then
  if ! command -v npm >/dev/null; then
    log "npm is missing; install Node.js 20 or newer"
    exit 1
  fi
  log "installing playwright-core"
  # The browser is Debian's; never let an install script fetch another.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
