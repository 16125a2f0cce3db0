#!/usr/bin/env bash
# Installs what the checks need beyond the Rust toolchain: Chromium for the browser
# tests (Debian's package, never a downloaded browser), CJK fonts so Chinese pages
# render in screenshots, and the e2e test's npm packages from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
fc-list 2>/dev/null | grep -qi 'cjk' || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -d e2e/node_modules/playwright-core ]; then
  (cd e2e && npm ci --no-audit --no-fund)
fi
