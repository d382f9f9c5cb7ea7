// The RocksDB store, the register's embedded default: one database in the
// data folder with a column family per table, and the lookup log in a second
// database of its own (DATA_DIR/lookup-log) with its own write-ahead log, so
// a lookup's record never waits behind a group commit of reports.
//
// Opening creates a missing register, checks and migrates its schema version
// (1: lookup log in the register's `audit` family; 2: in its own database),
// and holds an exclusive lock on the folder while the store lives. Errors:
// FailedPrecondition for a folder in use or a newer schema, DataLoss for a
// missing lookup log or damaged metadata, Unavailable for other I/O.
#ifndef FRIKORT_STORAGE_ROCKS_STORE_H_
#define FRIKORT_STORAGE_ROCKS_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/register.h"
#include "storage/store.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace frikort::storage {

struct RocksStoreOptions {
  std::string data_dir;
  // Memory is bounded by these, not by data size: the block cache, and the
  // memtables of every column family, charged to the cache.
  uint64_t block_cache_bytes = 512ull << 20;
  uint64_t write_buffer_bytes = 256ull << 20;
  // Synced WAL on every commit. Only tests that measure something else turn
  // it off.
  bool sync_writes = true;
  // Files and threads; nullptr = the default. Not owned. Tests pass one that
  // injects I/O faults or drops unsynced data.
  rocksdb::Env* env = nullptr;
};

// The store options a register's options ask for (no Env: the default).
RocksStoreOptions RocksStoreOptionsFrom(const RegisterOptions& options);

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_ROCKS_STORE_H_
