// The register's database on a Patroni cluster (tests/testing/
// patroni_cluster.h: etcd and three PostgreSQL nodes on loopback, strict
// synchronous mode): after kill -9 of the primary with its Patroni, every
// commit acknowledged before is on the new primary, and the multi-host
// connection string frikortd is given reaches it. The time from the kill to
// the next commit is printed.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/testing/patroni_cluster.h"

namespace frikort::testutil {
namespace {

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
  }
  void TearDown() override {
    DaemonTest::TearDown();
    cluster_.reset();
  }

  std::unique_ptr<testing::PatroniCluster> cluster_;
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

}  // namespace
}  // namespace frikort::testutil
