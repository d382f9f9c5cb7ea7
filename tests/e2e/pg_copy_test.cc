// Moving up, with the real binaries: a register written by frikortd on
// RocksDB is copied by `frikortd --copy_register` into an empty PostgreSQL
// database (a server of the test's own, tests/testing/pg_server.h); frikortd
// on PostgreSQL then answers the same ledgers and lookup log, refuses a
// backup (PostgreSQL's own tools do that), and --verify is clean. A second
// copy into the now full database, a folder without a register and another
// key are one line and exit 1.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/pg_daemon.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;

constexpr int kPersons = 4;

class PgCopyTest : public PgDaemonTest {
 protected:
  std::vector<std::string> RocksArgs() {
    std::vector<std::string> args = Args();
    args.push_back("--pseudonym_key_file=" + key_file_);
    return args;
  }
  std::vector<std::string> CopyArgs(const std::string& key_file = "") {
    std::vector<std::string> args = PgArgs(key_file);
    args.push_back("--copy_register");
    return args;
  }

  // Every person's ledger of 2025 and lookup log, as the server answers them.
  static std::map<std::string, std::string> ReadBack(const std::shared_ptr<grpc::Channel>& ch) {
    std::map<std::string, std::string> out;
    auto registry = v1::Registry::NewStub(ch);
    for (int p = 0; p < kPersons; ++p) {
      v1::GetLedgerRequest request;
      request.set_person_id(PersonId(p));
      request.set_year(2025);
      v1::Ledger ledger;
      grpc::Status s = registry->GetLedger(Ctx().get(), request, &ledger);
      EXPECT_TRUE(s.ok()) << s.error_message();
      out[absl::StrCat("ledger ", p)] = ledger.DebugString();
      v1::ListLookupsRequest lookups;
      lookups.set_person_id(PersonId(p));
      v1::ListLookupsResponse log;
      s = registry->ListLookups(Ctx().get(), lookups, &log);
      EXPECT_TRUE(s.ok()) << s.error_message();
      out[absl::StrCat("lookups ", p)] = log.DebugString();
    }
    return out;
  }
};

TEST_F(PgCopyTest, ARocksDbRegisterMovesIntoPostgres) {
  // Written on RocksDB: reports over the cap, a cancellation, lookups.
  Daemon* rocks = nullptr;
  auto channel = StartServing(&rocks, RocksArgs());
  ASSERT_NE(channel, nullptr);
  v1::SubmitCoPaymentsRequest batch;
  for (int i = 0; i < 20; ++i) {
    CoPaymentSpec s;
    s.report_id = absl::StrCat("move-", i);
    s.person_id = PersonId(i % kPersons);
    s.amount_ore = 90000 + i;
    s.service_time = OsloTime(2025, 2, 1 + i, 9);
    *batch.add_co_payments() = MakeCoPayment(s);
  }
  v1::SubmitCoPaymentsResponse submitted;
  ASSERT_TRUE(
      v1::Reporting::NewStub(channel)->SubmitCoPayments(Ctx().get(), batch, &submitted).ok());
  for (const v1::ReportResult& r : submitted.results()) ASSERT_EQ(r.outcome(), v1::ACCEPTED);
  v1::CancelCoPaymentRequest cancel;
  cancel.set_provider_id(batch.co_payments(3).provider_id());
  cancel.set_report_id("move-3");
  cancel.set_reason("wrong patient");
  v1::ReportResult cancelled;
  ASSERT_TRUE(
      v1::Reporting::NewStub(channel)->CancelCoPayment(Ctx().get(), cancel, &cancelled).ok());
  for (int p = 0; p < kPersons; ++p) {
    v1::CheckExemptionRequest lookup;
    lookup.set_person_id(PersonId(p));
    v1::CheckExemptionResponse answer;
    ASSERT_TRUE(v1::Lookup::NewStub(channel)->CheckExemption(Ctx().get(), lookup, &answer).ok());
  }
  const std::map<std::string, std::string> before = ReadBack(channel);
  ASSERT_THAT(before.at("ledger 0"), HasSubstr("move-4"));
  ASSERT_THAT(before.at("lookups 0"), HasSubstr("caller"));
  rocks->Signal(SIGTERM);
  ASSERT_EQ(rocks->ExitCode(absl::Seconds(15)), 0) << rocks->Stderr();

  // The copy: what it copied on stdout, exit 0.
  const std::string out = dir_ + "/copy-out.txt";
  daemons_.push_back(std::make_unique<Daemon>(CopyArgs(), dir_ + "/copy-err.txt"));
  Daemon* copy = daemons_.back().get();
  ASSERT_TRUE(copy->Start(out));
  ASSERT_EQ(copy->ExitCode(absl::Seconds(120)), 0) << copy->Stderr() << ReadFile(out);
  const std::string report = ReadFile(out);
  std::cout << report;
  EXPECT_THAT(report, HasSubstr("copied the register in " + data_dir_ + " into PostgreSQL"));
  EXPECT_THAT(report, HasSubstr("entries 20"));
  EXPECT_THAT(report, HasSubstr(absl::StrCat("lookup log ", kPersons, " records")));
  EXPECT_THAT(report, HasSubstr("20 entries"));
  EXPECT_THAT(report, HasSubstr(": 0 violations"));

  // Not twice.
  ExpectRefused(CopyArgs(), 1, "not empty");

  // Served from PostgreSQL: the same answers.
  Daemon* pg = nullptr;
  channel = StartServing(&pg, PgArgs());
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(ReadBack(channel), before);
  v1::SubmitCoPaymentsResponse again;
  ASSERT_TRUE(v1::Reporting::NewStub(channel)->SubmitCoPayments(Ctx().get(), batch, &again).ok());
  for (const v1::ReportResult& r : again.results()) EXPECT_EQ(r.outcome(), v1::DUPLICATE);
  // Backups are PostgreSQL's business there.
  v1::BackupRequest backup;
  backup.set_dest(dir_ + "/backup");
  v1::BackupResponse backed_up;
  grpc::Status b = v1::Operations::NewStub(channel)->Backup(Ctx().get(), backup, &backed_up);
  EXPECT_EQ(b.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << b.error_message();
  EXPECT_THAT(b.error_message(), HasSubstr("pg_basebackup"));
  pg->Signal(SIGTERM);
  ASSERT_EQ(pg->ExitCode(absl::Seconds(15)), 0) << pg->Stderr();

  ExpectVerifyClean();
}

TEST_F(PgCopyTest, RefusedFromAFolderWithoutARegisterOrWithAnotherKey) {
  std::filesystem::create_directories(data_dir_);
  ExpectRefused(CopyArgs(), 1, "holds no register");
  EXPECT_FALSE(std::filesystem::exists(data_dir_ + "/CURRENT"));

  Daemon* rocks = nullptr;
  ASSERT_NE(StartServing(&rocks, RocksArgs()), nullptr);
  rocks->Signal(SIGTERM);
  ASSERT_EQ(rocks->ExitCode(absl::Seconds(15)), 0) << rocks->Stderr();
  ExpectRefused(CopyArgs(WriteKey("other.key", 'o')), 1, "pseudonym key does not match");

  std::vector<std::string> into_rocks = RocksArgs();
  into_rocks.push_back("--copy_register");
  ExpectRefused(into_rocks, 2, "give --store=postgres");
}

}  // namespace
}  // namespace frikort::testutil
