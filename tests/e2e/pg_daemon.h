// The end-to-end tests of frikortd on PostgreSQL: a DaemonTest (daemon.h)
// with an empty database of its own on the test binary's PostgreSQL
// (tests/testing/pg_server.h), a pseudonym key file, and the flags that
// point frikortd at that database.
#ifndef FRIKORT_TESTS_E2E_PG_DAEMON_H_
#define FRIKORT_TESTS_E2E_PG_DAEMON_H_

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"
#include "tests/testing/pg_server.h"

namespace frikort::testutil {

class PgDaemonTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    absl::StatusOr<testing::PgServer*> server = testing::PgServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> dsn = server_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    key_file_ = WriteKey("pseudonym.key", 'a');
  }

  // A key file of 64 `fill` characters, mode 0600, in the test's folder.
  std::string WriteKey(const std::string& name, char fill) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc) << std::string(64, fill) << "\n";
    chmod(path.c_str(), 0600);
    return path;
  }

  // Args() on the database, with `key_file` (empty: the test's key).
  std::vector<std::string> PgArgs(const std::string& key_file = "") {
    std::vector<std::string> args = Args();
    args.push_back("--store=postgres");
    args.push_back("--postgres_dsn=" + dsn_);
    args.push_back("--pseudonym_key_file=" + (key_file.empty() ? key_file_ : key_file));
    return args;
  }

  // Runs `frikortd --verify` on the database (no frikortd may serve it):
  // it must find nothing wrong.
  void ExpectVerifyClean() {
    std::vector<std::string> verify = PgArgs();
    verify.push_back("--verify");
    Daemon* v = Launch(verify);
    EXPECT_EQ(v->ExitCode(absl::Seconds(60)), 0) << v->Stderr();
  }

  testing::PgServer* server_ = nullptr;
  std::string dsn_, key_file_;
};

// `size` reports "<prefix><i>" of `persons` persons (PersonId(0..)).
inline v1::SubmitCoPaymentsRequest Batch(int size, const std::string& prefix = "pg-",
                                         int persons = 3) {
  v1::SubmitCoPaymentsRequest request;
  for (int i = 0; i < size; ++i) {
    CoPaymentSpec s;
    s.report_id = absl::StrCat(prefix, i);
    s.person_id = PersonId(i % persons);
    s.amount_ore = 1000 + i;
    s.service_time = OsloTime(2025, 3, 1, 8) + absl::Minutes(i);
    *request.add_co_payments() = MakeCoPayment(s);
  }
  return request;
}

// How often each report id is in the 2025 ledgers of persons 0..persons-1
// (empty with a failure when a ledger cannot be read).
inline std::map<std::string, int> StoredReports(const std::shared_ptr<grpc::Channel>& channel,
                                                int persons) {
  std::map<std::string, int> stored;
  auto stub = v1::Registry::NewStub(channel);
  for (int p = 0; p < persons; ++p) {
    v1::GetLedgerRequest request;
    request.set_person_id(PersonId(p));
    request.set_year(2025);
    v1::Ledger ledger;
    grpc::Status s = WholeLedger(stub.get(), request, &ledger);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) continue;
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return {};
    for (const v1::LedgerEntry& e : ledger.entries()) ++stored[e.report_id()];
  }
  return stored;
}

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_E2E_PG_DAEMON_H_
