#include "storage/pg_store_lease.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/pg_store_conn.h"

namespace frikort::storage::pg {

const char kLeaseHeldPayload[] = "frikort.storage/lease-held";

const char kCreateLeaseTable[] =
    "CREATE TABLE IF NOT EXISTS frikort_writer_lease (id int PRIMARY KEY CHECK (id = 1), "
    "holder text NOT NULL, token int8 NOT NULL, expires timestamptz NOT NULL); "
    "INSERT INTO frikort_writer_lease SELECT 1, '', 0, '-infinity' WHERE NOT EXISTS "
    "(SELECT FROM frikort_writer_lease); ";

namespace {

// Whether the statement in `res` changed one row.
bool ChangedOneRow(PGresult* res) { return absl::string_view(PQcmdTuples(res)) == "1"; }

}  // namespace

std::string LeaseHolderName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", getpid());
}

absl::StatusOr<int64_t> AcquireLease(PGconn* conn, const std::string& holder, absl::Duration ttl,
                                     absl::Duration wait, bool reclaim_own) {
  static const std::string kTake =
      "UPDATE frikort_writer_lease SET holder = $1, token = token + 1, "
      "expires = clock_timestamp() + $2 * interval '1 microsecond' "
      "WHERE id = 1 AND (expires < clock_timestamp() OR ($3 AND holder = $1)) RETURNING token";
  const absl::Time deadline = absl::Now() + wait;
  for (;;) {
    Params p;
    p.Text(holder);
    p.Int8(absl::ToInt64Microseconds(ttl));
    p.Bool(reclaim_own);
    Result res = p.Run(conn, kTake);
    if (absl::Status s = StatusOf(conn, res.get(), "cannot take the writer lease"); !s.ok()) {
      return s;
    }
    if (PQntuples(res.get()) == 1) {
      const absl::string_view cell = Cell(res.get(), 0, 0);
      if (cell.size() != 8) return absl::DataLossError("the writer lease's token is unreadable");
      uint64_t token = 0;
      for (unsigned char c : cell) token = token << 8 | c;
      return static_cast<int64_t>(token);
    }
    if (absl::Now() >= deadline) {
      absl::Status held = absl::FailedPreconditionError(
          "the register's writer lease is held by another frikortd, which keeps renewing it");
      held.SetPayload(kLeaseHeldPayload, absl::Cord("held"));
      return held;
    }
    absl::SleepFor(std::min(absl::Milliseconds(200), deadline - absl::Now()));
  }
}

absl::Status FenceLease(PGconn* conn, int64_t token, absl::Duration ttl) {
  static const std::string kFence =
      "UPDATE frikort_writer_lease SET expires = clock_timestamp() + $2 * interval "
      "'1 microsecond' WHERE id = 1 AND token = $1";
  Params p;
  p.Int8(token);
  p.Int8(absl::ToInt64Microseconds(ttl));
  Result res = p.Run(conn, kFence);
  if (absl::Status s = StatusOf(conn, res.get(), "writer lease"); !s.ok()) return s;
  if (!ChangedOneRow(res.get())) {
    return absl::UnavailableError(
        "the register's writer lease passed to another frikortd: this one no longer writes");
  }
  return absl::OkStatus();
}

absl::Status ReleaseLease(PGconn* conn, int64_t token) {
  static const std::string kRelease =
      "UPDATE frikort_writer_lease SET expires = '-infinity' WHERE id = 1 AND token = $1";
  Params p;
  p.Int8(token);
  Result res = p.Run(conn, kRelease);
  return StatusOf(conn, res.get(), "cannot give the writer lease up");
}

}  // namespace frikort::storage::pg
