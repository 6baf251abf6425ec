#!/usr/bin/env bash
# Builds and runs every strobe test: the plain Release build, a ThreadSanitizer build of
# the same suites and the reader's libFuzzer target (clang, ASan+UBSan, a bounded run),
# all in ONE ctest run (so its closing summary counts every test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_speedscope.sh  # for tools.speedscope_test
bash scripts/setup_otlp_proto.sh  # the official OTLP decoder for the OTLP tests

jobs=$(nproc)
generator=(-G Ninja)

echo "== ThreadSanitizer build (build-tsan)"
cmake -S . -B build-tsan "${generator[@]}" -DSTROBE_SANITIZE=thread \
  -DSTROBE_BUILD_BENCH=OFF -DSTROBE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-tsan -j"$jobs"

echo "== libFuzzer build of the reader (build-fuzz, clang)"
cmake -S tests/fuzz -B build-fuzz "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"$jobs"

echo "== Release build (build)"
cmake -S . -B build "${generator[@]}" -DSTROBE_INCLUDE_TEST_DIRS="$PWD/build-tsan;$PWD/build-fuzz" >/dev/null
cmake --build build -j"$jobs"

echo "== ctest (Release + ThreadSanitizer suites + reader fuzzing)"
ctest --test-dir build --output-on-failure -j"${STROBE_TEST_JOBS:-2}"
