// Failover of the real frikortd on PostgreSQL: a second frikortd stands by
// (health NOT_SERVING, calls UNAVAILABLE) while the first holds the writer
// lease and takes over within 10 s of a kill -9; a frikortd whose database
// restarts answers UNAVAILABLE meanwhile and serves again by itself. Either
// way every acknowledged report is there exactly once (a resend answers
// DUPLICATE) and --verify is clean.
#include <signal.h>

#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/pg_daemon.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;

constexpr int kServing = 1, kNotServing = 2;  // grpc.health.v1 ServingStatus
constexpr int kPersons = 20;
constexpr int kBatch = 5;

// Sends batches of reports, one call at a time, to the channel it is given,
// and keeps every batch it sent and the report ids acknowledged.
class Streamer {
 public:
  explicit Streamer(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Streamer() { Stop(); }

  void Stop() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }
  // Waits until at least `n` reports are acknowledged.
  bool WaitAcknowledged(size_t n, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    wanted_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(this, &Streamer::Enough), timeout);
  }
  size_t Acknowledged() {
    absl::MutexLock l(&mu_);
    return acknowledged_.size();
  }
  // After Stop (the streaming thread has ended).
  const std::vector<v1::SubmitCoPaymentsRequest>& sent() const { return sent_; }
  const std::set<std::string>& acknowledged() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return acknowledged_;
  }
  const std::set<std::string>& refusals() const { return refusals_; }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acknowledged_.size() >= wanted_; }

  void Run() {
    auto stub = v1::Reporting::NewStub(channel_);
    for (int k = 0; k < 2000; ++k) {
      v1::SubmitCoPaymentsRequest batch;
      for (int j = 0; j < kBatch; ++j) {
        const int n = k * kBatch + j;
        CoPaymentSpec s;
        s.report_id = absl::StrCat("f-", n);
        s.person_id = PersonId(n % kPersons);
        s.amount_ore = 100 + n % 50;
        s.service_time = OsloTime(2025, 1, 2, 8) + absl::Minutes(n);
        *batch.add_co_payments() = MakeCoPayment(s);
      }
      v1::SubmitCoPaymentsResponse response;
      grpc::Status status = stub->SubmitCoPayments(Ctx(absl::Seconds(5)).get(), batch, &response);
      absl::MutexLock l(&mu_);
      sent_.push_back(batch);
      if (status.ok()) {
        for (const v1::ReportResult& r : response.results()) {
          EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.report_id();
          acknowledged_.insert(r.report_id());
        }
      } else {
        refusals_.insert(absl::StrCat(status.error_code()));
        // Not too fast against a frikortd that answers nothing.
        mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(50));
      }
      if (stop_) return;
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::SubmitCoPaymentsRequest> sent_;
  std::set<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  size_t wanted_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> refusals_;
  std::thread thread_;
};

class PgFailoverTest : public PgDaemonTest {
 protected:
  static std::shared_ptr<grpc::Channel> ChannelTo(Daemon* d) {
    const int port = d->WaitListening(absl::Seconds(15));
    EXPECT_GT(port, 0) << d->Stderr();
    if (port <= 0) return nullptr;
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                               grpc::InsecureChannelCredentials());
  }

  // Time until health answers `want` (nullopt when it did not within `timeout`).
  static std::optional<absl::Duration> WaitHealth(const std::shared_ptr<grpc::Channel>& channel,
                                                  int want, absl::Duration timeout) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < timeout) {
      HealthAnswer h = HealthCheck(channel, "", absl::Seconds(1));
      if (h.status.ok() && h.serving_status == want) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }

  // Every batch the streamer sent, again: what it acknowledged answers
  // DUPLICATE, the rest (refused, or of unknown outcome) ACCEPTED or
  // DUPLICATE; then each report is in its ledger exactly once.
  static void ExpectEachReportOnce(const std::shared_ptr<grpc::Channel>& channel,
                                   const Streamer& streamer) {
    std::set<std::string> all;
    for (const v1::SubmitCoPaymentsRequest& batch : streamer.sent()) {
      v1::SubmitCoPaymentsResponse response = Submit(channel, batch);
      ASSERT_EQ(response.results_size(), batch.co_payments_size());
      for (const v1::ReportResult& r : response.results()) {
        all.insert(r.report_id());
        if (streamer.acknowledged().count(r.report_id()) > 0) {
          EXPECT_EQ(r.outcome(), v1::DUPLICATE) << r.report_id() << " was acknowledged";
        } else {
          EXPECT_THAT(r.outcome(), ::testing::AnyOf(v1::ACCEPTED, v1::DUPLICATE)) << r.report_id();
        }
      }
    }
    const std::map<std::string, int> stored = StoredReports(channel, kPersons);
    EXPECT_EQ(stored.size(), all.size());
    for (const auto& [id, n] : stored) EXPECT_EQ(n, 1) << id;
  }

  void StopAndVerify(Daemon* d) {
    d->Signal(SIGTERM);
    ASSERT_EQ(d->ExitCode(absl::Seconds(20)), 0) << d->Stderr();
    ExpectVerifyClean();
  }
};

TEST_F(PgFailoverTest, AStandbyTakesOverWithinTenSecondsOfAKill) {
  Daemon* first = nullptr;
  auto to_first = StartServing(&first, PgArgs());
  ASSERT_NE(to_first, nullptr);

  // The second finds the lease held: it serves gRPC, but not the register.
  Daemon* second = Launch(PgArgs());
  auto to_second = ChannelTo(second);
  ASSERT_NE(to_second, nullptr);
  EXPECT_TRUE(WaitHealth(to_second, kNotServing, absl::Seconds(2)).has_value());
  v1::SubmitCoPaymentsResponse refused;
  grpc::Status s = v1::Reporting::NewStub(to_second)->SubmitCoPayments(
      Ctx().get(), Batch(1, "standby-"), &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("standby: another frikortd holds the writer lease"));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(HealthCheck(to_second, "").serving_status, kNotServing) << "still standing by";
  // A would-be standby with another key is refused at start, not at takeover.
  ExpectRefused(PgArgs(WriteKey("other.key", 'b')), 1, "pseudonym key does not match");

  // Killed while a client streams reports to it.
  Streamer streamer(to_first);
  ASSERT_TRUE(streamer.WaitAcknowledged(50, absl::Seconds(30)));
  first->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  ASSERT_EQ(first->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);
  std::optional<absl::Duration> took = WaitHealth(to_second, kServing, absl::Seconds(20));
  ASSERT_TRUE(took.has_value()) << second->Stderr();
  const absl::Duration since_kill = absl::Now() - killed;
  std::cout << "standby serving "
            << absl::FormatDuration(absl::Trunc(since_kill, absl::Milliseconds(1)))
            << " after kill -9 of the lease holder (" << streamer.Acknowledged()
            << " reports acknowledged before)" << std::endl;
  EXPECT_LT(since_kill, absl::Seconds(10));
  streamer.Stop();
  EXPECT_THAT(second->Stderr(), HasSubstr("standby: another frikortd holds the writer lease"));

  ExpectEachReportOnce(to_second, streamer);
  StopAndVerify(second);
}

TEST_F(PgFailoverTest, ADatabaseRestartIsUnavailableMeanwhileThenServesWithoutARestart) {
  Daemon* d = nullptr;
  auto channel = StartServing(&d, PgArgs());
  ASSERT_NE(channel, nullptr);
  Streamer streamer(channel);
  ASSERT_TRUE(streamer.WaitAcknowledged(30, absl::Seconds(30)));

  ASSERT_TRUE(server_->Stop().ok());  // immediate: as a crash of the database
  const absl::Time stopped = absl::Now();
  std::optional<absl::Duration> noticed = WaitHealth(channel, kNotServing, absl::Seconds(10));
  EXPECT_TRUE(noticed.has_value()) << d->Stderr();
  v1::CheckExemptionRequest lookup;
  lookup.set_person_id(PersonId(1));
  v1::CheckExemptionResponse answer;
  grpc::Status s = v1::Lookup::NewStub(channel)->CheckExemption(Ctx().get(), lookup, &answer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  const size_t before = streamer.Acknowledged();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(streamer.Acknowledged(), before) << "nothing is acknowledged without the database";

  ASSERT_TRUE(server_->Restart().ok());
  const absl::Time restarted = absl::Now();
  std::optional<absl::Duration> back = WaitHealth(channel, kServing, absl::Seconds(20));
  ASSERT_TRUE(back.has_value()) << d->Stderr();
  std::cout << "NOT_SERVING " << absl::FormatDuration(absl::Trunc(*noticed, absl::Milliseconds(1)))
            << " after the database stopped; SERVING again "
            << absl::FormatDuration(absl::Trunc(absl::Now() - restarted, absl::Milliseconds(1)))
            << " after it was back (out "
            << absl::FormatDuration(absl::Trunc(absl::Now() - stopped, absl::Milliseconds(1)))
            << " in all)" << std::endl;
  EXPECT_TRUE(streamer.WaitAcknowledged(before + 20, absl::Seconds(20)))
      << "the same frikortd acknowledges reports again";
  streamer.Stop();
  EXPECT_FALSE(d->WaitExit(absl::ZeroDuration()).has_value()) << "never restarted";
  EXPECT_FALSE(streamer.refusals().empty());
  for (const std::string& code : streamer.refusals()) {
    EXPECT_EQ(code, absl::StrCat(grpc::StatusCode::UNAVAILABLE)) << "refused meanwhile";
  }

  ExpectEachReportOnce(channel, streamer);
  StopAndVerify(d);
}

}  // namespace
}  // namespace frikort::testutil
