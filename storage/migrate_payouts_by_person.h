// The migration "payouts_by_person": builds the per-person payout listing
// ('P' keys of the payouts table, keys.h) from the by-year listing, for
// registers written before payouts were also listed by person. Idempotent:
// done once, recorded under the meta key "migration/payouts_by_person";
// interrupted, it starts over (re-writing a key writes the same value).
// Over the Store seam only, so every store gets it.
#ifndef FRIKORT_STORAGE_MIGRATE_PAYOUTS_BY_PERSON_H_
#define FRIKORT_STORAGE_MIGRATE_PAYOUTS_BY_PERSON_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/store.h"

namespace frikort::storage {

inline constexpr char kPayoutsByPersonMigration[] = "migration/payouts_by_person";

// Runs the migration unless it is recorded as done; returns the number of
// payouts indexed (0 when it had run before). Call before the register's
// threads start (it commits on the caller's thread).
absl::StatusOr<uint64_t> MigratePayoutsByPerson(Store& store);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_MIGRATE_PAYOUTS_BY_PERSON_H_
