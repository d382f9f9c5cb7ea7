// Shared by frikortd's startup tests (tests/server/daemon_*_test.cc): a folder
// per test with the deployed rules in development mode, helpers to write files
// with a mode, open and back up a register, and the check of a refusal (code,
// fragments named, no national id).
#ifndef FRIKORT_TESTS_SERVER_DAEMON_FIXTURE_H_
#define FRIKORT_TESTS_SERVER_DAEMON_FIXTURE_H_

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/daemon.h"
#include "server/log.h"
#include "tests/server/test_util.h"
#include "tests/testing/rules_file.h"

namespace frikort::server {

// A valid national id, put into inputs a message might echo.
const std::string& NationalId() {
  static const std::string id = testutil::PersonId(7);
  return id;
}

// `status` is a refusal with `code` whose message holds every one of
// `fragments` and no national id (nor any run of 11 digits).
inline void ExpectRefused(const absl::Status& status, absl::StatusCode code,
                          const std::vector<std::string>& fragments) {
  const std::string message(status.message());
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& f : fragments) EXPECT_THAT(message, ::testing::HasSubstr(f));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr(NationalId())));
  EXPECT_EQ(log::RedactIds(message), message) << "an id-like number";
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testutil::SourceDir().empty()) << "FRIKORT_SOURCE_DIR is not set";
    dir_ = testutil::MakeTempDir("frikort-daemon-test-");
    ASSERT_FALSE(dir_.empty());
    // Serve blocks signals in the calling thread; the next test gets them back.
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &saved_mask_), 0);
  }
  void TearDown() override {
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Development mode on loopback, in this test's folder.
  DaemonOptions Options() const {
    DaemonOptions o;
    o.listen = "127.0.0.1:0";
    o.data_dir = dir_ + "/data";
    // Without the direct-settlement requirement (rules_file.h).
    o.rules_file = *frikort::testing::WriteRulesFileWithoutAgreementRequirement(
        testutil::SourceDir() + "/deploy/rules.txt", dir_ + "/rules.txt");
    o.issuance_interval = absl::ZeroDuration();
    o.block_cache_mb = 8;
    o.write_buffer_mb = 8;
    return o;
  }

  // Writes `text` to <dir>/`name` with `mode`; returns the path.
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc | std::ios::binary) << text;
    chmod(path.c_str(), mode);
    return path;
  }

  // A pseudonym key file of 64 bytes made of `fill`, mode 0600.
  std::string KeyFile(const std::string& name, char fill) const {
    return Write(name, std::string(64, fill) + "\n");
  }

  // Why the register of `options` could not be opened (Ok when it could; it is
  // closed again).
  static absl::Status Opening(const DaemonOptions& options) {
    return OpenRegister(options, OpenMode::kCreate).status();
  }

  // Opens (creating) the register of `options` and closes it again.
  void CreateRegister(const DaemonOptions& options) {
    absl::StatusOr<OpenedRegister> opened = OpenRegister(options, OpenMode::kCreate);
    ASSERT_TRUE(opened.ok()) << opened.status();
  }

  // A register in <dir>/`name` (development key) backed up into <dir>/backups.
  std::string BackedUpRegister(const std::string& name) {
    DaemonOptions o = Options();
    o.data_dir = dir_ + "/" + name;
    absl::StatusOr<OpenedRegister> opened = OpenRegister(o, OpenMode::kCreate);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return "";
    absl::StatusOr<storage::BackupInfo> backup = opened->reg->Backup(dir_ + "/backups");
    EXPECT_TRUE(backup.ok()) << backup.status();
    return o.data_dir;
  }

  std::string dir_;
  sigset_t saved_mask_;
};

}  // namespace frikort::server

#endif  // FRIKORT_TESTS_SERVER_DAEMON_FIXTURE_H_
