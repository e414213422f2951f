#!/bin/sh
# Installs the system packages the tests need, when missing, from Debian's archive:
#   chromium     the browser the end-to-end tests drive (never a downloaded browser build)
#   postgresql   the server binaries for throwaway test clusters (scripts/pg-cluster.mjs);
#                no system service is used
# Uses sudo when not root. Set CHROMIUM_PATH or PG_BIN to use ones installed elsewhere.
set -e
missing=""
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
[ -x "$chromium" ] || missing="$missing chromium"
if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
  :
elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing postgresql"
fi
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: missing:$missing; install them with your package manager (or set CHROMIUM_PATH / PG_BIN)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup-system: installing$missing from Debian's packages" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The package may start a system cluster; the tests never use it.
