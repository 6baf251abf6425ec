#!/usr/bin/env bash
# Installs speedscope, at the version tests/tools/speedscope/package-lock.json pins, into
# tests/tools/speedscope/node_modules (git-ignored) for tools.speedscope_test, which loads
# the Chrome export into it in headless Chromium. Idempotent: once that version is
# installed it does nothing and needs no network. Installs node and npm (apt) if missing.
set -euo pipefail
cd "$(dirname "$0")/../tests/tools/speedscope"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "strobe setup: installing nodejs npm" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

installed() {
  node -e '
    const want = require("./package-lock.json").packages["node_modules/speedscope"].version;
    const have = require("./node_modules/speedscope/package.json").version;
    process.exit(want === have && require("fs").existsSync("node_modules/speedscope/dist/release/index.html") ? 0 : 1);
  ' 2>/dev/null
}

if installed; then
  exit 0
fi
echo "strobe setup: installing speedscope (npm ci in tests/tools/speedscope)" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
installed || { echo "strobe setup: speedscope did not install" >&2; exit 1; }
