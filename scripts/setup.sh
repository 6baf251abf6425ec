#!/usr/bin/env bash
# Installs the Debian packages strobe's build, tests and benchmarks need.
# Idempotent and non-interactive: packages already present are left alone.
set -euo pipefail

packages=(
  cmake g++ make ninja-build pkg-config
  libconcurrentqueue-dev libmimalloc-dev
  libflatbuffers-dev flatbuffers-compiler
  libbenchmark-dev libgtest-dev
  clang libclang-rt-14-dev
  libcli11-dev rapidjson-dev libcurl4-openssl-dev
  libprotozero-dev zlib1g-dev  # strobe::otlp: the OTLP protobuf encoding, gzip
  chromium
  nodejs  # bench/html_bench.mjs drives chromium over the DevTools protocol
  python3-dev pybind11-dev python3-pytest  # the Python package (python/) and its tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "strobe setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
