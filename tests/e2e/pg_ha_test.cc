// The register on a Patroni cluster (tests/testing/patroni_cluster.h: etcd
// and three PostgreSQL nodes on loopback, strict synchronous mode). First
// the cluster alone: after kill -9 of the primary with its Patroni, every
// commit acknowledged before is on the new primary and the multi-host
// connection string frikortd is given reaches it. Then two real frikortd on
// it, one writing and one standing by, while a client keeps reporting
// (resending each batch until it is acknowledged, as reporters do) and
// looking up: the primary is killed, later the writing frikortd. After each
// the register serves again by itself; at the end every acknowledged report
// is there exactly once (a resend is DUPLICATE, each ledger holds it once)
// and `frikortd --verify` is clean. The time from each kill to the first
// report acknowledged after it is printed. `ctest -L ha` runs it.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/pg_daemon.h"
#include "tests/server/test_util.h"
#include "tests/testing/patroni_cluster.h"

namespace frikort::testutil {
namespace {

constexpr int kBatch = 10;
constexpr int kPersons = kBatch;  // (Batch gives report i to person i)
constexpr int kServing = 1, kNotServing = 2;

// Batch n: reports "ha-<n>-<i>" of persons 0..kPersons-1.
v1::SubmitCoPaymentsRequest HaBatch(int n) {
  return Batch(kBatch, absl::StrCat("ha-", n, "-"), kPersons);
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
        absl::MutexLock lock(&mu_);
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
    absl::MutexLock lock(&mu_);
    return acks_;
  }
  int resent_duplicates() const { return resent_duplicates_.load(); }
  int failed_sends() const { return failed_sends_.load(); }
  int lookups_ok() const { return lookups_ok_.load(); }

 private:
  void Run() {
    for (int n = 0; !stop_; ++n) {
      const v1::SubmitCoPaymentsRequest batch = HaBatch(n);
      bool resend = false;
      while (!stop_) {
        const absl::Time sent = absl::Now();
        std::shared_ptr<grpc::Channel> channel;
        {
          absl::MutexLock lock(&mu_);
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
            absl::MutexLock lock(&mu_);
            acks_.push_back({n, sent, absl::Now()});
          }
          ++acknowledged_;
          {
            absl::MutexLock lock(&mu_);
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

  absl::Mutex mu_;
  const std::vector<std::shared_ptr<grpc::Channel>> channels_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Ack> acks_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::atomic<int> acknowledged_{0}, resent_duplicates_{0}, failed_sends_{0}, lookups_ok_{0};
  std::thread thread_;
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
      const v1::SubmitCoPaymentsRequest batch = HaBatch(ack.batch);
      for (const v1::CoPayment& c : batch.co_payments()) acknowledged.insert(c.report_id());
      v1::SubmitCoPaymentsResponse response;
      grpc::Status s = reporting->SubmitCoPayments(Ctx().get(), batch, &response);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const v1::ReportResult& r : response.results()) {
        EXPECT_EQ(r.outcome(), v1::DUPLICATE) << "batch " << ack.batch;
      }
    }
    // ...and each ledger holds it once (and nothing of a batch never sent).
    std::map<std::string, int> stored = StoredReports(channel, kPersons);
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
  absl::StatusOr<int> old_leader = cluster_->KillLeader();
  const absl::Time killed = absl::Now();
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

// Two frikortd on the cluster: one writes, the other stands by. The primary
// is killed -9 with its Patroni: the writer answers UNAVAILABLE and
// NOT_SERVING meanwhile, and once the new primary is there one of the two
// (the old writer reconnecting, or the standby if the old lease ran out
// first) serves again by itself, the other standing by. Then the one that
// writes is killed -9: the other takes the lease and serves.
TEST_F(PgHaTest, RegisterServesAgainAfterKillingThePrimaryAndThenTheWriter) {
  Daemon* daemons[2] = {nullptr, nullptr};
  std::shared_ptr<grpc::Channel> channels[2];
  channels[0] = StartListening(&daemons[0]);
  ASSERT_NE(channels[0], nullptr);
  ASSERT_EQ(WaitHealth(channels[0], kServing, absl::Seconds(30)), kServing) << daemons[0]->Stderr();
  // The second one stands by: it runs, answers NOT_SERVING, and writes nothing.
  channels[1] = StartListening(&daemons[1]);
  ASSERT_NE(channels[1], nullptr);
  ASSERT_EQ(WaitHealth(channels[1], kNotServing, absl::Seconds(10)), kNotServing)
      << daemons[1]->Stderr();

  Reporter reporter({channels[0], channels[1]});
  const absl::Time warmup = absl::Now() + absl::Seconds(60);
  while (reporter.acknowledged() < 20 && absl::Now() < warmup) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GE(reporter.acknowledged(), 20) << daemons[0]->Stderr();

  // 1. The primary's machine goes: kill -9 of its PostgreSQL and Patroni.
  absl::StatusOr<int> old_leader = cluster_->KillLeader();
  const absl::Time pg_killed = absl::Now();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  const int acked_at_pg_kill = reporter.acknowledged();
  const int failed_at_pg_kill = reporter.failed_sends();
  EXPECT_EQ(WaitHealth(channels[0], kNotServing, absl::Seconds(10)), kNotServing)
      << "the writer still says SERVING without its database";
  std::optional<absl::Time> served = reporter.FirstAckAfter(pg_killed, absl::Seconds(90));
  ASSERT_TRUE(served.has_value()) << "no report acknowledged after the primary was killed\n"
                                  << daemons[0]->Stderr() << "\n"
                                  << daemons[1]->Stderr() << "\n"
                                  << cluster_->Logs();
  EXPECT_GT(reporter.failed_sends(), failed_at_pg_kill) << "nothing was refused meanwhile";
  absl::StatusOr<int> new_leader = cluster_->Leader(absl::Seconds(1));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *old_leader);
  // Exactly one serves; neither was restarted.
  int writer = -1;
  const absl::Time settle = absl::Now() + absl::Seconds(10);
  while (writer < 0 && absl::Now() < settle) {
    for (int i = 0; i < 2 && writer < 0; ++i) {
      if (HealthCheck(channels[i], "", absl::Seconds(1)).serving_status == kServing) writer = i;
    }
  }
  ASSERT_GE(writer, 0);
  const int standby = 1 - writer;
  EXPECT_EQ(WaitHealth(channels[standby], kNotServing, absl::Seconds(1)), kNotServing);
  for (Daemon* d : daemons) EXPECT_EQ(d->WaitExit(absl::ZeroDuration()), std::nullopt);
  std::cout << "kill -9 of the PostgreSQL primary and its Patroni: reports acknowledged again "
            << absl::FormatDuration(*served - pg_killed) << " later (node " << *old_leader
            << " -> node " << *new_leader << "; frikortd " << writer
            << (writer == 0 ? " reconnected" : " took the lease") << ", no restart)" << std::endl;

  // 2. The writing frikortd goes: kill -9.
  const absl::Time writer_killed = absl::Now();
  daemons[writer]->Signal(SIGKILL);
  ASSERT_EQ(daemons[writer]->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);
  served = reporter.FirstAckAfter(writer_killed, absl::Seconds(60));
  ASSERT_TRUE(served.has_value()) << "the standby never took over\n" << daemons[standby]->Stderr();
  std::cout << "kill -9 of the writing frikortd: the standby acknowledged reports "
            << absl::FormatDuration(*served - writer_killed) << " later" << std::endl;
  EXPECT_EQ(WaitHealth(channels[standby], kServing, absl::Seconds(5)), kServing);
  const absl::Time more = absl::Now() + absl::Seconds(30);
  const int acked_at_writer_kill = reporter.acknowledged();
  while (reporter.acknowledged() < acked_at_writer_kill + 5 && absl::Now() < more) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  reporter.Stop();
  std::cout << "acknowledged batches of " << kBatch << " reports: " << reporter.acknowledged()
            << " (" << acked_at_pg_kill << " before the first kill); failed sends "
            << reporter.failed_sends() << ", duplicates answered to resends "
            << reporter.resent_duplicates() << ", lookups answered " << reporter.lookups_ok()
            << std::endl;

  EXPECT_GT(reporter.lookups_ok(), acked_at_writer_kill) << "lookups answered after both kills";
  ExpectEachAcknowledgedReportOnce(reporter, channels[standby]);

  daemons[standby]->Signal(SIGTERM);
  ASSERT_EQ(daemons[standby]->ExitCode(absl::Seconds(20)), 0) << daemons[standby]->Stderr();
  ExpectVerifyClean();
}

}  // namespace
}  // namespace frikort::testutil
