#!/usr/bin/env bash
# Installs the SMTP server the expiry-notice tests run (notify/notifytest):
# aiosmtpd for Debian's own python3 (package python3-aiosmtpd). Exits 0
# when it is there (or was installed), non-zero when it could not be.
set -euo pipefail

have() {
  for py in "${SIGNET_TEST_PYTHON:-}" /usr/bin/python3 "$(command -v python3 || true)"; do
    [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import aiosmtpd' 2>/dev/null && return 0
  done
  return 1
}

have && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
if ! { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
  echo "smtp-setup: need root (or sudo) to install python3-aiosmtpd" >&2
  exit 1
fi
echo "==> installing python3-aiosmtpd for the expiry-notice tests" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-aiosmtpd >/dev/null
have
