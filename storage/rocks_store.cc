#include "storage/rocks_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/backup.h"
#include "storage/crypto.h"

namespace frikort::storage {
namespace {

// Column families in the register's database, in Table order; "default"
// holds kMeta. kLookups lives in the lookup log's database; its family here
// (`audit`) only holds the log of schema-1 registers until it is moved.
constexpr int kAuditCf = static_cast<int>(Table::kLookups);
const char* const kCfNames[kNumTables] = {"default", "persons", "entries", "reports", "ledgers",
                                          "due",     "cards",   "payouts", "audit",   "providers"};

// 1: the lookup log in the `audit` family. 2: the lookup log in a database
// of its own (DATA_DIR/lookup-log), which must then be there.
constexpr int64_t kSchemaVersion = 2;
constexpr char kLockFile[] = "frikort.lock";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  // Damaged files are lost data, not a passing fault: a retry cannot help.
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  return absl::UnavailableError(absl::StrCat(what, ": ", s.ToString()));
}

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }
rocksdb::Slice Slice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Reads of the register's database (and the lookup log's), at the latest
// state or at a snapshot of each.
class RocksReader : public StoreReader {
 public:
  RocksReader(rocksdb::DB* db, rocksdb::DB* log_db,
              const std::vector<rocksdb::ColumnFamilyHandle*>* cfs,
              const rocksdb::Snapshot* snap = nullptr, const rocksdb::Snapshot* log_snap = nullptr)
      : db_(db), log_db_(log_db), cfs_(cfs), snap_(snap), log_snap_(log_snap) {}
  ~RocksReader() override {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
    if (log_snap_ != nullptr) log_db_->ReleaseSnapshot(log_snap_);
  }

  absl::StatusOr<std::optional<std::string>> Get(Table table, absl::string_view key) override {
    std::string v;
    rocksdb::Status s =
        table == Table::kLookups
            ? log_db_->Get(Options(table), log_db_->DefaultColumnFamily(), Slice(key), &v)
            : db_->Get(Options(table), Cf(table), Slice(key), &v);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return FromRocks(s, "read");
    return v;
  }

  absl::Status MultiGet(
      Table table, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    std::vector<rocksdb::Slice> slices;
    slices.reserve(keys.size());
    for (absl::string_view k : keys) slices.push_back(Slice(k));
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    rocksdb::DB* db = table == Table::kLookups ? log_db_ : db_;
    rocksdb::ColumnFamilyHandle* cf =
        table == Table::kLookups ? log_db_->DefaultColumnFamily() : Cf(table);
    db->MultiGet(Options(table), cf, slices.size(), slices.data(), values.data(), statuses.data(),
                 sorted);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!statuses[i].ok() && !statuses[i].IsNotFound()) return FromRocks(statuses[i], "read");
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].ok()) {
        const absl::string_view v = View(values[i]);
        found(i, &v);
      } else {
        found(i, nullptr);
      }
    }
    return absl::OkStatus();
  }

  absl::Status Scan(
      Table table, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    rocksdb::ReadOptions ro = Options(table);
    // Tables keyed by pseudonym first (entries, lookups) carry prefix blooms:
    // a scan within one person skips the files without them.
    if ((table == Table::kEntries || table == Table::kLookups) &&
        range.prefix.size() >= kPseudonymBytes) {
      ro.prefix_same_as_start = true;
    } else {
      ro.total_order_seek = true;
    }
    std::unique_ptr<rocksdb::Iterator> it(
        table == Table::kLookups ? log_db_->NewIterator(ro) : db_->NewIterator(ro, Cf(table)));
    const rocksdb::Slice prefix = Slice(range.prefix);
    for (it->Seek(range.start.empty() ? prefix : Slice(range.start));
         it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (!visit(View(it->key()), View(it->value()))) break;
    }
    return FromRocks(it->status(), "scan");
  }

 private:
  rocksdb::ReadOptions Options(Table table) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = table == Table::kLookups ? log_snap_ : snap_;
    return ro;
  }
  rocksdb::ColumnFamilyHandle* Cf(Table table) const { return (*cfs_)[static_cast<int>(table)]; }

  rocksdb::DB* const db_;
  rocksdb::DB* const log_db_;
  const std::vector<rocksdb::ColumnFamilyHandle*>* const cfs_;
  const rocksdb::Snapshot* const snap_;
  const rocksdb::Snapshot* const log_snap_;
};

class RocksStore final : public Store {
 public:
  explicit RocksStore(const RocksStoreOptions& options) : options_(options) {}
  ~RocksStore() override {
    for (auto* h : cfs_) {
      if (h != nullptr) db_->DestroyColumnFamilyHandle(h);
    }
    if (db_ != nullptr) {
      db_->Close().PermitUncheckedError();
      delete db_;
    }
    if (log_db_ != nullptr) {
      log_db_->SyncWAL().PermitUncheckedError();
      log_db_->Close().PermitUncheckedError();
      delete log_db_;
    }
    if (lock_fd_ >= 0) close(lock_fd_);  // releases the folder's lock
  }

  absl::Status Open();

  absl::StatusOr<std::optional<std::string>> Get(Table table, absl::string_view key) override {
    return latest_->Get(table, key);
  }
  absl::Status MultiGet(
      Table table, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    return latest_->MultiGet(table, keys, sorted, found);
  }
  absl::Status Scan(
      Table table, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    return latest_->Scan(table, range, visit);
  }

  absl::Status Commit(const WriteSet& writes) override {
    rocksdb::WriteBatch wb;
    for (int t = 0; t < kNumTables; ++t) {
      if (t == kAuditCf && !writes.tables[t].empty()) {
        return absl::InvalidArgumentError("lookups: written through AppendLookups only");
      }
      for (const WriteSet::Write& w : writes.tables[t]) {
        rocksdb::Status s = w.value != nullptr ? wb.Put(cfs_[t], Slice(w.key), Slice(*w.value))
                                               : wb.Delete(cfs_[t], Slice(w.key));
        if (!s.ok()) return FromRocks(s, "batch");
      }
    }
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_writes;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  std::unique_ptr<StoreReader> Snapshot() override {
    return std::make_unique<RocksReader>(db_, log_db_, &cfs_, db_->GetSnapshot(),
                                         log_db_->GetSnapshot());
  }

  // Not synced on its own: it reaches the WAL (so survives a process crash)
  // and is synced by SyncLookups.
  absl::Status AppendLookups(
      absl::Span<const std::pair<std::string, std::string>> records) override {
    rocksdb::WriteBatch wb;
    for (const auto& [key, value] : records) wb.Put(Slice(key), Slice(value));
    return FromRocks(log_db_->Write(rocksdb::WriteOptions(), &wb), "lookup log write");
  }
  absl::Status SyncLookups() override {
    // From zero, not from the sequence at open: records written before the
    // first sync (or recovered from an unsynced WAL tail still in the page
    // cache) are synced by the first call.
    const rocksdb::SequenceNumber latest = log_db_->GetLatestSequenceNumber();
    if (latest == log_synced_.load(std::memory_order_relaxed)) return absl::OkStatus();
    if (absl::Status s = FromRocks(log_db_->SyncWAL(), "lookup log sync"); !s.ok()) return s;
    log_synced_.store(latest, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  // Both databases: the register's and the lookup log's.
  uint64_t ApproximateSizeBytes() override {
    return Summed("rocksdb.total-sst-files-size") + Summed("rocksdb.cur-size-all-mem-tables");
  }
  uint64_t PendingCompactionBytes() override {
    return Summed("rocksdb.estimate-pending-compaction-bytes");
  }

  absl::StatusOr<BackupInfo> Backup(const std::string& dest_dir,
                                    absl::string_view secret_check) override {
    return internal::CreateBackup(db_, log_db_, options_.data_dir, dest_dir, secret_check);
  }

 private:
  absl::Status LockFolder();
  absl::Status MoveLegacyLookupLog();
  uint64_t Summed(const std::string& property) {
    uint64_t total = 0;
    for (rocksdb::DB* db : {db_, log_db_}) {
      uint64_t v = 0;
      if (db != nullptr && db->GetAggregatedIntProperty(property, &v)) total += v;
    }
    return total;
  }

  const RocksStoreOptions options_;
  int lock_fd_ = -1;
  rocksdb::DB* db_ = nullptr;
  rocksdb::DB* log_db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::unique_ptr<RocksReader> latest_;
  std::atomic<rocksdb::SequenceNumber> log_synced_{0};
};

// A lock of frikortd's own beside RocksDB's: a second process is told so by
// the lock's state, not by reading RocksDB's error text.
absl::Status RocksStore::LockFolder() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot open the register in data_dir ",
                                               options_.data_dir, ": ", ec.message()));
  }
  const std::string path = (std::filesystem::path(options_.data_dir) / kLockFile).string();
  lock_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open the register in data_dir ",
                                               options_.data_dir, ": ", std::strerror(errno)));
  }
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("data_dir ", options_.data_dir, " is locked: another frikortd is using it"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot lock data_dir ", options_.data_dir, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status RocksStore::Open() {
  if (absl::Status s = LockFolder(); !s.ok()) return s;
  // Half the cache is kept for index and filter blocks (high priority), so a
  // scan or a burst of data blocks cannot push the filters out.
  rocksdb::LRUCacheOptions cache_options;
  cache_options.capacity = options_.block_cache_bytes;
  cache_options.high_pri_pool_ratio = 0.5;
  cache_ = rocksdb::NewLRUCache(cache_options);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  if (options_.env != nullptr) db_options.env = options_.env;
  db_options.bytes_per_sync = 1 << 20;
  // Required by the lookup log's unsorted memtable (below). Each database has
  // one writer thread (the register's committer, the lookup log's writer), so
  // a write group rarely has two batches to insert side by side anyway.
  db_options.allow_concurrent_memtable_write = false;
  // Memtables of all column families are charged to the block cache, so the
  // two flags bound memory whatever the data size.
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options_.write_buffer_bytes, cache_);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks live in the block cache (bounded by
  // --block_cache_mb), not beside it. Partitioned into 4 KiB pieces with a
  // small pinned top level: with one filter block per table file, a register
  // of millions of people needed megabyte filters that did not stay cached,
  // and every read of a new key fetched and checksummed a whole filter again
  // (a 5-million-person fill ran at a few hundred reports/s, its writer
  // thread 40% in XXH3 over filter blocks and 25% in pread).
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  table.optimize_filters_for_memory = true;
  table.format_version = 5;

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int i = 0; i < kNumTables; ++i) {
    const Table t = static_cast<Table>(i);
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    cf.write_buffer_size = std::max<uint64_t>(options_.write_buffer_bytes / 4, 1 << 20);
    if (t == Table::kDue) {
      // Small memtables for the due markers: an issuance run deletes one per
      // decided ledger, and a scan from the first marker walks every
      // tombstone still in a memtable (a million of them took 0.5 s);
      // flushed, they meet their puts in compaction and vanish.
      cf.write_buffer_size = std::min<uint64_t>(cf.write_buffer_size, 4 << 20);
    }
    // LZ4 on every level: the keys and values are mostly pseudonyms and
    // ciphertext that compress little, and ZSTD on the bottom level was half
    // of the compaction CPU that the write path competes with on two cores.
    cf.compression = rocksdb::kLZ4Compression;
    cf.level_compaction_dynamic_level_bytes = true;
    if (t != Table::kLookups) {
      // A bloom filter over each memtable's keys: most reads on the write
      // path are for keys that do not exist yet (a new report's index entry,
      // a new person, a new ledger), and the filter answers those without a
      // walk down the memtable's skip list. Its bits live in the memtable's
      // arena, so --write_buffer_mb still bounds them.
      cf.memtable_prefix_bloom_size_ratio = 0.05;
      cf.memtable_whole_key_filtering = true;
    }
    if (t == Table::kEntries || t == Table::kLookups) {
      // Per-person scans seek within one pseudonym: prefix blooms skip files.
      cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kPseudonymBytes));
    }
    if (t == Table::kLookups) {
      // The lookup log is written once per lookup and read only when one
      // person's lookups are listed. A skip list put each record's
      // pseudonym-led (random) key in order at insert: a dozen cache misses
      // per lookup, the largest single cost of a CheckExemption call. An
      // unsorted memtable appends, and sorts when flushed; a listing that
      // meets the active memtable sorts a copy of it (every page), so it is
      // kept small: 8 MiB, some 80,000 records, 11-30 ms a listing. Its
      // pointer array (8 bytes a record) is outside the memtable's budget.
      cf.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
      cf.write_buffer_size = std::min<uint64_t>(cf.write_buffer_size, 8 << 20);
    }
    descs.emplace_back(kCfNames[i], cf);
  }
  rocksdb::Options merged(db_options, descs[0].options);
  rocksdb::Status s = rocksdb::DB::Open(merged, options_.data_dir, descs, &cfs_, &db_);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("cannot open the register in data_dir ", options_.data_dir));
  }

  std::string text;
  s = db_->Get(rocksdb::ReadOptions(), cfs_[0], "schema_version", &text);
  const bool fresh = s.IsNotFound();
  int64_t version = kSchemaVersion;
  if (!fresh && (!s.ok() || !absl::SimpleAtoi(text, &version) || version < 1)) {
    return absl::DataLossError(absl::StrCat("the register in ", options_.data_dir,
                                            " has no readable schema version (",
                                            s.ok() ? text : s.ToString(), ")"));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the register in ", options_.data_dir, " has schema version ", version,
        ", newer than this frikortd's (", kSchemaVersion, "); use the frikortd that wrote it"));
  }
  // The lookup log: the lookup family's options (unsorted memtable, prefix
  // blooms), the same block cache, a WAL of its own, and a memtable budget of
  // its own (two of its memtables, charged to the cache). Sharing the
  // register's budget made every lookup after a batch feed flush the log's
  // near-empty memtable, as the feed had left the shared budget over its
  // flush mark: 49 table files for 50 lookups.
  rocksdb::Options log_options(db_options, descs[kAuditCf].options);
  log_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      2 * descs[kAuditCf].options.write_buffer_size, cache_);
  const std::string log_dir =
      (std::filesystem::path(options_.data_dir) / internal::kLookupLogDir).string();
  // From schema 2 on the log was created with the register (or moved out of
  // it): missing, it was lost (a copy or restore without it), and opening
  // would start an empty one and hide the loss.
  log_options.create_if_missing = fresh || version < 2;
  if (!log_options.create_if_missing &&
      !std::filesystem::exists(std::filesystem::path(log_dir) / "CURRENT")) {
    return absl::DataLossError(absl::StrCat(
        "the register in ", options_.data_dir, " keeps its lookup log in ", log_dir,
        ", which is missing; restore the register and its lookup log together from a backup"));
  }
  s = rocksdb::DB::Open(log_options, log_dir, &log_db_);
  if (!s.ok()) return FromRocks(s, absl::StrCat("cannot open the lookup log in ", log_dir));
  latest_ = std::make_unique<RocksReader>(db_, log_db_, &cfs_);

  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (!fresh && version < 2) {
    if (absl::Status moved = MoveLegacyLookupLog(); !moved.ok()) return moved;
  }
  if (fresh || version < 2) {
    // Only now, with the lookup log created or moved: a crash before this
    // starts over.
    s = db_->Put(synced, cfs_[0], "schema_version", absl::StrCat(kSchemaVersion));
    if (!s.ok()) return FromRocks(s, "cannot record the register's schema version");
  }
  return absl::OkStatus();
}

// Registers created before the lookup log had a database of its own kept it
// in the `audit` family. Its records are copied over and then deleted, a
// batch at a time, each step synced: a crash in between copies a batch again
// (the same keys and values), so nothing is lost or doubled.
absl::Status RocksStore::MoveLegacyLookupLog() {
  constexpr size_t kBatch = 10000;
  rocksdb::WriteOptions synced;
  synced.sync = true;
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  // One iterator for the whole move: it reads its own snapshot, so it never
  // walks the tombstones of the steps before (a new one per step did: each
  // step slower than the last).
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kAuditCf]));
  it->SeekToFirst();
  for (;;) {
    rocksdb::WriteBatch copy, remove;
    size_t n = 0;
    for (; it->Valid() && n < kBatch; it->Next(), ++n) {
      copy.Put(it->key(), it->value());
      remove.Delete(cfs_[kAuditCf], it->key());
    }
    if (!it->status().ok()) return FromRocks(it->status(), "cannot read the old lookup log");
    if (n == 0) return absl::OkStatus();
    rocksdb::Status s = log_db_->Write(synced, &copy);
    if (s.ok()) s = db_->Write(synced, &remove);
    if (!s.ok()) return FromRocks(s, "cannot move the old lookup log to its own database");
  }
}

}  // namespace

RocksStoreOptions RocksStoreOptionsFrom(const RegisterOptions& options) {
  RocksStoreOptions rocks;
  rocks.data_dir = options.data_dir;
  rocks.block_cache_bytes = options.block_cache_bytes;
  rocks.write_buffer_bytes = options.write_buffer_bytes;
  rocks.sync_writes = options.sync_writes;
  return rocks;
}

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir: must not be empty");
  auto store = std::make_unique<RocksStore>(options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return store;
}

}  // namespace frikort::storage
