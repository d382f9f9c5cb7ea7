// frikortd's startup refusals, in-process: the rules file, the data folder
// and the pseudonym key, --verify and --restore_from.
// Each asserts the status code, that the message names the flag, the path
// and the problem, and that it holds no national id. The exit codes and the
// one stderr line are RunDaemon's; the end-to-end tests (tests/e2e) check the
// same through the real binary.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/daemon.h"
#include "server/log.h"
#include "server/startup_files.h"
#include "server/system_clock.h"
#include "tests/server/daemon_fixture.h"
#include "tests/server/test_util.h"
#include "tests/testing/certs.h"

namespace frikort::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST_F(DaemonTest, MissingRulesOrKeyFileIsRefused) {
  DaemonOptions o = Options();
  o.rules_file = dir_ + "/no-such-rules.txt";
  ExpectRefused(Opening(o), absl::StatusCode::kNotFound,
                {"rules_file", o.rules_file, "cannot open"});
  o = Options();
  o.pseudonym_key_file = dir_ + "/pseudonym.key";
  ExpectRefused(Opening(o), absl::StatusCode::kNotFound,
                {"pseudonym_key_file", o.pseudonym_key_file, "does not exist"});
}

TEST_F(DaemonTest, CorruptRulesFileIsRefusedNamingTheLine) {
  DaemonOptions o = Options();
  o.rules_file =
      Write("rules.txt", "year 2025 tak1=3278 tak2=2165 minimum=0\nyear 2026 tak1=lots\n");
  ExpectRefused(Opening(o), absl::StatusCode::kInvalidArgument,
                {"rules_file", o.rules_file, "line 2"});
  EXPECT_FALSE(fs::exists(o.data_dir)) << "refused, yet it touched the data folder";
}

TEST_F(DaemonTest, UnusableDataDirIsRefused) {
  DaemonOptions o = Options();
  o.data_dir = Write("plain-file", "") + "/data";  // its parent is a file: root or not
  ExpectRefused(Opening(o), absl::StatusCode::kFailedPrecondition,
                {"data_dir " + o.data_dir, "cannot create"});
}

TEST_F(DaemonTest, PseudonymKeyReadableByOthersIsRefused) {
  DaemonOptions o = Options();
  o.pseudonym_key_file = Write("pseudonym.key", NationalId() + std::string(40, 'a'), 0644);
  ExpectRefused(Opening(o), absl::StatusCode::kFailedPrecondition,
                {"pseudonym_key_file", o.pseudonym_key_file, "mode 0644", "chmod 600"});
  chmod(o.pseudonym_key_file.c_str(), 0600);
  EXPECT_TRUE(OpenRegister(o, OpenMode::kCreate).ok()) << "only the mode was wrong";
}

TEST_F(DaemonTest, TooShortPseudonymKeyIsRefused) {
  DaemonOptions o = Options();
  o.pseudonym_key_file = Write("pseudonym.key", NationalId() + "\n");
  ExpectRefused(Opening(o), absl::StatusCode::kFailedPrecondition,
                {"pseudonym_key_file", o.pseudonym_key_file, "holds 11 bytes", "at least 32"});
}

TEST_F(DaemonTest, PseudonymKeyThatIsNoFileIsRefused) {
  DaemonOptions o = Options();
  o.pseudonym_key_file = dir_;
  ExpectRefused(Opening(o), absl::StatusCode::kFailedPrecondition,
                {"pseudonym_key_file", dir_, "not a regular file"});
}

TEST_F(DaemonTest, AnotherPseudonymKeyThanTheRegistersIsRefused) {
  DaemonOptions o = Options();
  o.pseudonym_key_file = KeyFile("a.key", 'a');
  CreateRegister(o);
  o.pseudonym_key_file = Write("b.key", NationalId() + NationalId() + NationalId() + "\n");
  ExpectRefused(Opening(o), absl::StatusCode::kFailedPrecondition,
                {"pseudonym key does not match", o.data_dir, "another key"});
}

TEST_F(DaemonTest, DevelopmentModeCreatesItsKeyOnce) {
  DaemonOptions o = Options();
  CreateRegister(o);
  const std::string key = o.data_dir + "/pseudonym.key";
  ASSERT_TRUE(fs::exists(key));
  EXPECT_EQ(fs::status(key).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  CreateRegister(o);  // the same key again, or the register would refuse it
}

TEST_F(DaemonTest, VerifyOfAMissingRegisterIsRefusedAndCreatesNothing) {
  DaemonOptions o = Options();
  ExpectRefused(Verify(o, stdout).status(), absl::StatusCode::kNotFound,
                {"data_dir " + o.data_dir, "holds no register"});
  EXPECT_FALSE(fs::exists(o.data_dir)) << "verify must not create a register";

  o.verify = true;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunDaemon(o), kExitStartupFailed);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            absl::StrCat("frikortd: verify: data_dir ", o.data_dir, ": holds no register\n"));
}

TEST_F(DaemonTest, VerifyWithoutTheDevelopmentKeyIsRefused) {
  DaemonOptions o = Options();
  CreateRegister(o);
  fs::remove(o.data_dir + "/pseudonym.key");
  ExpectRefused(Verify(o, stdout).status(), absl::StatusCode::kNotFound,
                {"data_dir", o.data_dir + "/pseudonym.key", "does not exist"});
  EXPECT_FALSE(fs::exists(o.data_dir + "/pseudonym.key")) << "verify must not create a key";
}

TEST_F(DaemonTest, VerifyOfARegisterInUseIsRefused) {
  DaemonOptions o = Options();
  absl::StatusOr<OpenedRegister> serving = OpenRegister(o, OpenMode::kCreate);
  ASSERT_TRUE(serving.ok()) << serving.status();
  ExpectRefused(Verify(o, stdout).status(), absl::StatusCode::kFailedPrecondition,
                {"data_dir " + o.data_dir + " is locked"});
}

TEST_F(DaemonTest, VerifyOfACleanRegisterPrintsTheSummary) {
  DaemonOptions o = Options();
  CreateRegister(o);
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  absl::StatusOr<int> code = Verify(o, out);
  std::rewind(out);
  char line[1024] = {};
  const bool read = std::fgets(line, sizeof line, out) != nullptr;
  std::fclose(out);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, kExitOk);
  ASSERT_TRUE(read);
  EXPECT_THAT(line, StartsWith("verified " + o.data_dir + " in "));
  EXPECT_THAT(line, HasSubstr(": 0 persons, 0 entries"));
  EXPECT_THAT(line, HasSubstr(": 0 violations\n"));
}

TEST_F(DaemonTest, RestoreFromNoBackupIsRefused) {
  DaemonOptions o = Options();
  o.pseudonym_key_file = KeyFile("a.key", 'a');
  o.restore_from = dir_ + "/no-backups";
  ExpectRefused(Restore(o), absl::StatusCode::kNotFound, {"restore_from " + o.restore_from});
  EXPECT_FALSE(fs::exists(o.data_dir));
}

TEST_F(DaemonTest, RestoreWithoutAKeyIsRefused) {
  ASSERT_FALSE(BackedUpRegister("original").empty());
  DaemonOptions o = Options();
  o.restore_from = dir_ + "/backups";
  ExpectRefused(
      Restore(o), absl::StatusCode::kFailedPrecondition,
      {"restore needs the pseudonym key", "--pseudonym_key_file", o.data_dir + "/pseudonym.key"});
  EXPECT_FALSE(fs::exists(o.data_dir));
}

TEST_F(DaemonTest, RestoreWithAnotherKeyIsRefused) {
  ASSERT_FALSE(BackedUpRegister("original").empty());
  DaemonOptions o = Options();
  o.restore_from = dir_ + "/backups";
  o.pseudonym_key_file = Write("other.key", NationalId() + NationalId() + NationalId() + "\n");
  ExpectRefused(Restore(o), absl::StatusCode::kFailedPrecondition,
                {"pseudonym key does not match", o.restore_from, "Nothing was written"});
  EXPECT_FALSE(fs::exists(o.data_dir));
}

TEST_F(DaemonTest, RestoreIntoANonEmptyFolderIsRefused) {
  const std::string original = BackedUpRegister("original");
  ASSERT_FALSE(original.empty());
  DaemonOptions o = Options();
  o.restore_from = dir_ + "/backups";
  o.data_dir = original;  // a register, with its own key
  ExpectRefused(Restore(o), absl::StatusCode::kFailedPrecondition,
                {"data_dir " + original, "is not empty"});
}

TEST_F(DaemonTest, RestoreWithTheKeyCopiedInRestoresAndVerifies) {
  const std::string original = BackedUpRegister("original");
  ASSERT_FALSE(original.empty());
  DaemonOptions o = Options();
  o.restore_from = dir_ + "/backups";
  fs::create_directories(o.data_dir);
  fs::copy_file(original + "/pseudonym.key", o.data_dir + "/pseudonym.key");
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunDaemon(o), kExitOk);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              StartsWith("frikortd: restored backup 1 (made "));
  std::FILE* null = std::fopen("/dev/null", "w");
  ASSERT_NE(null, nullptr);
  absl::StatusOr<int> verified = Verify(o, null);
  std::fclose(null);
  EXPECT_EQ(verified.value_or(-1), kExitOk) << verified.status();
}

}  // namespace
}  // namespace frikort::server
