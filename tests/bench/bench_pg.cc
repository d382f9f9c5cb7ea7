// frikort_bench, part "pg": the ingest, lookup and issuance paths with the
// register in PostgreSQL, each beside a raw PostgreSQL ceiling measured in
// the same run: the same rows per report (or lookup, or due ledger) in the
// same tables' shape (k bytea PRIMARY KEY, v bytea), with the same
// transaction size, over libpq directly, without the register's logic.
//
// The PostgreSQL is one of the bench's own (tests/testing/pg_server.h:
// fsync off, a test server) unless --postgres_dsn names one (a keyword/value
// connection string whose role may CREATE DATABASE): each measurement gets
// a new database there, dropped after it.
#include <map>

#include "storage/pg_store_conn.h"
#include "tests/bench/bench.h"
#include "tests/testing/pg_server.h"

ABSL_FLAG(
    std::string, postgres_dsn, "",
    "part pg: a PostgreSQL server to measure on (default: one of the bench's own, fsync off)");
ABSL_FLAG(int, pg_reports, 20000, "part pg: co-payments per ingest measurement");
ABSL_FLAG(int, pg_ledgers, 20000, "part pg: due ledgers for the issuance run");

namespace frikort::bench {
namespace {

namespace pg = ::frikort::storage::pg;

void Check(const absl::Status& s) {
  if (!s.ok()) Stack::Die(s);
}

pg::Conn MustConnect(const std::string& dsn, bool synchronous, const std::string& setup = "") {
  absl::StatusOr<pg::Conn> c = pg::Connect(dsn, synchronous, setup);
  Check(c.status());
  return *std::move(c);
}

// A new, empty database for one measurement; dropped with this object when
// it is on a server the bench did not start.
class Database {
 public:
  Database() {
    const std::string given = absl::GetFlag(FLAGS_postgres_dsn);
    if (given.empty()) {
      absl::StatusOr<frikort::testing::PgServer*> server = frikort::testing::PgServer::Shared();
      Check(server.status());
      absl::StatusOr<std::string> dsn = (*server)->CreateDatabase();
      Check(dsn.status());
      dsn_ = *dsn;
      return;
    }
    static std::atomic<int> next{0};
    name_ = absl::StrCat("frikort_bench_", getpid(), "_", next++);
    Check(pg::Exec(MustConnect(given, true).get(), absl::StrCat("CREATE DATABASE ", name_).c_str(),
                   "create database"));
    dsn_ = absl::StrCat(given, " dbname=", name_);  // a later keyword wins
  }
  ~Database() {
    if (name_.empty()) return;
    pg::Conn c = MustConnect(absl::GetFlag(FLAGS_postgres_dsn), true);
    pg::Exec(c.get(), absl::StrCat("DROP DATABASE IF EXISTS ", name_).c_str(), "drop database")
        .IgnoreError();
  }
  const std::string& dsn() const { return dsn_; }

 private:
  std::string dsn_, name_;
};

// Raw tables bench_<name> and, on every session, statements get_<name>
// (k = ANY($1)), put_<name> (upsert of unnest($1, $2)), del_<name>.
std::string CreateTables(const std::vector<std::string>& names) {
  std::string sql;
  for (const std::string& n : names) {
    absl::StrAppend(&sql, "CREATE TABLE bench_", n, " (k bytea PRIMARY KEY, v bytea NOT NULL); ");
  }
  return sql;
}
std::string Prepares(const std::vector<std::string>& names) {
  std::string sql;
  for (const std::string& n : names) {
    absl::StrAppend(&sql, "PREPARE get_", n, " (bytea[]) AS SELECT k, v FROM bench_", n,
                    " WHERE k = ANY($1); PREPARE put_", n,
                    " (bytea[], bytea[]) AS INSERT INTO bench_", n,
                    " (k, v) SELECT * FROM unnest($1, $2) ON CONFLICT (k) DO UPDATE SET v = ",
                    "EXCLUDED.v; PREPARE del_", n, " (bytea[]) AS DELETE FROM bench_", n,
                    " WHERE k = ANY($1); ");
  }
  return sql;
}

// Rows keyed in order (so concurrent transactions lock rows in one order).
using Rows = std::map<std::string, std::string>;

void Run(PGconn* c, const std::string& statement, const std::vector<absl::string_view>& a,
         const std::vector<absl::string_view>* b = nullptr) {
  pg::Params p;
  p.Array(a);
  if (b != nullptr) p.Array(*b);
  pg::Result res = p.RunPrepared(c, statement);
  Check(pg::StatusOf(c, res.get(), statement));
}
void Get(PGconn* c, const std::string& table, const Rows& rows) {
  std::vector<absl::string_view> keys;
  for (const auto& [k, v] : rows) keys.push_back(k);
  Run(c, "get_" + table, keys);
}
void Put(PGconn* c, const std::string& table, const Rows& rows) {
  std::vector<absl::string_view> keys, values;
  for (const auto& [k, v] : rows) {
    keys.push_back(k);
    values.push_back(v);
  }
  Run(c, "put_" + table, keys, &values);
}

std::string Pseudonym(const std::string& person) {
  std::string p = absl::StrCat(person, person);
  p.resize(32, 'x');
  return p;
}

const std::vector<std::string> kIngestTables = {"persons", "entries", "reports", "ledgers",
                                                "providers"};

// The register writes per new report: its entry, the provider's index of
// it, the idempotency index, the person, the ledger; it reads the index, the
// person and the ledger first. Here: those reads as one statement per table
// and those writes as one upsert per table, one transaction per batch.
double RawIngest(const std::vector<std::string>& persons, int64_t n) {
  Database db;
  Check(pg::Exec(MustConnect(db.dsn(), true).get(), CreateTables(kIngestTables).c_str(), "create"));
  const int batch = absl::GetFlag(FLAGS_batch);
  const double secs =
      TimedParallel(absl::GetFlag(FLAGS_clients), n, [&](int, int64_t lo, int64_t hi) {
        pg::Conn c = MustConnect(db.dsn(), true, Prepares(kIngestTables));
        for (int64_t b = lo; b < hi; b += batch) {
          std::map<std::string, Rows> t;
          for (int64_t i = b; i < std::min<int64_t>(hi, b + batch); ++i) {
            const std::string p = Pseudonym(persons[i % persons.size()]);
            const std::string entry = absl::StrCat(p, "2024", i);
            t["persons"][p] = std::string(60, 'p');
            t["entries"][entry] = std::string(60, 'e');
            t["reports"][absl::StrCat("1234567/b", i)] = std::string(80, 'i');
            t["ledgers"][p + "2024"] = std::string(40, 'l');
            t["providers"][absl::StrCat("1234567", entry)] = "";
          }
          Check(pg::Exec(c.get(), "BEGIN", "begin"));
          for (const char* read : {"reports", "persons", "ledgers"}) Get(c.get(), read, t[read]);
          for (const auto& [table, rows] : t) Put(c.get(), table, rows);
          Check(pg::Exec(c.get(), "COMMIT", "commit"));
        }
      });
  return n / secs;
}

std::unique_ptr<Stack> PgStack(const std::string& name, const Database& db,
                               bool with_server = true) {
  return std::make_unique<Stack>(name, with_server, nullptr, db.dsn());
}

void PgIngest(const std::vector<std::string>& persons) {
  const int64_t n = absl::GetFlag(FLAGS_pg_reports);
  const int clients = absl::GetFlag(FLAGS_clients);
  const int batch = absl::GetFlag(FLAGS_batch);
  std::printf("pg ingest: %lld co-payments, %d clients, batches of %d, synchronous_commit on\n",
              static_cast<long long>(n), clients, batch);
  const double raw = RawIngest(persons, n);
  double unary = 0;
  {
    Database db;
    std::unique_ptr<Stack> s = PgStack("pg-unary", db);
    unary = UnaryIngest(*s, persons, n);
  }
  PrintRow("raw PostgreSQL ceiling (same rows, one transaction a batch)", raw, "reports/s");
  PrintRow("SubmitCoPayments over gRPC, register in PostgreSQL", unary, "reports/s");
  std::printf("  ratio SubmitCoPayments / raw ceiling: %.2f (target >= 0.5)\n", unary / raw);
}

// CheckExemption reads the person and the ledgers of the year and appends
// one lookup record (synchronous_commit off). Raw: the same two reads and
// one insert per call, one session per caller.
void PgLookup(const std::vector<std::string>& persons) {
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_lookup_seconds));
  Database raw_db, reg_db;
  const std::vector<std::string> tables = {"persons", "ledgers", "lookups"};
  {
    pg::Conn c = MustConnect(raw_db.dsn(), true, CreateTables(tables) + Prepares(tables));
    Rows people, ledgers;
    for (const std::string& person : persons) {
      people[Pseudonym(person)] = std::string(60, 'p');
      ledgers[Pseudonym(person) + "2024"] = std::string(40, 'l');
    }
    Put(c.get(), "persons", people);
    Put(c.get(), "ledgers", ledgers);
  }
  std::unique_ptr<Stack> s = PgStack("pg-lookup", reg_db);
  std::vector<core::CoPaymentInput> items;
  for (size_t i = 0; i < persons.size(); ++i) {
    items.push_back(ToInput(MakeCoPayment(persons[i], i, i % 2 ? 400000 : 5000)));
  }
  if (auto r = s->reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  std::vector<pg::Conn> sessions;
  for (int t = 0; t < in_flight; ++t) {
    sessions.push_back(MustConnect(raw_db.dsn(), false, Prepares(tables)));
  }
  grpc::GenericStub stub(s->channel);
  constexpr int kWindows = 4;
  std::printf("pg lookup: %d calls in flight, %d s each in %d alternating windows, %zu people\n",
              in_flight, absl::GetFlag(FLAGS_lookup_seconds), kWindows, persons.size());
  std::atomic<int64_t> seq{0};
  Samples raw, check;
  for (int w = 0; w < kWindows; ++w) {
    Hammer(
        in_flight, length / kWindows,
        [&](int t, int64_t i) {
          const std::string p = Pseudonym(persons[(t * 7919 + i * 31) % persons.size()]);
          PGconn* c = sessions[t].get();
          Get(c, "persons", {{p, ""}});
          Get(c, "ledgers", {{p + "2024", ""}});
          Put(c, "lookups", {{absl::StrCat(p, seq++), std::string(40, 'a')}});
        },
        &raw);
    HammerCalls(
        in_flight, length / kWindows,
        [&](int t, int64_t i, std::function<void()> done) {
          StartCheckExemption(stub, persons, t, i, w, std::move(done));
        },
        &check);
  }
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n",
              "raw PostgreSQL (2 reads, 1 insert)", raw.per_second(), raw.Percentile(50),
              raw.Percentile(99));
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "CheckExemption",
              check.per_second(), check.Percentile(50), check.Percentile(99));
  std::printf("  ratio CheckExemption / raw: %.2f (p99 target < 20 ms)\n",
              check.per_second() / raw.per_second());
}

// An issuance chunk decides 1,000 due ledgers: it reads their markers in key
// order and the ledgers, and writes a card, a payout, the ledger and the
// payout's index by person and removes the marker, in one transaction.
double RawIssuance(int64_t due) {
  Database db;
  const std::vector<std::string> tables = {"due", "ledgers", "cards", "payouts", "person_payouts"};
  pg::Conn c = MustConnect(db.dsn(), true, CreateTables(tables) + Prepares(tables));
  for (int64_t b = 0; b < due; b += 10000) {
    Rows markers, ledgers;
    for (int64_t i = b; i < std::min<int64_t>(due, b + 10000); ++i) {
      const std::string k = absl::StrFormat("2024%032d", i);
      markers[k] = "";
      ledgers[k] = std::string(40, 'l');
    }
    Put(c.get(), "due", markers);
    Put(c.get(), "ledgers", ledgers);
  }
  Check(pg::Exec(c.get(),
                 "PREPARE next_due (bytea) AS SELECT k FROM bench_due WHERE k > $1 ORDER BY k "
                 "LIMIT 1000",
                 "prepare"));
  const absl::Time start = absl::Now();
  std::string after;
  int64_t decided = 0;
  for (;;) {
    pg::Params p;
    p.Bytea(after);
    pg::Result res = p.RunPrepared(c.get(), "next_due");
    Check(pg::StatusOf(c.get(), res.get(), "next_due"));
    const int rows = PQntuples(res.get());
    if (rows == 0) break;
    Rows keys, cards, payouts, person_payouts;
    for (int r = 0; r < rows; ++r) {
      const std::string k(pg::Cell(res.get(), r, 0));
      keys[k] = std::string(40, 'L');
      cards[k] = std::string(40, 'c');
      payouts[absl::StrCat("run-000001", k)] = std::string(40, 'p');
      person_payouts[k + "run-000001"] = "";
    }
    after = keys.rbegin()->first;
    Check(pg::Exec(c.get(), "BEGIN", "begin"));
    Get(c.get(), "ledgers", keys);
    Put(c.get(), "ledgers", keys);
    Put(c.get(), "cards", cards);
    Put(c.get(), "payouts", payouts);
    Put(c.get(), "person_payouts", person_payouts);
    std::vector<absl::string_view> gone;
    for (const auto& [k, v] : keys) gone.push_back(k);
    Run(c.get(), "del_due", gone);
    Check(pg::Exec(c.get(), "COMMIT", "commit"));
    decided += rows;
  }
  return decided / absl::ToDoubleSeconds(absl::Now() - start);
}

void PgIssuance() {
  const int64_t due = absl::GetFlag(FLAGS_pg_ledgers);
  std::printf("pg issuance: %lld due ledgers\n", static_cast<long long>(due));
  const double raw = RawIssuance(due);
  Database db;
  std::unique_ptr<Stack> s = PgStack("pg-issuance", db, /*with_server=*/false);
  IdGenerator ids;
  for (int64_t b = 0; b < due; b += 10000) {
    std::vector<core::CoPaymentInput> items;
    for (int64_t i = b; i < std::min(due, b + 10000); ++i) {
      items.push_back(ToInput(MakeCoPayment(ids.Next(), i, 320000)));
    }
    if (auto r = s->reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  }
  const absl::Time t0 = absl::Now();
  auto run = s->job->Run(absl::CivilDay(2024, 12, 1), false);
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!run.ok()) Stack::Die(run.status());
  PrintRow("raw PostgreSQL ceiling (same rows, 1,000 a transaction)", raw, "due ledgers/s");
  PrintRow(absl::StrCat("issuance run: ", run->cards_issued, " cards, ", run->payouts, " payouts"),
           run->ledgers_examined / secs, "due ledgers/s (target >= 20,000)");
  std::printf("  ratio issuance / raw ceiling: %.2f\n", run->ledgers_examined / secs / raw);
}

}  // namespace

void Postgres() {
  std::printf("pg: PostgreSQL %s\n", absl::GetFlag(FLAGS_postgres_dsn).empty()
                                         ? "of the bench's own (test server, fsync off)"
                                         : "named by --postgres_dsn");
  const auto persons = MakeIds(std::max<int64_t>(1, absl::GetFlag(FLAGS_pg_reports) / 10));
  PgIngest(persons);
  std::fflush(stdout);
  PgLookup(MakeIds(20000));
  std::fflush(stdout);
  PgIssuance();
}

}  // namespace frikort::bench
