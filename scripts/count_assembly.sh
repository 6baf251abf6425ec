#!/usr/bin/env bash
# Instructions the assembler spends per span on each shape of strobe_assemble_bench,
# counted by Valgrind's cachegrind: deterministic where timings on a shared machine are
# not, so two builds compare exactly. Usage: scripts/count_assembly.sh [BUILD_DIR]
# (default build/, which must hold bench/strobe_assemble_count). Installs valgrind (apt)
# if missing.
set -euo pipefail
build="${1:-build}"
count="$build/bench/strobe_assemble_count"
if [ ! -x "$count" ]; then
  echo "count_assembly: $count not found: build it first (cmake --build $build --target strobe_assemble_count)" >&2
  exit 2
fi
if ! command -v valgrind >/dev/null; then
  echo "count_assembly: installing valgrind" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

# Prints "<instructions> <spans>" for one run.
run() {
  local log
  log="$(mktemp)"
  local spans
  spans="$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null --log-file="$log" "$count" "$1" "$2")"
  local refs
  refs="$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$log" | tr -d ,)"
  rm -f "$log"
  echo "$refs $spans"
}

for shape in flat deep fanout; do
  read -r i0 s0 < <(run "$shape" 100)
  read -r i1 s1 < <(run "$shape" 1100)
  echo "$shape $(( (i1 - i0) / (s1 - s0) )) instructions per span"
done
