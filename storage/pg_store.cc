#include "storage/pg_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <numeric>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "storage/crypto.h"
#include "storage/pg_store_conn.h"
#include "storage/pg_store_lease.h"

namespace frikort::storage {
namespace {

using pg::Cell;
using pg::Conn;
using pg::Exec;
using pg::Params;
using pg::PooledConn;
using pg::Result;
using pg::StatusOf;

// Held (per transaction) while the schema is checked or created, so two
// frikortd starting on one empty database do not both create it.
constexpr int64_t kSchemaLockId = 0x6672696b6f7274;  // "frikort"

// The statements of one table, by the names every session prepares them
// under (PrepareAll).
struct TableSql {
  std::string get, multi_get, scan_from, scan_after, scan_from_below, scan_after_below, remove,
      upsert;
};

// The statements of table `t`; their PREPAREs appended to `*prepare`.
TableSql MakeTableSql(Table t, int page_rows, std::string* prepare) {
  const std::string name = absl::StrCat("frikort_", TableName(t));
  const std::string scan = absl::StrCat("SELECT k, v FROM ", name, " WHERE k ");
  const std::string order = absl::StrCat(" ORDER BY k LIMIT ", page_rows);
  TableSql s;
  auto add = [&](std::string* field, absl::string_view what, absl::string_view types,
                 absl::string_view sql) {
    *field = absl::StrCat(TableName(t), "_", what);
    absl::StrAppend(prepare, "PREPARE ", *field, " (", types, ") AS ", sql, "; ");
  };
  add(&s.get, "get", "bytea", absl::StrCat("SELECT v FROM ", name, " WHERE k = $1"));
  add(&s.multi_get, "multi_get", "bytea[]",
      absl::StrCat("SELECT k, v FROM ", name, " WHERE k = ANY($1)"));
  add(&s.scan_from, "scan_from", "bytea", absl::StrCat(scan, ">= $1", order));
  add(&s.scan_after, "scan_after", "bytea", absl::StrCat(scan, "> $1", order));
  add(&s.scan_from_below, "scan_from_below", "bytea, bytea",
      absl::StrCat(scan, ">= $1 AND k < $2", order));
  add(&s.scan_after_below, "scan_after_below", "bytea, bytea",
      absl::StrCat(scan, "> $1 AND k < $2", order));
  add(&s.remove, "remove", "bytea[]", absl::StrCat("DELETE FROM ", name, " WHERE k = ANY($1)"));
  add(&s.upsert, "upsert", "bytea[], bytea[]",
      absl::StrCat("INSERT INTO ", name, " (k, v) SELECT * FROM unnest($1, $2) ",
                   "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"));
  return s;
}

std::array<TableSql, kNumTables> MakeAllSql(int page_rows, std::string* prepare) {
  std::array<TableSql, kNumTables> all;
  for (int t = 0; t < kNumTables; ++t)
    all[t] = MakeTableSql(static_cast<Table>(t), page_rows, prepare);
  return all;
}

// The first key after every key that starts with `prefix`; nullopt when
// there is none (an empty prefix, or one of 0xff bytes only).
std::optional<std::string> PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::nullopt;
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

// ---- reads on one connection ----

absl::StatusOr<std::optional<std::string>> GetOn(PGconn* conn, const TableSql& sql,
                                                 absl::string_view key) {
  Params p;
  p.Bytea(key);
  Result res = p.RunPrepared(conn, sql.get);
  if (absl::Status s = StatusOf(conn, res.get(), "read"); !s.ok()) return s;
  if (PQntuples(res.get()) == 0) return std::nullopt;
  return std::string(Cell(res.get(), 0, 0));
}

absl::Status MultiGetOn(PGconn* conn, const TableSql& sql, absl::Span<const absl::string_view> keys,
                        bool sorted,
                        const std::function<void(size_t, const absl::string_view*)>& found) {
  Params p;
  p.Array(keys);
  Result res = p.RunPrepared(conn, sql.multi_get);
  if (absl::Status s = StatusOf(conn, res.get(), "read"); !s.ok()) return s;
  // The rows come in no particular order: each is matched to its keys (a
  // key asked twice is answered twice) through the keys' sorted order.
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  if (!sorted) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  }
  std::vector<std::optional<absl::string_view>> values(keys.size());
  const int rows = PQntuples(res.get());
  for (int r = 0; r < rows; ++r) {
    const absl::string_view k = Cell(res.get(), r, 0);
    auto it = std::lower_bound(order.begin(), order.end(), k,
                               [&](size_t i, absl::string_view key) { return keys[i] < key; });
    for (; it != order.end() && keys[*it] == k; ++it) values[*it] = Cell(res.get(), r, 1);
  }
  for (size_t i = 0; i < keys.size(); ++i) found(i, values[i].has_value() ? &*values[i] : nullptr);
  return absl::OkStatus();
}

// One page of a scan: rows from (or after) `from`, below `end` when set.
absl::StatusOr<Result> ScanPageOn(PGconn* conn, const TableSql& sql, absl::string_view from,
                                  bool inclusive, const std::optional<std::string>& end) {
  Params p;
  p.Bytea(from);
  if (end.has_value()) p.Bytea(*end);
  const std::string& stmt = end.has_value()
                                ? (inclusive ? sql.scan_from_below : sql.scan_after_below)
                                : (inclusive ? sql.scan_from : sql.scan_after);
  Result res = p.RunPrepared(conn, stmt);
  if (absl::Status s = StatusOf(conn, res.get(), "scan"); !s.ok()) return s;
  return res;
}

// A scan as pages of `page_rows`, each read by `page` and visited with no
// connection held (a visitor may read the store again).
absl::Status ScanPages(const ScanRange& range, int page_rows,
                       const std::function<absl::StatusOr<Result>(
                           absl::string_view, bool, const std::optional<std::string>&)>& page,
                       const std::function<bool(absl::string_view, absl::string_view)>& visit) {
  const std::optional<std::string> end = PrefixEnd(range.prefix);
  std::string from = range.start.empty() ? range.prefix : range.start;
  bool inclusive = true;
  for (;;) {
    absl::StatusOr<Result> res = page(from, inclusive, end);
    if (!res.ok()) return res.status();
    const int rows = PQntuples(res->get());
    for (int r = 0; r < rows; ++r) {
      const absl::string_view k = Cell(res->get(), r, 0);
      if (!absl::StartsWith(k, range.prefix)) return absl::OkStatus();
      if (!visit(k, Cell(res->get(), r, 1))) return absl::OkStatus();
    }
    if (rows < page_rows) return absl::OkStatus();
    from = std::string(Cell(res->get(), rows - 1, 0));
    inclusive = false;
  }
}

// A REPEATABLE READ, READ ONLY transaction on a connection of its own: every
// read sees the state of its first statement. A snapshot that could not be
// taken answers every read with why.
class PgSnapshot final : public StoreReader {
 public:
  // `lease`: not Ok when the store may no longer read (every read answers it).
  PgSnapshot(pg::Pool* pool, const std::array<TableSql, kNumTables>* sql, int page_rows,
             absl::Status lease)
      : sql_(sql), page_rows_(page_rows), conn_(pool, nullptr) {
    if (!lease.ok()) {
      broken_ = std::move(lease);
      return;
    }
    absl::StatusOr<Conn> conn = pool->Take();
    if (!conn.ok()) {
      broken_ = conn.status();
      return;
    }
    conn_ = PooledConn(pool, *std::move(conn));
    broken_ = Exec(conn_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "snapshot");
    // The snapshot is taken by the first statement of the transaction.
    if (broken_.ok()) broken_ = Exec(conn_.get(), "SELECT 1", "snapshot");
  }
  ~PgSnapshot() override {
    if (conn_.get() != nullptr && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
      Exec(conn_.get(), "ROLLBACK", "snapshot").IgnoreError();
    }
  }

  absl::StatusOr<std::optional<std::string>> Get(Table table, absl::string_view key) override {
    absl::MutexLock l(&mu_);
    if (!broken_.ok()) return broken_;
    return GetOn(conn_.get(), Sql(table), key);
  }
  absl::Status MultiGet(
      Table table, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    absl::MutexLock l(&mu_);
    if (!broken_.ok()) return broken_;
    return MultiGetOn(conn_.get(), Sql(table), keys, sorted, found);
  }
  absl::Status Scan(
      Table table, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    return ScanPages(
        range, page_rows_,
        [&](absl::string_view from, bool inclusive,
            const std::optional<std::string>& end) -> absl::StatusOr<Result> {
          absl::MutexLock l(&mu_);
          if (!broken_.ok()) return broken_;
          return ScanPageOn(conn_.get(), Sql(table), from, inclusive, end);
        },
        visit);
  }

 private:
  const TableSql& Sql(Table t) const { return (*sql_)[static_cast<int>(t)]; }

  const std::array<TableSql, kNumTables>* const sql_;
  const int page_rows_;
  absl::Mutex mu_;
  PooledConn conn_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

class PgStore final : public Store {
 public:
  explicit PgStore(const PgStoreOptions& options)
      : options_(options),
        sql_(MakeAllSql(options.scan_page_rows, &prepare_)),
        pool_(options.dsn, prepare_) {}

  ~PgStore() override {
    if (renewer_.joinable()) {
      stop_renewing_.Notify();
      renewer_.join();
    }
    if (token_ != 0) {
      // A pooled connection may be stale (the server restarted): then once
      // more on a new one.
      absl::StatusOr<PooledConn> conn = Take();
      if (!conn.ok() || !pg::ReleaseLease(conn->get(), token_).ok()) {
        Conn fresh;
        if (Reconnect(&fresh, /*synchronous=*/true).ok()) {
          pg::ReleaseLease(fresh.get(), token_).IgnoreError();
        }
      }
    }
  }

  absl::Status Open();

  absl::StatusOr<std::optional<std::string>> Get(Table table, absl::string_view key) override {
    absl::StatusOr<PooledConn> conn = TakeForRead();
    if (!conn.ok()) return conn.status();
    return GetOn(conn->get(), Sql(table), key);
  }
  absl::Status MultiGet(
      Table table, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    if (keys.empty()) return absl::OkStatus();
    absl::StatusOr<PooledConn> conn = TakeForRead();
    if (!conn.ok()) return conn.status();
    return MultiGetOn(conn->get(), Sql(table), keys, sorted, found);
  }
  // Each page is one statement of its own: a scan longer than a page may see
  // a commit that landed between two pages (Snapshot() for one state).
  absl::Status Scan(
      Table table, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    return ScanPages(
        range, options_.scan_page_rows,
        [&](absl::string_view from, bool inclusive,
            const std::optional<std::string>& end) -> absl::StatusOr<Result> {
          absl::StatusOr<PooledConn> conn = TakeForRead();
          if (!conn.ok()) return conn.status();
          return ScanPageOn(conn->get(), Sql(table), from, inclusive, end);
        },
        visit);
  }

  absl::Status Commit(const WriteSet& writes) override;

  std::unique_ptr<StoreReader> Snapshot() override {
    return std::make_unique<PgSnapshot>(&pool_, &sql_, options_.scan_page_rows, LeaseHeld());
  }

  absl::Status AppendLookups(
      absl::Span<const std::pair<std::string, std::string>> records) override;
  absl::Status SyncLookups() override;

  bool remote() const override { return true; }
  uint64_t ApproximateSizeBytes() override;
  uint64_t PendingCompactionBytes() override { return 0; }

  absl::StatusOr<BackupInfo> Backup(const std::string&, absl::string_view) override {
    return absl::FailedPreconditionError(
        "backup: a register in PostgreSQL is backed up with PostgreSQL's own tools "
        "(pg_basebackup with WAL archiving), not by frikortd");
  }

 private:
  const TableSql& Sql(Table t) const { return sql_[static_cast<int>(t)]; }
  absl::StatusOr<PooledConn> Take() {
    absl::StatusOr<Conn> c = pool_.Take();
    if (!c.ok()) return c.status();
    return PooledConn(&pool_, *std::move(c));
  }
  // A connection for the register's reads: only while the lease is held.
  absl::StatusOr<PooledConn> TakeForRead() {
    if (absl::Status s = LeaseHeld(); !s.ok()) return s;
    return Take();
  }
  // Ok while the lease is known to be held: a renewal or commit fence that
  // began less than lease_ttl ago succeeded (the row's expiry, set by the
  // server after that start, is later still).
  absl::Status LeaseHeld() const {
    if (absl::Now() < absl::FromUnixNanos(lease_until_ns_.load(std::memory_order_acquire))) {
      return absl::OkStatus();
    }
    return absl::UnavailableError(
        "the register's writer lease was not renewed in time: this frikortd no longer reads "
        "nor writes it until it has the lease again");
  }
  // A fence that began at `start` succeeded.
  void LeaseRenewed(absl::Time start) {
    lease_until_ns_.store(absl::ToUnixNanos(start + options_.lease_ttl), std::memory_order_release);
  }
  // `conn`, connected again if it was lost.
  absl::Status Reconnect(Conn* conn, bool synchronous) {
    if (*conn != nullptr && PQstatus(conn->get()) == CONNECTION_OK) return absl::OkStatus();
    absl::StatusOr<Conn> c = pg::Connect(options_.dsn, synchronous, prepare_);
    if (!c.ok()) return c.status();
    *conn = *std::move(c);
    return absl::OkStatus();
  }
  absl::Status ApplyWrites(PGconn* conn, const WriteSet& writes);
  // Extends the lease every third of its time until the store closes. The
  // first failure goes to options_.on_lost and ends the renewals (the owner
  // drops the store); without on_lost it is left to the next commit's fence.
  void RenewLoop() {
    Conn conn;
    while (!stop_renewing_.WaitForNotificationWithTimeout(options_.lease_ttl / 3)) {
      const absl::Time start = absl::Now();
      absl::Status s = Reconnect(&conn, /*synchronous=*/true);
      if (s.ok()) s = pg::FenceLease(conn.get(), token_, options_.lease_ttl);
      if (s.ok()) {
        LeaseRenewed(start);
      } else if (options_.on_lost) {
        options_.on_lost(s);
        return;
      }
    }
  }

  const PgStoreOptions options_;
  std::string prepare_;  // every session's PREPAREs (before sql_: MakeAllSql fills it)
  const std::array<TableSql, kNumTables> sql_;
  pg::Pool pool_;
  absl::Mutex commit_mu_;
  Conn commit_conn_ ABSL_GUARDED_BY(commit_mu_);
  absl::Mutex log_mu_;
  Conn log_conn_ ABSL_GUARDED_BY(log_mu_);  // synchronous_commit off
  std::atomic<uint64_t> appended_{0};       // AppendLookups calls that succeeded
  absl::Mutex sync_mu_;
  uint64_t synced_ ABSL_GUARDED_BY(sync_mu_) = 0;
  int64_t token_ = 0;                       // the writer lease's fencing token, set by Open
  std::atomic<int64_t> lease_until_ns_{0};  // LeaseHeld until then (unix ns)
  absl::Notification stop_renewing_;
  std::thread renewer_;
};

absl::Status PgStore::Open() {
  // A session without the prepared statements: their tables may not exist yet.
  absl::StatusOr<Conn> conn = pg::Connect(options_.dsn, /*synchronous=*/true);
  if (!conn.ok()) return conn.status();
  PGconn* c = conn->get();
  Result exists(PQexec(c, "SELECT to_regclass('frikort_schema') IS NOT NULL"));
  if (absl::Status s = StatusOf(c, exists.get(), "cannot read the register's schema"); !s.ok()) {
    return s;
  }
  if (PQntuples(exists.get()) == 1 && absl::string_view(PQgetvalue(exists.get(), 0, 0)) == "f") {
    // An empty database: the schema is created in one transaction, under a
    // lock and only where missing (another frikortd may be creating it).
    std::string create =
        absl::StrCat("BEGIN; SELECT pg_advisory_xact_lock(", kSchemaLockId,
                     "); CREATE TABLE IF NOT EXISTS frikort_schema (version int8 NOT NULL); "
                     "CREATE TABLE IF NOT EXISTS frikort_lookup_sync (n int8 NOT NULL); ",
                     pg::kCreateLeaseTable);
    for (int t = 0; t < kNumTables; ++t) {
      absl::StrAppend(&create, "CREATE TABLE IF NOT EXISTS frikort_",
                      TableName(static_cast<Table>(t)),
                      " (k bytea PRIMARY KEY, v bytea NOT NULL); ");
    }
    absl::StrAppend(&create,
                    "INSERT INTO frikort_lookup_sync SELECT 0 WHERE NOT EXISTS "
                    "(SELECT FROM frikort_lookup_sync); INSERT INTO frikort_schema SELECT ",
                    kPgSchemaVersion, " WHERE NOT EXISTS (SELECT FROM frikort_schema); COMMIT");
    if (absl::Status s = Exec(c, create.c_str(), "cannot create the register's schema"); !s.ok()) {
      if (PQtransactionStatus(c) == PQTRANS_INERROR) Exec(c, "ROLLBACK", "schema").IgnoreError();
      return s;
    }
  }
  Result res(PQexec(c, "SELECT version FROM frikort_schema"));
  if (absl::Status s = StatusOf(c, res.get(), "cannot read the register's schema version");
      !s.ok()) {
    return s;
  }
  int64_t version = 0;
  if (PQntuples(res.get()) != 1 ||
      !absl::SimpleAtoi(absl::string_view(PQgetvalue(res.get(), 0, 0)), &version) || version < 1) {
    return absl::DataLossError("the register in PostgreSQL has no readable schema version");
  }
  if (version > kPgSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the register in PostgreSQL has schema version ", version, ", newer than this frikortd's (",
        kPgSchemaVersion, "); use the frikortd that wrote it"));
  }
  absl::StatusOr<int64_t> token = pg::AcquireLease(c, pg::LeaseHolderName(), options_.lease_ttl,
                                                   options_.lease_wait, options_.reclaim_own_lease);
  if (!token.ok()) return token.status();
  token_ = *token;
  // The taking statement ran a moment ago; a tenth of the lease's time is
  // the margin for its round trip.
  LeaseRenewed(absl::Now() - options_.lease_ttl / 10);
  if (options_.renew_lease) renewer_ = std::thread([this] { RenewLoop(); });
  return absl::OkStatus();
}

absl::Status PgStore::ApplyWrites(PGconn* conn, const WriteSet& writes) {
  std::vector<absl::string_view> removed, keys, values;
  for (int t = 0; t < kNumTables; ++t) {
    removed.clear();
    keys.clear();
    values.clear();
    for (const WriteSet::Write& w : writes.tables[t]) {
      if (w.value == nullptr) {
        removed.push_back(w.key);
      } else {
        keys.push_back(w.key);
        values.push_back(*w.value);
      }
    }
    if (!removed.empty()) {
      Params p;
      p.Array(removed);
      Result res = p.RunPrepared(conn, sql_[t].remove);
      if (absl::Status s = StatusOf(conn, res.get(), "commit"); !s.ok()) return s;
    }
    if (!keys.empty()) {
      Params p;
      p.Array(keys);
      p.Array(values);
      Result res = p.RunPrepared(conn, sql_[t].upsert);
      if (absl::Status s = StatusOf(conn, res.get(), "commit"); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status PgStore::Commit(const WriteSet& writes) {
  if (!writes.tables[static_cast<int>(Table::kLookups)].empty()) {
    return absl::InvalidArgumentError("lookups: written through AppendLookups only");
  }
  if (writes.empty()) return absl::OkStatus();
  absl::MutexLock l(&commit_mu_);
  if (absl::Status s = Reconnect(&commit_conn_, options_.sync_writes); !s.ok()) return s;
  PGconn* c = commit_conn_.get();
  const absl::Time start = absl::Now();
  absl::Status s = Exec(c, "BEGIN", "commit");
  // First: the lease's row stays locked until the commit, so no other
  // writer can take it over in between.
  if (s.ok()) s = pg::FenceLease(c, token_, options_.lease_ttl);
  if (s.ok()) LeaseRenewed(start);
  if (s.ok()) s = ApplyWrites(c, writes);
  if (s.ok()) {
    s = Exec(c, "COMMIT", "commit");
    // A connection lost while committing leaves the outcome unknown: the
    // caller's resend (and the idempotency index) resolves it.
    if (!s.ok() && PQstatus(c) == CONNECTION_BAD) {
      return absl::UnavailableError(
          absl::StrCat(s.message(), " (the commit's outcome is unknown)"));
    }
    return s;
  }
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
    Exec(c, "ROLLBACK", "commit").IgnoreError();
  }
  return s;
}

absl::Status PgStore::AppendLookups(absl::Span<const std::pair<std::string, std::string>> records) {
  if (records.empty()) return absl::OkStatus();
  std::vector<absl::string_view> keys, values;
  keys.reserve(records.size());
  values.reserve(records.size());
  for (const auto& [k, v] : records) {
    keys.push_back(k);
    values.push_back(v);
  }
  absl::MutexLock l(&log_mu_);
  if (absl::Status s = Reconnect(&log_conn_, /*synchronous=*/false); !s.ok()) return s;
  Params p;
  p.Array(keys);
  p.Array(values);
  Result res = p.RunPrepared(log_conn_.get(), Sql(Table::kLookups).upsert);
  if (absl::Status s = StatusOf(log_conn_.get(), res.get(), "lookup log write"); !s.ok()) return s;
  appended_.fetch_add(1, std::memory_order_release);
  return absl::OkStatus();
}

// One synchronous commit: PostgreSQL flushes (and, with synchronous
// standbys, replicates) its WAL up to that commit, with every append that
// returned before it.
absl::Status PgStore::SyncLookups() {
  absl::MutexLock l(&sync_mu_);
  const uint64_t appended = appended_.load(std::memory_order_acquire);
  if (appended == synced_) return absl::OkStatus();
  absl::StatusOr<PooledConn> conn = Take();
  if (!conn.ok()) return conn.status();
  if (absl::Status s =
          Exec(conn->get(), "UPDATE frikort_lookup_sync SET n = n + 1", "lookup log sync");
      !s.ok()) {
    return s;
  }
  synced_ = appended;
  return absl::OkStatus();
}

uint64_t PgStore::ApproximateSizeBytes() {
  absl::StatusOr<PooledConn> conn = Take();
  if (!conn.ok()) return 0;
  std::string sql = "SELECT (0";
  for (int t = 0; t < kNumTables; ++t) {
    absl::StrAppend(&sql, " + pg_total_relation_size('frikort_", TableName(static_cast<Table>(t)),
                    "')");
  }
  absl::StrAppend(&sql, ")::text");
  Result res(PQexec(conn->get(), sql.c_str()));
  uint64_t bytes = 0;
  if (!StatusOf(conn->get(), res.get(), "size").ok() || PQntuples(res.get()) != 1 ||
      !absl::SimpleAtoi(absl::string_view(PQgetvalue(res.get(), 0, 0)), &bytes)) {
    return 0;
  }
  return bytes;
}

}  // namespace

bool IsLeaseHeldElsewhere(const absl::Status& s) {
  return s.GetPayload(pg::kLeaseHeldPayload).has_value();
}

absl::Status CheckPgRegisterKey(const PgStoreOptions& options, absl::string_view secret) {
  absl::StatusOr<Crypto> crypto = Crypto::Create(secret);
  if (!crypto.ok()) return crypto.status();
  absl::StatusOr<Conn> conn = pg::Connect(options.dsn, /*synchronous=*/true);
  if (!conn.ok()) return conn.status();
  // The register's own key check (register.cc writes it first of all).
  Params p;
  p.Bytea("secret_check");
  Result res = p.Run(conn->get(), "SELECT v FROM frikort_meta WHERE k = $1");
  if (absl::Status s = StatusOf(conn->get(), res.get(), "cannot read the register's key check");
      !s.ok()) {
    return s;
  }
  if (PQntuples(res.get()) == 1 && Cell(res.get(), 0, 0) != crypto->SecretCheck()) {
    return absl::FailedPreconditionError(
        "the pseudonym key does not match the one the register in PostgreSQL was created with; "
        "refusing to stand by for it with another key");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const PgStoreOptions& options) {
  if (options.dsn.empty()) return absl::InvalidArgumentError("postgres_dsn: must not be empty");
  if (options.scan_page_rows < 1) {
    return absl::InvalidArgumentError("scan_page_rows: must be at least 1");
  }
  auto store = std::make_unique<PgStore>(options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return store;
}

}  // namespace frikort::storage
