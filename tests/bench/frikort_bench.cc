// frikort_bench: measures each hot path beside its own ceiling in one run, so
// the ratios hold on a shared, noisy machine. Not a test: it asserts nothing
// and prints figures. See README.md, "Performance".
//
//   build/frikort_bench [--parts=ingest,lookup,issuance,reevaluate,memory,citizen,hot_person,pg]
//   [--reports=N] ...
//
// Each part lives in its own file (tests/bench/bench_<part>.cc); the shared
// stack and helpers in tests/bench/bench.h.
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "tests/bench/bench.h"
#include "tests/testing/oslo.h"

ABSL_FLAG(std::string, parts, "ingest,lookup,issuance,reevaluate,memory,citizen",
          "which parts to run");
ABSL_FLAG(int64_t, reevaluate_entries, 1000000,
          "co-payments of the one provider whose agreement the reevaluate part ends");
ABSL_FLAG(std::string, ingest_paths, "raw,direct,unary,stream",
          "which ingest paths to measure (a subset is for profiling one)");
ABSL_FLAG(int, reports, 200000, "co-payments per ingest measurement");
ABSL_FLAG(int, clients, 4, "concurrent ingest clients");
ABSL_FLAG(int, batch, 1000, "co-payments per batch");
ABSL_FLAG(int, lookup_seconds, 5, "seconds per lookup measurement");
ABSL_FLAG(int, in_flight, 64, "lookup calls in flight");
ABSL_FLAG(bool, lookup_beside_ingest, false,
          "run a batch feed through the register during the lookup windows");
ABSL_FLAG(std::string, lookup_calls, "health,check",
          "which lookup calls to measure (one alone is for profiling it)");
ABSL_FLAG(int, ledgers, 1000000, "due ledgers for the issuance run");
ABSL_FLAG(int, population, 5000000, "people registered for the nothing-due run");
ABSL_FLAG(int64_t, memory_entries, 10000000, "entries stored before reading frikortd's peak RSS");
ABSL_FLAG(int, hot_entries, 9000,
          "entries of the one person the hot_person part reports before and after its crossing");
ABSL_FLAG(std::string, frikortd, "", "frikortd binary (default: beside this one)");
ABSL_FLAG(std::string, rules_file, "deploy/rules.txt", "rules file");

int main(int argc, char** argv) {
  // Debian's Abseil is built with assertions on, which makes every Mutex lock
  // (ours and gRPC's) maintain a global lock-order graph: several percent of
  // the lookup path's CPU in a profile. The tests keep it; the server does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  if (auto s = frikort::testing::LoadOsloTimeZone(); !s.ok()) return 1;
  std::printf("frikort_bench on %u cores\n", std::thread::hardware_concurrency());
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_parts), ',')) {
    if (part == "ingest")
      frikort::bench::Ingest();
    else if (part == "lookup")
      frikort::bench::Lookup();
    else if (part == "issuance")
      frikort::bench::Issuance();
    else if (part == "reevaluate")
      frikort::bench::Reevaluate();
    else if (part == "memory")
      frikort::bench::Memory(argv[0]);
    else if (part == "citizen")
      frikort::bench::Citizen();
    else if (part == "hot_person")
      frikort::bench::HotPerson();
    else if (part == "pg")
      frikort::bench::Postgres();
    else {
      std::fprintf(stderr, "frikort_bench: --parts: unknown part \"%s\"\n",
                   std::string(part).c_str());
      return 2;
    }
    std::fflush(stdout);
  }
  return 0;
}
