#!/usr/bin/env bash
# Installs the Node.js clients of the interop test (jose, jsonwebtoken,
# jwks-rsa) from package-lock.json when they are missing. Quick and silent
# when they are there.
set -euo pipefail
cd "$(dirname "$0")"
if [ -d node_modules/jose ] && [ -d node_modules/jsonwebtoken ] && [ -d node_modules/jwks-rsa ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  printf '==> interop: npm is missing; install Node.js 20.19 or newer\n' >&2
  exit 1
fi
printf '==> interop: installing jose, jsonwebtoken, jwks-rsa\n' >&2
npm ci --no-audit --no-fund --loglevel=error
