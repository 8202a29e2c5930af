#!/usr/bin/env bash
# Installs what the directory (LDAP) tests need, only when it is missing:
# Debian's OpenLDAP server (slapd, with the mdb backend and the schema
# files under /etc/ldap/schema) and ldap-utils. The tests start their own
# slapd in a temporary directory on a free loopback port; the system's
# slapd service, if the package starts one, is not used.
set -euo pipefail

log() { printf '==> ldap: %s\n' "$*" >&2; }

if [ -x /usr/sbin/slapd ] && [ -f /etc/ldap/schema/inetorgperson.schema ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  log "slapd is missing and this user cannot install it; install the slapd and ldap-utils packages"
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log "installing slapd and ldap-utils"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slapd ldap-utils >/dev/null
