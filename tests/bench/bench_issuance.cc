// frikort_bench, part "issuance": a run over due ledgers, then one with nothing due.

#include "tests/bench/bench.h"

namespace frikort::bench {

void Issuance() {
  const int64_t due = absl::GetFlag(FLAGS_ledgers);
  const int64_t population = std::max<int64_t>(due, absl::GetFlag(FLAGS_population));
  Stack s("issuance", /*with_server=*/false);
  std::printf("issuance: %lld due ledgers, then %lld people with nothing due\n",
              static_cast<long long>(due), static_cast<long long>(population));
  IdGenerator ids;
  auto fill = [&](int64_t from, int64_t to, int64_t amount) {
    const absl::Time start = absl::Now();
    for (int64_t b = from; b < to; b += 10000) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < std::min(to, b + 10000); ++i) {
        items.push_back(ToInput(MakeCoPayment(ids.Next(), i, amount)));
      }
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
    }
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  // 2024 cap 3165 NOK: one co-payment above it makes a ledger due with excess.
  double fill_secs = fill(0, due, 320000);
  PrintRow("setup: reports to make ledgers due", due / fill_secs, "reports/s");
  absl::Time t0 = absl::Now();
  auto run = s.job->Run(absl::CivilDay(2024, 12, 1), false);
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!run.ok()) Stack::Die(run.status());
  PrintRow(absl::StrCat("issuance run: ", run->cards_issued, " cards, ", run->payouts, " payouts"),
           run->ledgers_examined / secs, "due ledgers/s (target >= 100,000)");
  fill(due, population, 5000);
  t0 = absl::Now();
  auto idle = s.job->Run(absl::CivilDay(2024, 12, 2), false);
  secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!idle.ok()) Stack::Die(idle.status());
  std::printf("  %-58s %14.3f s (target < 1 s; examined %lld)\n",
              absl::StrCat("run with nothing due, ", population, " people").c_str(), secs,
              static_cast<long long>(idle->ledgers_examined));
}

}  // namespace frikort::bench
