#!/bin/sh
# Debian packages the test suite drives for real: Chromium (UI tests) and PostgreSQL (the
# store on PostgreSQL). Installed only when missing; needs root or passwordless sudo.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
  echo "system-deps: need root to install:$missing (tests that need them will skip)" >&2; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get; install$missing yourself (tests that need them will skip)" >&2; exit 0; fi
echo "system-deps: installing$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
