// Migration "provider_index": registers written before the provider registry
// have entries but no index of them by provider (keys.h, table providers).
// It builds the index from the entries, over the Store seam only, and records
// itself done under the meta key migration/provider_index. Idempotent: run
// again (after a crash half-way) it writes the same keys. Stored counted
// flags are left as they were decided (see README, "The provider registry").
#ifndef FRIKORT_STORAGE_MIGRATE_PROVIDER_INDEX_H_
#define FRIKORT_STORAGE_MIGRATE_PROVIDER_INDEX_H_

#include "absl/status/status.h"
#include "storage/store.h"

namespace frikort::storage {

inline constexpr char kProviderIndexMigration[] = "migration/provider_index";

absl::Status MigrateProviderIndex(Store& store);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_MIGRATE_PROVIDER_INDEX_H_
