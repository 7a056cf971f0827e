#!/usr/bin/env bash
# Installs the browser-test driver (playwright-core, pinned in
# tests/web/package-lock.json) into tests/web/node_modules with `npm ci`,
# only when it is missing or not the locked version. The browser itself is
# Debian's chromium (scripts/setup-system.sh); playwright downloads none.
# Node is a test tool only: the server's build never runs it.
#
#   scripts/setup-web.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$repo/tests/web"
log() { printf '[setup-web] %s\n' "$*" >&2; }

command -v node >/dev/null && command -v npm >/dev/null || {
  log "error: node and npm are needed for the browser tests (Debian packages nodejs, npm)"
  exit 1
}
locked="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/playwright-core"].version)' "$web/package-lock.json")"
installed="$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' "$web/node_modules/playwright-core/package.json")"
if [[ "$installed" == "$locked" ]]; then
  log "playwright-core $locked present"
  exit 0
fi
log "installing playwright-core $locked (npm ci)"
# No browser download: the tests drive /usr/bin/chromium.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$web" --no-audit --no-fund --ignore-scripts >&2
