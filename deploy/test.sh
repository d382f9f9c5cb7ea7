#!/usr/bin/env bash
# Checks the sources' format (clang-format, the repository's .clang-format),
# builds everything and runs every test (unit, storage, job, integration,
# end-to-end), a short run of every fuzz target, then builds everything again
# with clang, its lock analysis on as errors (-Wthread-safety
# -Wunused-private-field -Werror), and runs the whole suite under
# AddressSanitizer and UndefinedBehaviorSanitizer.
# Usage: deploy/test.sh
#   BUILD_DIR=build            the normal build
#   ASAN_BUILD_DIR=build-asan  the sanitizer build
#   FRIKORT_TEST_SANITIZE=0    skip the clang sanitizer pass (quicker while iterating)
#   FRIKORT_FUZZ_SECONDS=N     seconds per fuzz target (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
JOBS=$(nproc)

build_and_test() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
  cmake --build "$dir" -j "$JOBS"
  # shellcheck disable=SC2086 # CTEST_EXCLUDE is a list of ctest arguments
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" --timeout 600 ${CTEST_EXCLUDE:-}
}

echo "== format (clang-format --dry-run -Werror)"
# Every C++ source the repository tracks (or, outside a git checkout, holds).
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t sources < <(git ls-files '*.cc' '*.h')
else
  mapfile -t sources < <(find core storage jobs server ctl tests -name '*.cc' -o -name '*.h')
fi
clang-format --dry-run -Werror "${sources[@]}"

echo "== build and test ($BUILD_DIR)"
build_and_test "$BUILD_DIR" -DFRIKORT_SANITIZE=OFF

echo "== short fuzz run (clang, libFuzzer, ASan + UBSan)"
FUZZ_BUILD_DIR="$BUILD_DIR-fuzz" tests/fuzz/run.sh

if [ "${FRIKORT_TEST_SANITIZE:-1}" != 0 ]; then
  echo "== build with clang's lock analysis, test under ASan + UBSan ($ASAN_BUILD_DIR)"
  # Leak checking stays on; a failing check stops the test that hit it.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # -O1 and line tables only: the sanitizers need no more, and the second
  # full build is most of this command's time.
  # The Patroni failover test (label ha) runs in the first pass only: it
  # tests processes being killed, and its clocks are Patroni's, not ours.
  CTEST_EXCLUDE="-LE ha" CC=clang CXX=clang++ build_and_test "$ASAN_BUILD_DIR" -DFRIKORT_SANITIZE=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG"
fi
