// The PostgreSQL store: the register in a PostgreSQL database (libpq), for
// deployments that need the register replicated to another machine.
//
// One table per Table (frikort_meta, frikort_persons, ..., frikort_lookups),
// each (k bytea PRIMARY KEY, v bytea): PostgreSQL compares bytea as unsigned
// bytes, the order keys.h relies on. A point read batch is one statement
// (`k = ANY($1)`, binary parameters); a scan reads pages of ordered rows; a
// commit is one transaction with synchronous_commit on; a snapshot is a READ
// ONLY REPEATABLE READ transaction held on a connection of its own.
//
// The lookup log is appended in transactions with synchronous_commit off:
// once AppendLookups returns the records are in PostgreSQL (a crash of
// frikortd keeps them); SyncLookups commits one synchronous transaction, which
// flushes (and replicates) all WAL before it. A crash of PostgreSQL itself
// loses at most what was appended since the last SyncLookups.
//
// Opening takes the register's writer lease (pg_store_lease.h), and every
// commit checks in its transaction that it still holds it; closing gives it
// up. Reads are answered only while the lease is known to be held (its last
// renewal less than lease_ttl ago): past that another writer may have taken
// over, and a read could miss what it acknowledged (Unavailable). Opening creates the schema in an
// empty database and records its version in frikort_schema; a newer version is refused
// (FailedPrecondition). Errors: Unavailable for a lost or refused connection and for a server out
// of resources, DataLoss for damaged data, Internal for other failures. Messages never carry key
// bytes (pseudonyms) nor the connection string.
//
// Thread safety: every method may be called from any thread; reads take a
// connection from a pool, commits and lookup appends have one each.
#ifndef FRIKORT_STORAGE_PG_STORE_H_
#define FRIKORT_STORAGE_PG_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace frikort::storage {

struct PgStoreOptions {
  // A libpq connection string ("host=... port=... dbname=... user=...") or
  // URI; several hosts and target_session_attrs=read-write name a cluster.
  std::string dsn;
  // synchronous_commit on for every commit. Only tests that measure
  // something else turn it off.
  bool sync_writes = true;
  // Rows read per statement of a scan.
  int scan_page_rows = 1000;
  // The writer lease (see pg_store_lease.h): held for lease_ttl from each
  // commit or renewal, renewed every third of it; opening waits up to
  // lease_wait for a holder that stopped renewing. So a standby that tries
  // every second takes over at most lease_ttl + 1 s after the holder died.
  // renew_lease off only in tests of a paused writer.
  absl::Duration lease_ttl = absl::Seconds(6);
  absl::Duration lease_wait = absl::Seconds(7);
  bool renew_lease = true;
  // Take a lease still held under this process's holder name at once (a
  // store of this process that was dropped to reconnect; its token is
  // fenced all the same). Only for a process that opens one store at a time.
  bool reclaim_own_lease = false;
  // Called once, from the renewing thread, when a renewal fails (the
  // connection or the server is gone, or another writer took the lease):
  // the owner drops this store and opens a new one. Unset: nobody is told,
  // and the next commit's fence reports it.
  std::function<void(const absl::Status&)> on_lost = nullptr;
};

// Whether `s` is OpenPgStore's refusal because another frikortd holds the
// writer lease (a standby waits and tries again; other refusals are final).
bool IsLeaseHeldElsewhere(const absl::Status& s);

// The schema version this frikortd writes (frikort_schema.version).
inline constexpr int64_t kPgSchemaVersion = 1;

absl::StatusOr<std::unique_ptr<Store>> OpenPgStore(const PgStoreOptions& options);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_PG_STORE_H_
