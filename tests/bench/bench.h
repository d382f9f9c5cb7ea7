// Shared by the parts of frikort_bench (tests/bench/*.cc): its flags, the
// register-and-server stack each part measures, and the helpers that time and
// print. See frikort_bench.cc for the binary and README.md, "Performance".
#ifndef FRIKORT_TESTS_BENCH_BENCH_H_
#define FRIKORT_TESTS_BENCH_BENCH_H_

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "jobs/issuance.h"
#include "server/daemon.h"
#include "server/server.h"
#include "storage/register.h"
#include "tests/server/test_util.h"
#include "tests/testing/rules_file.h"

ABSL_DECLARE_FLAG(std::string, parts);
ABSL_DECLARE_FLAG(int64_t, reevaluate_entries);
ABSL_DECLARE_FLAG(std::string, ingest_paths);
ABSL_DECLARE_FLAG(int, reports);
ABSL_DECLARE_FLAG(int, clients);
ABSL_DECLARE_FLAG(int, batch);
ABSL_DECLARE_FLAG(int, lookup_seconds);
ABSL_DECLARE_FLAG(int, in_flight);
ABSL_DECLARE_FLAG(bool, lookup_beside_ingest);
ABSL_DECLARE_FLAG(std::string, lookup_calls);
ABSL_DECLARE_FLAG(int, ledgers);
ABSL_DECLARE_FLAG(int, population);
ABSL_DECLARE_FLAG(int64_t, memory_entries);
ABSL_DECLARE_FLAG(int, hot_entries);
ABSL_DECLARE_FLAG(std::string, frikortd);
ABSL_DECLARE_FLAG(std::string, rules_file);

namespace frikort::bench {

namespace v1 = ::frikort::v1;
inline const std::string kSecret(64, 'b');

// Sequential valid national ids (no search per id): walks dates and
// individual numbers 000-499 and keeps those whose check digits exist.
class IdGenerator {
 public:
  std::string Next() {
    for (;;) {
      std::string id = absl::StrFormat("%02d%02d%02d%03d", day_, month_, yy_, individual_);
      Advance();
      static const int w1[] = {3, 7, 6, 1, 8, 9, 4, 5, 2};
      static const int w2[] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
      int s = 0;
      for (int i = 0; i < 9; ++i) s += (id[i] - '0') * w1[i];
      int k1 = (11 - s % 11) % 11;
      if (k1 == 10) continue;
      id += static_cast<char>('0' + k1);
      s = 0;
      for (int i = 0; i < 10; ++i) s += (id[i] - '0') * w2[i];
      int k2 = (11 - s % 11) % 11;
      if (k2 == 10) continue;
      return id + static_cast<char>('0' + k2);
    }
  }

 private:
  void Advance() {
    if (++individual_ < 500) return;
    individual_ = 0;
    if (++day_ <= 28) return;
    day_ = 1;
    if (++month_ <= 12) return;
    month_ = 1;
    yy_ = (yy_ + 1) % 100;
  }
  int day_ = 1, month_ = 1, yy_ = 50, individual_ = 0;
};

inline std::vector<std::string> MakeIds(size_t n) {
  IdGenerator g;
  std::vector<std::string> ids(n);
  for (auto& id : ids) id = g.Next();
  return ids;
}

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             absl::StrCat("frikort-bench-", getpid(), "-", name)) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

inline const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone());

inline v1::CoPayment MakeCoPayment(const std::string& person, int64_t seq, int64_t amount) {
  v1::CoPayment c;
  c.set_report_id(absl::StrCat("b", seq));
  c.set_provider_id("1234567");
  c.set_person_id(person);
  c.mutable_service_time()->set_seconds(absl::ToUnixSeconds(kNow) - 86400 * (1 + seq % 300));
  c.set_category(v1::PHYSICIAN);
  c.set_amount_ore(amount);
  c.set_payment(v1::PAID);
  return c;
}

inline core::CoPaymentInput ToInput(const v1::CoPayment& c) {
  core::CoPaymentInput in;
  in.report_id = c.report_id();
  in.provider_id = c.provider_id();
  in.person_id = c.person_id();
  in.service_time = absl::FromUnixSeconds(c.service_time().seconds());
  in.category = c.category();
  in.amount = c.amount_ore();
  in.payment = c.payment();
  return in;
}

// A register with the server in-process, on an ephemeral loopback port.
struct Stack {
  core::RulesTable rules;
  core::FakeClock clock{kNow};
  TempDir dir;
  std::unique_ptr<storage::Register> reg;
  std::unique_ptr<jobs::IssuanceJob> job;
  std::unique_ptr<server::FrikortServer> server;
  std::shared_ptr<grpc::Channel> channel;

  // `configure` may change the server's options before it starts;
  // `postgres_dsn` keeps the register in that database instead of RocksDB.
  explicit Stack(const std::string& name, bool with_server = true,
                 const std::function<void(server::ServerOptions*)>& configure = nullptr,
                 const std::string& postgres_dsn = "")
      : dir(name) {
    auto r = frikort::testing::ReadRulesFile(absl::GetFlag(FLAGS_rules_file));
    if (!r.ok()) Die(r.status());
    rules = *std::move(r);
    // The register as frikortd opens it (with its default flags).
    server::DaemonOptions daemon;
    daemon.data_dir = dir.path.string();
    if (!postgres_dsn.empty()) {
      daemon.store = "postgres";
      daemon.postgres_dsn = postgres_dsn;
    }
    auto opened =
        storage::Register::Open(server::RegisterOptionsFor(daemon, kSecret, &rules, &clock));
    if (!opened.ok()) Die(opened.status());
    reg = *std::move(opened);
    job = std::make_unique<jobs::IssuanceJob>(reg.get(), &clock);
    // The reports' provider holds an agreement on direct settlement, so they
    // count as before the registry (domain rule 13).
    auto agreed = reg->PutProvider({"1234567", "Bench", {{"2021-01-01", "", "1"}}});
    if (!agreed.ok()) Die(agreed.status());
    if (!with_server) return;
    server::ServerOptions so;
    so.listen_address = "127.0.0.1:0";
    so.max_calls_per_caller = 0;  // --in_flight decides
    if (configure) configure(&so);
    server = std::make_unique<server::FrikortServer>(so, reg.get(), job.get(), &rules, &clock);
    if (auto s = server->Start(); !s.ok()) Die(s);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server->port()),
                                        grpc::InsecureChannelCredentials(), args);
  }
  ~Stack() {
    if (server) server->Shutdown(absl::Now() + absl::Seconds(5));
  }
  static void Die(const absl::Status& s) {
    std::fprintf(stderr, "frikort_bench: %s\n", std::string(s.ToString()).c_str());
    std::exit(1);
  }
};

// Splits [0, n) among `threads` workers and times the whole.
template <typename Fn>
double TimedParallel(int threads, int64_t n, Fn fn) {
  const absl::Time start = absl::Now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] { fn(t, n * t / threads, n * (t + 1) / threads); });
  }
  for (auto& t : ts) t.join();
  return absl::ToDoubleSeconds(absl::Now() - start);
}

inline void PrintRow(const std::string& what, double value, const std::string& unit) {
  std::printf("  %-58s %14.0f %s\n", what.c_str(), value, unit.c_str());
}

// One unary call through `stub`, kept open by gRPC's callback API (no thread
// waits for it); `answer` gets the response's bytes on a gRPC thread. A
// failed call stops the bench.
inline void StartUnaryCall(grpc::GenericStub& stub, const char* method, const std::string& request,
                           const std::string& bearer,
                           std::function<void(const std::string& answer)> answer) {
  struct Call {
    grpc::ClientContext ctx;
    grpc::ByteBuffer req, resp;
  };
  auto call = std::make_shared<Call>();
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!bearer.empty()) call->ctx.AddMetadata("authorization", "Bearer " + bearer);
  call->req = testutil::ToByteBuffer(request);
  stub.UnaryCall(
      &call->ctx, method, grpc::StubOptions(), &call->req, &call->resp,
      [call, method, answer = std::move(answer)](const grpc::Status& status) {
        if (!status.ok()) {
          Stack::Die(absl::InternalError(absl::StrCat(method, ": ", status.error_message())));
        }
        answer(testutil::FromByteBuffer(call->resp));
      });
}

// CheckExemption of one of `persons` (spread by slot, call and window) on
// 2024-11-30, started through StartUnaryCall; `done` runs once the answer
// parsed and named at least one scheme.
inline void StartCheckExemption(grpc::GenericStub& stub, const std::vector<std::string>& persons,
                                int t, int64_t i, int window, std::function<void()> done) {
  v1::CheckExemptionRequest req;
  req.set_person_id(persons[(t * 7919 + i * 31 + window * 104729) % persons.size()]);
  req.set_date("2024-11-30");
  StartUnaryCall(stub, "/frikort.v1.Lookup/CheckExemption", req.SerializeAsString(), "",
                 [done = std::move(done)](const std::string& answer) {
                   v1::CheckExemptionResponse resp;
                   if (!resp.ParseFromString(answer) || resp.exemptions_size() == 0) {
                     Stack::Die(absl::InternalError("CheckExemption: unexpected answer"));
                   }
                   done();
                 });
}

// How many times the length-delimited field `field` occurs at the top level
// of the message `bytes`, read from the wire without building the message;
// -1 when `bytes` is no message.
inline int CountField(const std::string& bytes, int field) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  int n = 0;
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == field &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      ++n;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return -1;
  }
  return in.ConsumedEntireMessage() ? n : -1;
}

// Calls made and their latencies over one or more measurement windows.
struct Samples {
  int64_t calls = 0;
  absl::Duration elapsed;
  std::vector<double> latencies_ms;

  double per_second() const { return calls / absl::ToDoubleSeconds(elapsed); }
  double Percentile(int p) {
    if (latencies_ms.empty()) return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    return latencies_ms[latencies_ms.size() * p / 100];
  }
};

// `in_flight` calls kept outstanding for `length` without a thread each: the
// completion of call i of slot t records its latency and starts call i + 1
// (`start(t, i, done)` starts a call and runs `done` once it is answered and
// checked). So the client's cost per call is the call itself, not the wake-up
// of a waiting thread, and the server gets the CPU it would have beside a
// client on another machine as far as two shared cores allow. Adds to `out`.
template <typename Start>
void HammerCalls(int in_flight, absl::Duration length, Start start, Samples* out) {
  struct Slot {
    std::vector<double> lat;
    std::function<void(int64_t)> next;
  };
  std::vector<Slot> slots(in_flight);
  std::atomic<int64_t> calls{0};
  absl::Mutex mu;
  int running = in_flight;
  const absl::Time begin = absl::Now();
  const absl::Time end = begin + length;
  for (int t = 0; t < in_flight; ++t) {
    slots[t].next = [&, t](int64_t i) {
      const absl::Time s = absl::Now();
      start(t, i, [&, t, i, s] {
        const absl::Time now = absl::Now();
        slots[t].lat.push_back(absl::ToDoubleMilliseconds(now - s));
        calls.fetch_add(1, std::memory_order_relaxed);
        if (now < end) return slots[t].next(i + 1);
        absl::MutexLock lock(&mu);
        --running;
      });
    };
  }
  for (int t = 0; t < in_flight; ++t) slots[t].next(0);
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &running));
  }
  out->elapsed += absl::Now() - begin;
  out->calls += calls;
  for (auto& slot : slots) {
    out->latencies_ms.insert(out->latencies_ms.end(), slot.lat.begin(), slot.lat.end());
  }
}

// `in_flight` threads calling `call` back to back for `length`; adds to `out`
// (for clients that block, like the raw PostgreSQL loop).
template <typename Call>
void Hammer(int in_flight, absl::Duration length, Call call, Samples* out) {
  std::vector<std::vector<double>> lat(in_flight);
  std::atomic<int64_t> calls{0};
  const absl::Time start = absl::Now();
  const absl::Time end = start + length;
  std::vector<std::thread> ts;
  for (int t = 0; t < in_flight; ++t) {
    ts.emplace_back([&, t] {
      for (int64_t i = 0; absl::Now() < end; ++i) {
        const absl::Time s = absl::Now();
        call(t, i);
        lat[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - s));
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : ts) t.join();
  out->elapsed += absl::Now() - start;
  out->calls += calls;
  for (auto& v : lat) out->latencies_ms.insert(out->latencies_ms.end(), v.begin(), v.end());
}

// Reports/s of `n` co-payments (5000 øre each, of `persons` in turn) sent
// as SubmitCoPayments batches of --batch by --clients threads to `s`.
inline double UnaryIngest(Stack& s, const std::vector<std::string>& persons, int64_t n) {
  const int batch = absl::GetFlag(FLAGS_batch);
  auto stub = v1::Reporting::NewStub(s.channel);
  return n / TimedParallel(absl::GetFlag(FLAGS_clients), n, [&](int, int64_t lo, int64_t hi) {
           for (int64_t b = lo; b < hi; b += batch) {
             v1::SubmitCoPaymentsRequest req;
             for (int64_t i = b; i < std::min<int64_t>(hi, b + batch); ++i) {
               *req.add_co_payments() = MakeCoPayment(persons[i % persons.size()], i, 5000);
             }
             v1::SubmitCoPaymentsResponse resp;
             grpc::ClientContext ctx;
             auto st = stub->SubmitCoPayments(&ctx, req, &resp);
             if (!st.ok() || resp.results(0).outcome() != v1::ACCEPTED) {
               Stack::Die(absl::InternalError(absl::StrCat("submit failed: ", st.error_message())));
             }
           }
         });
}

// The parts, one file each (tests/bench/bench_<part>.cc).
void Ingest();
void Lookup();
void Issuance();
void Reevaluate();
void Memory(const char* argv0);
void Citizen();
void HotPerson();
void Postgres();

}  // namespace frikort::bench

#endif  // FRIKORT_TESTS_BENCH_BENCH_H_
