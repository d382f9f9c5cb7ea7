#include "storage/pg_store_conn.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace frikort::storage::pg {
namespace {

constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
constexpr Oid kByteaArrayOid = 1001;

// Idle read connections kept for the next read; more are opened when needed.
constexpr size_t kMaxIdleConnections = 16;

// `text` on one line: each run of white space (newlines, tabs) one space.
std::string OneLine(absl::string_view text) {
  std::string out;
  for (char c : absl::StripAsciiWhitespace(text)) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// libpq's own errors (connecting, a lost connection) name hosts and ports,
// never the password; the server's are reduced to their primary message and
// SQLSTATE: the detail lines may quote key values, which hold pseudonyms.
absl::Status ConnectionError(PGconn* conn, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", OneLine(PQerrorMessage(conn))));
}

}  // namespace

absl::Status StatusOf(PGconn* conn, const PGresult* res, absl::string_view what) {
  if (res == nullptr) return ConnectionError(conn, what);
  const ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return absl::OkStatus();
  const char* state_field = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  const absl::string_view state = state_field != nullptr ? state_field : "";
  if (PQstatus(conn) == CONNECTION_BAD || state.empty()) return ConnectionError(conn, what);
  const std::string message = absl::StrCat(
      what, ": ", primary != nullptr ? OneLine(primary) : "no message", " (SQLSTATE ", state, ")");
  // Connection, resources (disk full), operator intervention (shutdown,
  // failover), system errors: the database may come back.
  for (absl::string_view cls : {"08", "53", "57", "58"}) {
    if (absl::StartsWith(state, cls)) return absl::UnavailableError(message);
  }
  if (state == "XX001" || state == "XX002") return absl::DataLossError(message);
  return absl::InternalError(message);
}

absl::Status Exec(PGconn* conn, const char* sql, absl::string_view what) {
  Result res(PQexec(conn, sql));
  return StatusOf(conn, res.get(), what);
}

namespace {

void PutUint32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

// A bytea[] in PostgreSQL's binary array format.
std::string ByteaArray(absl::Span<const absl::string_view> items) {
  std::string out;
  size_t bytes = 20;
  for (absl::string_view s : items) bytes += 4 + s.size();
  out.reserve(bytes);
  PutUint32(&out, items.empty() ? 0 : 1);  // dimensions
  PutUint32(&out, 0);                      // no nulls
  PutUint32(&out, kByteaOid);
  if (!items.empty()) {
    PutUint32(&out, static_cast<uint32_t>(items.size()));
    PutUint32(&out, 1);  // lower bound
  }
  for (absl::string_view s : items) {
    PutUint32(&out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
  }
  return out;
}

}  // namespace

void Params::Bytea(absl::string_view b) { Add(kByteaOid, b); }
void Params::Text(absl::string_view t) { Add(kTextOid, t); }
void Params::Int8(int64_t v) {
  std::string b;
  PutUint32(&b, static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32));
  PutUint32(&b, static_cast<uint32_t>(v));
  owned_.push_back(std::move(b));
  Add(kInt8Oid, owned_.back());
}
void Params::Bool(bool v) {
  owned_.push_back(std::string(1, v ? '\1' : '\0'));
  Add(kBoolOid, owned_.back());
}
void Params::Array(absl::Span<const absl::string_view> items) {
  owned_.push_back(ByteaArray(items));
  Add(kByteaArrayOid, owned_.back());
}
Result Params::Run(PGconn* conn, const std::string& sql) const {
  return Result(PQexecParams(conn, sql.c_str(), static_cast<int>(values_.size()), types_.data(),
                             values_.data(), lengths_.data(), formats_.data(), 1));
}
Result Params::RunPrepared(PGconn* conn, const std::string& name) const {
  return Result(PQexecPrepared(conn, name.c_str(), static_cast<int>(values_.size()), values_.data(),
                               lengths_.data(), formats_.data(), 1));
}
void Params::Add(Oid type, absl::string_view b) {
  types_.push_back(type);
  values_.push_back(b.data());
  lengths_.push_back(static_cast<int>(b.size()));
  formats_.push_back(1);
}

absl::StatusOr<Conn> Connect(const std::string& dsn, bool synchronous, const std::string& setup) {
  Conn conn(PQconnectdb(dsn.c_str()));
  if (conn == nullptr) return absl::ResourceExhaustedError("postgres: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return ConnectionError(conn.get(), "cannot connect to PostgreSQL");
  }
  // The server's notices (a shutdown's warning, say) are not frikortd's log.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  const std::string sql =
      absl::StrCat("SET synchronous_commit = ", synchronous ? "on" : "off", "; ", setup);
  if (absl::Status s = Exec(conn.get(), sql.c_str(), "cannot set up the PostgreSQL session");
      !s.ok()) {
    return s;
  }
  return conn;
}

absl::StatusOr<Conn> Pool::Take() {
  {
    absl::MutexLock l(&mu_);
    if (!idle_.empty()) {
      Conn c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return Connect(dsn_, /*synchronous=*/true, setup_);
}

void Pool::Give(Conn c) {
  if (c == nullptr || PQstatus(c.get()) != CONNECTION_OK ||
      PQtransactionStatus(c.get()) != PQTRANS_IDLE) {
    return;  // closed: the next Take connects again
  }
  absl::MutexLock l(&mu_);
  if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
}

}  // namespace frikort::storage::pg
