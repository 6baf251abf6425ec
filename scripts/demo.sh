#!/usr/bin/env bash
# strobe's main job, on a fresh machine: installs what it needs, builds, records a traced
# agent + inference workload into demo.strobe, prints the agent trace's tree and the
# stats table, and writes the HTML timeline demo.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)" --target strobe_demo strobe_cli
strobe=./build/tools/strobe

echo "== recording: a research agent (plan, parallel tools, an llm that waits for a tool) around a small transformer"
./build/examples/strobe_demo demo.strobe --runs 3
echo
echo "== strobe tree demo.strobe --root research-agent --limit 1 --depth 2 --max-children 8"
"$strobe" tree demo.strobe --root research-agent --limit 1 --depth 2 --max-children 8
echo
echo "== strobe stats demo.strobe"
"$strobe" stats demo.strobe
echo
"$strobe" html demo.strobe -o demo.html
echo "files:"
echo "  $PWD/demo.strobe   (strobe info / tree / stats / export / diff read it)"
echo "  $PWD/demo.html     (open it in a browser: timeline and graph views)"
