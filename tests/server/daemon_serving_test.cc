// frikortd serving, in-process: busy ports refused, the stop and reload
// signals, the register closed on the way out, the register's options taken
// from the daemon's, and the system clock.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

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

using ::testing::HasSubstr;

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

TEST(SystemClockTest, IsOneInstanceReadingTheSystemTime) {
  const SystemClock* clock = SystemClock::Get();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(clock, SystemClock::Get());
  const absl::Time before = absl::Now();
  const absl::Time now = clock->Now();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, absl::Seconds(60));
}

}  // namespace
}  // namespace frikort::server
