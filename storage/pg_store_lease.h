// The PostgreSQL store's writer lease (internal to storage/): several
// frikortd may run against one register, and exactly one writes. The lease
// is the one row of frikort_writer_lease (holder, token, expires). A writer
// takes it when it is free or expired, which raises the token; every commit
// transaction first extends it on the condition that the token is still its
// own (the fence), holding the row's lock until it commits, so a writer that
// was paused or cut off past its lease can never commit once another one has
// taken over. A thread of the store renews the lease while it is idle.
//
// Errors: FailedPrecondition when another holder keeps the lease (marked so
// IsLeaseHeldElsewhere tells it from other refusals), Unavailable when this
// writer lost it (and for the connection's own faults).
#ifndef FRIKORT_STORAGE_PG_STORE_LEASE_H_
#define FRIKORT_STORAGE_PG_STORE_LEASE_H_

#include <libpq-fe.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace frikort::storage::pg {

// The payload type that marks AcquireLease's refusal (another holder keeps
// the lease).
extern const char kLeaseHeldPayload[];

// The statements that create the lease's table and its row (idempotent).
extern const char kCreateLeaseTable[];

// A name for this process in the lease row (host and process id), for the
// operator reading it.
std::string LeaseHolderName();

// Takes the lease for `ttl` if it is free or expired (or, with `reclaim_own`,
// still held under `holder`: a store of this process that was dropped),
// waiting up to `wait` for a holder that stops renewing it. Returns the
// fencing token; taking the lease always raises it, fencing every older one.
absl::StatusOr<int64_t> AcquireLease(PGconn* conn, const std::string& holder, absl::Duration ttl,
                                     absl::Duration wait, bool reclaim_own = false);

// Extends the lease by `ttl` if `token` still holds it: the first statement
// of every commit transaction, and the renewal on its own. Unavailable when
// another writer took it over.
absl::Status FenceLease(PGconn* conn, int64_t token, absl::Duration ttl);

// Gives the lease up (expired at once) if `token` still holds it.
absl::Status ReleaseLease(PGconn* conn, int64_t token);

}  // namespace frikort::storage::pg

#endif  // FRIKORT_STORAGE_PG_STORE_LEASE_H_
