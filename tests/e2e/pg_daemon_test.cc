// The real frikortd with its register in PostgreSQL (a server of the test's
// own, tests/testing/pg_server.h): reports submitted before a kill -9 are
// there after the restart (once the dead one's writer lease ran out), exactly
// once; --verify walks the database; each bad
// combination of the store flags is one line and a non-zero exit.
#include "tests/e2e/pg_daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/pg_store.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(PgDaemonTest, ReportsSurviveAKillAndRestartOnPostgres) {
  Daemon* first = nullptr;
  auto channel = StartServing(&first, PgArgs());
  ASSERT_NE(channel, nullptr);
  const v1::SubmitCoPaymentsRequest batch = Batch(12);
  v1::SubmitCoPaymentsResponse response = Submit(channel, batch);
  ASSERT_EQ(response.results_size(), 12);
  for (const v1::ReportResult& r : response.results()) ASSERT_EQ(r.outcome(), v1::ACCEPTED);
  v1::CheckExemptionRequest lookup;
  lookup.set_person_id(PersonId(1));
  v1::CheckExemptionResponse answer;
  ASSERT_TRUE(v1::Lookup::NewStub(channel)->CheckExemption(Ctx().get(), lookup, &answer).ok());
  first->Signal(SIGKILL);
  ASSERT_EQ(first->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);

  // The dead one's writer lease runs out (6 s) before the next may write.
  const absl::Time killed = absl::Now();
  Daemon* second = nullptr;
  channel = StartServing(&second, PgArgs());
  ASSERT_NE(channel, nullptr);
  std::cout << "serving again " << absl::FormatDuration(absl::Now() - killed)
            << " after kill -9 (writer lease taken over)" << std::endl;
  // Resent, every report is known; each is in its ledger once.
  response = Submit(channel, batch);
  ASSERT_EQ(response.results_size(), 12);
  for (const v1::ReportResult& r : response.results()) EXPECT_EQ(r.outcome(), v1::DUPLICATE);
  const std::map<std::string, int> stored = StoredReports(channel, 3);
  ASSERT_EQ(stored.size(), 12u);
  for (const auto& [id, n] : stored) EXPECT_EQ(n, 1) << id;
  second->Signal(SIGTERM);
  ASSERT_EQ(second->ExitCode(absl::Seconds(15)), 0) << second->Stderr();
  EXPECT_FALSE(std::filesystem::exists(data_dir_)) << "the data folder is not used with postgres";

  // The offline verifier walks the database.
  ExpectVerifyClean();
}

TEST_F(PgDaemonTest, BadStoreFlagsAreOneLineEach) {
  std::vector<std::string> args = Args();
  args.push_back("--store=mysql");
  ExpectRefused(args, 2, "--store must be rocksdb or postgres");

  args = Args();
  args.push_back("--store=postgres");
  args.push_back("--pseudonym_key_file=" + key_file_);
  ExpectRefused(args, 2, "--store=postgres needs --postgres_dsn");

  args = Args();
  args.push_back("--store=postgres");
  args.push_back("--postgres_dsn=" + dsn_);
  ExpectRefused(args, 2, "--store=postgres needs --pseudonym_key_file");

  args = Args();
  args.push_back("--postgres_dsn=" + dsn_);
  ExpectRefused(args, 2, "--postgres_dsn needs --store=postgres");

  // Nothing listens on port 1; the password stays out of the message.
  args = Args();
  args.push_back("--store=postgres");
  args.push_back("--postgres_dsn=host=127.0.0.1 port=1 user=x password=pw-s3cret");
  args.push_back("--pseudonym_key_file=" + key_file_);
  ExpectRefused(args, 1, "cannot connect to PostgreSQL");
  EXPECT_THAT(daemons_.back()->Stderr(), Not(HasSubstr("pw-s3cret")));
}

TEST_F(PgDaemonTest, AnotherKeyOrANewerSchemaIsRefusedAtStart) {
  Daemon* d = nullptr;
  ASSERT_NE(StartServing(&d, PgArgs()), nullptr);
  d->Signal(SIGTERM);
  ASSERT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();

  ExpectRefused(PgArgs(WriteKey("other.key", 'b')), 1, "pseudonym key does not match");

  ASSERT_TRUE(server_
                  ->Execute(testing::PgServer::DatabaseOf(dsn_),
                            absl::StrCat("UPDATE frikort_schema SET version = ",
                                         storage::kPgSchemaVersion + 1))
                  .ok());
  ExpectRefused(PgArgs(), 1, "newer than this frikortd's");
}

}  // namespace
}  // namespace frikort::testutil
