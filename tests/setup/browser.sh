#!/usr/bin/env bash
# What the console's browser test needs: Debian's chromium (headless) and Playwright's driver
# (playwright-core, pinned in tests/browser/package-lock.json; it uses /usr/bin/chromium and
# downloads no browser of its own).
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Installed again only when the lock file changed since the last install.
STAMP=tests/browser/node_modules/.installed-from-lock
if [ ! -d tests/browser/node_modules/playwright-core ] || ! cmp -s tests/browser/package-lock.json "$STAMP"; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  cp tests/browser/package-lock.json "$STAMP"
fi
