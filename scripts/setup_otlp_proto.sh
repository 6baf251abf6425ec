#!/usr/bin/env bash
# Installs the official OTLP protobuf code, at the version
# tests/support/otlp_proto/package-lock.json pins (@opentelemetry/otlp-proto-exporter-base
# 0.51.1: build/src/generated/root.js, protobufjs static code generated from
# opentelemetry-proto), into tests/support/otlp_proto/node_modules (git-ignored), for the
# tests that decode strobe's OTLP requests (tests/support/otlp_decode.hpp). Idempotent:
# once that version is installed it does nothing and needs no network. Installs node and
# npm (apt) if missing.
set -euo pipefail
cd "$(dirname "$0")/../tests/support/otlp_proto"

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
    const name = "node_modules/@opentelemetry/otlp-proto-exporter-base";
    const want = require("./package-lock.json").packages[name].version;
    const have = require("./" + name + "/package.json").version;
    require("./" + name + "/build/src/generated/root.js");
    process.exit(want === have ? 0 : 1);
  ' 2>/dev/null
}

if installed; then
  exit 0
fi
echo "strobe setup: installing the OTLP protobuf code (npm ci in tests/support/otlp_proto)" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
installed || { echo "strobe setup: @opentelemetry/otlp-proto-exporter-base did not install" >&2; exit 1; }
