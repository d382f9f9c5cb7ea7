// The register on a Patroni cluster (tests/testing/patroni_cluster.h: etcd
// and three PostgreSQL nodes on loopback, strict synchronous mode). First
// the cluster alone: after kill -9 of the primary with its Patroni, every
// commit acknowledged before is on the new primary and the multi-host
// connection string frikortd is given reaches it. Then the real frikortd on
// it while a client keeps reporting (resending each batch until it is
// acknowledged, as reporters do) and looking up: the primary is killed, then
// the writing frikortd; at the end every acknowledged report is there
// exactly once (a resend is DUPLICATE, each ledger holds it once) and
// `frikortd --verify` is clean. The time from each kill to serving is
// printed. `ctest -L ha` runs it.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"
#include "tests/testing/patroni_cluster.h"

namespace frikort::testutil {
namespace {

constexpr int kPersons = 24;
constexpr int kBatch = 10;
constexpr int kServing = 1, kNotServing = 2;

v1::SubmitCoPaymentsRequest Batch(int n) {
  v1::SubmitCoPaymentsRequest request;
  for (int i = 0; i < kBatch; ++i) {
    CoPaymentSpec s;
    s.report_id = absl::StrCat("ha-", n, "-", i);
    s.person_id = PersonId((n * kBatch + i) % kPersons);
    s.amount_ore = 100 + i;
    s.service_time = OsloTime(2025, 3, 1, 8) + absl::Minutes(n * kBatch + i);
    *request.add_co_payments() = MakeCoPayment(s);
  }
  return request;
}

// A reporter that sends batch after batch to whichever frikortd serves,
// resending a batch until it is acknowledged, and looks a person up after
// each. Every acknowledged batch and when it was acknowledged are kept.
class Reporter {
 public:
  explicit Reporter(std::vector<std::shared_ptr<grpc::Channel>> channels)
      : channels_(std::move(channels)) {
    thread_ = std::thread([this] { Run(); });
  }

  // Another frikortd to try (one started after a kill).
  void AddChannel(std::shared_ptr<grpc::Channel> channel) {
    std::lock_guard<std::mutex> lock(mu_);
    channels_.push_back(std::move(channel));
  }
  ~Reporter() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  int acknowledged() const { return acknowledged_.load(); }

  // The first acknowledgement of a batch whose successful send began after
  // `t`, waiting up to `timeout`; nullopt if none.
  std::optional<absl::Time> FirstAckAfter(absl::Time t, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const Ack& a : acks_) {
          if (a.sent > t) return a.at;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  struct Ack {
    int batch;
    absl::Time sent, at;
  };
  std::vector<Ack> acks() {
    std::lock_guard<std::mutex> lock(mu_);
    return acks_;
  }
  int resent_duplicates() const { return resent_duplicates_.load(); }
  int failed_sends() const { return failed_sends_.load(); }
  int lookups_ok() const { return lookups_ok_.load(); }

 private:
  void Run() {
    for (int n = 0; !stop_; ++n) {
      const v1::SubmitCoPaymentsRequest batch = Batch(n);
      bool resend = false;
      while (!stop_) {
        const absl::Time sent = absl::Now();
        std::shared_ptr<grpc::Channel> channel;
        {
          std::lock_guard<std::mutex> lock(mu_);
          channel = channels_[next_++ % channels_.size()];
        }
        v1::SubmitCoPaymentsResponse response;
        grpc::Status s = v1::Reporting::NewStub(channel)->SubmitCoPayments(
            Ctx(absl::Seconds(5)).get(), batch, &response);
        if (s.ok() && response.results_size() == kBatch) {
          int duplicates = 0;
          bool all_known = true;
          for (const v1::ReportResult& r : response.results()) {
            if (r.outcome() == v1::DUPLICATE) ++duplicates;
            all_known = all_known && (r.outcome() == v1::ACCEPTED || r.outcome() == v1::DUPLICATE);
          }
          // A first send is never a duplicate; a resend may be (its earlier
          // send landed though its answer was lost).
          if (!resend) {
            EXPECT_EQ(duplicates, 0) << "batch " << n;
          }
          EXPECT_TRUE(all_known) << "batch " << n << ": " << response.DebugString();
          resent_duplicates_ += duplicates;
          {
            std::lock_guard<std::mutex> lock(mu_);
            acks_.push_back({n, sent, absl::Now()});
          }
          ++acknowledged_;
          {
            std::lock_guard<std::mutex> lock(mu_);
            --next_;  // stay with the one that serves
          }
          v1::CheckExemptionRequest lookup;
          lookup.set_person_id(PersonId(n % kPersons));
          v1::CheckExemptionResponse answer;
          if (v1::Lookup::NewStub(channel)
                  ->CheckExemption(Ctx(absl::Seconds(5)).get(), lookup, &answer)
                  .ok()) {
            ++lookups_ok_;
          }
          break;
        }
        // UNAVAILABLE (failover under way, or a standby) or no answer in
        // time: the outcome is unknown, the resend settles it.
        ++failed_sends_;
        resend = true;
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
  size_t next_ = 0;                                       // guarded by mu_
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acknowledged_{0}, resent_duplicates_{0}, failed_sends_{0}, lookups_ok_{0};
  std::mutex mu_;
  std::vector<Ack> acks_;
};

class PgHaTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<testing::PatroniCluster>> cluster =
        testing::PatroniCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    std::cout << "Patroni cluster (etcd, 3 nodes, strict synchronous) up in "
              << absl::FormatDuration(absl::Now() - start) << std::endl;
    key_file_ = dir_ + "/pseudonym.key";
    std::ofstream(key_file_, std::ios::trunc) << std::string(64, 'a') << "\n";
    chmod(key_file_.c_str(), 0600);
  }
  void TearDown() override {
    DaemonTest::TearDown();
    cluster_.reset();
  }

  std::vector<std::string> HaArgs() {
    std::vector<std::string> args = Args();
    args.push_back("--store=postgres");
    args.push_back("--postgres_dsn=" + cluster_->Dsn());
    args.push_back("--pseudonym_key_file=" + key_file_);
    return args;
  }

  // A frikortd started on the cluster and listening; its channel.
  std::shared_ptr<grpc::Channel> StartListening(Daemon** out) {
    Daemon* d = Launch(HaArgs());
    *out = d;
    const int port = d->WaitListening(absl::Seconds(30));
    EXPECT_GT(port, 0) << d->Stderr();
    if (port <= 0) return nullptr;
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                               grpc::InsecureChannelCredentials());
  }

  // The health of `channel` once it is `want`, or what it was at `timeout`.
  static int WaitHealth(const std::shared_ptr<grpc::Channel>& channel, int want,
                        absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    int last = -1;
    do {
      HealthAnswer h = HealthCheck(channel, "", absl::Seconds(1));
      last = h.status.ok() ? h.serving_status : -1;
      if (last == want) return last;
      absl::SleepFor(absl::Milliseconds(50));
    } while (absl::Now() < deadline);
    return last;
  }

  // Every acknowledged report is there exactly once: a resend through
  // `channel` is DUPLICATE, and each ledger holds it once.
  void ExpectEachAcknowledgedReportOnce(Reporter& reporter,
                                        const std::shared_ptr<grpc::Channel>& channel) {
    std::set<std::string> acknowledged;
    auto reporting = v1::Reporting::NewStub(channel);
    for (const Reporter::Ack& ack : reporter.acks()) {
      const v1::SubmitCoPaymentsRequest batch = Batch(ack.batch);
      for (const v1::CoPayment& c : batch.co_payments()) acknowledged.insert(c.report_id());
      v1::SubmitCoPaymentsResponse response;
      grpc::Status s = reporting->SubmitCoPayments(Ctx().get(), batch, &response);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const v1::ReportResult& r : response.results()) {
        EXPECT_EQ(r.outcome(), v1::DUPLICATE) << "batch " << ack.batch;
      }
    }
    // ...and each ledger holds it once (and nothing of a batch never sent).
    std::map<std::string, int> stored;
    auto registry = v1::Registry::NewStub(channel);
    for (int p = 0; p < kPersons; ++p) {
      v1::GetLedgerRequest request;
      request.set_person_id(PersonId(p));
      request.set_year(2025);
      v1::Ledger ledger;
      grpc::Status s = WholeLedger(registry.get(), request, &ledger);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const v1::LedgerEntry& e : ledger.entries()) ++stored[e.report_id()];
    }
    for (const std::string& id : acknowledged) EXPECT_EQ(stored[id], 1) << id;
    // Beyond those, only the batch being resent when the reporter stopped may
    // have landed (its outcome unknown to the reporter).
    int last = -1;
    for (const Reporter::Ack& ack : reporter.acks()) last = std::max(last, ack.batch);
    for (const auto& [id, n] : stored) {
      if (acknowledged.count(id) > 0) continue;
      EXPECT_THAT(id, ::testing::StartsWith(absl::StrCat("ha-", last + 1, "-")));
      EXPECT_EQ(n, 1) << id;
    }
  }

  // `frikortd --verify` on the cluster (no frikortd may be running) is clean.
  void ExpectVerifyClean() {
    std::vector<std::string> verify = HaArgs();
    verify.push_back("--verify");
    Daemon* v = Launch(verify);
    EXPECT_EQ(v->ExitCode(absl::Seconds(120)), 0) << v->Stderr();
  }

  std::unique_ptr<testing::PatroniCluster> cluster_;
  std::string key_file_;
};

// The cluster itself, through the connection string frikortd is given:
// every commit acknowledged before the primary's machine goes is on the new
// primary (strict synchronous replication), and the multi-host string finds
// the new primary without being changed.
TEST_F(PgHaTest, ClusterFailoverKeepsEveryAcknowledgedCommit) {
  const std::string dsn = cluster_->Dsn();
  absl::Status created = testing::PgServer::ExecuteOn(dsn, "CREATE TABLE acks (n int PRIMARY KEY)");
  ASSERT_TRUE(created.ok()) << created;
  constexpr int kCommits = 50;
  for (int n = 0; n < kCommits; ++n) {
    absl::Status s =
        testing::PgServer::ExecuteOn(dsn, absl::StrCat("INSERT INTO acks VALUES (", n, ")"));
    ASSERT_TRUE(s.ok()) << s;
  }
  const absl::Time killed = absl::Now();
  absl::StatusOr<int> old_leader = cluster_->KillLeader();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  // The first commit through the same string after the kill.
  absl::Status s;
  const absl::Time deadline = killed + absl::Seconds(90);
  do {
    s = testing::PgServer::ExecuteOn(dsn, absl::StrCat("INSERT INTO acks VALUES (", kCommits, ")"));
    if (!s.ok()) absl::SleepFor(absl::Milliseconds(100));
  } while (!s.ok() && absl::Now() < deadline);
  ASSERT_TRUE(s.ok()) << s << "\n" << cluster_->Logs();
  absl::StatusOr<int> new_leader = cluster_->Leader(absl::Seconds(1));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *old_leader);
  std::cout << "kill -9 of the primary and its Patroni: commits again "
            << absl::FormatDuration(absl::Now() - killed) << " later (node " << *old_leader
            << " -> node " << *new_leader << ")" << std::endl;
  std::string count;
  ASSERT_TRUE(testing::PgServer::ExecuteOn(dsn, "SELECT count(*) FROM acks", &count).ok());
  EXPECT_EQ(count, absl::StrCat(kCommits + 1));
}

// frikortd on the cluster as it is today: a lost primary fails the register
// closed (every call UNAVAILABLE, health NOT_SERVING, nothing acknowledged
// lost) until it is restarted; the writer is then killed -9 and another
// frikortd started, which takes the lease once the dead one's runs out and
// finds every acknowledged report, once.
TEST_F(PgHaTest, ReportsSurviveAFailoverAndAWriterKill) {
  Daemon* first = nullptr;
  std::shared_ptr<grpc::Channel> a = StartListening(&first);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(WaitHealth(a, kServing, absl::Seconds(30)), kServing) << first->Stderr();
  Reporter reporter({a});
  const absl::Time warmup = absl::Now() + absl::Seconds(60);
  while (reporter.acknowledged() < 20 && absl::Now() < warmup) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(reporter.acknowledged(), 20) << first->Stderr();

  // 1. The primary's machine goes: kill -9 of its PostgreSQL and Patroni.
  const absl::Time pg_killed = absl::Now();
  absl::StatusOr<int> old_leader = cluster_->KillLeader();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  EXPECT_EQ(WaitHealth(a, kNotServing, absl::Seconds(30)), kNotServing);
  absl::StatusOr<int> new_leader = cluster_->Leader(absl::Seconds(90));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status() << "\n" << cluster_->Logs();
  EXPECT_NE(*new_leader, *old_leader);
  std::cout << "kill -9 of the PostgreSQL primary and its Patroni: node " << *new_leader
            << " primary " << absl::FormatDuration(absl::Now() - pg_killed) << " later"
            << std::endl;

  // 2. The writer, failed closed, is killed -9 and another frikortd started.
  const absl::Time writer_killed = absl::Now();
  first->Signal(SIGKILL);
  ASSERT_EQ(first->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);
  Daemon* second = nullptr;
  std::shared_ptr<grpc::Channel> b = StartListening(&second);
  ASSERT_NE(b, nullptr);
  reporter.AddChannel(b);
  std::optional<absl::Time> served = reporter.FirstAckAfter(writer_killed, absl::Seconds(60));
  ASSERT_TRUE(served.has_value()) << second->Stderr();
  std::cout << "kill -9 of the writing frikortd and a new one started: reports acknowledged "
            << absl::FormatDuration(*served - writer_killed) << " later ("
            << absl::FormatDuration(*served - pg_killed) << " after the primary was killed)"
            << std::endl;
  const int acked = reporter.acknowledged();
  const absl::Time more = absl::Now() + absl::Seconds(30);
  while (reporter.acknowledged() < acked + 5 && absl::Now() < more) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  reporter.Stop();
  std::cout << "acknowledged batches of " << kBatch << ": " << reporter.acknowledged()
            << "; failed sends " << reporter.failed_sends() << ", duplicates answered to resends "
            << reporter.resent_duplicates() << ", lookups answered " << reporter.lookups_ok()
            << std::endl;
  ExpectEachAcknowledgedReportOnce(reporter, b);

  second->Signal(SIGTERM);
  ASSERT_EQ(second->ExitCode(absl::Seconds(20)), 0) << second->Stderr();
  ExpectVerifyClean();
}

}  // namespace
}  // namespace frikort::testutil
