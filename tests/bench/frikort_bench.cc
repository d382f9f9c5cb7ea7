// frikort_bench: measures each hot path beside its own ceiling in one run, so
// the ratios hold on a shared, noisy machine. Not a test: it asserts nothing
// and prints figures. See README.md, "Performance".
//
//   build/frikort_bench [--parts=ingest,lookup,issuance,reevaluate,memory,citizen,hot_person]
//   [--reports=N] ...
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "jobs/issuance.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "server/citizen_token.h"
#include "server/daemon.h"
#include "server/server.h"
#include "storage/register.h"
#include "tests/server/test_util.h"
#include "tests/testing/citizen_tokens.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

ABSL_FLAG(std::string, parts, "ingest,lookup,issuance,reevaluate,memory,citizen",
          "which parts to run");
ABSL_FLAG(int64_t, reevaluate_entries, 1000000,
          "co-payments of the one provider whose agreement the reevaluate part ends");
ABSL_FLAG(std::string, ingest_paths, "raw,direct,unary,stream",
          "which ingest paths to measure (a subset is for profiling one)");
ABSL_FLAG(int, reports, 200000, "co-payments per ingest measurement");
ABSL_FLAG(int, clients, 4, "concurrent ingest clients");
ABSL_FLAG(int, batch, 1000, "co-payments per batch");
ABSL_FLAG(int, lookup_seconds, 5, "seconds per lookup measurement");
ABSL_FLAG(int, in_flight, 64, "lookup calls in flight");
ABSL_FLAG(bool, lookup_beside_ingest, false,
          "run a batch feed through the register during the lookup windows");
ABSL_FLAG(std::string, lookup_calls, "health,check",
          "which lookup calls to measure (one alone is for profiling it)");
ABSL_FLAG(int, ledgers, 1000000, "due ledgers for the issuance run");
ABSL_FLAG(int, population, 5000000, "people registered for the nothing-due run");
ABSL_FLAG(int64_t, memory_entries, 10000000, "entries stored before reading frikortd's peak RSS");
ABSL_FLAG(int, hot_entries, 9000,
          "entries of the one person the hot_person part reports before and after its crossing");
ABSL_FLAG(std::string, frikortd, "", "frikortd binary (default: beside this one)");
ABSL_FLAG(std::string, rules_file, "deploy/rules.txt", "rules file");

namespace frikort::bench {
namespace {

namespace v1 = ::frikort::v1;
const std::string kSecret(64, 'b');

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

std::vector<std::string> MakeIds(size_t n) {
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

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone());

v1::CoPayment MakeCoPayment(const std::string& person, int64_t seq, int64_t amount) {
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

core::CoPaymentInput ToInput(const v1::CoPayment& c) {
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

  // `configure` may change the server's options before it starts.
  explicit Stack(const std::string& name, bool with_server = true,
                 const std::function<void(server::ServerOptions*)>& configure = nullptr)
      : dir(name) {
    auto r = frikort::testing::ReadRulesFile(absl::GetFlag(FLAGS_rules_file));
    if (!r.ok()) Die(r.status());
    rules = *std::move(r);
    // The register as frikortd opens it (with its default flags).
    server::DaemonOptions daemon;
    daemon.data_dir = dir.path.string();
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

void PrintRow(const std::string& what, double value, const std::string& unit) {
  std::printf("  %-58s %14.0f %s\n", what.c_str(), value, unit.c_str());
}

// ---- 1. ingest ---------------------------------------------------------------

// The raw ceiling: the same reads and writes per report as the register's
// write path (index and person lookups, ledger read; person, entry, index,
// ledger writes) into one WriteBatch per batch, synced the same way, written
// from as many threads (RocksDB group-commits them), without gRPC or logic.
double RawCeiling(const std::vector<std::string>& persons, int64_t n) {
  TempDir dir("raw");
  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const char* name : {"default", "persons", "entries", "reports", "ledgers"}) {
    descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> cf;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(dbo, dir.path.string(), descs, &cf, &db).ok()) std::exit(1);
  const int batch = absl::GetFlag(FLAGS_batch);
  double secs = TimedParallel(absl::GetFlag(FLAGS_clients), n, [&](int, int64_t lo, int64_t hi) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::string v;
    for (int64_t b = lo; b < hi; b += batch) {
      rocksdb::WriteBatch wb;
      for (int64_t i = b; i < std::min<int64_t>(hi, b + batch); ++i) {
        const std::string& p = persons[i % persons.size()];
        const std::string rk = absl::StrCat("1234567/b", i);
        db->Get(rocksdb::ReadOptions(), cf[3], rk, &v).PermitUncheckedError();
        db->Get(rocksdb::ReadOptions(), cf[1], p, &v).PermitUncheckedError();
        db->Get(rocksdb::ReadOptions(), cf[4], p + "2024", &v).PermitUncheckedError();
        wb.Put(cf[1], p, std::string(60, 'p'));
        wb.Put(cf[2], absl::StrCat(p, "2024", i), std::string(60, 'e'));
        wb.Put(cf[3], rk, std::string(80, 'i'));
        wb.Put(cf[4], p + "2024", std::string(40, 'l'));
      }
      db->Write(wo, &wb).PermitUncheckedError();
    }
  });
  for (auto* h : cf) db->DestroyColumnFamilyHandle(h);
  delete db;
  return n / secs;
}

void Ingest() {
  const int64_t n = absl::GetFlag(FLAGS_reports);
  const int clients = absl::GetFlag(FLAGS_clients);
  const int batch = absl::GetFlag(FLAGS_batch);
  const auto persons = MakeIds(std::max<int64_t>(1, n / 10));
  std::printf("ingest: %lld co-payments, %d clients, batches of %d, synced\n",
              static_cast<long long>(n), clients, batch);
  const std::string paths = absl::GetFlag(FLAGS_ingest_paths);
  auto wanted = [&](absl::string_view path) {
    return absl::c_linear_search(absl::StrSplit(paths, ','), path);
  };
  double raw = 0, unary = 0, stream = 0, direct = 0;
  if (wanted("raw")) raw = RawCeiling(persons, n);
  if (wanted("direct")) {
    Stack s("direct", /*with_server=*/false);
    direct = n / TimedParallel(clients, n, [&](int, int64_t lo, int64_t hi) {
               for (int64_t b = lo; b < hi; b += batch) {
                 std::vector<core::CoPaymentInput> items;
                 for (int64_t i = b; i < std::min<int64_t>(hi, b + batch); ++i) {
                   items.push_back(ToInput(MakeCoPayment(persons[i % persons.size()], i, 5000)));
                 }
                 auto r = s.reg->Submit(std::move(items));
                 if (!r.ok()) Stack::Die(r.status());
               }
             });
  }
  if (wanted("unary")) {
    Stack s("unary");
    auto stub = v1::Reporting::NewStub(s.channel);
    unary =
        n / TimedParallel(clients, n, [&](int, int64_t lo, int64_t hi) {
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
  if (wanted("stream")) {
    Stack s("stream");
    auto stub = v1::Reporting::NewStub(s.channel);
    stream = n / TimedParallel(clients, n, [&](int, int64_t lo, int64_t hi) {
               grpc::ClientContext ctx;
               auto rw = stub->StreamCoPayments(&ctx);
               // Keep a few batches in flight per stream, as a bulk feed would.
               std::thread reader([&] {
                 v1::SubmitCoPaymentsResponse resp;
                 while (rw->Read(&resp)) {
                 }
               });
               for (int64_t b = lo; b < hi; b += batch) {
                 v1::SubmitCoPaymentsRequest req;
                 for (int64_t i = b; i < std::min<int64_t>(hi, b + batch); ++i) {
                   *req.add_co_payments() = MakeCoPayment(persons[i % persons.size()], i, 5000);
                 }
                 rw->Write(req);
               }
               rw->WritesDone();
               reader.join();
               auto st = rw->Finish();
               if (!st.ok()) Stack::Die(absl::InternalError(st.error_message()));
             });
  }
  if (raw > 0)
    PrintRow("raw RocksDB ceiling (same reads/writes, synced batches)", raw, "reports/s");
  if (direct > 0) PrintRow("Register::Submit, no gRPC", direct, "reports/s");
  if (unary > 0) PrintRow("SubmitCoPayments over gRPC", unary, "reports/s");
  if (stream > 0) PrintRow("StreamCoPayments over gRPC", stream, "reports/s");
  if (raw > 0 && unary > 0) {
    std::printf("  ratio SubmitCoPayments / raw ceiling: %.2f (target >= 0.5)\n", unary / raw);
  }
  if (raw > 0 && stream > 0) {
    std::printf("  ratio StreamCoPayments / raw ceiling: %.2f (target >= 0.5)\n", stream / raw);
  }
}

// ---- 2. lookup ---------------------------------------------------------------

// One unary call through a generic stub (the same client path for every
// call measured, so ratios compare what the server does); the response's
// bytes. `bearer`, when given, goes in the authorization metadata.
std::string UnaryCall(grpc::GenericStub& stub, const char* method, const std::string& request,
                      const std::string& bearer = "") {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!bearer.empty()) ctx.AddMetadata("authorization", "Bearer " + bearer);
  grpc::ByteBuffer req = testutil::ToByteBuffer(request), resp;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status st) {
    status = std::move(st);
    done.Notify();
  });
  done.WaitForNotification();
  if (!status.ok()) {
    Stack::Die(absl::InternalError(absl::StrCat(method, ": ", status.error_message())));
  }
  return testutil::FromByteBuffer(resp);
}

// CheckExemption of one of `persons` (spread by thread, call and window) on
// 2024-11-30, through UnaryCall.
void CheckExemptionCall(grpc::GenericStub& stub, const std::vector<std::string>& persons, int t,
                        int64_t i, int window) {
  v1::CheckExemptionRequest req;
  req.set_person_id(persons[(t * 7919 + i * 31 + window * 104729) % persons.size()]);
  req.set_date("2024-11-30");
  v1::CheckExemptionResponse resp;
  if (!resp.ParseFromString(
          UnaryCall(stub, "/frikort.v1.Lookup/CheckExemption", req.SerializeAsString())) ||
      resp.exemptions_size() == 0) {
    Stack::Die(absl::InternalError("CheckExemption: unexpected answer"));
  }
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

// `in_flight` threads calling `call` back to back for `length`; adds to `out`.
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

void Lookup() {
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_lookup_seconds));
  Stack s("lookup");
  const auto persons = MakeIds(20000);
  std::vector<core::CoPaymentInput> items;
  for (size_t i = 0; i < persons.size(); ++i) {
    items.push_back(ToInput(MakeCoPayment(persons[i], i, i % 2 ? 400000 : 5000)));
  }
  if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  // The two calls take turns in short windows, so that a burst of other work
  // on a shared machine lands on both alike.
  constexpr int kWindows = 8;
  std::printf("lookup: %d calls in flight, %d s each in %d alternating windows, %zu people\n",
              in_flight, absl::GetFlag(FLAGS_lookup_seconds), kWindows, persons.size());
  // Both calls go through the same client path (a generic stub, the same
  // deadline, the same completion), so the ratio compares what the server
  // does for each and not two client libraries.
  grpc::GenericStub stub(s.channel);
  auto unary = [&](const char* method, const std::string& request) {
    return UnaryCall(stub, method, request);
  };
  const std::string health_request = testutil::EncodeStringField(1, "");
  // With --lookup_beside_ingest, a batch feed runs through both kinds of
  // window: one submitter, batches of 1,000, each synced, back to back.
  std::atomic<bool> feed_stop{false};
  std::atomic<int64_t> fed{0};
  std::thread feed;
  if (absl::GetFlag(FLAGS_lookup_beside_ingest)) {
    feed = std::thread([&] {
      for (int64_t seq = persons.size(); !feed_stop; seq += 1000) {
        std::vector<core::CoPaymentInput> batch;
        for (int64_t i = seq; i < seq + 1000; ++i) {
          batch.push_back(ToInput(MakeCoPayment(persons[i % persons.size()], i, 100)));
        }
        if (auto r = s.reg->Submit(std::move(batch)); !r.ok()) Stack::Die(r.status());
        fed += 1000;
      }
    });
  }
  const absl::Time feed_start = absl::Now();
  Samples noop, check;
  const std::vector<std::string> calls = absl::StrSplit(absl::GetFlag(FLAGS_lookup_calls), ',');
  const bool with_noop = absl::c_linear_search(calls, "health");
  const bool with_check = absl::c_linear_search(calls, "check");
  for (int w = 0; w < kWindows; ++w) {
    if (with_noop)
      Hammer(
          in_flight, length / kWindows,
          [&](int, int64_t) {
            const std::string answer = unary("/grpc.health.v1.Health/Check", health_request);
            if (answer.size() < 2 || answer[0] != 0x08 || answer[1] != 1) {
              Stack::Die(absl::InternalError("health check: not SERVING"));
            }
          },
          &noop);
    if (with_check)
      Hammer(
          in_flight, length / kWindows,
          [&](int t, int64_t i) { CheckExemptionCall(stub, persons, t, i, w); }, &check);
  }
  if (feed.joinable()) {
    feed_stop = true;
    feed.join();
    std::printf("  beside a batch feed of %.0f reports/s (Register::Submit, batches of 1,000)\n",
                fed / absl::ToDoubleSeconds(absl::Now() - feed_start));
  }
  if (with_noop) {
    std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "Health/Check (no-op)",
                noop.per_second(), noop.Percentile(50), noop.Percentile(99));
  }
  if (with_check) {
    std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "CheckExemption",
                check.per_second(), check.Percentile(50), check.Percentile(99));
  }
  if (with_noop && with_check) {
    std::printf("  ratio CheckExemption / no-op: %.2f (target >= 0.7; p99 target < 10 ms)\n",
                check.per_second() / noop.per_second());
  }
  // The lookup log's memtable is unsorted: a listing that meets it sorts a
  // copy. Its cost, with the log as the run left it:
  Samples listing;
  for (int i = 0; i < 21; ++i) {
    const absl::Time start = absl::Now();
    auto page = s.reg->ListLookups(persons[i], 100, "");
    if (!page.ok()) Stack::Die(page.status());
    listing.latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  const double median = listing.Percentile(50);  // sorts
  std::printf("  ListLookups of one person after the run: p50 %.2f ms, max %.2f ms\n", median,
              listing.latencies_ms.back());
}

// ---- 3. issuance -------------------------------------------------------------

void Issuance() {
  const int64_t due = absl::GetFlag(FLAGS_ledgers);
  const int64_t population = std::max<int64_t>(due, absl::GetFlag(FLAGS_population));
  Stack s("issuance", /*with_server=*/false);
  std::printf("issuance: %lld due ledgers, then %lld people with nothing due\n",
              static_cast<long long>(due), static_cast<long long>(population));
  IdGenerator ids;
  auto fill = [&](int64_t from, int64_t to, int64_t amount) {
    const absl::Time start = absl::Now();
    for (int64_t b = from; b < to; b += 10000) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < std::min(to, b + 10000); ++i) {
        items.push_back(ToInput(MakeCoPayment(ids.Next(), i, amount)));
      }
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
    }
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  // 2024 cap 3165 NOK: one co-payment above it makes a ledger due with excess.
  double fill_secs = fill(0, due, 320000);
  PrintRow("setup: reports to make ledgers due", due / fill_secs, "reports/s");
  absl::Time t0 = absl::Now();
  auto run = s.job->Run(absl::CivilDay(2024, 12, 1), false);
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!run.ok()) Stack::Die(run.status());
  PrintRow(absl::StrCat("issuance run: ", run->cards_issued, " cards, ", run->payouts, " payouts"),
           run->ledgers_examined / secs, "due ledgers/s (target >= 100,000)");
  fill(due, population, 5000);
  t0 = absl::Now();
  auto idle = s.job->Run(absl::CivilDay(2024, 12, 2), false);
  secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!idle.ok()) Stack::Die(idle.status());
  std::printf("  %-58s %14.3f s (target < 1 s; examined %lld)\n",
              absl::StrCat("run with nothing due, ", population, " people").c_str(), secs,
              static_cast<long long>(idle->ledgers_examined));
}

// ---- 5. one hot person ----------------------------------------------------------

// The worst case for the single writer: one person with many entries whose
// running total crosses the cap late in the year, then reports dated before
// the crossing and cancellations of entries before it, each of which moves
// the crossing. Printed beside the same operations for people with a short
// history, and with the latency another reporter sees meanwhile.
void HotPerson() {
  const int64_t history = absl::GetFlag(FLAGS_hot_entries);
  const int64_t moves = std::max<int64_t>(
      1, std::min<int64_t>(1000, storage::RegisterOptions{}.max_entries_per_person_year - history));
  constexpr int kBatch = 100;
  Stack s("hot", /*with_server=*/false);
  const std::vector<std::string> ids = MakeIds(20001);
  const std::string& hot = ids.back();
  std::printf(
      "hot person: %lld entries crossing the cap late, then %lld reports dated before "
      "the crossing and %lld cancellations, batches of %d, synced\n",
      static_cast<long long>(history), static_cast<long long>(moves), static_cast<long long>(moves),
      kBatch);
  auto report = [](const std::string& person, const std::string& id, absl::CivilDay day,
                   int64_t amount) {
    core::CoPaymentInput in;
    in.report_id = id;
    in.provider_id = "1234567";
    in.person_id = person;
    in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
    in.category = static_cast<int>(core::Category::kPhysician);
    in.amount = amount;
    in.payment = static_cast<int>(core::Payment::kPaid);
    return in;
  };
  // Seconds for `n` reports made by make(i), submitted in batches of kBatch.
  auto feed = [&](int64_t n, const std::function<core::CoPaymentInput(int64_t)>& make) {
    const absl::Time start = absl::Now();
    for (int64_t b = 0; b < n; b += kBatch) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < std::min(n, b + kBatch); ++i) items.push_back(make(i));
      auto r = s.reg->Submit(std::move(items));
      if (!r.ok()) Stack::Die(r.status());
      if ((*r)[0].outcome != core::Outcome::kAccepted) {
        Stack::Die(absl::InternalError(absl::StrCat("report refused: ", (*r)[0].message)));
      }
    }
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  // Seconds for `n` cancellations of id(i), all queued at once (the writer
  // groups them as it would a busy reporter's).
  auto cancel = [&](int64_t n, const std::function<std::string(int64_t)>& id) {
    const absl::Time start = absl::Now();
    absl::Mutex mu;
    int64_t left = n;
    for (int64_t i = 0; i < n; ++i) {
      s.reg->CancelAsync("1234567", id(i), "bench", [&](absl::StatusOr<storage::ReportResult> r) {
        if (!r.ok() || r->outcome != core::Outcome::kAccepted) {
          Stack::Die(absl::InternalError("cancellation refused"));
        }
        absl::MutexLock l(&mu);
        --left;
      });
    }
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(
        +[](int64_t* v) { return *v == 0; }, &left));
    return absl::ToDoubleSeconds(absl::Now() - start);
  };
  const absl::CivilDay march(2024, 3, 1);
  // The hot person's history: 40 øre a report from 1 March on, in service
  // order; the 2024 cap (316,500 øre) is crossed by report 7,913.
  feed(history, [&](int64_t i) {
    return report(hot, absl::StrCat("h", i), march + static_cast<int>(i * 270 / history), 40);
  });
  // The same number of reports for people with a short history.
  const double normal_secs = feed(moves, [&](int64_t i) {
    return report(ids[i % 20000], absl::StrCat("n", i), march + static_cast<int>(i % 270), 40);
  });

  // Another reporter's batches of 10 while the hot person's reports run.
  std::atomic<bool> stop{false};
  std::vector<double> other_ms;
  std::thread other([&] {
    for (int64_t b = 0; !stop.load(); b += 10) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = b; i < b + 10; ++i) {
        items.push_back(report(ids[(i * 7) % 20000], absl::StrCat("o", i), march, 40));
      }
      const absl::Time t = absl::Now();
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      other_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    }
  });
  // Dated in January and February: each moves the crossing earlier.
  const double hot_secs = feed(moves, [&](int64_t i) {
    return report(hot, absl::StrCat("e", i), absl::CivilDay(2024, 1, 1) + static_cast<int>(i % 59),
                  40);
  });
  // Cancelling them and early history moves it back, one entry at a time.
  const double hot_cancel_secs = cancel(moves, [](int64_t i) { return absl::StrCat("e", i); });
  stop = true;
  other.join();
  const double normal_cancel_secs = cancel(moves, [](int64_t i) { return absl::StrCat("n", i); });

  const double us = 1e6 / static_cast<double>(moves);
  PrintRow("report, short history (per report)", normal_secs * us, "us");
  PrintRow("report dated before the hot person's crossing (per report)", hot_secs * us, "us");
  PrintRow("cancellation, short history (per cancellation)", normal_cancel_secs * us, "us");
  PrintRow("cancellation before the hot person's crossing", hot_cancel_secs * us, "us");
  std::printf("  ratio hot / short history: reports %.2f, cancellations %.2f (target ~1)\n",
              hot_secs / normal_secs, hot_cancel_secs / normal_cancel_secs);
  if (!other_ms.empty()) {
    std::sort(other_ms.begin(), other_ms.end());
    std::printf(
        "  another reporter meanwhile (batches of 10, %zu calls): p50 %.2f ms, p99 %.2f ms\n",
        other_ms.size(), other_ms[other_ms.size() / 2], other_ms[other_ms.size() * 99 / 100]);
  }
  auto full = s.reg->Submit({report(hot, "over", march, 40)});
  if (full.ok() && history + moves >= storage::RegisterOptions{}.max_entries_per_person_year) {
    std::printf("  a report beyond %d entries of one person-year: %s\n",
                storage::RegisterOptions{}.max_entries_per_person_year,
                std::string(core::RejectReasonName((*full)[0].reason)).c_str());
  }
}

// ---- 4. memory -----------------------------------------------------------------
// ---- 4. re-evaluation ------------------------------------------------------------

// One provider with --reevaluate_entries stored co-payments (ten per person)
// has its agreement ended back to before all of them: every entry is decided
// again and flips, every ledger is recomputed. Meanwhile another reporter
// keeps sending batches of ten; their latency shows the writer still answers.
void Reevaluate() {
  const int64_t n = absl::GetFlag(FLAGS_reevaluate_entries);
  Stack s("reevaluate", /*with_server=*/false);
  const std::string provider = "7654321";
  auto put = [&](const std::string& to) {
    auto change = s.reg->PutProvider({provider, "Bench", {{"2024-01-01", to, "1"}}});
    if (!change.ok()) Stack::Die(change.status());
    return *change;
  };
  put("");
  std::printf("reevaluate: one provider with %lld co-payments, its agreement ended back\n",
              static_cast<long long>(n));
  const auto persons = MakeIds(std::max<int64_t>(1, n / 10));
  const absl::Time fill_start = absl::Now();
  for (int64_t b = 0; b < n; b += 10000) {
    std::vector<core::CoPaymentInput> items;
    for (int64_t i = b; i < std::min(n, b + 10000); ++i) {
      v1::CoPayment c = MakeCoPayment(persons[i / 10], i, 5000);
      c.set_provider_id(provider);
      items.push_back(ToInput(c));
    }
    if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  }
  PrintRow("ingest: reports of the one provider (setup)",
           n / absl::ToDoubleSeconds(absl::Now() - fill_start), "reports/s");

  std::atomic<bool> stop{false};
  std::vector<double> latencies_ms;
  std::thread other([&] {
    const auto others = MakeIds(1000);
    for (int64_t seq = 0; !stop.load(); seq += 10) {
      std::vector<core::CoPaymentInput> items;
      for (int64_t i = seq; i < seq + 10; ++i) {
        items.push_back(ToInput(MakeCoPayment(others[(i / 10) % others.size()], n + i, 100)));
      }
      const absl::Time t = absl::Now();
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      latencies_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    }
  });
  const absl::Time start = absl::Now();
  storage::ProviderChange change = put("2024-01-01");
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  stop = true;
  other.join();
  PrintRow(
      absl::StrCat("re-evaluation: ", change.entries_changed, " of ", change.entries_reevaluated,
                   " entries flipped, ", change.ledgers_changed, " ledgers"),
      change.entries_reevaluated / secs, "entries/s (target >= 100,000)");
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p99 = latencies_ms.empty() ? 0 : latencies_ms[(latencies_ms.size() - 1) * 99 / 100];
  std::printf("  %-58s %14.1f ms (%zu batches meanwhile)\n",
              "other reporter's batch of 10 meanwhile, p99", p99, latencies_ms.size());
}

// ---- 5. memory -----------------------------------------------------------------

void Memory(const char* argv0) {
  std::string bin = absl::GetFlag(FLAGS_frikortd);
  if (bin.empty()) bin = (std::filesystem::path(argv0).parent_path() / "frikortd").string();
  const int64_t n = absl::GetFlag(FLAGS_memory_entries);
  TempDir dir("memory");
  const int port = 20000 + getpid() % 20000;
  const std::string listen = absl::StrCat("127.0.0.1:", port);
  pid_t pid = fork();
  if (pid == 0) {
    const std::string data = absl::StrCat("--data_dir=", dir.path.string());
    const std::string l = absl::StrCat("--listen=", listen);
    const std::string rules = absl::StrCat("--rules_file=", absl::GetFlag(FLAGS_rules_file));
    execl(bin.c_str(), bin.c_str(), l.c_str(), data.c_str(), rules.c_str(), "--issuance_interval=0",
          "--block_cache_mb=64", "--write_buffer_mb=32", nullptr);
    _exit(127);
  }
  auto channel = grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(20)))) {
    kill(pid, SIGKILL);
    Stack::Die(absl::UnavailableError("frikortd did not start"));
  }
  std::printf("memory: frikortd --block_cache_mb=64 --write_buffer_mb=32, %lld entries\n",
              static_cast<long long>(n));
  const auto persons = MakeIds(std::max<int64_t>(1, n / 5));
  auto stub = v1::Reporting::NewStub(channel);
  double secs = TimedParallel(2, n, [&](int, int64_t lo, int64_t hi) {
    grpc::ClientContext ctx;
    auto rw = stub->StreamCoPayments(&ctx);
    std::thread reader([&] {
      v1::SubmitCoPaymentsResponse resp;
      while (rw->Read(&resp)) {
      }
    });
    for (int64_t b = lo; b < hi; b += 1000) {
      v1::SubmitCoPaymentsRequest req;
      for (int64_t i = b; i < std::min<int64_t>(hi, b + 1000); ++i) {
        *req.add_co_payments() = MakeCoPayment(persons[i % persons.size()], i, 100);
      }
      rw->Write(req);
    }
    rw->WritesDone();
    reader.join();
    rw->Finish();
  });
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line, hwm = "?", rss = "?";
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmHWM:")) hwm = line.substr(6);
    if (absl::StartsWith(line, "VmRSS:")) rss = line.substr(6);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  PrintRow("fill rate (StreamCoPayments, 2 streams)", n / secs, "reports/s");
  std::printf("  frikortd peak RSS (VmHWM): %s; RSS at end: %s\n",
              std::string(absl::StripAsciiWhitespace(hwm)).c_str(),
              std::string(absl::StripAsciiWhitespace(rss)).c_str());
}

// ---- 5. citizen ----------------------------------------------------------------

// Microseconds per call of `fn`, over `n` calls on this thread.
template <typename Fn>
double MicrosPerCall(int n, Fn fn) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) fn();
  return absl::ToDoubleMicroseconds(absl::Now() - start) / n;
}

// OpenSSL's verification alone of a SHA-256 signature (DER for EC) by `key`.
double SignatureMicros(const frikort::testing::TokenKey& key, int n) {
  const std::string input(600, 'x');  // about a token's header and payload
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sign(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EVP_DigestSignInit(sign.get(), nullptr, EVP_sha256(), nullptr, key.pkey());
  EVP_DigestSign(sign.get(), nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(sign.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
  sig.resize(len);
  return MicrosPerCall(n, [&] {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey());
    if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         in, input.size()) != 1) {
      Stack::Die(absl::InternalError("signature check: does not verify"));
    }
  });
}

void Citizen() {
  using frikort::testing::TokenKey;
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_lookup_seconds));
  TempDir keys_dir("citizen-keys");
  const TokenKey rsa = TokenKey::Rsa("bench-rs256");
  const TokenKey ec = TokenKey::Ec("bench-es256");
  const std::string jwks = (keys_dir.path / "jwks.json").string();
  frikort::testing::WriteJwksFile(jwks, {&rsa, &ec});
  Stack s("citizen", true, [&](server::ServerOptions* so) {
    so->citizen_jwks_file = jwks;
    so->citizen_token_issuer = frikort::testing::kTestIssuer;
    so->citizen_token_audience = frikort::testing::kTestAudience;
  });
  // kFull people with kEntries co-payments each in 2024 (the overview's
  // year), everyone else with one (the lookups').
  constexpr int kFull = 64;
  constexpr int kEntries = 100;
  const auto persons = MakeIds(20000);
  std::vector<core::CoPaymentInput> items;
  for (int p = 0; p < kFull; ++p) {
    for (int e = 0; e < kEntries; ++e) {
      items.push_back(ToInput(MakeCoPayment(persons[p], p * kEntries + e, 2000)));
    }
  }
  for (size_t i = kFull; i < persons.size(); ++i) {
    items.push_back(ToInput(MakeCoPayment(persons[i], 1000000 + i, i % 2 ? 400000 : 5000)));
    if (items.size() == 10000) {
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      items.clear();
    }
  }
  if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  // The portal passes each person's RS256 token; the server verifies it on
  // every call.
  std::vector<std::string> tokens;
  for (int p = 0; p < kFull; ++p) {
    tokens.push_back(rsa.Sign(frikort::testing::ValidClaims(persons[p], kNow)));
  }
  constexpr int kWindows = 8;
  std::printf(
      "citizen: %d calls in flight, %d s each in %d alternating windows, %d people with "
      "%d entries, token (RS256) verified on every call\n",
      in_flight, absl::GetFlag(FLAGS_lookup_seconds), kWindows, kFull, kEntries);
  grpc::GenericStub stub(s.channel);
  v1::GetMyOverviewRequest overview_request;
  overview_request.set_year(2024);
  const std::string overview_bytes = overview_request.SerializeAsString();
  Samples overview, check;
  for (int w = 0; w < kWindows; ++w) {
    Hammer(
        in_flight, length / kWindows,
        [&](int t, int64_t i) {
          v1::MyOverview resp;
          if (!resp.ParseFromString(UnaryCall(stub, "/frikort.v1.Citizen/GetMyOverview",
                                              overview_bytes, tokens[(t + i) % kFull])) ||
              resp.entries_size() != kEntries) {
            Stack::Die(absl::InternalError("GetMyOverview: unexpected answer"));
          }
        },
        &overview);
    Hammer(
        in_flight, length / kWindows,
        [&](int t, int64_t i) { CheckExemptionCall(stub, persons, t, i, w); }, &check);
  }
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "GetMyOverview (100 entries)",
              overview.per_second(), overview.Percentile(50), overview.Percentile(99));
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "CheckExemption",
              check.per_second(), check.Percentile(50), check.Percentile(99));
  std::printf("  p99 target for GetMyOverview: < 20 ms\n");
  // The token check on one thread: whole (parse, signature, claims) and
  // OpenSSL's signature verification alone.
  constexpr int kChecks = 4000;
  server::TokenPolicy policy{.issuer = frikort::testing::kTestIssuer,
                             .audience = frikort::testing::kTestAudience,
                             .id_options = {}};
  auto parsed = server::Jwks::LoadFile(jwks);
  if (!parsed.ok()) Stack::Die(parsed.status());
  for (const TokenKey* key : {&rsa, &ec}) {
    const std::string token = key->Sign(frikort::testing::ValidClaims(persons[0], kNow));
    const double whole = MicrosPerCall(kChecks, [&] {
      if (!server::VerifyToken(token, **parsed, policy, kNow).ok()) {
        Stack::Die(absl::InternalError("VerifyToken: refused a valid token"));
      }
    });
    std::printf("  token check %s, one thread: %.1f us per call, of which the signature %.1f us\n",
                key->alg().c_str(), whole, SignatureMicros(*key, kChecks));
  }
}

}  // namespace
}  // namespace frikort::bench

int main(int argc, char** argv) {
  // Debian's Abseil is built with assertions on, which makes every Mutex lock
  // (ours and gRPC's) maintain a global lock-order graph: several percent of
  // the lookup path's CPU in a profile. The tests keep it; the server does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  if (auto s = frikort::testing::LoadOsloTimeZone(); !s.ok()) return 1;
  std::printf("frikort_bench on %u cores\n", std::thread::hardware_concurrency());
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_parts), ',')) {
    if (part == "ingest")
      frikort::bench::Ingest();
    else if (part == "lookup")
      frikort::bench::Lookup();
    else if (part == "issuance")
      frikort::bench::Issuance();
    else if (part == "reevaluate")
      frikort::bench::Reevaluate();
    else if (part == "memory")
      frikort::bench::Memory(argv[0]);
    else if (part == "citizen")
      frikort::bench::Citizen();
    else if (part == "hot_person")
      frikort::bench::HotPerson();
    else {
      std::fprintf(stderr, "frikort_bench: --parts: unknown part \"%s\"\n",
                   std::string(part).c_str());
      return 2;
    }
    std::fflush(stdout);
  }
  return 0;
}
