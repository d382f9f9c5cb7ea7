// The PostgreSQL store's connections (internal to storage/): libpq handles
// that free themselves, binary statement parameters, errors as absl::Status,
// and a pool of connections for reads.
//
// Errors: Unavailable for a lost or refused connection and for a server out
// of resources or shutting down, DataLoss for damaged data, Internal for the
// rest. Messages hold libpq's connection error (hosts and ports, never the
// password) or the server's primary message and SQLSTATE, never its detail
// lines, which may quote key values (pseudonyms).
//
// Thread safety: a PGconn is used by one thread at a time; Pool may be used
// from any thread.
#ifndef FRIKORT_STORAGE_PG_STORE_CONN_H_
#define FRIKORT_STORAGE_PG_STORE_CONN_H_

#include <libpq-fe.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace frikort::storage::pg {

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;
struct ConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnFree>;

// The outcome of a statement on `conn` (res nullptr: libpq could not send
// it), prefixed with `what`.
absl::Status StatusOf(PGconn* conn, const PGresult* res, absl::string_view what);
// Runs `sql` (text, no parameters; several statements allowed).
absl::Status Exec(PGconn* conn, const char* sql, absl::string_view what);

// A session on `dsn` with synchronous_commit on or off, set up by `setup`
// (statements run once, such as PREPAREs); the server's notices are dropped.
absl::StatusOr<Conn> Connect(const std::string& dsn, bool synchronous,
                             const std::string& setup = "");

// Binary parameters of one statement; results come back binary too.
class Params {
 public:
  void Bytea(absl::string_view b);
  void Text(absl::string_view t);
  void Int8(int64_t v);
  void Bool(bool v);
  void Array(absl::Span<const absl::string_view> items);  // bytea[]
  Result Run(PGconn* conn, const std::string& sql) const;
  // Runs the statement the session prepared as `name`.
  Result RunPrepared(PGconn* conn, const std::string& name) const;

 private:
  void Add(Oid type, absl::string_view b);
  std::deque<std::string> owned_;  // stable addresses
  std::vector<Oid> types_;
  std::vector<const char*> values_;
  std::vector<int> lengths_, formats_;
};

inline absl::string_view Cell(const PGresult* res, int row, int col) {
  return absl::string_view(PQgetvalue(res, row, col), PQgetlength(res, row, col));
}

// Connections (synchronous_commit on) taken for one statement or one
// snapshot, kept for the next when given back usable and idle.
class Pool {
 public:
  Pool(std::string dsn, std::string setup) : dsn_(std::move(dsn)), setup_(std::move(setup)) {}
  absl::StatusOr<Conn> Take();
  void Give(Conn c);

 private:
  const std::string dsn_;
  const std::string setup_;
  absl::Mutex mu_;
  std::vector<Conn> idle_ ABSL_GUARDED_BY(mu_);
};

// A connection taken from a pool, given back on destruction.
class PooledConn {
 public:
  PooledConn(Pool* pool, Conn conn) : pool_(pool), conn_(std::move(conn)) {}
  PooledConn(PooledConn&&) = default;
  PooledConn& operator=(PooledConn&&) = default;
  ~PooledConn() {
    if (conn_ != nullptr) pool_->Give(std::move(conn_));
  }
  PGconn* get() const { return conn_.get(); }

 private:
  Pool* pool_;
  Conn conn_;
};

}  // namespace frikort::storage::pg

#endif  // FRIKORT_STORAGE_PG_STORE_CONN_H_
