// Migration "day_sums": registers written before the write path kept day
// sums lack them. It gives every ledger its counted øre per service day
// (records::Ledger sum_day/sum_ore) and every person the count of entries
// they hold per year (records::Person entries), both computed from the
// entries, and records itself as done under the meta key
// "migration/day_sums". It runs when the register opens, before any write,
// over the Store seam only (so every store gets it); it is idempotent: a run
// killed half-way is simply run again at the next open.
#ifndef FRIKORT_STORAGE_MIGRATE_DAY_SUMS_H_
#define FRIKORT_STORAGE_MIGRATE_DAY_SUMS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "storage/store.h"

namespace frikort::storage {

inline constexpr absl::string_view kDaySumsMigration = "migration/day_sums";

// Does nothing when the meta key says it was done. Errors: those of the
// store; DataLoss for a damaged record.
absl::Status MigrateDaySums(Store& store);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_MIGRATE_DAY_SUMS_H_
