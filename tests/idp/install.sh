#!/usr/bin/env bash
# Installs the test OpenID Provider's npm packages into tests/idp/provider/node_modules,
# exactly as package-lock.json pins them. Idempotent: when the installed oidc-provider already
# matches the lockfile, it changes nothing. Needs Node.js >= 18.12 and npm (no global installs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
provider="$here/provider"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: tests/idp needs Node.js (>= 18.12) and npm: apt-get install nodejs npm" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
  echo "error: tests/idp needs Node.js >= 18.12, found $(node --version)" >&2
  exit 1
fi

wanted="$(node -p 'require(process.argv[1]).packages["node_modules/oidc-provider"].version' \
  "$provider/package-lock.json")"
installed="$(node -p 'try { require(process.argv[1]).version } catch { "" }' \
  "$provider/node_modules/oidc-provider/package.json")"
if [ "$installed" = "$wanted" ] && [ "$provider/node_modules/.package-lock.json" -nt "$provider/package-lock.json" ]; then
  exit 0
fi
# A worktree may share another checkout's node_modules through a symlink. Its lockfile is
# newer by checkout time alone, and `npm ci` would empty the shared folder through the link:
# trust a matching version there, and never reinstall through a link.
if [ -L "$provider/node_modules" ]; then
  if [ "$installed" = "$wanted" ]; then exit 0; fi
  echo "error: $provider/node_modules is a symlink holding oidc-provider '${installed:-none}', not $wanted; remove the link to install here" >&2
  exit 1
fi

printf '==> %s\n' "installing oidc-provider $wanted for tests/idp (npm ci)" >&2
npm ci --prefix "$provider" --no-audit --no-fund --loglevel=error >&2
