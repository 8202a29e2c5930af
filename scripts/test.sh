#!/usr/bin/env bash
# Runs every test of signet: unit, conformance (SQLite always, PostgreSQL
# when reachable), end-to-end against the real binary (and a real SMTP
# server for expiry notices, a real OpenLDAP slapd for directory sign-in,
# installed when missing), fuzz seed corpora, the browser test of the web
# UI, the README's walkthrough run as written, the gate behind real nginx
# and Caddy, and the interop module (interop/: other JWT clients, the
# Kubernetes authenticator, Node.js libraries).
#
#   scripts/test.sh            # everything
#   scripts/test.sh -run Foo   # extra flags go to `go test` of the main
#                              # module; the interop module is then left out
#
# PostgreSQL: uses $SIGNET_TEST_POSTGRES_DSN, else the local server at
# 127.0.0.1:5432 (user postgres, trust auth), started when it is installed
# but down. Each test run creates and drops its own databases.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

if [ -z "${SIGNET_TEST_POSTGRES_DSN:-}" ]; then
  if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      log "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
  fi
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
    export SIGNET_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
  else
    log "PostgreSQL not reachable: its conformance and replica tests will be skipped"
  fi
fi

if [ -f scripts/ui-e2e/package.json ]; then
  # CI must run the browser test, so there a failed install stops the run;
  # elsewhere the browser test is skipped and everything else still runs.
  if ! scripts/ui-e2e/setup.sh; then
    if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
      log "could not install the browser test's prerequisites"
      exit 1
    fi
    log "browser test prerequisites missing: TestUIBrowser will be skipped"
  fi
fi

# The directory tests run a real slapd; CI must run them, elsewhere they
# skip with a message when it cannot be installed.
if ! scripts/setup-slapd.sh; then
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    log "could not install slapd for the directory tests"
    exit 1
  fi
  log "slapd missing: the directory (LDAP) tests will be skipped"
fi

# The README walkthrough test (TestREADMEWalkthrough) pastes the README's
# blocks into bash, which call curl and jq. CI must run it, so there a
# failed install stops the run; elsewhere the test skips itself.
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  log "installing ${missing[*]} for the README walkthrough test"
  if ! { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; } ||
     ! $SUDO apt-get update -qq ||
     ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; then
    if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
      log "could not install ${missing[*]}, which the README walkthrough test needs"
      exit 1
    fi
    log "${missing[*]} missing: TestREADMEWalkthrough will be skipped"
  fi
fi

# The expiry-notice tests send mail to a real SMTP server (aiosmtpd, from
# Debian's python3-aiosmtpd). CI must run them, so there a failed install
# stops the run; elsewhere they skip themselves.
if ! scripts/smtp-setup.sh; then
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    log "could not install python3-aiosmtpd, which the expiry-notice tests need"
    exit 1
  fi
  log "python3-aiosmtpd missing: the SMTP tests of expiry notices will be skipped"
fi

# The gate's proxies (nginx, Caddy): the same rule as the browser.
if ! scripts/gate-e2e/setup.sh; then
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    log "could not install nginx and caddy for the gate's tests"
    exit 1
  fi
  log "nginx or caddy missing: TestGateNginx and TestGateCaddy will be skipped"
fi

# The interop test's Node.js clients (jose, jsonwebtoken, jwks-rsa): the
# same rule.
if ! interop/node/setup.sh; then
  if [ -n "${CI:-}" ] && [ "${CI}" != "false" ] && [ "${CI}" != "0" ]; then
    log "could not install the interop test's Node.js clients"
    exit 1
  fi
  log "interop Node.js clients missing: TestNode will be skipped"
fi

log "go vet"
go vet ./...
log "go test"
go test -count=1 -timeout 15m "$@" ./...

# interop/ is a module of its own (go-oidc, jwx, golang-jwt, the Kubernetes
# API server's authenticator, and node:test with jose and jsonwebtoken),
# kept out of signet's go.mod. It runs after the main suite, alone: its
# first build compiles k8s.io/apiserver, the heaviest part of the run.
if [ "$#" -eq 0 ]; then
  log "interop: go vet and go test (real clients against the real binary)"
  start=$(date +%s)
  (cd interop && go vet ./... && go test -count=1 -timeout 15m ./...)
  log "interop: done in $(( $(date +%s) - start ))s"
fi
