#!/usr/bin/env bash
# Instructions the assembler spends per span on each shape of strobe_assemble_bench,
# counted by Valgrind's cachegrind: deterministic where timings on a shared machine are
# not, so two builds compare exactly. Usage: scripts/count_assembly.sh [BUILD_DIR]
# (default build/, which must hold bench/strobe_assemble_count, built without
# STROBE_SANITIZE: sanitizers do not run under Valgrind). Installs valgrind (apt) if
# missing, as the other set-up scripts install what they need.
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
  if [ -z "$refs" ] || [ -z "$spans" ]; then
    echo "count_assembly: no count from $count $1 $2; valgrind said:" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  echo "$refs $spans"
}

for shape in flat deep fanout; do
  first="$(run "$shape" 100)"
  second="$(run "$shape" 1100)"
  read -r i0 s0 <<<"$first"
  read -r i1 s1 <<<"$second"
  echo "$shape $(( (i1 - i0) / (s1 - s0) )) instructions per span"
done
