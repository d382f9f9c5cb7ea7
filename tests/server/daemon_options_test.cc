// frikortd's startup refusals, in-process: option values (exit code 2),
// TLS, the authz file and the listen address.
// Each asserts the status code, that the message names the flag, the path
// and the problem, and that it holds no national id. The exit codes and the
// one stderr line are RunDaemon's; the end-to-end tests (tests/e2e) check the
// same through the real binary.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace frikort::server
