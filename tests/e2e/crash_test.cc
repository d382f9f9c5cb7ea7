// Crash test of the real frikortd: rounds of concurrent batch and stream
// submissions and issuance runs, each ended by SIGKILL at a random moment.
// After every kill the offline verifier must find the register clean, and after
// every restart each acknowledged report must be stored exactly once and each
// payout accounted for exactly once: the payouts of a person's ledger add up to
// what the ledger says was refunded, and an acknowledged run's payouts are all
// still there. At the end one uninterrupted run pays every ledger its excess to
// the øre, so nothing was lost and nothing paid twice.
//
//   FRIKORT_CRASH_ROUNDS=N   rounds (default 6)
//   FRIKORT_CRASH_SEED=S     the seed of the kill moments and the load
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

constexpr int kPersons = 30;
constexpr int kYear = 2025;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = getenv(name);
  uint64_t n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) ? n : fallback;
}

// What the clients were told before the kill.
struct Acknowledged {
  absl::Mutex mu;
  std::set<std::string> reports ABSL_GUARDED_BY(mu);
  std::vector<v1::IssuanceRun> runs ABSL_GUARDED_BY(mu);
};

v1::SubmitCoPaymentsRequest RandomBatch(std::mt19937_64& rng, const std::string& prefix, int size) {
  std::uniform_int_distribution<int> person(0, kPersons - 1);
  std::uniform_int_distribution<int64_t> amount(5000, 40000);
  std::uniform_int_distribution<int> minute(0, 300 * 24 * 60);
  v1::SubmitCoPaymentsRequest request;
  for (int i = 0; i < size; ++i) {
    CoPaymentSpec s;
    s.report_id = absl::StrCat(prefix, "-", i);
    s.person_id = PersonId(person(rng));
    s.amount_ore = amount(rng);
    s.service_time = OsloTime(kYear, 1, 1, 8) + absl::Minutes(minute(rng));
    *request.add_co_payments() = MakeCoPayment(s);
  }
  return request;
}

bool AllAccepted(const v1::SubmitCoPaymentsRequest& request,
                 const v1::SubmitCoPaymentsResponse& response) {
  if (response.results_size() != request.co_payments_size()) return false;
  for (const v1::ReportResult& r : response.results()) {
    if (r.outcome() != v1::ACCEPTED) return false;
  }
  return true;
}

class CrashTest : public DaemonTest {
 protected:
  // Drives load against `channel` until the daemon dies; records every answer.
  void RunLoad(const std::shared_ptr<grpc::Channel>& channel, int round, uint64_t seed,
               Acknowledged* acked) {
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) {  // unary batches
      clients.emplace_back([&, t] {
        std::mt19937_64 rng(seed * 31 + t);
        auto stub = v1::Reporting::NewStub(channel);
        for (int b = 0;; ++b) {
          v1::SubmitCoPaymentsRequest request =
              RandomBatch(rng, absl::StrCat("r", round, "-u", t, "-b", b), 50);
          v1::SubmitCoPaymentsResponse response;
          if (!stub->SubmitCoPayments(Ctx(absl::Seconds(5)).get(), request, &response).ok()) {
            return;
          }
          EXPECT_TRUE(AllAccepted(request, response)) << response.ShortDebugString();
          absl::MutexLock l(&acked->mu);
          for (const v1::CoPayment& c : request.co_payments()) acked->reports.insert(c.report_id());
        }
      });
    }
    clients.emplace_back([&] {  // one stream, one message in flight
      std::mt19937_64 rng(seed * 31 + 7);
      auto stub = v1::Reporting::NewStub(channel);
      auto ctx = Ctx(absl::Seconds(30));
      auto stream = stub->StreamCoPayments(ctx.get());
      for (int m = 0;; ++m) {
        v1::SubmitCoPaymentsRequest request =
            RandomBatch(rng, absl::StrCat("r", round, "-s-m", m), 20);
        v1::SubmitCoPaymentsResponse response;
        if (!stream->Write(request) || !stream->Read(&response)) break;
        EXPECT_TRUE(AllAccepted(request, response)) << response.ShortDebugString();
        absl::MutexLock l(&acked->mu);
        for (const v1::CoPayment& c : request.co_payments()) acked->reports.insert(c.report_id());
      }
      stream->WritesDone();
      stream->Finish();
    });
    clients.emplace_back([&] {  // issuance runs back to back
      auto stub = v1::Issuance::NewStub(channel);
      while (true) {
        v1::RunIssuanceRequest request;
        v1::IssuanceRun run;
        grpc::Status s = stub->RunIssuance(Ctx(absl::Seconds(10)).get(), request, &run);
        if (!s.ok() && s.error_code() != grpc::StatusCode::ABORTED) return;
        if (s.ok()) {
          absl::MutexLock l(&acked->mu);
          acked->runs.push_back(run);
        }
        absl::SleepFor(absl::Milliseconds(20));
      }
    });
    for (std::thread& c : clients) c.join();
  }

  // Checks the restarted register against what was acknowledged.
  void CheckRegister(const std::shared_ptr<grpc::Channel>& channel, Acknowledged* acked,
                     bool expect_fully_paid) {
    auto registry = v1::Registry::NewStub(channel);
    auto issuance = v1::Issuance::NewStub(channel);
    std::map<std::string, int> stored;                        // report id -> copies
    std::map<std::pair<std::string, int>, int64_t> refunded;  // (person, scheme) -> øre
    for (int p = 0; p < kPersons; ++p) {
      v1::GetLedgerRequest request;
      request.set_person_id(PersonId(p));
      request.set_year(kYear);
      v1::Ledger ledger;
      grpc::Status s = WholeLedger(registry.get(), request, &ledger);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const v1::LedgerEntry& e : ledger.entries()) ++stored[e.report_id()];
      for (const v1::SchemeLedger& l : ledger.schemes()) {
        refunded[{PersonId(p), l.scheme()}] = l.refunded_ore();
        if (expect_fully_paid && l.counted_total_ore() >= l.cap_ore()) {
          EXPECT_TRUE(l.has_card()) << "person " << p;
          EXPECT_EQ(l.refunded_ore(), l.counted_total_ore() - l.cap_ore()) << "person " << p;
          EXPECT_EQ(l.outstanding_ore(), 0) << "person " << p;
        }
      }
    }
    absl::MutexLock l(&acked->mu);
    for (const std::string& id : acked->reports) {
      EXPECT_EQ(stored[id], 1) << "acknowledged report " << id;
    }
    for (const auto& [id, copies] : stored) EXPECT_EQ(copies, 1) << id;

    // Every payout once: per ledger they add up to its refunded amount, and
    // every acknowledged run's payouts are all there.
    std::map<std::pair<std::string, int>, int64_t> paid;
    std::map<std::string, std::pair<int64_t, int64_t>> per_run;  // run -> (count, øre)
    std::set<std::tuple<std::string, int, std::string>> seen;
    v1::ListPayoutsRequest list;
    list.set_year(kYear);
    list.set_page_size(500);
    do {
      v1::ListPayoutsResponse page;
      grpc::Status s = issuance->ListPayouts(Ctx().get(), list, &page);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const v1::Payout& p : page.payouts()) {
        EXPECT_TRUE(seen.insert({p.person_id(), p.scheme(), p.run_id()}).second)
            << "two payouts to one ledger in run " << p.run_id();
        paid[{p.person_id(), p.scheme()}] += p.amount_ore();
        per_run[p.run_id()].first += 1;
        per_run[p.run_id()].second += p.amount_ore();
      }
      list.set_page_token(page.next_page_token());
    } while (!list.page_token().empty());
    for (const auto& [ledger, amount] : refunded) EXPECT_EQ(paid[ledger], amount);
    for (const auto& [ledger, amount] : paid) EXPECT_EQ(refunded[ledger], amount);
    for (const v1::IssuanceRun& run : acked->runs) {
      EXPECT_EQ(per_run[run.run_id()].first, run.payouts()) << run.run_id();
      EXPECT_EQ(per_run[run.run_id()].second, run.payout_total_ore()) << run.run_id();
    }
  }
};

TEST_F(CrashTest, KillNineAtRandomMomentsLosesNothingAndPaysNothingTwice) {
  const uint64_t rounds = EnvNumber("FRIKORT_CRASH_ROUNDS", 6);
  const uint64_t seed = EnvNumber("FRIKORT_CRASH_SEED", std::random_device()());
  std::cerr << "crash test: FRIKORT_CRASH_SEED=" << seed << " FRIKORT_CRASH_ROUNDS=" << rounds
            << "\n";
  std::mt19937_64 rng(seed);
  Acknowledged acked;
  for (uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round, " of seed ", seed));
    Daemon* d = nullptr;
    auto channel = StartServing(&d);
    ASSERT_NE(channel, nullptr);
    CheckRegister(channel, &acked, /*expect_fully_paid=*/false);
    if (HasFailure()) return;

    const absl::Duration kill_after =
        absl::Milliseconds(std::uniform_int_distribution<int>(50, 1500)(rng));
    std::thread killer([&] {
      absl::SleepFor(kill_after);
      d->Signal(SIGKILL);
    });
    RunLoad(channel, static_cast<int>(round), seed + round, &acked);
    killer.join();
    ASSERT_EQ(d->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);

    std::string report;
    ASSERT_EQ(RunVerify(&report), 0) << report;
    if (HasFailure()) return;
  }

  // One more start: everything acknowledged is there; an uninterrupted run
  // then pays every ledger exactly its excess.
  Daemon* d = nullptr;
  auto channel = StartServing(&d);
  ASSERT_NE(channel, nullptr);
  auto issuance = v1::Issuance::NewStub(channel);
  v1::IssuanceRun run;
  ASSERT_TRUE(issuance->RunIssuance(Ctx().get(), v1::RunIssuanceRequest(), &run).ok());
  {
    absl::MutexLock l(&acked.mu);
    acked.runs.push_back(run);
    std::cerr << "crash test: " << rounds << " kills, " << acked.reports.size()
              << " acknowledged reports, " << acked.runs.size() << " acknowledged runs\n";
    EXPECT_GT(acked.reports.size(), 0u);
  }
  CheckRegister(channel, &acked, /*expect_fully_paid=*/true);
  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();
  std::string report;
  EXPECT_EQ(RunVerify(&report), 0) << report;
}

}  // namespace
}  // namespace frikort::testutil
