#!/usr/bin/env bash
# strobe's main job: installs what it needs, builds, records a traced workload and shows
# what the recorder assembled.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)" --target strobe_quickstart
./build/examples/strobe_quickstart
