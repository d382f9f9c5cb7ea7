// The end-to-end tests' process helpers: Daemon runs frikortd (or any of the
// project's binaries) as a child process with its output in files.
#ifndef FRIKORT_TESTS_E2E_DAEMON_H_
#define FRIKORT_TESTS_E2E_DAEMON_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/binaries.h"
#include "tests/testing/oslo.h"

namespace frikort::testutil {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to dir/name with `mode`; returns the path.
inline std::string WriteFile(const std::string& dir, const std::string& name,
                             const std::string& text, mode_t mode = 0600) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::trunc) << text;
  chmod(path.c_str(), mode);
  return path;
}

inline std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StripAsciiWhitespace(line).empty()) lines.emplace_back(line);
  }
  return lines;
}

inline std::string FrikortdPath() { return BinaryPath("FRIKORTD", "frikortd"); }

// One frikortd process: stdout to /dev/null, stderr to a file.
class Daemon {
 public:
  Daemon(std::vector<std::string> args, std::string stderr_path, std::string binary = "")
      : args_(std::move(args)),
        stderr_path_(std::move(stderr_path)),
        binary_(binary.empty() ? FrikortdPath() : std::move(binary)) {}
  ~Daemon() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
    }
  }

  // `stdout_path` empty: standard output goes to /dev/null.
  bool Start(const std::string& stdout_path = "") {
    if (binary_.empty()) return false;
    std::vector<std::string> argv_strings = {binary_};
    argv_strings.insert(argv_strings.end(), args_.begin(), args_.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const std::string err_path = stderr_path_;
    const std::string out_path = stdout_path;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {  // child: only async-signal-safe calls until exec
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int null = open("/dev/null", O_RDWR);
      int out =
          out_path.empty() ? null : open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err < 0 || null < 0 || out < 0) _exit(126);
      dup2(null, 0);
      dup2(out, 1);
      dup2(err, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return true;
  }

  // The port from "frikortd listening on HOST:PORT", or -1 if the daemon exited
  // or did not get there in time.
  int WaitListening(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      for (const std::string& line : NonEmptyLines(Stderr())) {
        if (absl::StartsWith(line, "frikortd listening on ")) {
          const size_t colon = line.rfind(':');
          int port = 0;
          if (colon != std::string::npos && absl::SimpleAtoi(line.substr(colon + 1), &port)) {
            return port;
          }
        }
      }
      if (WaitExit(absl::ZeroDuration()).has_value()) return -1;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }

  // The raw wait status once the process has exited, nullopt on timeout.
  std::optional<int> WaitExit(absl::Duration timeout) {
    if (exited_) return status_;
    const absl::Time deadline = absl::Now() + timeout;
    do {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        status_ = status;
        return status_;
      }
      if (r < 0) return std::nullopt;
      if (timeout > absl::ZeroDuration()) absl::SleepFor(absl::Milliseconds(10));
    } while (absl::Now() < deadline);
    return std::nullopt;
  }

  // Exit code, or -1000 - signal when killed, or nullopt on timeout.
  std::optional<int> ExitCode(absl::Duration timeout) {
    std::optional<int> status = WaitExit(timeout);
    if (!status.has_value()) return std::nullopt;
    if (WIFEXITED(*status)) return WEXITSTATUS(*status);
    if (WIFSIGNALED(*status)) return -1000 - WTERMSIG(*status);
    return -1;
  }

  void Signal(int sig) {
    if (pid_ > 0 && !exited_) kill(pid_, sig);
  }
  std::string Stderr() const { return ReadFile(stderr_path_); }
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> args_;
  std::string stderr_path_;
  std::string binary_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// A test with its own temporary folder and frikortd processes on it.
class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    ASSERT_FALSE(FrikortdPath().empty())
        << "no frikortd: set FRIKORTD or build it next to this test";
    ASSERT_FALSE(SourceDir().empty()) << "FRIKORT_SOURCE_DIR is not set";
    dir_ = MakeTempDir("frikort-e2e-");
    ASSERT_FALSE(dir_.empty());
    data_dir_ = dir_ + "/data";
    auto rules = frikort::testing::WriteRulesFileWithoutAgreementRequirement(
        SourceDir() + "/deploy/rules.txt", dir_ + "/rules.txt");
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_file_ = *rules;
  }
  void TearDown() override {
    daemons_.clear();  // kills what still runs
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> Args(const std::string& listen = "127.0.0.1:0",
                                const std::string& data_dir = "") {
    return {absl::StrCat("--listen=", listen),
            absl::StrCat("--data_dir=", data_dir.empty() ? data_dir_ : data_dir),
            absl::StrCat("--rules_file=", rules_file_), "--issuance_interval=0"};
  }

  Daemon* Launch(std::vector<std::string> args) {
    daemons_.push_back(std::make_unique<Daemon>(
        std::move(args), absl::StrCat(dir_, "/stderr-", daemons_.size(), ".txt")));
    Daemon* d = daemons_.back().get();
    EXPECT_TRUE(d->Start());
    return d;
  }

  // Starts a daemon on the data folder and waits until health says SERVING.
  std::shared_ptr<grpc::Channel> StartServing(Daemon** out, std::vector<std::string> args = {}) {
    Daemon* d = Launch(args.empty() ? Args() : std::move(args));
    *out = d;
    const int port = d->WaitListening(absl::Seconds(15));
    EXPECT_GT(port, 0) << d->Stderr();
    if (port <= 0) return nullptr;
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      HealthAnswer h = HealthCheck(channel, "", absl::Seconds(1));
      if (h.status.ok() && h.serving_status == 1) return channel;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "frikortd never became SERVING: " << d->Stderr();
    return nullptr;
  }

  // `frikortd --verify` on the data folder (the daemon must not be running):
  // its exit code, and what it printed in `*report`.
  int RunVerify(std::string* report) {
    std::vector<std::string> args = Args();
    args.push_back("--verify");
    const std::string n = absl::StrCat(daemons_.size());
    const std::string out = absl::StrCat(dir_, "/verify-out-", n, ".txt");
    daemons_.push_back(
        std::make_unique<Daemon>(std::move(args), absl::StrCat(dir_, "/verify-err-", n, ".txt")));
    Daemon* d = daemons_.back().get();
    if (!d->Start(out)) return -1;
    std::optional<int> code = d->ExitCode(absl::Seconds(120));
    *report = ReadFile(out) + d->Stderr();
    return code.value_or(-1);
  }

  // Submits `batch`; the call itself must succeed.
  static v1::SubmitCoPaymentsResponse Submit(const std::shared_ptr<grpc::Channel>& channel,
                                             const v1::SubmitCoPaymentsRequest& batch) {
    v1::SubmitCoPaymentsResponse response;
    grpc::Status s =
        v1::Reporting::NewStub(channel)->SubmitCoPayments(Ctx().get(), batch, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  // A refused startup: the exit code and the single stderr line.
  void ExpectRefused(std::vector<std::string> args, int code, const std::string& fragment) {
    Daemon* d = Launch(std::move(args));
    std::optional<int> exit_code = d->ExitCode(absl::Seconds(15));
    ASSERT_TRUE(exit_code.has_value()) << "still running";
    EXPECT_EQ(*exit_code, code) << d->Stderr();
    std::vector<std::string> lines = NonEmptyLines(d->Stderr());
    ASSERT_EQ(lines.size(), 1u) << d->Stderr();
    EXPECT_THAT(lines[0], ::testing::StartsWith("frikortd: "));
    EXPECT_THAT(lines[0], ::testing::HasSubstr(fragment));
  }

  std::string dir_;
  std::string data_dir_;
  // deploy/rules.txt without the direct-settlement requirement: these tests'
  // providers hold no agreements (rules_file.h).
  std::string rules_file_;
  std::vector<std::unique_ptr<Daemon>> daemons_;
};

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_E2E_DAEMON_H_
