// frikortd's startup refusals, in-process: every check of server/daemon.h and
// server/startup_files.h on the files and options it is given, each asserting
// the status code, that the message names the flag, the path and the problem,
// and that it holds no national id (the inputs that could leak one carry one).
// The exit codes and the one stderr line are RunDaemon's; the end-to-end tests
// (tests/e2e) check the same through the real binary.
#include "server/daemon.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/log.h"
#include "server/startup_files.h"
#include "server/system_clock.h"
#include "tests/server/test_util.h"
#include "tests/testing/certs.h"

namespace frikort::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A valid national id, put into inputs a message might echo.
const std::string& NationalId() {
  static const std::string id = testutil::PersonId(7);
  return id;
}

// `status` is a refusal with `code` whose message holds every one of
// `fragments` and no national id (nor any run of 11 digits).
void ExpectRefused(const absl::Status& status, absl::StatusCode code,
                   const std::vector<std::string>& fragments) {
  const std::string message(status.message());
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& f : fragments) EXPECT_THAT(message, HasSubstr(f));
  EXPECT_THAT(message, ::testing::Not(HasSubstr(NationalId())));
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
    fs::remove_all(dir_, ec);
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

// ---- option values (exit code 2) --------------------------------------------

TEST_F(DaemonTest, DefaultsAndTestOptionsPass) {
  EXPECT_TRUE(CheckDaemonOptions(DaemonOptions()).ok());
  EXPECT_TRUE(CheckDaemonOptions(Options()).ok());
}

TEST_F(DaemonTest, SenselessValuesAreRefusedNamingTheFlag) {
  const std::vector<std::pair<std::function<void(DaemonOptions*)>, std::string>> cases = {
      {[](DaemonOptions* o) { o->data_dir = ""; }, "--data_dir must not be empty"},
      {[](DaemonOptions* o) { o->issuance_interval = -absl::Seconds(1); },
       "--issuance_interval must not be negative"},
      {[](DaemonOptions* o) { o->lookup_years_back = -1; }, "--lookup_years_back"},
      {[](DaemonOptions* o) { o->lookup_years_back = 101; }, "--lookup_years_back"},
      {[](DaemonOptions* o) { o->block_cache_mb = 0; }, "--block_cache_mb"},
      {[](DaemonOptions* o) { o->write_buffer_mb = (int64_t{1} << 20) + 1; }, "--write_buffer_mb"},
      {[](DaemonOptions* o) { o->max_calls_per_caller = -1; }, "--max_calls_per_caller"},
      {[](DaemonOptions* o) { o->max_calls_per_caller = 1000001; }, "--max_calls_per_caller"},
      {[](DaemonOptions* o) { o->listen = "127.0.0.1"; }, "listen"},
  };
  for (const auto& [change, fragment] : cases) {
    SCOPED_TRACE(fragment);
    DaemonOptions o = Options();
    change(&o);
    ExpectRefused(CheckDaemonOptions(o), absl::StatusCode::kInvalidArgument, {fragment});
  }
}

TEST_F(DaemonTest, RunDaemonExitsTwoForBadOptionsWithOneLine) {
  DaemonOptions o = Options();
  o.lookup_years_back = -1;
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunDaemon(o), kExitBadFlags);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "frikortd: --lookup_years_back must be between 0 and 100\n");

  o = Options();
  o.log_format = "xml";
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunDaemon(o), kExitBadFlags);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, StartsWith("frikortd: "));
  EXPECT_THAT(err, HasSubstr("log_format"));
  EXPECT_FALSE(fs::exists(o.data_dir)) << "refused, yet it touched the data folder";
}

// ---- TLS, authz and the listen address ---------------------------------------

class DaemonTlsTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    server_ = ca_.Server();
    ca_file_ = Write("ca.pem", ca_.cert_pem(), 0644);
    cert_file_ = Write("server.pem", server_.cert_pem, 0644);
    key_file_ = Write("server.key", server_.key_pem);
    authz_file_ = Write("authz.txt", "ops-1 operator\n", 0644);
  }

  DaemonOptions TlsOptions() const {
    DaemonOptions o = Options();
    o.listen = "0.0.0.0:0";
    o.tls_cert = cert_file_;
    o.tls_key = key_file_;
    o.tls_client_ca = ca_file_;
    o.authz_file = authz_file_;
    return o;
  }

  testing::TestCa ca_{"Frikort daemon test CA"};
  testing::Credential server_;
  std::string ca_file_, cert_file_, key_file_, authz_file_;
};

TEST_F(DaemonTlsTest, CompleteTlsOptionsPass) {
  absl::StatusOr<ServerOptions> s = SecurityOptions(TlsOptions());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tls.key_pem, server_.key_pem);
  EXPECT_EQ(s->authz_file, authz_file_);
}

TEST_F(DaemonTlsTest, MissingTlsFileIsRefused) {
  DaemonOptions o = Options();
  o.tls_cert = dir_ + "/nonexistent/cert.pem";
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"tls_cert " + o.tls_cert + ": "});
}

TEST_F(DaemonTlsTest, PartialTlsFlagsAreRefused) {
  DaemonOptions o = Options();
  o.tls_cert = cert_file_;
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kInvalidArgument,
                {"tls_key", "tls_client_ca", "needs all three"});
}

TEST_F(DaemonTlsTest, TlsKeyReadableByOthersIsRefused) {
  DaemonOptions o = TlsOptions();
  o.tls_key = Write("open.key", server_.key_pem, 0644);
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"tls_key " + o.tls_key, "mode 0644", "chmod 600"});
}

TEST_F(DaemonTlsTest, EmptyOrIrregularTlsFilesAreRefused) {
  DaemonOptions o = TlsOptions();
  o.tls_client_ca = Write("empty.pem", "", 0644);
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"tls_client_ca " + o.tls_client_ca + ": empty file"});
  o = TlsOptions();
  o.tls_cert = dir_;
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"tls_cert " + dir_ + ": not a regular file"});
}

TEST_F(DaemonTlsTest, KeyOfAnotherCertificateIsRefused) {
  DaemonOptions o = TlsOptions();
  o.tls_key = Write("other.key", ca_.Server().key_pem);
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kInvalidArgument,
                {"tls_key", "does not belong"});
}

TEST_F(DaemonTlsTest, AuthzFileMustGoWithTls) {
  DaemonOptions o = TlsOptions();
  o.authz_file = "";
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"authz_file: required with TLS"});
  o = Options();
  o.authz_file = authz_file_;
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kInvalidArgument,
                {"authz_file: given without TLS"});
}

TEST_F(DaemonTlsTest, MalformedAuthzFileIsRefusedNamingTheLine) {
  DaemonOptions o = TlsOptions();
  o.authz_file = Write("bad-authz.txt", "ops-1 operator\nops-2 root\n", 0644);
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kInvalidArgument,
                {"line 2: unknown role 'root'"});
}

TEST_F(DaemonTlsTest, EmptyAuthzFileIsRefusedNamingTheFlagAndPath) {
  DaemonOptions o = TlsOptions();
  o.authz_file = Write("empty-authz.txt", "# nobody yet\n", 0644);
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kInvalidArgument,
                {"authz_file " + o.authz_file + ": no client certificate line"});
}

TEST_F(DaemonTest, NonLoopbackWithoutTlsIsRefused) {
  DaemonOptions o = Options();
  o.listen = "0.0.0.0:0";
  ExpectRefused(SecurityOptions(o).status(), absl::StatusCode::kFailedPrecondition,
                {"0.0.0.0", "loopback"});
  // Serve refuses it before it touches the data folder.
  ExpectRefused(Serve(o), absl::StatusCode::kFailedPrecondition, {"loopback"});
  EXPECT_FALSE(fs::exists(o.data_dir)) << "refused, yet it touched the data folder";
}

// ---- rules, data folder and pseudonym key --------------------------------------

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

// ---- --verify -------------------------------------------------------------------

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

// ---- --restore_from ------------------------------------------------------------

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

// ---- serving ----------------------------------------------------------------------

// A listening TCP socket on 127.0.0.1; -1 when none could be made.
int ListenOnLoopback(int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

TEST_F(DaemonTest, BusyMetricsPortIsRefused) {
  int port = 0;
  const int fd = ListenOnLoopback(&port);
  ASSERT_GE(fd, 0);
  DaemonOptions o = Options();
  o.metrics_listen = absl::StrCat("127.0.0.1:", port);
  ExpectRefused(Serve(o), absl::StatusCode::kUnavailable,
                {"metrics_listen: cannot serve on " + o.metrics_listen});
  close(fd);
}

// Runs `fn` on a thread of its own that blocks SIGTERM, SIGINT and SIGHUP
// first (as frikortd's main thread does), so signals sent to it wait for its
// sigwait and never reach the test's thread.
class SignalThread {
 public:
  explicit SignalThread(std::function<void()> fn)
      : thread_([this, fn = std::move(fn)] {
          sigset_t signals;
          sigemptyset(&signals);
          for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
          pthread_sigmask(SIG_BLOCK, &signals, nullptr);
          blocked_.Notify();
          fn();
        }) {
    blocked_.WaitForNotification();
  }
  ~SignalThread() { thread_.join(); }
  void Send(int signo) { pthread_kill(thread_.native_handle(), signo); }

 private:
  absl::Notification blocked_;
  std::thread thread_;
};

TEST_F(DaemonTest, WaitForStopSignalReloadsOnSighupAndStopsOnTheOthers) {
  for (int stop : {SIGTERM, SIGINT}) {
    int hups = 0;
    int returned = 0;
    absl::Notification hup;
    {
      SignalThread t([&] {
        sigset_t signals;
        sigemptyset(&signals);
        for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
        returned = WaitForStopSignal(signals, [&] {
          ++hups;
          hup.Notify();
        });
      });
      t.Send(SIGHUP);
      ASSERT_TRUE(hup.WaitForNotificationWithTimeout(absl::Seconds(10)));
      t.Send(stop);
    }
    EXPECT_EQ(hups, 1);
    EXPECT_EQ(returned, stop);
  }
}

TEST_F(DaemonTest, ServeStopsOnSigtermAndClosesTheRegister) {
  DaemonOptions o = Options();
  absl::Status served = absl::UnknownError("Serve did not return");
  ::testing::internal::CaptureStderr();
  {
    SignalThread t([&] { served = Serve(o); });
    // Pending until Serve's sigwait: SIGHUP (the lower number) comes first.
    t.Send(SIGHUP);
    t.Send(SIGTERM);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(served.ok()) << served;
  EXPECT_THAT(err, HasSubstr("frikortd listening on 127.0.0.1:"));
  EXPECT_THAT(err, HasSubstr("frikortd: SIGHUP: no --authz_file (development mode)"));
  EXPECT_THAT(err, HasSubstr("frikortd: SIGTERM received, shutting down\n"));
  EXPECT_THAT(err, HasSubstr("frikortd: register closed, exiting\n"));
  // Closed: the folder opens again (a register still open would hold its lock).
  EXPECT_TRUE(OpenRegister(o, OpenMode::kExistingOnly).ok());
}

TEST_F(DaemonTest, BusyPortIsRefusedEvenAfterAnEarlierServe) {
  // A Serve that started and stopped in this process first: gRPC's log lines,
  // released while it served, are held again for the next one's refusal.
  {
    SignalThread t([&] { EXPECT_TRUE(Serve(Options()).ok()); });
    t.Send(SIGTERM);
  }
  int port = 0;
  const int fd = ListenOnLoopback(&port);
  ASSERT_GE(fd, 0);
  DaemonOptions o = Options();
  o.data_dir = dir_ + "/other-data";
  o.listen = absl::StrCat("127.0.0.1:", port);
  ExpectRefused(Serve(o), absl::StatusCode::kUnavailable,
                {"listen: " + o.listen + ": address already in use"});
  close(fd);
}

// ---- the register's options -------------------------------------------------------

TEST_F(DaemonTest, RegisterOptionsComeFromTheDaemonOptions) {
  DaemonOptions o = Options();
  o.allow_synthetic_ids = true;
  o.block_cache_mb = 3;
  o.write_buffer_mb = 5;
  absl::StatusOr<std::unique_ptr<core::RulesTable>> loaded = LoadRules(o.rules_file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const core::RulesTable* rules = loaded->get();
  const core::Clock* clock = SystemClock::Get();
  const storage::RegisterOptions r = RegisterOptionsFor(o, "secret", rules, clock);
  EXPECT_EQ(r.data_dir, o.data_dir);
  EXPECT_EQ(r.secret, "secret");
  EXPECT_EQ(r.rules, rules);
  EXPECT_EQ(r.clock, clock);
  EXPECT_TRUE(r.id_options.allow_synthetic);
  EXPECT_EQ(r.block_cache_bytes, uint64_t{3} << 20);
  EXPECT_EQ(r.write_buffer_bytes, uint64_t{5} << 20);
  EXPECT_TRUE(r.sync_writes);
}

}  // namespace
TEST(SystemClockTest, IsOneInstanceReadingTheSystemTime) {
  const SystemClock* clock = SystemClock::Get();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(clock, SystemClock::Get());
  const absl::Time before = absl::Now();
  const absl::Time now = clock->Now();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, absl::Seconds(60));
}

}  // namespace frikort::server
