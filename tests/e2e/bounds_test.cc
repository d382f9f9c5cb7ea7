// What one hostile client can make frikortd hold: the real daemon over mutual
// TLS, a raw HTTP/2 client that opens streams with large messages it never
// finishes, or many connections it leaves idle, and frikortd's resident memory
// (VmRSS) measured meanwhile against the bound README "Bounds" states.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/e2e/raw_h2.h"
#include "tests/server/test_util.h"
#include "tests/testing/certs.h"

namespace frikort::testutil {
namespace {

constexpr int64_t kMiB = 1 << 20;
// The bounds are the release build's. Under AddressSanitizer (the test
// command's second pass) frikortd's allocator adds shadow memory, redzones and
// a quarantine of freed blocks, so resident memory for the same attack is a
// few times larger; that pass checks the attack is survived and still bounded,
// with this factor (measured there: 1.4x for large messages, 3.3x for idle
// connections).
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kAllocatorSlack = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int64_t kAllocatorSlack = 4;
#else
constexpr int64_t kAllocatorSlack = 1;
#endif
#else
constexpr int64_t kAllocatorSlack = 1;
#endif
// What AddressSanitizer keeps of freed blocks before reusing them (its
// default quarantine): an attack that makes frikortd allocate and free much,
// as streams of many reports do, shows up to this much more there.
constexpr int64_t kQuarantine = kAllocatorSlack > 1 ? 256 * kMiB : 0;
// The largest message frikortd takes, and what a stream sends of it.
constexpr uint32_t kDeclared = (4 << 20) - 64;
constexpr size_t kSent = kDeclared;  // the 5-byte prefix and all but 5 bytes of the message
constexpr int kDefaultStreams = 16;  // --max_concurrent_streams' default

// frikortd's resident memory in bytes, or -1.
int64_t Rss(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v(line);
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      v = absl::StripAsciiWhitespace(v);
      absl::ConsumeSuffix(&v, " kB");
      int64_t kb = 0;
      if (absl::SimpleAtoi(v, &kb)) return kb * 1024;
    }
  }
  return -1;
}

class BoundsTest : public DaemonTest {
 protected:
  void SetUp() override {
    // A write to a connection frikortd closed must fail, not end the test.
    signal(SIGPIPE, SIG_IGN);
    DaemonTest::SetUp();
    server_ = ca_.Server();
    ops_ = ca_.Client("ops-1");
    stranger_ = ca_.Client("stranger");
    reporter_ = ca_.Client("rep-1");
  }

  // Starts frikortd over mutual TLS with `extra` flags; SERVING for ops-1.
  void Start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = Args();
    args.push_back("--tls_cert=" + WriteFile(dir_, "server.pem", server_.cert_pem, 0644));
    args.push_back("--tls_key=" + WriteFile(dir_, "server.key", server_.key_pem, 0600));
    args.push_back("--tls_client_ca=" + WriteFile(dir_, "ca.pem", ca_.cert_pem(), 0644));
    args.push_back("--authz_file=" + WriteFile(dir_, "authz.txt",
                                               "ops-1 operator\nrep-1 reporter provider=*\n",
                                               0644));
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = Launch(args);
    port_ = daemon_->WaitListening(absl::Seconds(15));
    ASSERT_GT(port_, 0) << daemon_->Stderr();
    channel_ = testing::TlsChannel(absl::StrCat("127.0.0.1:", port_), ca_.cert_pem(), &ops_);
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline && HealthCheck(channel_, "").serving_status != 1) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_EQ(HealthCheck(channel_, "").serving_status, 1) << daemon_->Stderr();
    // One real call, so that what the first call allocates is in the baseline.
    v1::Ledger ledger;
    v1::GetLedgerRequest q;
    q.set_person_id(PersonId(1));
    q.set_year(2026);
    ASSERT_TRUE(v1::Registry::NewStub(channel_)->GetLedger(Ctx().get(), q, &ledger).ok());
    baseline_ = Rss(daemon_->pid());
    ASSERT_GT(baseline_, 0);
  }

  // Opens `streams` streams on `client`, each sending kSent bytes of a
  // kDeclared-byte message, and pumps until the server stops taking data;
  // returns frikortd's peak growth over the baseline.
  int64_t Flood(RawH2& client, int streams) {
    for (int i = 0; i < streams; ++i)
      client.Open("/frikort.v1.Registry/GetLedger", kDeclared, kSent);
    int64_t peak = 0;
    auto sample = [&] { peak = std::max(peak, Rss(daemon_->pid()) - baseline_); };
    client.Pump(absl::Milliseconds(1500), absl::Seconds(60), sample);
    sample();
    return peak;
  }

  testing::TestCa ca_{"Frikort bounds CA"};
  testing::Credential server_, ops_, stranger_, reporter_;
  Daemon* daemon_ = nullptr;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  int64_t baseline_ = 0;
};

// A known caller's unfinished messages: at most --max_concurrent_streams of
// them per connection are taken in, each at most the largest message; a
// client that opens more streams than that gets none of the extra ones.
TEST_F(BoundsTest, UnfinishedLargeMessagesAreBoundedPerConnection) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int64_t per_connection = kDefaultStreams * int64_t{kDeclared};
  RawH2 polite;
  ASSERT_TRUE(polite.Connect(port_, ops_));
  polite.Pump(absl::Milliseconds(200), absl::Seconds(5));  // the server's SETTINGS
  const int64_t held = Flood(polite, kDefaultStreams);
  // frikortd took in (and holds) what the limit allows...
  EXPECT_FALSE(polite.closed());
  EXPECT_EQ(polite.bytes_sent(), static_cast<size_t>(kDefaultStreams) * kSent);
  // gRPC's buffers for what it read cost about 1.5 times the bytes.
  EXPECT_LT(held, kAllocatorSlack * 2 * per_connection) << "grew " << held / kMiB << " MiB";

  // ...and no more for a connection that opens three times as many streams
  // (gRPC closes such a connection).
  RawH2 rude;
  ASSERT_TRUE(rude.Connect(port_, ops_));
  rude.Pump(absl::Milliseconds(200), absl::Seconds(5));
  const int64_t both = Flood(rude, 3 * kDefaultStreams);
  EXPECT_LE(rude.bytes_sent(), static_cast<size_t>(kDefaultStreams) * kSent);
  EXPECT_LT(both, kAllocatorSlack * (2 * per_connection + 32 * kMiB))
      << "grew " << both / kMiB << " MiB; the second connection sent " << rude.bytes_sent() / kMiB
      << " MiB";
  // Others are still served meanwhile.
  EXPECT_EQ(HealthCheck(channel_, "").serving_status, 1);
}

// `message` as gRPC frames it on the wire: not compressed, its length.
std::string Framed(const std::string& message) {
  std::string out(5, '\0');
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>(message.size() >> (24 - 8 * i));
  return out + message;
}

// A reporter's streams that send complete messages and never read an answer:
// frikortd reads at most kMaxStreamInFlight (8) messages of a stream ahead of
// the answers it has written, then stops reading it, and flow control stops
// the client. What a stream costs is those answers and gRPC's windows, not
// what the client would send.
TEST_F(BoundsTest, StreamsThatNeverReadAreNoLongerRead) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // 1,000 co-payments with 64-character report ids: stored from the first
  // message, DUPLICATE after; each answer echoes every id (about 70 KiB).
  v1::SubmitCoPaymentsRequest request;
  for (int i = 0; i < 1000; ++i) {
    CoPaymentSpec spec;
    spec.report_id = absl::StrCat(std::string(58, 'r'), absl::Dec(i, absl::kZeroPad6));
    spec.person_id = PersonId(i + 1);
    spec.service_time = OsloTime(2026, 3, 1);
    *request.add_co_payments() = MakeCoPayment(spec);
  }
  const std::string message = Framed(request.SerializeAsString());
  constexpr int kMessages = 64;
  std::string messages;
  for (int i = 0; i < kMessages; ++i) messages += message;

  RawH2 client;
  ASSERT_TRUE(client.Connect(port_, reporter_));
  client.Pump(absl::Milliseconds(200), absl::Seconds(5));
  for (int i = 0; i < kDefaultStreams; ++i) {
    client.OpenWithBody("/frikort.v1.Reporting/StreamCoPayments", messages);
  }
  int64_t peak = 0;
  auto sample = [&] { peak = std::max(peak, Rss(daemon_->pid()) - baseline_); };
  client.Pump(absl::Milliseconds(3000), absl::Seconds(120), sample);
  sample();

  const size_t wanted = static_cast<size_t>(kDefaultStreams) * messages.size();
  EXPECT_FALSE(client.closed());
  // frikortd took, per stream, the messages it reads ahead of its answers
  // (kMaxStreamInFlight, 8, and one being read) and a 64 KiB window: not
  // what the client would send (with HTTP/2 window probing on, gRPC took
  // all of it, 105 MB, into its buffers)...
  const size_t taken_bound = kDefaultStreams * ((8 + 1) * message.size() + 64 * 1024) + 64 * 1024;
  EXPECT_LE(client.bytes_sent(), taken_bound)
      << "sent " << client.bytes_sent() / 1024 << " KiB of " << wanted / 1024 << " KiB";
  // ...and holds for them their co-payments, results and answers: a few times
  // the wire bytes (before, 175 MB and more with the number of messages).
  const int64_t held_bound = kAllocatorSlack * 6 * static_cast<int64_t>(taken_bound) + kQuarantine;
  EXPECT_LT(peak, held_bound) << "grew " << peak / kMiB << " MiB; bound " << held_bound / kMiB;
  std::cerr << "never-reading streams: " << kDefaultStreams << " streams, client sent "
            << client.bytes_sent() / 1024 << " KiB of " << wanted / 1024 << " KiB, frikortd grew "
            << peak / 1024 << " KiB, received " << client.data_received() / 1024 << " KiB\n";
  // Others are still served meanwhile.
  EXPECT_EQ(HealthCheck(channel_, "").serving_status, 1);
  EXPECT_FALSE(daemon_->ExitCode(absl::ZeroDuration()).has_value()) << "frikortd ended";
}

// A CN without a line in the authz file is refused when a call's headers
// arrive: its messages are not taken in at all.
TEST_F(BoundsTest, AStrangersMessagesAreRefusedBeforeTheyAreBuffered) {
  ASSERT_NO_FATAL_FAILURE(Start());
  RawH2 client;
  ASSERT_TRUE(client.Connect(port_, stranger_));
  client.Pump(absl::Milliseconds(200), absl::Seconds(5));
  const int64_t growth = Flood(client, kDefaultStreams);

  EXPECT_LT(growth, kAllocatorSlack * 16 * kMiB) << "grew " << growth / kMiB << " MiB";
  EXPECT_EQ(client.streams_ended(), static_cast<size_t>(kDefaultStreams));
  EXPECT_LT(client.bytes_sent(), static_cast<size_t>(kDefaultStreams) * 256 * 1024);
}

// Idle connections are closed after --max_connection_idle, and cost little
// until then.
TEST_F(BoundsTest, IdleConnectionsAreClosed) {
  ASSERT_NO_FATAL_FAILURE(Start({"--max_connection_idle=1s"}));
  constexpr int kConnections = 100;
  std::vector<std::unique_ptr<RawH2>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<RawH2>());
    ASSERT_TRUE(clients.back()->Connect(port_, ops_)) << i;
  }
  int64_t peak = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  int closed = 0;
  while (absl::Now() < deadline) {
    closed = 0;
    for (auto& c : clients) {
      c->Pump(absl::Milliseconds(20), absl::Milliseconds(40));
      if (c->goaway() || c->closed()) ++closed;
    }
    peak = std::max(peak, Rss(daemon_->pid()) - baseline_);
    if (closed == kConnections) break;
  }
  EXPECT_EQ(closed, kConnections);
  EXPECT_LT(peak, kAllocatorSlack * 32 * kMiB) << "grew " << peak / kMiB << " MiB";
}

}  // namespace
}  // namespace frikort::testutil
