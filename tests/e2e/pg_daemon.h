// The end-to-end tests of frikortd on PostgreSQL: a DaemonTest (daemon.h)
// with an empty database of its own on the test binary's PostgreSQL
// (tests/testing/pg_server.h), a pseudonym key file, and the flags that
// point frikortd at that database.
#ifndef FRIKORT_TESTS_E2E_PG_DAEMON_H_
#define FRIKORT_TESTS_E2E_PG_DAEMON_H_

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/testing/pg_server.h"

namespace frikort::testutil {

class PgDaemonFixture : public DaemonTest {
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

  testing::PgServer* server_ = nullptr;
  std::string dsn_, key_file_;
};

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_E2E_PG_DAEMON_H_
