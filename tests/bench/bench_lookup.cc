// frikort_bench, part "lookup": CheckExemption beside a no-op call.
#include "absl/algorithm/container.h"
#include "absl/strings/str_split.h"
#include "tests/bench/bench.h"

namespace frikort::bench {

void Lookup() {
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_lookup_seconds));
  Stack s("lookup");
  const auto persons = MakeIds(20000);
  std::vector<core::CoPaymentInput> items;
  for (size_t i = 0; i < persons.size(); ++i) {
    items.push_back(ToInput(MakeCoPayment(persons[i], i, i % 2 ? 400000 : 5000)));
  }
  if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  // The two calls take turns in short windows, so that a burst of other work
  // on a shared machine lands on both alike.
  constexpr int kWindows = 8;
  std::printf("lookup: %d calls in flight, %d s each in %d alternating windows, %zu people\n",
              in_flight, absl::GetFlag(FLAGS_lookup_seconds), kWindows, persons.size());
  // Both calls go through the same client path (a generic stub, the same
  // deadline, the same completion), so the ratio compares what the server
  // does for each and not two client libraries.
  grpc::GenericStub stub(s.channel);
  const std::string health_request = testutil::EncodeStringField(1, "");
  // With --lookup_beside_ingest, a batch feed runs through both kinds of
  // window: one submitter, batches of 1,000, each synced, back to back.
  std::atomic<bool> feed_stop{false};
  std::atomic<int64_t> fed{0};
  std::thread feed;
  if (absl::GetFlag(FLAGS_lookup_beside_ingest)) {
    feed = std::thread([&] {
      for (int64_t seq = persons.size(); !feed_stop; seq += 1000) {
        std::vector<core::CoPaymentInput> batch;
        for (int64_t i = seq; i < seq + 1000; ++i) {
          batch.push_back(ToInput(MakeCoPayment(persons[i % persons.size()], i, 100)));
        }
        if (auto r = s.reg->Submit(std::move(batch)); !r.ok()) Stack::Die(r.status());
        fed += 1000;
      }
    });
  }
  const absl::Time feed_start = absl::Now();
  Samples noop, check;
  const std::vector<std::string> calls = absl::StrSplit(absl::GetFlag(FLAGS_lookup_calls), ',');
  const bool with_noop = absl::c_linear_search(calls, "health");
  const bool with_check = absl::c_linear_search(calls, "check");
  for (int w = 0; w < kWindows; ++w) {
    if (with_noop)
      HammerCalls(
          in_flight, length / kWindows,
          [&](int, int64_t, std::function<void()> done) {
            StartUnaryCall(stub, "/grpc.health.v1.Health/Check", health_request, "",
                           [done](const std::string& answer) {
                             if (answer.size() < 2 || answer[0] != 0x08 || answer[1] != 1) {
                               Stack::Die(absl::InternalError("health check: not SERVING"));
                             }
                             done();
                           });
          },
          &noop);
    if (with_check)
      HammerCalls(
          in_flight, length / kWindows,
          [&](int t, int64_t i, std::function<void()> done) {
            StartCheckExemption(stub, persons, t, i, w, std::move(done));
          },
          &check);
  }
  if (feed.joinable()) {
    feed_stop = true;
    feed.join();
    std::printf("  beside a batch feed of %.0f reports/s (Register::Submit, batches of 1,000)\n",
                fed / absl::ToDoubleSeconds(absl::Now() - feed_start));
  }
  if (with_noop) {
    std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "Health/Check (no-op)",
                noop.per_second(), noop.Percentile(50), noop.Percentile(99));
  }
  if (with_check) {
    std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "CheckExemption",
                check.per_second(), check.Percentile(50), check.Percentile(99));
  }
  if (with_noop && with_check) {
    std::printf("  ratio CheckExemption / no-op: %.2f (target >= 0.7; p99 target < 10 ms)\n",
                check.per_second() / noop.per_second());
  }
  // The lookup log's memtable is unsorted: a listing that meets it sorts a
  // copy. Its cost, with the log as the run left it:
  Samples listing;
  for (int i = 0; i < 21; ++i) {
    const absl::Time start = absl::Now();
    auto page = s.reg->ListLookups(persons[i], 100, "");
    if (!page.ok()) Stack::Die(page.status());
    listing.latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  const double median = listing.Percentile(50);  // sorts
  std::printf("  ListLookups of one person after the run: p50 %.2f ms, max %.2f ms\n", median,
              listing.latencies_ms.back());
}

}  // namespace frikort::bench
