#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (tests/fuzz/CMakeLists.txt) and runs
# each one for a while over its seed corpus. Exits non-zero when a target finds
# a crash, undefined behaviour, a leak, a hang or a broken property.
#
# Usage: tests/fuzz/run.sh [TARGET...]        (default: every target)
#   FRIKORT_FUZZ_SECONDS  seconds per target (default 10; 0 replays the
#                         corpus once without fuzzing)
#   FUZZ_BUILD_DIR        build folder, relative to the repository root
#                         (default build-fuzz)
# What a run finds stays in the build folder, never in the source tree: new
# corpus entries in corpus/TARGET/ (the next run starts from them), failing
# inputs in crashes/TARGET/, the fuzzer's output in TARGET.log. Replay a
# failing input with: BUILD/TARGET BUILD/crashes/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_EACH=${FRIKORT_FUZZ_SECONDS:-10}
if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=(fuzz_ids fuzz_rules fuzz_requests fuzz_citizen_token)
fi

CC=clang CXX=clang++ cmake -S tests/fuzz -B "$BUILD_DIR" -G Ninja > /dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

passed=0
failed=0
for target in "${TARGETS[@]}"; do
  # The request target's seeds are text messages that the build encodes.
  seeds=tests/fuzz/corpus/$target
  if [ -d "$BUILD_DIR/seeds/$target" ]; then seeds=$BUILD_DIR/seeds/$target; fi
  corpus=$BUILD_DIR/corpus/$target
  crashes=$BUILD_DIR/crashes/$target
  log=$BUILD_DIR/$target.log
  mkdir -p "$corpus" "$crashes"
  # -timeout: one input taking seconds is a bug too (a request could stall a
  # server thread). The request target gets room for a cancel reason over
  # its 4 KiB limit.
  args=(-timeout=10 -print_final_stats=1 -artifact_prefix="$crashes/")
  # libFuzzer reads -max_total_time=0 as "no limit".
  if [ "$SECONDS_EACH" -gt 0 ]; then
    args+=(-max_total_time="$SECONDS_EACH")
  else
    args+=(-runs=0)
  fi
  if [ -f "tests/fuzz/$target.dict" ]; then args+=(-dict="tests/fuzz/$target.dict"); fi
  if [ "$target" = fuzz_requests ]; then args+=(-max_len=8192); fi
  # The first folder receives new entries; the seeds are only read.
  if "$BUILD_DIR/$target" "${args[@]}" "$corpus" "$seeds" > "$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $target ok: ${runs:-?} inputs in ${SECONDS_EACH}s, corpus $(ls "$corpus" | wc -l)"
    passed=$((passed + 1))
  else
    echo "fuzz: $target FAILED (full output: $log)"
    tail -n 40 "$log"
    echo "fuzz: failing inputs in $crashes/; replay one with $BUILD_DIR/$target FILE"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
