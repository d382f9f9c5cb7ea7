// frikort_bench, part "reevaluate": one provider's agreement ended back.

#include <sys/resource.h>

#include "storage/state_machine.h"
#include "tests/bench/bench.h"

namespace frikort::bench {
namespace {

// CPU seconds of the whole process so far (every thread: the writer, the
// commit, the chunk reads, the other reporter), so a figure taken on a
// machine others load too still compares.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

// One provider with --reevaluate_entries stored co-payments (ten per person)
// has its agreement ended back to before all of them: every entry is decided
// again and flips, every ledger is recomputed. Meanwhile another reporter
// keeps sending batches of ten; their latency shows the writer still answers.
// Every setup report must be stored (the provider's index then holds all of
// them) and the re-evaluation must decide every one again, or the run stops.
void Reevaluate() {
  const int64_t n = absl::GetFlag(FLAGS_reevaluate_entries);
  Stack s("reevaluate", /*with_server=*/false);
  const std::string provider = "7654321";
  auto put = [&](const std::string& to) {
    auto change = s.reg->PutProvider({provider, "Bench", {{"2024-01-01", to, "1"}}});
    if (!change.ok()) Stack::Die(change.status());
    return *change;
  };
  put("");
  std::printf("reevaluate: one provider with %lld co-payments, its agreement ended back\n",
              static_cast<long long>(n));
  const auto persons = MakeIds(std::max<int64_t>(1, n / 10));
  const absl::Time fill_start = absl::Now();
  const double fill_cpu_start = ProcessCpuSeconds();
  for (int64_t b = 0; b < n; b += 10000) {
    std::vector<core::CoPaymentInput> items;
    for (int64_t i = b; i < std::min(n, b + 10000); ++i) {
      v1::CoPayment c = MakeCoPayment(persons[i / 10], i, 5000);
      c.set_provider_id(provider);
      items.push_back(ToInput(c));
    }
    auto r = s.reg->Submit(std::move(items));
    if (!r.ok()) Stack::Die(r.status());
    for (const storage::ReportResult& result : *r) {
      if (result.outcome != core::Outcome::kAccepted || !result.counted) {
        Stack::Die(absl::InternalError("a setup report was not stored as counted"));
      }
    }
  }
  PrintRow("ingest: reports of the one provider (setup)",
           n / absl::ToDoubleSeconds(absl::Now() - fill_start), "reports/s");
  PrintRow("  the same per CPU-second of the whole process",
           n / (ProcessCpuSeconds() - fill_cpu_start), "reports/CPU-s");

  std::atomic<bool> stop{false};
  std::vector<double> latencies_ms;
  std::thread other([&] {
    const auto others = MakeIds(1000);
    for (int64_t seq = 0; !stop.load(); seq += 10) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = seq; i < seq + 10; ++i) {
        items.push_back(ToInput(MakeCoPayment(others[(i / 10) % others.size()], n + i, 100)));
      }
      const absl::Time t = absl::Now();
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    }
  });
  const absl::Time start = absl::Now();
  const double cpu_start = ProcessCpuSeconds();
  storage::ProviderChange change = put("2024-01-01");
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = ProcessCpuSeconds() - cpu_start;
  stop = true;
  other.join();
  if (change.entries_reevaluated != n) {
    Stack::Die(absl::InternalError("the re-evaluation did not reach every stored co-payment"));
  }
  PrintRow(
      absl::StrCat("re-evaluation: ", change.entries_changed, " of ", change.entries_reevaluated,
                   " entries flipped, ", change.ledgers_changed, " ledgers"),
      change.entries_reevaluated / secs, "entries/s (target >= 100,000)");
  PrintRow("  the same per CPU-second of the whole process", change.entries_reevaluated / cpu,
           "entries/CPU-s");
  PrintRow("  chunk: entries per writer operation", storage::StateMachine::kReevaluateChunk,
           "entries");
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p99 = latencies_ms.empty() ? 0 : latencies_ms[(latencies_ms.size() - 1) * 99 / 100];
  std::printf("  %-58s %14.1f ms (%zu batches meanwhile)\n",
              "other reporter's batch of 10 meanwhile, p99", p99, latencies_ms.size());
}

}  // namespace frikort::bench
