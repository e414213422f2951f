#!/bin/sh
# Runs the pnpm version pinned in package.json's "packageManager", so a fresh machine needs only
# Node and npm: a globally installed pnpm of the same version is used when present, otherwise npx
# fetches it from the npm registry once and caches it.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
want=$(node -p "require('$root/package.json').packageManager.split('@')[1]")
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$want" ]; then
  exec pnpm "$@"
fi
exec npx --yes "pnpm@$want" "$@"
