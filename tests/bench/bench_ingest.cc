// frikort_bench, part "ingest": the write path beside a raw RocksDB ceiling.
#include "absl/algorithm/container.h"
#include "absl/strings/str_split.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/bench/bench.h"

namespace frikort::bench {
namespace {

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

}  // namespace

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
    unary = UnaryIngest(s, persons, n);
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

}  // namespace frikort::bench
