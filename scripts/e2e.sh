#!/usr/bin/env bash
# Browser tests of the web interface: Debian's Chromium, headless, driven by playwright-core (from
# npm, pinned in e2e/package-lock.json; it downloads no browser) against the real `rappel` binary
# on loopback. Installs what is missing, builds the binary, runs e2e/ui.test.mjs. Screenshots of
# the main pages land in e2e/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
  echo "e2e.sh: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -d e2e/node_modules/playwright-core ]; then
  npm ci --prefix e2e --no-audit --no-fund --loglevel=error
fi
cargo build -p rappel --quiet
cd e2e
node --test --test-concurrency=1 ui.test.mjs
