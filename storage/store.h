// The Store seam: everything the register asks of a database.
//
// A store holds named tables of ordered byte keys (compared as unsigned bytes,
// so the big-endian keys of keys.h sort in the domain's order). It offers
// point reads, batched point reads, ordered scans between bounds, one atomic
// and durable commit of a write set, a consistent snapshot, and the lookup
// log (appended without a sync of its own, synced in the background). The
// register's logic (storage/state_machine, reads, verify) speaks only to this
// interface; each database gets one implementation (rocks_store.h is the
// embedded default).
//
// Thread safety: every method may be called from any thread. Commit is called
// by one thread at a time (the register's commit thread). Errors: Unavailable
// for I/O, DataLoss for damaged data, FailedPrecondition for a store that
// cannot be opened as asked.
#ifndef FRIKORT_STORAGE_STORE_H_
#define FRIKORT_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace frikort::storage {

// The register's tables (their key layouts are in keys.h).
enum class Table : int {
  kMeta = 0,  // schema version, secret check, run counter
  kPersons,
  kEntries,
  kReports,
  kLedgers,
  kDue,
  kCards,
  kPayouts,
  kLookups,    // the lookup log: written through AppendLookups only
  kProviders,  // the provider registry and its index of entries by provider
};
inline constexpr int kNumTables = 10;
absl::string_view TableName(Table t);

// An ordered scan of one table: keys from `start` (inclusive; "" = the first)
// that begin with `prefix`, in byte order.
struct ScanRange {
  std::string prefix;
  std::string start;  // "" = from `prefix`
};

// Reads of one state of the store: the latest committed one, or a snapshot.
class StoreReader {
 public:
  virtual ~StoreReader() = default;
  // The value under `key`, nullopt when absent.
  virtual absl::StatusOr<std::optional<std::string>> Get(Table table, absl::string_view key) = 0;
  // Reads `keys` in one batch and calls found(i, value) for each, value
  // nullptr for an absent key. `sorted` says the keys are in order (the
  // store may then walk its indexes once). The first read error is returned
  // and nothing is visited.
  virtual absl::Status MultiGet(
      Table table, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) = 0;
  // Calls visit(key, value) for every key of `range`, in order, until visit
  // returns false or the range ends.
  virtual absl::Status Scan(
      Table table, const ScanRange& range,
      const std::function<bool(absl::string_view key, absl::string_view value)>& visit) = 0;
};

// One backup in a backup folder (see Register::Backup).
struct BackupInfo {
  uint32_t backup_id = 0;  // 1, 2, ... within the folder
  std::string dest;
  absl::Time created;
  uint64_t size_bytes = 0;  // this backup's files, some shared with earlier backups
  uint32_t files = 0;
  int backups_in_dest = 0;
};

// A write set: per table, puts and deletes, applied all or nothing. It
// borrows its keys and values from whoever built it (the group overlay),
// which outlives the commit.
struct WriteSet {
  struct Write {
    absl::string_view key;
    const std::string* value = nullptr;  // nullptr: delete the key
  };
  // Per table, keys in order (a store may rely on it for faster inserts).
  std::vector<Write> tables[kNumTables];
  bool empty() const {
    for (const auto& t : tables) {
      if (!t.empty()) return false;
    }
    return true;
  }
};

class Store : public StoreReader {
 public:
  // Applies `writes` atomically; durable on return (unless the store was
  // opened without syncing, for tests that measure something else).
  virtual absl::Status Commit(const WriteSet& writes) = 0;
  // A reader of one consistent state, kept while the reader lives.
  virtual std::unique_ptr<StoreReader> Snapshot() = 0;

  // The lookup log. AppendLookups writes records (key, value) of the
  // kLookups table so that a crash of the process keeps them once it
  // returns; SyncLookups makes everything appended so far survive a power
  // loss too (it is cheap when nothing is new).
  virtual absl::Status AppendLookups(
      absl::Span<const std::pair<std::string, std::string>> records) = 0;
  virtual absl::Status SyncLookups() = 0;

  // Whether a read is a round trip to another process (PostgreSQL): the
  // register then reads concurrent lookups together, off its callers'
  // threads. False for an engine in this process (RocksDB).
  virtual bool remote() const { return false; }

  // For metrics: bytes on disk (and in memory tables), bytes waiting for
  // compaction (0 where the engine has no such notion).
  virtual uint64_t ApproximateSizeBytes() = 0;
  virtual uint64_t PendingCompactionBytes() = 0;

  // An online, consistent copy of the register and its lookup log into
  // `dest_dir`, recording `secret_check` (see Register::Backup).
  // FailedPrecondition where the engine has backup tools of its own.
  virtual absl::StatusOr<BackupInfo> Backup(const std::string& dest_dir,
                                            absl::string_view secret_check) = 0;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_STORE_H_
