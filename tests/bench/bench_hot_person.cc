// frikort_bench, part "hot_person": one person whose crossing every report moves.
#include "absl/synchronization/mutex.h"
#include "core/calendar.h"
#include "tests/bench/bench.h"

namespace frikort::bench {

// The worst case for the single writer: one person with many entries whose
// running total crosses the cap late in the year, then reports dated before
// the crossing and cancellations of entries before it, each of which moves
// the crossing. Printed beside the same operations for people with a short
// history, and with the latency another reporter sees meanwhile.
void HotPerson() {
  const int64_t history = absl::GetFlag(FLAGS_hot_entries);
  const int64_t moves = std::max<int64_t>(
      1, std::min<int64_t>(1000, storage::RegisterOptions{}.max_entries_per_person_year - history));
  constexpr int kBatch = 100;
  Stack s("hot", /*with_server=*/false);
  const std::vector<std::string> ids = MakeIds(20001);
  const std::string& hot = ids.back();
  std::printf(
      "hot person: %lld entries crossing the cap late, then %lld reports dated before "
      "the crossing and %lld cancellations, batches of %d, synced\n",
      static_cast<long long>(history), static_cast<long long>(moves), static_cast<long long>(moves),
      kBatch);
  auto report = [](const std::string& person, const std::string& id, absl::CivilDay day,
                   int64_t amount) {
    core::CoPaymentInput in;
    in.report_id = id;
    in.provider_id = "1234567";
    in.person_id = person;
    in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
    in.category = static_cast<int>(core::Category::kPhysician);
    in.amount = amount;
    in.payment = static_cast<int>(core::Payment::kPaid);
    return in;
  };
  // Seconds for `n` reports made by make(i), submitted in batches of kBatch.
  auto feed = [&](int64_t n, const std::function<core::CoPaymentInput(int64_t)>& make) {
    const absl::Time start = absl::Now();
    for (int64_t b = 0; b < n; b += kBatch) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < std::min(n, b + kBatch); ++i) items.push_back(make(i));
      auto r = s.reg->Submit(std::move(items));
      if (!r.ok()) Stack::Die(r.status());
      if ((*r)[0].outcome != core::Outcome::kAccepted) {
        Stack::Die(absl::InternalError(absl::StrCat("report refused: ", (*r)[0].message)));
      }
    }
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  // Seconds for `n` cancellations of id(i), all queued at once (the writer
  // groups them as it would a busy reporter's).
  auto cancel = [&](int64_t n, const std::function<std::string(int64_t)>& id) {
    const absl::Time start = absl::Now();
    absl::Mutex mu;
    int64_t left = n;
    for (int64_t i = 0; i < n; ++i) {
      s.reg->CancelAsync("1234567", id(i), "bench", [&](absl::StatusOr<storage::ReportResult> r) {
        if (!r.ok() || r->outcome != core::Outcome::kAccepted) {
          Stack::Die(absl::InternalError("cancellation refused"));
        }
        absl::MutexLock l(&mu);
        --left;
      });
    }
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(
        +[](int64_t* v) { return *v == 0; }, &left));
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  const absl::CivilDay march(2024, 3, 1);
  // The hot person's history: 40 øre a report from 1 March on, in service
  // order; the 2024 cap (316,500 øre) is crossed by report 7,913.
  feed(history, [&](int64_t i) {
    return report(hot, absl::StrCat("h", i), march + static_cast<int>(i * 270 / history), 40);
  });
  // The same number of reports for people with a short history.
  const double normal_secs = feed(moves, [&](int64_t i) {
    return report(ids[i % 20000], absl::StrCat("n", i), march + static_cast<int>(i % 270), 40);
  });

  // Another reporter's batches of 10 while the hot person's reports run.
  std::atomic<bool> stop{false};
  std::vector<double> other_ms;
  std::thread other([&] {
    for (int64_t b = 0; !stop.load(); b += 10) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < b + 10; ++i) {
        items.push_back(report(ids[(i * 7) % 20000], absl::StrCat("o", i), march, 40));
      }
      const absl::Time t = absl::Now();
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      other_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    }
  });
  // Dated in January and February: each moves the crossing earlier.
  const double hot_secs = feed(moves, [&](int64_t i) {
    return report(hot, absl::StrCat("e", i), absl::CivilDay(2024, 1, 1) + static_cast<int>(i % 59),
                  40);
  });
  // Cancelling them and early history moves it back, one entry at a time.
  const double hot_cancel_secs = cancel(moves, [](int64_t i) { return absl::StrCat("e", i); });
  stop = true;
  other.join();
  const double normal_cancel_secs = cancel(moves, [](int64_t i) { return absl::StrCat("n", i); });

  const double us = 1e6 / static_cast<double>(moves);
  PrintRow("report, short history (per report)", normal_secs * us, "us");
  PrintRow("report dated before the hot person's crossing (per report)", hot_secs * us, "us");
  PrintRow("cancellation, short history (per cancellation)", normal_cancel_secs * us, "us");
  PrintRow("cancellation before the hot person's crossing", hot_cancel_secs * us, "us");
  std::printf("  ratio hot / short history: reports %.2f, cancellations %.2f (target ~1)\n",
              hot_secs / normal_secs, hot_cancel_secs / normal_cancel_secs);
  if (!other_ms.empty()) {
    std::sort(other_ms.begin(), other_ms.end());
    std::printf(
        "  another reporter meanwhile (batches of 10, %zu calls): p50 %.2f ms, p99 %.2f ms\n",
        other_ms.size(), other_ms[other_ms.size() / 2], other_ms[other_ms.size() * 99 / 100]);
  }
  auto full = s.reg->Submit({report(hot, "over", march, 40)});
  if (full.ok() && history + moves >= storage::RegisterOptions{}.max_entries_per_person_year) {
    std::printf("  a report beyond %d entries of one person-year: %s\n",
                storage::RegisterOptions{}.max_entries_per_person_year,
                std::string(core::RejectReasonName((*full)[0].reason)).c_str());
  }
}

}  // namespace frikort::bench
