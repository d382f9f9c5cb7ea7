#include "storage/register.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <deque>
#include <filesystem>
#include <memory>
#include <thread>

#include <pthread.h>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
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
#include "storage/keys.h"
#include "storage/records.pb.h"

namespace frikort::storage {
namespace {

namespace rec = ::frikort::storage::records;
using core::Ore;

enum Cf {
  kMeta = 0,
  kPersons,
  kEntries,
  kReports,
  kLedgers,
  kDue,
  kCards,
  kPayouts,
  kAudit,
  kNumCf
};
// "default" holds meta records (schema version, secret check, run counter).
const char* const kCfNames[kNumCf] = {"default", "persons", "entries", "reports", "ledgers",
                                      "due",     "cards",   "payouts", "audit"};

// 1: the lookup log in the `audit` family. 2: the lookup log in a database
// of its own (DATA_DIR/lookup-log), which must then be there.
constexpr int64_t kSchemaVersion = 2;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(what, ": ", s.ToString()));
}

absl::string_view View(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// Reads `keys` of one column family with one MultiGet and calls
// found(i, value) for each, value nullptr for a key that is absent. The first
// read error is returned (and nothing more is visited).
absl::Status MultiRead(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                       const std::vector<rocksdb::Slice>& keys, bool sorted,
                       const std::function<void(size_t, const rocksdb::Slice*)>& found) {
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db->MultiGet(rocksdb::ReadOptions(), cf, keys.size(), keys.data(), values.data(),
               statuses.data(), sorted);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!statuses[i].ok() && !statuses[i].IsNotFound()) return FromRocks(statuses[i], "read");
  }
  for (size_t i = 0; i < keys.size(); ++i) found(i, statuses[i].ok() ? &values[i] : nullptr);
  return absl::OkStatus();
}

// The view one group commit builds and writes. Every key the group reads or
// writes sits in a hash map (per column family): a key read twice costs one
// RocksDB read, a key written twice is written once, and reads see the group's
// own uncommitted writes. Reads fall through to `parent`, the group before
// this one, which may still be on its way to disk (the commit thread writes it
// while the writer builds this one), and then to the database. Keys written in
// the column families the write path scans are also kept in order, so a scan
// merges them over the database's. The first read or decode failure poisons
// the transaction; nothing of it is then written.
class Txn {
 public:
  Txn(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs, absl::Time now,
      std::shared_ptr<const Txn> parent)
      : db_(db), cfs_(cfs), now_(now), parent_(std::move(parent)) {}

  absl::Time now() const { return now_; }
  const absl::Status& status() const { return status_; }
  uint32_t writes() const { return writes_; }

  std::optional<std::string> Get(Cf cf, absl::string_view key) {
    if (const Slot* slot = Find(cf, key)) return slot->value;
    if (parent_ != nullptr) {
      if (const Slot* slot = parent_->Find(cf, key)) {
        views_[cf].try_emplace(key, Slot{slot->value, false});
        return slot->value;
      }
    }
    std::string v;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cfs_[cf], rocksdb::Slice(key.data(), key.size()), &v);
    std::optional<std::string> value;
    if (s.ok()) {
      value = std::move(v);
    } else if (!s.IsNotFound()) {
      Fail(FromRocks(s, "read"));
      return std::nullopt;
    }
    views_[cf].try_emplace(key, Slot{value, false});
    return value;
  }
  // Reads the keys this group does not hold yet with one batched MultiGet
  // (sorted: RocksDB then walks each table file's index and filter once per
  // batch instead of once per key), so the Gets that follow are hash lookups.
  void Prefetch(Cf cf, std::vector<std::string> keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::vector<rocksdb::Slice> wanted;
    for (const std::string& k : keys) {
      if (Find(cf, k) == nullptr && (parent_ == nullptr || parent_->Find(cf, k) == nullptr)) {
        wanted.emplace_back(k);
      }
    }
    if (wanted.empty()) return;
    absl::Status s = MultiRead(
        db_, cfs_[cf], wanted, /*sorted=*/true, [&](size_t i, const rocksdb::Slice* value) {
          views_[cf].try_emplace(absl::string_view(wanted[i].data(), wanted[i].size()),
                                 Slot{value ? std::optional<std::string>(value->ToString())
                                            : std::nullopt,
                                      false});
        });
    if (!s.ok()) Fail(std::move(s));
  }
  template <typename Msg>
  bool GetMsg(Cf cf, absl::string_view key, Msg* msg) {
    auto v = Get(cf, key);
    if (!v) return false;
    if (!msg->ParseFromString(*v)) {
      Fail(absl::DataLossError(absl::StrCat("damaged record in column family ", kCfNames[cf])));
      return false;
    }
    return true;
  }
  void Put(Cf cf, absl::string_view key, std::string value) { Set(cf, key, std::move(value)); }
  void PutMsg(Cf cf, absl::string_view key, const google::protobuf::MessageLite& msg) {
    Set(cf, key, msg.SerializeAsString());
  }
  void Delete(Cf cf, absl::string_view key) { Set(cf, key, std::nullopt); }

  // Calls visit(key, value) for every key starting with `prefix` in this
  // group's view of `cf` (kEntries or kLedgers), in key order.
  void Scan(Cf cf, absl::string_view prefix,
            const std::function<void(absl::string_view, absl::string_view)>& visit) {
    std::map<std::string, std::optional<std::string>, std::less<>> merged;
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[cf]));
    const rocksdb::Slice p(prefix.data(), prefix.size());
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      merged.emplace(it->key().ToString(), it->value().ToString());
    }
    if (!it->status().ok()) return Fail(FromRocks(it->status(), "scan"));
    if (parent_ != nullptr) parent_->OverlayWrites(cf, prefix, &merged);
    OverlayWrites(cf, prefix, &merged);
    for (const auto& [key, value] : merged) {
      if (value) visit(key, *value);
    }
  }

  // Up to `limit` keys of `cf` (kDue) strictly after `after` ("" = from the
  // first) in this group's view: the database's keys merged with the
  // parent's and this group's writes, deleted ones left out.
  std::vector<std::string> KeysAfter(Cf cf, absl::string_view after, size_t limit) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[cf]));
    const rocksdb::Slice start(after.data(), after.size());
    it->Seek(start);
    if (!after.empty() && it->Valid() && it->key() == start) it->Next();
    const auto& own = ordered_[cf];
    auto o = own.upper_bound(after);
    static const absl::btree_set<std::string, std::less<>> kNone;
    const auto& inherited = parent_ != nullptr ? parent_->ordered_[cf] : kNone;
    auto p = inherited.upper_bound(after);
    while (out.size() < limit) {
      std::optional<absl::string_view> next;
      if (it->Valid()) next = View(it->key());
      if (o != own.end() && (!next || *o < *next)) next = *o;
      if (p != inherited.end() && (!next || *p < *next)) next = *p;
      if (!next) break;
      std::string key(*next);
      if (it->Valid() && View(it->key()) == key) it->Next();
      if (o != own.end() && *o == key) ++o;
      if (p != inherited.end() && *p == key) ++p;
      // The newest word on the key: this group, then the parent, then the
      // database (which is where it came from if neither holds it).
      const Slot* slot = Find(cf, key);
      if (slot == nullptr && parent_ != nullptr) slot = parent_->Find(cf, key);
      if (slot == nullptr || slot->value) out.push_back(std::move(key));
    }
    if (!it->status().ok()) Fail(FromRocks(it->status(), "scan"));
    return out;
  }

  // The group's writes as one batch, each column family's keys in order:
  // the memtable's skip list then inserts each key next to the one before
  // instead of searching from its head.
  absl::Status BuildBatch(rocksdb::WriteBatch* wb) const {
    std::vector<const std::pair<const std::string, Slot>*> sorted;
    for (int cf = 0; cf < kNumCf; ++cf) {
      sorted.clear();
      for (const auto& kv : views_[cf]) {
        if (kv.second.written) sorted.push_back(&kv);
      }
      std::sort(sorted.begin(), sorted.end(),
                [](const auto* a, const auto* b) { return a->first < b->first; });
      for (const auto* kv : sorted) {
        rocksdb::Status s = kv->second.value ? wb->Put(cfs_[cf], kv->first, *kv->second.value)
                                             : wb->Delete(cfs_[cf], kv->first);
        if (!s.ok()) return FromRocks(s, "batch");
      }
    }
    return absl::OkStatus();
  }

  void Fail(absl::Status s) {
    if (status_.ok()) status_ = std::move(s);
  }
  // Once the group is built it no longer reads through its parent (and must
  // not keep a chain of committed groups alive).
  void ReleaseParent() { parent_.reset(); }

 private:
  struct Slot {
    std::optional<std::string> value;  // nullopt: absent (or deleted)
    bool written = false;
  };
  static bool Ordered(Cf cf) { return cf == kEntries || cf == kLedgers || cf == kDue; }

  const Slot* Find(Cf cf, absl::string_view key) const {
    auto it = views_[cf].find(key);
    return it == views_[cf].end() ? nullptr : &it->second;
  }
  void Set(Cf cf, absl::string_view key, std::optional<std::string> value) {
    auto [it, inserted] = views_[cf].try_emplace(key);
    if (!it->second.written) {
      ++writes_;
      if (Ordered(cf)) ordered_[cf].emplace(key);
    }
    it->second.value = std::move(value);
    it->second.written = true;
  }
  void OverlayWrites(Cf cf,
                     absl::string_view prefix,
                     std::map<std::string, std::optional<std::string>, std::less<>>* merged) const {
    const auto& keys = ordered_[cf];
    for (auto it = keys.lower_bound(prefix); it != keys.end() && absl::StartsWith(*it, prefix);
         ++it) {
      (*merged)[*it] = Find(cf, *it)->value;
    }
  }

  rocksdb::DB* const db_;
  const std::vector<rocksdb::ColumnFamilyHandle*>& cfs_;
  const absl::Time now_;
  std::shared_ptr<const Txn> parent_;
  std::array<absl::flat_hash_map<std::string, Slot>, kNumCf> views_;
  std::array<absl::btree_set<std::string, std::less<>>, kNumCf> ordered_;
  uint32_t writes_ = 0;
  absl::Status status_;
};

// One queued change: `apply` runs on the writer thread inside a group's Txn,
// `complete` on the commit thread after the group's commit, with its status.
struct Op {
  size_t weight = 1;
  absl::AnyInvocable<void(Txn&)> apply;
  absl::AnyInvocable<void(absl::Status) &&> complete;
};

// A report validated and hashed before it reaches the writer.
struct PreparedReport {
  core::CoPaymentInput in;
  core::Validation validation;
  int64_t service_us = 0;
  std::string pseudonym;
  std::string content_hash;
  std::string sealed_id;  // the national id encrypted for a new person record
  absl::Status crypto_status;
};

bool EntryCounts(const rec::Entry& e) {
  return core::Counts(static_cast<core::Payment>(e.payment()),
                      static_cast<core::Category>(e.category()), e.performed_abroad(),
                      e.cancelled());
}

Entry ToEntry(const rec::Entry& e) {
  Entry out;
  out.report_id = e.report_id();
  out.provider_id = e.provider_id();
  out.service_time = FromMicros(e.service_time_us());
  out.category = static_cast<core::Category>(e.category());
  out.scheme = static_cast<core::Scheme>(e.scheme());
  out.amount = e.amount_ore();
  out.payment = static_cast<core::Payment>(e.payment());
  out.counted = EntryCounts(e);
  out.cancelled = e.cancelled();
  out.received_time = FromMicros(e.received_time_us());
  out.late = e.late();
  out.performed_abroad = e.performed_abroad();
  return out;
}

absl::CivilDay Day(int64_t n) { return core::DayFromNumber(n); }

ReportResult Rejected(std::string report_id, core::RejectReason reason, std::string message) {
  ReportResult r;
  r.report_id = std::move(report_id);
  r.outcome = core::Outcome::kRejected;
  r.reason = reason;
  r.message = std::move(message);
  return r;
}

// The ledger a due marker names; nullopt for a damaged key.
std::optional<DueLedger> ParseDueKey(absl::string_view k) {
  if (k.size() != keys::kDueKeySize) return std::nullopt;
  DueLedger d;
  d.year = static_cast<int>(keys::GetU(k, 0, 2));
  d.pseudonym = std::string(k.substr(2, kPseudonymBytes));
  d.scheme = static_cast<core::Scheme>(keys::GetU(k, 2 + kPseudonymBytes, 1));
  return d;
}

absl::StatusOr<uint64_t> ParseRunId(absl::string_view run_id) {
  uint64_t seq = 0;
  if (!absl::ConsumePrefix(&run_id, "run-") || run_id.empty() || !absl::SimpleAtoi(run_id, &seq) ||
      seq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_id: \"", run_id, "\" is not a run id (expected run-NNNNNN)"));
  }
  return seq;
}

std::string FormatRunId(uint64_t seq) { return absl::StrFormat("run-%06d", seq); }

class RegisterImpl final : public Register {
 public:
  RegisterImpl(const RegisterOptions& options, Crypto crypto)
      : options_(options),
        rules_(*options.rules),
        clock_(*options.clock),
        crypto_(std::move(crypto)) {}

  ~RegisterImpl() override {
    {
      absl::MutexLock l(&audit_mu_);
      audit_stop_ = true;
    }
    if (audit_writer_.joinable()) audit_writer_.join();
    if (log_syncer_.joinable()) log_syncer_.join();
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    if (writer_.joinable()) writer_.join();
    if (committer_.joinable()) committer_.join();
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
  }

  absl::Status OpenDb();

  void SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) override {
    auto results = std::make_shared<std::vector<ReportResult>>();
    results->reserve(items.size());
    // Validation and cryptography run here, on the caller's thread, so many
    // callers use many cores; the writer only reads and writes.
    std::vector<PreparedReport> prepared;
    prepared.reserve(items.size());
    const absl::Time now = clock_.Now();
    for (auto& in : items) prepared.push_back(Prepare(std::move(in), now));
    Op op;
    op.weight = std::max<size_t>(1, prepared.size());
    op.apply = [this, prepared = std::move(prepared), results](Txn& t) {
      for (const auto& p : prepared) results->push_back(ApplyReport(t, p));
    };
    op.complete = [results, done = std::move(done)](absl::Status s) mutable {
      if (!s.ok()) {
        std::move(done)(std::move(s));
      } else {
        std::move(done)(std::move(*results));
      }
    };
    Enqueue(std::move(op));
  }

  void UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                          ResultDone done) override {
    auto result = std::make_shared<ReportResult>();
    Op op;
    op.apply = [this, provider_id = std::move(provider_id), report_id = std::move(report_id),
                payment, result](Txn& t) {
      *result = ApplyUpdatePayment(t, provider_id, report_id, payment);
    };
    op.complete = ResultCompletion(result, std::move(done));
    Enqueue(std::move(op));
  }

  void CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                   ResultDone done) override {
    auto result = std::make_shared<ReportResult>();
    Op op;
    op.apply = [this, provider_id = std::move(provider_id), report_id = std::move(report_id),
                reason = std::move(reason),
                result](Txn& t) { *result = ApplyCancel(t, provider_id, report_id, reason); };
    op.complete = ResultCompletion(result, std::move(done));
    Enqueue(std::move(op));
  }

  void SetReservationAsync(std::string person_id, bool reserved,
                           absl::AnyInvocable<void(absl::Status) &&> done) override {
    auto id = core::ParsePersonId(person_id, options_.id_options);
    if (!id.ok()) {
      std::move(done)(id.status());
      return;
    }
    Op op;
    op.apply = [this, digits = id->digits, reserved](Txn& t) {
      ApplyReservation(t, digits, reserved);
    };
    op.complete = std::move(done);
    Enqueue(std::move(op));
  }

  absl::StatusOr<LedgerView> GetLedger(absl::string_view person_id, int year) override;
  absl::StatusOr<std::vector<SchemeExemption>> CheckExemption(absl::string_view person_id,
                                                              absl::CivilDay date,
                                                              core::Category category,
                                                              absl::string_view caller) override;
  void CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                           core::Category category, absl::string_view caller,
                           ExemptionDone done) override;
  absl::StatusOr<Page<LookupRecord>> ListLookups(absl::string_view person_id, int page_size,
                                                 absl::string_view page_token) override;
  absl::StatusOr<Page<Card>> ListFreeCards(int year, std::optional<absl::CivilDay> issued_on,
                                           int page_size, absl::string_view page_token) override;
  absl::StatusOr<Page<Payout>> ListPayouts(absl::string_view run_id, int year, int page_size,
                                           absl::string_view page_token) override;
  absl::StatusOr<std::vector<DueLedger>> ScanDue(const std::optional<DueLedger>& after,
                                                 size_t limit) override;
  absl::StatusOr<std::string> AllocateRunId() override;
  void DecideNextAsync(RunInfo run, std::shared_ptr<DueCursor> cursor, size_t limit,
                       DecideFn decide, DecideDone done) override;

  // Both databases: the register's and the lookup log's.
  uint64_t ApproximateSizeBytes() override {
    return Summed("rocksdb.total-sst-files-size") + Summed("rocksdb.cur-size-all-mem-tables");
  }
  uint64_t PendingCompactionBytes() override {
    return Summed("rocksdb.estimate-pending-compaction-bytes");
  }
  absl::StatusOr<VerifyReport> Verify() override;
  // The register's failure, else the lookup log's: either way the register
  // no longer serves all it should, and the health check says so.
  absl::Status Health() override {
    {
      absl::MutexLock l(&mu_);
      if (!failure_.ok()) return failure_;
    }
    return LogFailure();
  }
  absl::StatusOr<BackupInfo> Backup(const std::string& dest_dir) override {
    if (absl::Status s = ReadStatus(); !s.ok()) return s;
    if (!backup_mu_.TryLock()) {
      return absl::AbortedError("a backup is already running; try again when it has finished");
    }
    absl::StatusOr<BackupInfo> info =
        internal::CreateBackup(db_, log_db_, options_.data_dir, dest_dir, crypto_.SecretCheck());
    backup_mu_.Unlock();
    return info;
  }
  std::string AuditPseudonym(absl::string_view person_id) const override {
    auto id = core::ParsePersonId(person_id, options_.id_options);
    return id.ok() ? absl::BytesToHexString(crypto_.Pseudonym(id->digits)) : "";
  }

 private:
  static absl::AnyInvocable<void(absl::Status) &&> ResultCompletion(
      std::shared_ptr<ReportResult> result, ResultDone done) {
    return [result, done = std::move(done)](absl::Status s) mutable {
      if (!s.ok()) {
        std::move(done)(std::move(s));
      } else {
        std::move(done)(std::move(*result));
      }
    };
  }

  void Enqueue(Op op) {
    absl::Status failed;
    {
      absl::MutexLock l(&mu_);
      if (failure_.ok() && !stop_) {
        queue_.push_back(std::move(op));
        return;
      }
      failed = failure_.ok() ? absl::UnavailableError("register is shutting down") : failure_;
    }
    std::move(op.complete)(failed);
  }

  void WriterLoop();

  // ---- the write path, on the writer thread ----
  PreparedReport Prepare(core::CoPaymentInput in, absl::Time now) const;
  ReportResult ApplyReport(Txn& t, const PreparedReport& p);
  ReportResult ApplyUpdatePayment(Txn& t, const std::string& provider_id,
                                  const std::string& report_id, int payment);
  ReportResult ApplyCancel(Txn& t, const std::string& provider_id, const std::string& report_id,
                           const std::string& reason);
  void ApplyReservation(Txn& t, const std::string& digits, bool reserved);
  LedgerOutcome ApplyDecide(Txn& t, const RunInfo& run, uint64_t run_seq,
                            const std::string& due_key, DueLedger d, const DecideFn& decide);

  // Loads (or starts) a ledger summary and the state the job sees of it.
  core::LedgerState StateOf(int year, core::Scheme scheme, const rec::Ledger& l) const;
  // Adds one newly counted entry to its ledger, rescanning only when the
  // entry lands before the crossing point (or the crossing is new and the
  // entry is not the latest counted one).
  void AddCounted(Txn& t, const std::string& pseudonym, const rec::Entry& e,
                  const std::string& entry_key);
  // Recomputes a ledger from its entries (after a cancellation, or when the
  // fast path cannot decide) and stores it.
  void Recompute(Txn& t, const std::string& pseudonym, int year, core::Scheme scheme);
  void RecomputeInto(Txn& t, const std::string& pseudonym, int year, core::Scheme scheme,
                     rec::Ledger* l);
  // Stores the ledger, flags an issued card whose basis fell below the cap,
  // and keeps the due marker in step with NeedsIssuanceWork.
  void StoreLedger(Txn& t, const std::string& pseudonym, int year, core::Scheme scheme,
                   rec::Ledger* l, bool was_due);
  bool IsReserved(Txn& t, const std::string& pseudonym) {
    rec::Person p;
    return t.GetMsg(kPersons, pseudonym, &p) && p.reserved();
  }
  // Finds a report through the idempotency index.
  bool FindReport(Txn& t, const std::string& provider_id, const std::string& report_id,
                  std::string* entry_key, rec::Entry* entry);

  // ---- reads ----
  absl::Status ReadStatus() {
    absl::MutexLock l(&mu_);
    return failure_;
  }
  template <typename Msg>
  absl::StatusOr<bool> ReadMsg(Cf cf, absl::string_view key, Msg* msg) {
    std::string v;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cfs_[cf], rocksdb::Slice(key.data(), key.size()), &v);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "read");
    if (!msg->ParseFromString(v)) {
      return absl::DataLossError(absl::StrCat("damaged record in ", kCfNames[cf]));
    }
    return true;
  }
  absl::StatusOr<std::string> PersonIdOf(absl::string_view pseudonym);
  // Walks `cf` from the page token (or `prefix`) while keys start with
  // `prefix`; `visit` returns false on a record it could not convert.
  absl::StatusOr<std::string> ScanPage(
      Cf cf, const std::string& prefix, absl::string_view page_token, int page_size,
      const std::function<absl::Status(absl::string_view key, absl::string_view value)>& visit);

  const RegisterOptions options_;
  const core::RulesTable& rules_;
  const core::Clock& clock_;
  const Crypto crypto_;
  rocksdb::DB* db_ = nullptr;
  // The lookup log, in a database of its own (data_dir/lookup-log): with its
  // own WAL and write queue, a lookup's record never waits behind a group
  // commit of reports. The register's `audit` family only holds records of
  // registers created before the split, until OpenDb moves them.
  rocksdb::DB* log_db_ = nullptr;
  absl::Status MoveLegacyLookupLog();
  // The lookup log's WAL is written unsynced (a record is in it before its
  // lookup is answered, so it survives a crash of the process) and synced by
  // this thread every kLogSyncInterval, so a power loss loses at most that
  // much of the log. A failed sync refuses lookups from then on.
  static constexpr absl::Duration kLogSyncInterval = absl::Milliseconds(200);
  void LogSyncLoop();
  std::thread log_syncer_;
  uint64_t Summed(const std::string& property) {
    uint64_t total = 0;
    for (rocksdb::DB* db : {db_, log_db_}) {
      uint64_t v = 0;
      if (db != nullptr && db->GetAggregatedIntProperty(property, &v)) total += v;
    }
    return total;
  }
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::atomic<uint64_t> audit_seq_{0};

  // The lookup log's own writer: records of concurrent lookups go to RocksDB
  // as one unsynced batch (in the WAL before the answer; made durable by the
  // next synced write).
  struct AuditOp {
    std::string key, value;
    std::vector<SchemeExemption> answer;
    ExemptionDone done;
  };
  void AuditLoop();
  absl::Mutex audit_mu_;
  std::vector<AuditOp> audit_queue_ ABSL_GUARDED_BY(audit_mu_);
  bool audit_stop_ ABSL_GUARDED_BY(audit_mu_) = false;
  // The lookup log's first failed write or sync: from then on every lookup
  // is refused (an answer is never given without its record) until restart.
  absl::Status log_failure_ ABSL_GUARDED_BY(audit_mu_);
  std::atomic<bool> log_failed_{false};  // log_failure_ is set (read unlocked)
  absl::Status LogFailure() {
    if (!log_failed_.load(std::memory_order_acquire)) return absl::OkStatus();
    absl::MutexLock l(&audit_mu_);
    return log_failure_;
  }
  // Records `s` as the log's failure if it is the first; returns it.
  absl::Status LogFailed(absl::Status s) {
    absl::MutexLock l(&audit_mu_);
    if (log_failure_.ok()) {
      log_failure_ = std::move(s);
      log_failed_.store(true, std::memory_order_release);
    }
    return log_failure_;
  }
  std::thread audit_writer_;

  // A lookup's answer and its audit record, read but not yet logged.
  struct Evaluated {
    std::vector<SchemeExemption> answer;
    std::string audit_key, audit_value;
  };
  absl::StatusOr<Evaluated> EvaluateExemption(absl::string_view person_id, absl::CivilDay date,
                                              core::Category category, absl::string_view caller);

  absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;

  // A built group on its way to disk: the commit thread writes it (one synced
  // write) and completes its operations, in build order, while the writer
  // builds the next group on top of it. At most one group is in flight.
  struct Group {
    std::shared_ptr<Txn> txn;
    std::vector<Op> ops;
  };
  void CommitLoop();
  absl::Mutex commit_mu_;
  std::shared_ptr<Group> committing_ ABSL_GUARDED_BY(commit_mu_);
  bool commit_stop_ ABSL_GUARDED_BY(commit_mu_) = false;
  std::thread committer_;
  absl::Mutex backup_mu_;  // held while a backup runs: one at a time

  friend class Register;
};

// ---------------------------------------------------------------------------
// Opening

absl::Status RegisterImpl::OpenDb() {
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
  for (int i = 0; i < kNumCf; ++i) {
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    cf.write_buffer_size = std::max<uint64_t>(options_.write_buffer_bytes / 4, 1 << 20);
    if (i == kDue) {
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
    if (i != kAudit) {
      // A bloom filter over each memtable's keys: most reads on the write
      // path are for keys that do not exist yet (a new report's index entry,
      // a new person, a new ledger), and the filter answers those without a
      // walk down the memtable's skip list. Its bits live in the memtable's
      // arena, so --write_buffer_mb still bounds them.
      cf.memtable_prefix_bloom_size_ratio = 0.05;
      cf.memtable_whole_key_filtering = true;
    }
    if (i == kEntries || i == kAudit) {
      // Per-person scans seek within one pseudonym: prefix blooms skip files.
      cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kPseudonymBytes));
    }
    if (i == kAudit) {
      // The lookup log is written once per lookup and read only when an
      // operator lists one person's lookups. A skip list put each record's
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
    const std::string msg = s.ToString();
    if (absl::StrContains(msg, "lock") || absl::StrContains(msg, "LOCK")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data_dir ", options_.data_dir, " is locked: another frikortd is using it (", msg, ")"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open the register in data_dir ", options_.data_dir, ": ", msg));
  }

  // The secret check: a register opened with another key would compute other
  // pseudonyms and silently split every person in two.
  std::string check;
  s = db_->Get(rocksdb::ReadOptions(), cfs_[kMeta], "secret_check", &check);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const bool fresh = s.IsNotFound();
  int64_t version = kSchemaVersion;
  if (!fresh && !s.ok()) return FromRocks(s, "cannot read the register's metadata");
  if (!fresh) {
    if (check != crypto_.SecretCheck()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the pseudonym key does not match the one the register in ", options_.data_dir,
          " was created with; refusing to open it with another key"));
    }
    std::string text;
    s = db_->Get(rocksdb::ReadOptions(), cfs_[kMeta], "schema_version", &text);
    if (!s.ok() || !absl::SimpleAtoi(text, &version) || version < 1) {
      return absl::DataLossError(absl::StrCat("the register in ", options_.data_dir,
                                              " has no readable schema version (",
                                              s.ok() ? text : s.ToString(), ")"));
    }
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the register in ", options_.data_dir, " has schema version ", version,
          ", newer than this frikortd's (", kSchemaVersion, "); use the frikortd that wrote it"));
    }
  }
  // The lookup log: the audit family's options (unsorted memtable, prefix
  // blooms), the same block cache, a WAL of its own, and a memtable budget of
  // its own (two of its memtables, charged to the cache). Sharing the
  // register's budget made every lookup after a batch feed flush the log's
  // near-empty memtable, as the feed had left the shared budget over its
  // flush mark: 49 table files for 50 lookups.
  rocksdb::Options log_options(db_options, descs[kAudit].options);
  log_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      2 * descs[kAudit].options.write_buffer_size, cache_);
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
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open the lookup log in ", log_dir, ": ", s.ToString()));
  }
  if (fresh) {
    // Only now, with the lookup log created: a crash before this starts over.
    rocksdb::WriteBatch b;
    b.Put(cfs_[kMeta], "secret_check", crypto_.SecretCheck());
    b.Put(cfs_[kMeta], "schema_version", absl::StrCat(kSchemaVersion));
    s = db_->Write(wo, &b);
    if (!s.ok()) return FromRocks(s, "cannot initialise the register");
  } else if (version < 2) {
    if (absl::Status moved = MoveLegacyLookupLog(); !moved.ok()) return moved;
    s = db_->Put(wo, cfs_[kMeta], "schema_version", absl::StrCat(kSchemaVersion));
    if (!s.ok()) return FromRocks(s, "cannot record the register's schema version");
  }

  // Named, so `top -H` and a profile tell the register's threads apart.
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-writer");
    WriterLoop();
  });
  committer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-commit");
    CommitLoop();
  });
  log_syncer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-logsync");
    LogSyncLoop();
  });
  audit_writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-audit");
    AuditLoop();
  });
  return absl::OkStatus();
}

// Registers created before the lookup log had a database of its own kept it
// in the `audit` family. Its records are copied over and then deleted, a
// batch at a time, each step synced: a crash in between copies a batch again
// (the same keys and values), so nothing is lost or doubled.
absl::Status RegisterImpl::MoveLegacyLookupLog() {
  constexpr size_t kBatch = 10000;
  rocksdb::WriteOptions synced;
  synced.sync = true;
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  // One iterator for the whole move: it reads its own snapshot, so it never
  // walks the tombstones of the steps before (a new one per step did: each
  // step slower than the last).
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kAudit]));
  it->SeekToFirst();
  for (;;) {
    rocksdb::WriteBatch copy, remove;
    size_t n = 0;
    for (; it->Valid() && n < kBatch; it->Next(), ++n) {
      copy.Put(it->key(), it->value());
      remove.Delete(cfs_[kAudit], it->key());
    }
    if (!it->status().ok()) return FromRocks(it->status(), "cannot read the old lookup log");
    if (n == 0) return absl::OkStatus();
    rocksdb::Status s = log_db_->Write(synced, &copy);
    if (s.ok()) s = db_->Write(synced, &remove);
    if (!s.ok()) return FromRocks(s, "cannot move the old lookup log to its own database");
  }
}

void RegisterImpl::LogSyncLoop() {
  // From zero, not from the sequence when this thread first runs: records
  // written before it was scheduled (or recovered from an unsynced WAL tail
  // still in the page cache) are synced on its first tick.
  rocksdb::SequenceNumber synced = 0;
  for (;;) {
    {
      absl::MutexLock l(&audit_mu_);
      if (audit_mu_.AwaitWithTimeout(absl::Condition(&audit_stop_), kLogSyncInterval)) {
        return;  // the destructor syncs once more after the last record
      }
    }
    const rocksdb::SequenceNumber latest = log_db_->GetLatestSequenceNumber();
    if (latest == synced) continue;
    rocksdb::Status s = log_db_->SyncWAL();
    if (!s.ok()) {
      LogFailed(FromRocks(s, "cannot sync the lookup log; lookups are refused")).IgnoreError();
      return;
    }
    synced = latest;
  }
}

void RegisterImpl::WriterLoop() {
  for (;;) {
    std::vector<Op> ops;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](RegisterImpl* r)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return r->stop_ || !r->queue_.empty(); },
          this));
      if (queue_.empty()) break;  // stop requested and nothing left to do
      size_t weight = 0;
      while (!queue_.empty() &&
             (ops.empty() ||
              weight + queue_.front().weight <= static_cast<size_t>(options_.max_group_reports))) {
        weight += queue_.front().weight;
        ops.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (absl::Status s = ReadStatus(); !s.ok()) {
      for (auto& op : ops) std::move(op.complete)(s);
      continue;
    }
    // Build this group on top of the one being committed (if any), so the
    // next fsync's wait and this group's work overlap.
    std::shared_ptr<const Txn> parent;
    {
      absl::MutexLock l(&commit_mu_);
      if (committing_ != nullptr) parent = committing_->txn;
    }
    auto group = std::make_shared<Group>();
    group->txn = std::make_shared<Txn>(db_, cfs_, clock_.Now(), std::move(parent));
    for (auto& op : ops) op.apply(*group->txn);
    group->txn->ReleaseParent();
    group->ops = std::move(ops);
    absl::MutexLock l(&commit_mu_);
    commit_mu_.Await(absl::Condition(
        +[](RegisterImpl* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
             r->commit_mu_) { return r->committing_ == nullptr; },
        this));
    committing_ = std::move(group);
  }
  absl::MutexLock l(&commit_mu_);
  commit_stop_ = true;
}

void RegisterImpl::CommitLoop() {
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  for (;;) {
    std::shared_ptr<Group> group;
    {
      absl::MutexLock l(&commit_mu_);
      commit_mu_.Await(absl::Condition(
          +[](RegisterImpl* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->commit_mu_) {
            return r->committing_ != nullptr || r->commit_stop_;
          },
          this));
      if (committing_ == nullptr) return;  // the writer has stopped and all is written
      group = committing_;
    }
    // A group built on one whose write failed holds what never reached disk:
    // it fails with it.
    absl::Status s = ReadStatus();
    if (s.ok()) {
      s = group->txn->status();
      if (s.ok() && group->txn->writes() > 0) {
        rocksdb::WriteBatch wb;
        s = group->txn->BuildBatch(&wb);
        if (s.ok()) s = FromRocks(db_->Write(wo, &wb), "write");
      }
      if (!s.ok()) {
        s = absl::UnavailableError(absl::StrCat(
            "the register stopped accepting changes after a storage error (", s.message(),
            "); nothing of this call was stored; restart frikortd once the cause is fixed"));
        absl::MutexLock l(&mu_);
        if (failure_.ok()) failure_ = s;
      }
    }
    {
      absl::MutexLock l(&commit_mu_);
      committing_ = nullptr;
    }
    for (auto& op : group->ops) std::move(op.complete)(s);
  }
}

// ---------------------------------------------------------------------------
// Write path

PreparedReport RegisterImpl::Prepare(core::CoPaymentInput in, absl::Time now) const {
  PreparedReport p;
  p.validation = core::ValidateCoPayment(in, rules_, options_.id_options, now);
  if (p.validation.ok()) {
    const core::ValidatedCoPayment& c = p.validation.value;
    p.service_us = ToMicros(c.service_time);
    p.pseudonym = crypto_.Pseudonym(c.person.digits);
    p.content_hash = crypto_.ContentHash(absl::StrCat(
        in.provider_id, "|", in.report_id, "|", c.person.digits, "|", p.service_us, "|",
        static_cast<int>(c.category), "|", c.amount, "|", static_cast<int>(c.payment), "|",
        c.performed_abroad ? 1 : 0, "|", in.attributed_year));
    // Sealed ahead in case the person is new: cheap, and it keeps the cipher
    // off the writer thread.
    auto sealed = crypto_.Encrypt(c.person.digits, p.pseudonym);
    if (sealed.ok()) {
      p.sealed_id = *std::move(sealed);
    } else {
      p.crypto_status = sealed.status();
    }
  }
  p.in = std::move(in);
  return p;
}

ReportResult RegisterImpl::ApplyReport(Txn& t, const PreparedReport& p) {
  const core::CoPaymentInput& in = p.in;
  if (!p.validation.ok()) return Rejected(in.report_id, p.validation.reason, p.validation.message);
  const core::ValidatedCoPayment& c = p.validation.value;
  const int64_t service_us = p.service_us;
  const std::string& pseudonym = p.pseudonym;
  const std::string& content_hash = p.content_hash;

  const std::string report_key = keys::Report(in.provider_id, in.report_id);
  rec::ReportIndex index;
  if (t.GetMsg(kReports, report_key, &index)) {
    if (index.content_hash() != content_hash) {
      return Rejected(
          in.report_id, core::RejectReason::kConflictingDuplicate,
          absl::StrCat("report_id: provider ", in.provider_id, " already reported ", in.report_id,
                       " with different content; send a "
                       "cancellation and a new report_id to correct it"));
    }
    rec::Entry stored;
    ReportResult r;
    r.report_id = in.report_id;
    r.outcome = core::Outcome::kDuplicate;
    r.message = "report_id: already stored; nothing changed";
    if (t.GetMsg(kEntries, index.entry_key(), &stored)) {
      r.counted = EntryCounts(stored);
      r.year = stored.year();
      r.scheme = static_cast<core::Scheme>(stored.scheme());
    }
    return r;
  }

  rec::Person person;
  const bool known = t.GetMsg(kPersons, pseudonym, &person);
  if (person.reserved()) {
    return Rejected(in.report_id, core::RejectReason::kPersonReserved,
                    "person_id: the person has opted out of the automatic free card scheme; "
                    "co-payments for them are not stored");
  }
  if (!known) {
    if (!p.crypto_status.ok()) {
      t.Fail(p.crypto_status);
      return Rejected(in.report_id, core::RejectReason::kNone, "internal error");
    }
    person.set_encrypted_id(p.sealed_id);
    t.PutMsg(kPersons, pseudonym, person);
  }

  rec::Entry e;
  e.set_report_id(in.report_id);
  e.set_provider_id(in.provider_id);
  e.set_service_time_us(service_us);
  e.set_category(static_cast<int>(c.category));
  e.set_scheme(static_cast<int>(c.scheme));
  e.set_amount_ore(c.amount);
  e.set_payment(static_cast<int>(c.payment));
  e.set_performed_abroad(c.performed_abroad);
  e.set_received_time_us(ToMicros(t.now()));
  e.set_late(c.late);
  e.set_attributed_year(in.attributed_year);
  e.set_year(c.year);
  const std::string entry_key =
      keys::Entry(pseudonym, c.year, service_us, in.provider_id, in.report_id);
  t.PutMsg(kEntries, entry_key, e);
  index.set_entry_key(entry_key);
  index.set_content_hash(content_hash);
  t.PutMsg(kReports, report_key, index);
  const bool counted = EntryCounts(e);
  if (counted) AddCounted(t, pseudonym, e, entry_key);

  ReportResult r;
  r.report_id = in.report_id;
  r.outcome = core::Outcome::kAccepted;
  r.counted = counted;
  r.year = c.year;
  r.scheme = c.scheme;
  r.message = c.late ? "accepted; reported more than 14 days after the service (late)" : "accepted";
  return r;
}

bool RegisterImpl::FindReport(Txn& t, const std::string& provider_id, const std::string& report_id,
                              std::string* entry_key, rec::Entry* entry) {
  rec::ReportIndex index;
  if (!t.GetMsg(kReports, keys::Report(provider_id, report_id), &index)) return false;
  *entry_key = index.entry_key();
  if (!t.GetMsg(kEntries, *entry_key, entry)) {
    t.Fail(absl::DataLossError(absl::StrCat("idempotency index of ", provider_id, "/", report_id,
                                            " points at a missing entry")));
    return false;
  }
  return true;
}

ReportResult RegisterImpl::ApplyUpdatePayment(Txn& t, const std::string& provider_id,
                                              const std::string& report_id, int payment) {
  if (auto s = core::ValidateProviderId(provider_id); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidProviderId, std::string(s.message()));
  }
  if (auto s = core::ValidateReportId(report_id); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidReportId, std::string(s.message()));
  }
  if (payment != static_cast<int>(core::Payment::kPaid)) {
    return Rejected(
        report_id, core::RejectReason::kInvalidPaymentStatus,
        absl::StrCat("payment: the only allowed change is INVOICED_UNPAID to PAID; ",
                     core::PaymentName(static_cast<core::Payment>(payment)), " is not allowed"));
  }
  std::string entry_key;
  rec::Entry e;
  if (!FindReport(t, provider_id, report_id, &entry_key, &e)) {
    return Rejected(
        report_id, core::RejectReason::kUnknownReport,
        absl::StrCat("report_id: provider ", provider_id, " has no report ", report_id));
  }
  ReportResult r;
  r.report_id = report_id;
  r.year = e.year();
  r.scheme = static_cast<core::Scheme>(e.scheme());
  if (e.cancelled()) {
    return Rejected(report_id, core::RejectReason::kAlreadyCancelled,
                    "report_id: the report is cancelled; its payment cannot change");
  }
  const auto current = static_cast<core::Payment>(e.payment());
  if (current == core::Payment::kPaid && e.paid_by_update()) {
    r.outcome = core::Outcome::kDuplicate;
    r.counted = EntryCounts(e);
    r.message = "payment: already updated to PAID; nothing changed";
    return r;
  }
  if (current != core::Payment::kInvoicedUnpaid) {
    return Rejected(report_id, core::RejectReason::kInvalidPaymentStatus,
                    absl::StrCat("payment: the report is ", core::PaymentName(current),
                                 "; only INVOICED_UNPAID can change to PAID"));
  }
  e.set_payment(static_cast<int>(core::Payment::kPaid));
  e.set_paid_by_update(true);
  e.set_payment_updated_time_us(ToMicros(t.now()));
  t.PutMsg(kEntries, entry_key, e);
  r.counted = EntryCounts(e);
  if (r.counted) AddCounted(t, entry_key.substr(0, kPseudonymBytes), e, entry_key);
  r.outcome = core::Outcome::kAccepted;
  r.message = "payment updated to PAID";
  return r;
}

ReportResult RegisterImpl::ApplyCancel(Txn& t, const std::string& provider_id,
                                       const std::string& report_id, const std::string& reason) {
  if (auto s = core::ValidateProviderId(provider_id); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidProviderId, std::string(s.message()));
  }
  if (auto s = core::ValidateReportId(report_id); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidReportId, std::string(s.message()));
  }
  std::string entry_key;
  rec::Entry e;
  if (!FindReport(t, provider_id, report_id, &entry_key, &e)) {
    return Rejected(
        report_id, core::RejectReason::kUnknownReport,
        absl::StrCat("report_id: provider ", provider_id, " has no report ", report_id));
  }
  if (e.cancelled()) {
    return Rejected(report_id, core::RejectReason::kAlreadyCancelled,
                    "report_id: the report was cancelled before");
  }
  const bool counted_before = EntryCounts(e);
  e.set_cancelled(true);
  e.set_cancel_reason(reason);
  e.set_cancelled_time_us(ToMicros(t.now()));
  t.PutMsg(kEntries, entry_key, e);
  if (counted_before) {
    Recompute(t, entry_key.substr(0, kPseudonymBytes), e.year(),
              static_cast<core::Scheme>(e.scheme()));
  }
  ReportResult r;
  r.report_id = report_id;
  r.outcome = core::Outcome::kAccepted;
  r.counted = false;
  r.year = e.year();
  r.scheme = static_cast<core::Scheme>(e.scheme());
  r.message = "cancelled";
  return r;
}

core::LedgerState RegisterImpl::StateOf(int year, core::Scheme scheme, const rec::Ledger& l) const {
  core::LedgerState s;
  s.year = year;
  if (const core::YearRules* yr = rules_.ForYear(year)) s.refund_minimum = yr->refund_minimum;
  s.cap = rules_.Cap(year, scheme).value_or(0);
  s.counted_total = l.counted_total_ore();
  if (l.crossed()) s.cap_reached_on = Day(l.cap_reached_on());
  s.has_card = l.card_issued();
  s.refunded = l.refunded_ore();
  return s;
}

void RegisterImpl::AddCounted(Txn& t, const std::string& pseudonym, const rec::Entry& e,
                              const std::string& entry_key) {
  const int year = e.year();
  const auto scheme = static_cast<core::Scheme>(e.scheme());
  rec::Ledger l;
  t.GetMsg(kLedgers, keys::Ledger(pseudonym, year, scheme), &l);
  const bool was_due = core::NeedsIssuanceWork(StateOf(year, scheme, l));
  const Ore cap = rules_.Cap(year, scheme).value_or(0);
  l.set_counted_total_ore(l.counted_total_ore() + e.amount_ore());
  const bool is_last = entry_key > l.max_counted_key();
  bool rescan = false;
  if (l.crossed()) {
    rescan = entry_key < l.crossing_key();
  } else if (l.counted_total_ore() >= cap) {
    if (is_last) {
      // The running total in service-time order reaches the cap exactly here.
      l.set_crossed(true);
      l.set_crossing_key(entry_key);
      const absl::CivilDay jan1(year, 1, 1);
      l.set_cap_reached_on(
          core::DayNumber(std::max(core::OsloDate(FromMicros(e.service_time_us())), jan1)));
    } else {
      rescan = true;
    }
  }
  if (is_last) l.set_max_counted_key(entry_key);
  if (rescan) RecomputeInto(t, pseudonym, year, scheme, &l);
  StoreLedger(t, pseudonym, year, scheme, &l, was_due);
}

void RegisterImpl::Recompute(Txn& t, const std::string& pseudonym, int year, core::Scheme scheme) {
  rec::Ledger l;
  t.GetMsg(kLedgers, keys::Ledger(pseudonym, year, scheme), &l);
  const bool was_due = core::NeedsIssuanceWork(StateOf(year, scheme, l));
  RecomputeInto(t, pseudonym, year, scheme, &l);
  StoreLedger(t, pseudonym, year, scheme, &l, was_due);
}

void RegisterImpl::RecomputeInto(Txn& t, const std::string& pseudonym, int year,
                                 core::Scheme scheme, rec::Ledger* l) {
  std::vector<core::LedgerItem> items;
  std::vector<std::string> item_keys;
  rec::Entry e;
  t.Scan(kEntries, keys::PersonYear(pseudonym, year),
         [&](absl::string_view key, absl::string_view value) {
           if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
             return t.Fail(absl::DataLossError("damaged entry record"));
           }
           if (e.scheme() != static_cast<int>(scheme) || !EntryCounts(e)) return;
           items.push_back({FromMicros(e.service_time_us()), e.amount_ore(), true});
           item_keys.emplace_back(key);
         });
  if (!t.status().ok()) return;
  const Ore cap = rules_.Cap(year, scheme).value_or(0);
  const core::LedgerTotals totals = core::ComputeTotals(items, cap, year);
  l->set_counted_total_ore(totals.counted_total);
  l->set_max_counted_key(item_keys.empty() ? "" : item_keys.back());
  l->set_crossed(totals.cap_reached_on.has_value());
  l->clear_crossing_key();
  l->clear_cap_reached_on();
  if (totals.cap_reached_on) {
    l->set_cap_reached_on(core::DayNumber(*totals.cap_reached_on));
    Ore running = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      running += items[i].amount;
      if (running >= cap) {
        l->set_crossing_key(item_keys[i]);
        break;
      }
    }
  }
}

void RegisterImpl::StoreLedger(Txn& t, const std::string& pseudonym, int year, core::Scheme scheme,
                               rec::Ledger* l, bool was_due) {
  const Ore cap = rules_.Cap(year, scheme).value_or(0);
  const bool below_cap = l->counted_total_ore() < cap;
  const bool over_refunded = l->refunded_ore() > l->counted_total_ore() - cap;
  if (l->card_issued() && (below_cap || over_refunded) && !l->card().under_review()) {
    // A correction took the card's basis below the cap, or below what was
    // already refunded: flag it for an operator; the card stays valid and
    // nothing is clawed back until someone decides.
    l->mutable_card()->set_under_review(true);
    rec::CardIndex ci;
    ci.set_pseudonym(pseudonym);
    ci.set_year(year);
    ci.set_scheme(static_cast<int>(scheme));
    *ci.mutable_card() = l->card();
    t.PutMsg(kCards, keys::Card(year, l->card().issued_on(), pseudonym, scheme), ci);
  }
  t.PutMsg(kLedgers, keys::Ledger(pseudonym, year, scheme), *l);
  const bool due = core::NeedsIssuanceWork(StateOf(year, scheme, *l)) && !IsReserved(t, pseudonym);
  const std::string due_key = keys::Due(year, pseudonym, scheme);
  if (due) {
    t.Put(kDue, due_key, "");
  } else if (was_due) {
    t.Delete(kDue, due_key);
  }
}

void RegisterImpl::ApplyReservation(Txn& t, const std::string& digits, bool reserved) {
  const std::string pseudonym = crypto_.Pseudonym(digits);
  rec::Person person;
  if (!t.GetMsg(kPersons, pseudonym, &person)) {
    auto sealed = crypto_.Encrypt(digits, pseudonym);
    if (!sealed.ok()) return t.Fail(sealed.status());
    person.set_encrypted_id(*std::move(sealed));
  }
  person.set_reserved(reserved);
  t.PutMsg(kPersons, pseudonym, person);
  // Due markers follow the reservation: the job does not act for a reserved
  // person, and picks their ledgers up again once the reservation is withdrawn.
  std::vector<std::pair<std::string, rec::Ledger>> ledgers;
  t.Scan(kLedgers, pseudonym, [&](absl::string_view key, absl::string_view value) {
    rec::Ledger l;
    if (!l.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return t.Fail(absl::DataLossError("damaged ledger record"));
    }
    ledgers.emplace_back(std::string(key), std::move(l));
  });
  if (!t.status().ok()) return;
  for (const auto& [key, l] : ledgers) {
    const int year = static_cast<int>(keys::GetU(key, kPseudonymBytes, 2));
    const auto scheme = static_cast<core::Scheme>(keys::GetU(key, kPseudonymBytes + 2, 1));
    const std::string due_key = keys::Due(year, pseudonym, scheme);
    if (!reserved && core::NeedsIssuanceWork(StateOf(year, scheme, l))) {
      t.Put(kDue, due_key, "");
    } else if (reserved) {
      t.Delete(kDue, due_key);
    }
  }
}

LedgerOutcome RegisterImpl::ApplyDecide(Txn& t, const RunInfo& run, uint64_t run_seq,
                                        const std::string& due_key, DueLedger ledger,
                                        const DecideFn& decide) {
  LedgerOutcome out;
  out.ledger = std::move(ledger);
  const DueLedger& d = out.ledger;
  // No opt-out check here: a reservation removes the person's markers in the
  // same write, and no marker is set while it holds (Verify checks both), so
  // the marker just taken is the proof. A marker without its ledger is a
  // damaged register: nothing to decide, the marker goes.
  rec::Ledger l;
  if (!t.GetMsg(kLedgers, keys::Ledger(d.pseudonym, d.year, d.scheme), &l)) {
    out.skipped = true;
    if (!run.dry_run) t.Delete(kDue, due_key);
    return out;
  }
  out.decision = decide(StateOf(d.year, d.scheme, l));
  if (run.dry_run) return out;
  const core::IssuanceDecision& dec = out.decision;
  if (dec.issue_card) {
    rec::Card* card = l.mutable_card();
    card->set_valid_from(core::DayNumber(dec.valid_from));
    card->set_valid_to(core::DayNumber(dec.valid_to));
    card->set_issued_on(core::DayNumber(run.as_of));
    card->set_basis_total_ore(l.counted_total_ore());
    card->set_under_review(false);
    card->set_run_id(run.run_id);
    l.set_card_issued(true);
    rec::CardIndex ci;
    ci.set_pseudonym(d.pseudonym);
    ci.set_year(d.year);
    ci.set_scheme(static_cast<int>(d.scheme));
    *ci.mutable_card() = *card;
    t.PutMsg(kCards, keys::Card(d.year, card->issued_on(), d.pseudonym, d.scheme), ci);
  }
  if (dec.refund.payout > 0) {
    l.set_refunded_ore(l.refunded_ore() + dec.refund.payout);
    rec::Payout p;
    p.set_pseudonym(d.pseudonym);
    p.set_year(d.year);
    p.set_scheme(static_cast<int>(d.scheme));
    p.set_amount_ore(dec.refund.payout);
    p.set_run_id(run.run_id);
    p.set_created_on(core::DayNumber(run.as_of));
    t.PutMsg(kPayouts, keys::PayoutByYear(d.year, run_seq, d.pseudonym, d.scheme), p);
    t.PutMsg(kPayouts, keys::PayoutByRun(run_seq, d.year, d.pseudonym, d.scheme), p);
  }
  t.PutMsg(kLedgers, keys::Ledger(d.pseudonym, d.year, d.scheme), l);
  if (dec.done) t.Delete(kDue, due_key);
  return out;
}

void RegisterImpl::DecideNextAsync(RunInfo run, std::shared_ptr<DueCursor> cursor, size_t limit,
                                   DecideFn decide, DecideDone done) {
  uint64_t run_seq = 0;
  if (!run.dry_run) {
    auto seq = ParseRunId(run.run_id);
    if (!seq.ok()) {
      std::move(done)(seq.status());
      return;
    }
    run_seq = *seq;
  }
  if (cursor == nullptr || limit == 0) {
    std::move(done)(absl::InvalidArgumentError("issuance: a chunk needs a cursor and a limit > 0"));
    return;
  }
  auto outcomes = std::make_shared<std::vector<LedgerOutcome>>();
  Op op;
  op.weight = limit;
  op.apply = [this, run = std::move(run), run_seq, cursor = std::move(cursor), limit,
              decide = std::move(decide), outcomes](Txn& t) {
    // The markers as every change queued before this chunk left them, the
    // chunk queued just before included (it may not be on disk yet).
    std::vector<std::string> due_keys = t.KeysAfter(kDue, cursor->after, limit);
    if (!t.status().ok() || due_keys.empty()) return;
    cursor->after = due_keys.back();
    std::vector<DueLedger> ledgers;
    std::vector<std::string> ledger_keys;
    for (const std::string& k : due_keys) {
      std::optional<DueLedger> d = ParseDueKey(k);
      if (!d) return t.Fail(absl::DataLossError("damaged due marker key"));
      ledger_keys.push_back(keys::Ledger(d->pseudonym, d->year, d->scheme));
      ledgers.push_back(*std::move(d));
    }
    t.Prefetch(kLedgers, std::move(ledger_keys));
    outcomes->reserve(ledgers.size());
    for (size_t i = 0; i < ledgers.size(); ++i) {
      outcomes->push_back(
          ApplyDecide(t, run, run_seq, due_keys[i], std::move(ledgers[i]), decide));
    }
  };
  op.complete = [outcomes, done = std::move(done)](absl::Status s) mutable {
    if (!s.ok()) {
      std::move(done)(std::move(s));
    } else {
      std::move(done)(std::move(*outcomes));
    }
  };
  Enqueue(std::move(op));
}

absl::StatusOr<std::string> RegisterImpl::AllocateRunId() {
  auto seq = std::make_shared<uint64_t>(0);
  absl::Notification n;
  absl::Status status;
  Op op;
  op.apply = [seq](Txn& t) {
    uint64_t current = 0;
    if (auto v = t.Get(kMeta, "run_counter"); v && !absl::SimpleAtoi(*v, &current)) {
      return t.Fail(absl::DataLossError("damaged run counter"));
    }
    *seq = current + 1;
    t.Put(kMeta, "run_counter", absl::StrCat(*seq));
  };
  op.complete = [&](absl::Status s) {
    status = std::move(s);
    n.Notify();
  };
  Enqueue(std::move(op));
  n.WaitForNotification();
  if (!status.ok()) return status;
  return FormatRunId(*seq);
}

// ---------------------------------------------------------------------------
// Reads

absl::StatusOr<std::string> RegisterImpl::PersonIdOf(absl::string_view pseudonym) {
  rec::Person p;
  auto found = ReadMsg(kPersons, pseudonym, &p);
  if (!found.ok()) return found.status();
  if (!*found) return absl::DataLossError("a record names a person the register does not hold");
  return crypto_.Decrypt(p.encrypted_id(), pseudonym);
}

absl::StatusOr<LedgerView> RegisterImpl::GetLedger(absl::string_view person_id, int year) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  if (rules_.ForYear(year) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("year: the register has no rules for ", year));
  }
  const std::string pseudonym = crypto_.Pseudonym(id->digits);
  LedgerView view;
  view.person_id = id->digits;
  view.year = year;
  rec::Person person;
  auto found = ReadMsg(kPersons, pseudonym, &person);
  if (!found.ok()) return found.status();
  view.reserved = person.reserved();
  for (core::Scheme scheme : rules_.SchemesOf(year)) {
    rec::Ledger l;
    auto has = ReadMsg(kLedgers, keys::Ledger(pseudonym, year, scheme), &l);
    if (!has.ok()) return has.status();
    SchemeLedger sl;
    sl.scheme = scheme;
    sl.cap = rules_.Cap(year, scheme).value_or(0);
    sl.counted_total = l.counted_total_ore();
    if (l.crossed()) sl.cap_reached_on = Day(l.cap_reached_on());
    sl.refunded = l.refunded_ore();
    sl.outstanding = std::max<Ore>(0, sl.counted_total - sl.cap - sl.refunded);
    if (l.card_issued()) {
      Card c;
      c.person_id = id->digits;
      c.year = year;
      c.scheme = scheme;
      c.valid_from = Day(l.card().valid_from());
      c.valid_to = Day(l.card().valid_to());
      c.issued_on = Day(l.card().issued_on());
      c.basis_total = l.card().basis_total_ore();
      c.under_review = l.card().under_review();
      sl.card = c;
    }
    view.schemes.push_back(std::move(sl));
  }
  rocksdb::ReadOptions ro;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kEntries]));
  const std::string prefix = keys::PersonYear(pseudonym, year);
  rec::Entry e;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("damaged entry record");
    }
    view.entries.push_back(ToEntry(e));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return view;
}

absl::StatusOr<RegisterImpl::Evaluated> RegisterImpl::EvaluateExemption(absl::string_view person_id,
                                                                        absl::CivilDay date,
                                                                        core::Category category,
                                                                        absl::string_view caller) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  const int year = static_cast<int>(date.year());
  std::vector<core::Scheme> schemes;
  if (category == core::Category::kUnspecified) {
    schemes = rules_.SchemesOf(year);
    if (schemes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("date: the register has no rules for ", year));
    }
  } else {
    auto scheme = rules_.SchemeFor(year, category);
    if (!scheme.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::IsNotFound(scheme.status()) ? "date: " : "category: ", scheme.status().message()));
    }
    schemes.push_back(*scheme);
  }
  const std::string pseudonym = crypto_.Pseudonym(id->digits);
  // The ledgers first, in one batched read; the person record only matters
  // (an opt-out turns any answer into NOT_EXEMPT) when a ledger would grant
  // something, so most lookups of people below the cap make one read.
  std::vector<std::string> ledger_keys;
  for (core::Scheme scheme : schemes) ledger_keys.push_back(keys::Ledger(pseudonym, year, scheme));
  const std::vector<rocksdb::Slice> wanted(ledger_keys.begin(), ledger_keys.end());
  const int64_t day = core::DayNumber(date);
  std::vector<SchemeExemption> out(schemes.size());
  bool damaged = false;
  absl::Status read = MultiRead(
      db_, cfs_[kLedgers], wanted, /*sorted=*/false, [&](size_t i, const rocksdb::Slice* value) {
        SchemeExemption& x = out[i];
        x.scheme = schemes[i];
        rec::Ledger l;
        if (value == nullptr) return;
        if (!l.ParseFromArray(value->data(), static_cast<int>(value->size()))) {
          damaged = true;
        } else if (l.card_issued() && l.card().valid_from() <= day &&
                   day <= l.card().valid_to()) {
          x.status = core::ExemptionStatus::kExempt;
          x.valid_from = Day(l.card().valid_from());
          x.valid_to = Day(l.card().valid_to());
        } else if (l.crossed() && l.cap_reached_on() <= day) {
          x.status = core::ExemptionStatus::kCapReached;
          x.valid_from = Day(l.cap_reached_on());
          x.valid_to = absl::CivilDay(year, 12, 31);
        }
      });
  if (!read.ok()) return read;
  if (damaged) return absl::DataLossError("damaged record in ledgers");
  const bool grants = std::any_of(out.begin(), out.end(), [](const SchemeExemption& x) {
    return x.status != core::ExemptionStatus::kNotExempt;
  });
  if (grants) {
    rec::Person person;
    auto found = ReadMsg(kPersons, pseudonym, &person);
    if (!found.ok()) return found.status();
    // A reserved person gets NOT_EXEMPT whatever the ledger says, so the
    // answer does not reveal the opt-out.
    if (person.reserved()) {
      for (SchemeExemption& x : out) {
        x.status = core::ExemptionStatus::kNotExempt;
        x.valid_from.reset();
        x.valid_to.reset();
      }
    }
  }
  rec::Lookup audit;
  const absl::Time now = clock_.Now();
  audit.set_time_us(ToMicros(now));
  audit.set_caller(std::string(caller));
  audit.set_date(core::DayNumber(date));
  audit.set_category(static_cast<int>(category));
  Evaluated e;
  e.answer = std::move(out);
  e.audit_key = keys::Audit(pseudonym, ToMicros(now), audit_seq_.fetch_add(1));
  e.audit_value = audit.SerializeAsString();
  return e;
}

absl::StatusOr<std::vector<SchemeExemption>> RegisterImpl::CheckExemption(
    absl::string_view person_id, absl::CivilDay date, core::Category category,
    absl::string_view caller) {
  absl::StatusOr<Evaluated> e = EvaluateExemption(person_id, date, category, caller);
  if (!e.ok()) return e.status();
  if (absl::Status failed = LogFailure(); !failed.ok()) return failed;
  // Not synced on its own: it reaches the WAL (so survives a process crash)
  // and is synced by LogSyncLoop.
  rocksdb::Status s = log_db_->Put(rocksdb::WriteOptions(), e->audit_key, e->audit_value);
  if (!s.ok()) return LogFailed(FromRocks(s, "cannot write the lookup log; lookups are refused"));
  return std::move(e->answer);
}

void RegisterImpl::CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                                       core::Category category, absl::string_view caller,
                                       ExemptionDone done) {
  absl::StatusOr<Evaluated> e = EvaluateExemption(person_id, date, category, caller);
  if (!e.ok()) return std::move(done)(e.status());
  {
    absl::MutexLock l(&audit_mu_);
    if (!audit_stop_) {
      audit_queue_.push_back({std::move(e->audit_key), std::move(e->audit_value),
                              std::move(e->answer), std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("register is shutting down"));
}

void RegisterImpl::AuditLoop() {
  for (;;) {
    std::vector<AuditOp> batch;
    {
      absl::MutexLock l(&audit_mu_);
      audit_mu_.Await(absl::Condition(
          +[](RegisterImpl* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->audit_mu_) {
            return r->audit_stop_ || !r->audit_queue_.empty();
          },
          this));
      if (audit_queue_.empty()) return;  // stopping, and every lookup answered
      batch.swap(audit_queue_);
    }
    absl::Status status = LogFailure();
    if (status.ok()) status = ReadStatus();
    if (status.ok()) {
      rocksdb::WriteBatch wb;
      for (const AuditOp& op : batch) wb.Put(op.key, op.value);
      rocksdb::Status s = log_db_->Write(rocksdb::WriteOptions(), &wb);
      if (!s.ok()) status = LogFailed(FromRocks(s, "cannot write the lookup log; lookups are refused"));
    }
    for (AuditOp& op : batch) {
      if (status.ok()) {
        std::move(op.done)(std::move(op.answer));
      } else {
        std::move(op.done)(status);
      }
    }
  }
}

absl::StatusOr<std::string> RegisterImpl::ScanPage(
    Cf cf, const std::string& prefix, absl::string_view page_token, int page_size,
    const std::function<absl::Status(absl::string_view, absl::string_view)>& visit) {
  if (page_size < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  if (page_size == 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  std::string start = prefix;
  bool skip_start = false;
  if (!page_token.empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(page_token, &raw) || !absl::StartsWith(raw, prefix)) {
      return absl::InvalidArgumentError(
          "page_token: not a token returned by this listing with these filters");
    }
    start = raw;
    skip_start = true;
  }
  rocksdb::ReadOptions ro;
  if (cf == kAudit && prefix.size() == kPseudonymBytes) {
    // One person's log: the prefix is the pseudonym the family's extractor
    // takes, so table files without it are skipped by their prefix blooms.
    ro.prefix_same_as_start = true;
  } else {
    ro.total_order_seek = true;
  }
  // The lookup log is read from its own database.
  std::unique_ptr<rocksdb::Iterator> it(
      cf == kAudit ? log_db_->NewIterator(ro) : db_->NewIterator(ro, cfs_[cf]));
  int n = 0;
  std::string last;
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (skip_start && it->key() == rocksdb::Slice(start)) continue;
    if (n == page_size) {
      std::string token;
      absl::WebSafeBase64Escape(last, &token);
      return token;
    }
    if (auto s = visit(View(it->key()), View(it->value())); !s.ok()) return s;
    last = it->key().ToString();
    ++n;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return std::string();
}

absl::StatusOr<Page<LookupRecord>> RegisterImpl::ListLookups(absl::string_view person_id,
                                                             int page_size,
                                                             absl::string_view page_token) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  Page<LookupRecord> page;
  auto token = ScanPage(kAudit, crypto_.Pseudonym(id->digits), page_token, page_size,
                        [&](absl::string_view, absl::string_view value) {
                          rec::Lookup r;
                          if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                            return absl::DataLossError("damaged lookup record");
                          }
                          page.items.push_back({FromMicros(r.time_us()), r.caller(), Day(r.date()),
                                                static_cast<core::Category>(r.category())});
                          return absl::OkStatus();
                        });
  if (!token.ok()) return token.status();
  page.next_page_token = *std::move(token);
  return page;
}

absl::StatusOr<Page<Card>> RegisterImpl::ListFreeCards(int year,
                                                       std::optional<absl::CivilDay> issued_on,
                                                       int page_size,
                                                       absl::string_view page_token) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  const std::string prefix =
      issued_on ? keys::CardPrefix(year, core::DayNumber(*issued_on)) : keys::CardPrefix(year);
  Page<Card> page;
  auto token = ScanPage(kCards, prefix, page_token, page_size,
                        [&](absl::string_view, absl::string_view value) -> absl::Status {
                          rec::CardIndex ci;
                          if (!ci.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                            return absl::DataLossError("damaged card record");
                          }
                          auto person = PersonIdOf(ci.pseudonym());
                          if (!person.ok()) return person.status();
                          Card c;
                          c.person_id = *std::move(person);
                          c.year = ci.year();
                          c.scheme = static_cast<core::Scheme>(ci.scheme());
                          c.valid_from = Day(ci.card().valid_from());
                          c.valid_to = Day(ci.card().valid_to());
                          c.issued_on = Day(ci.card().issued_on());
                          c.basis_total = ci.card().basis_total_ore();
                          c.under_review = ci.card().under_review();
                          page.items.push_back(std::move(c));
                          return absl::OkStatus();
                        });
  if (!token.ok()) return token.status();
  page.next_page_token = *std::move(token);
  return page;
}

absl::StatusOr<Page<Payout>> RegisterImpl::ListPayouts(absl::string_view run_id, int year,
                                                       int page_size,
                                                       absl::string_view page_token) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  std::string prefix;
  if (!run_id.empty()) {
    auto seq = ParseRunId(run_id);
    if (!seq.ok()) return seq.status();
    prefix = year != 0 ? keys::PayoutByRunPrefix(*seq, year) : keys::PayoutByRunPrefix(*seq);
  } else if (year != 0) {
    prefix = keys::PayoutByYearPrefix(year);
  } else {
    return absl::InvalidArgumentError("run_id, year: give a run id, a year or both");
  }
  Page<Payout> page;
  auto token = ScanPage(
      kPayouts, prefix, page_token, page_size,
      [&](absl::string_view, absl::string_view value) -> absl::Status {
        rec::Payout p;
        if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return absl::DataLossError("damaged payout record");
        }
        auto person = PersonIdOf(p.pseudonym());
        if (!person.ok()) return person.status();
        page.items.push_back({*std::move(person), p.year(), static_cast<core::Scheme>(p.scheme()),
                              p.amount_ore(), p.run_id(), Day(p.created_on())});
        return absl::OkStatus();
      });
  if (!token.ok()) return token.status();
  page.next_page_token = *std::move(token);
  return page;
}

absl::StatusOr<std::vector<DueLedger>> RegisterImpl::ScanDue(const std::optional<DueLedger>& after,
                                                             size_t limit) {
  if (auto s = ReadStatus(); !s.ok()) return s;
  std::vector<DueLedger> out;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kDue]));
  std::string start;
  if (after) start = keys::Due(after->year, after->pseudonym, after->scheme);
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    absl::string_view k = View(it->key());
    if (after && k == start) continue;
    std::optional<DueLedger> d = ParseDueKey(k);
    if (!d) return absl::DataLossError("damaged due marker key");
    out.push_back(*std::move(d));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return out;
}

// ---------------------------------------------------------------------------
// Verify

absl::StatusOr<Register::VerifyReport> RegisterImpl::Verify() {
  if (auto s = ReadStatus(); !s.ok()) return s;
  VerifyReport rep;
  // One snapshot: the walk sees one consistent state while writes go on.
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snap;
    ~Release() { db->ReleaseSnapshot(snap); }
  } release{db_, snap};
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  ro.total_order_seek = true;
  auto get = [&](Cf cf, const std::string& key, std::string* v) -> absl::StatusOr<bool> {
    rocksdb::Status s = db_->Get(ro, cfs_[cf], key, v);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "verify read");
    return true;
  };
  auto who = [](absl::string_view pseudonym) {
    return absl::StrCat("person ", absl::BytesToHexString(pseudonym.substr(0, 6)));
  };
  auto violation = [&](std::string m) {
    if (rep.violations.size() < 10000) rep.violations.push_back(std::move(m));
  };
  auto walk = [&](Cf cf,
                  const std::function<absl::Status(absl::string_view, absl::string_view)>& visit) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[cf]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (auto s = visit(View(it->key()), View(it->value())); !s.ok()) return s;
    }
    return FromRocks(it->status(), "verify scan");
  };
  std::string v;

  // Persons: every id decrypts under this key.
  absl::Status s = walk(kPersons, [&](absl::string_view key, absl::string_view value) {
    ++rep.persons;
    rec::Person p;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation(absl::StrCat(who(key), ": damaged person record"));
    } else if (auto id = crypto_.Decrypt(p.encrypted_id(), key);
               !id.ok() || crypto_.Pseudonym(*id) != key) {
      violation(absl::StrCat(who(key), ": encrypted id does not belong to its pseudonym"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Entries -> index.
  s = walk(kEntries, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    ++rep.entries;
    rec::Entry e;
    if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation(absl::StrCat(who(key), ": damaged entry"));
      return absl::OkStatus();
    }
    rec::ReportIndex index;
    auto found = get(kReports, keys::Report(e.provider_id(), e.report_id()), &v);
    if (!found.ok()) return found.status();
    if (!*found || !index.ParseFromString(v) || index.entry_key() != key) {
      violation(absl::StrCat(who(key), ": entry ", e.provider_id(), "/", e.report_id(),
                             " has no idempotency index pointing at it"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Index -> entries.
  s = walk(kReports, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    rec::ReportIndex index;
    rec::Entry e;
    if (!index.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation("damaged idempotency index record");
      return absl::OkStatus();
    }
    auto found = get(kEntries, index.entry_key(), &v);
    if (!found.ok()) return found.status();
    if (!*found || !e.ParseFromString(v) || keys::Report(e.provider_id(), e.report_id()) != key) {
      violation(absl::StrCat("idempotency index ", absl::CEscape(key.substr(1)),
                             " points at no matching entry"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Ledgers: recomputed from their entries; cards, refunds and due markers.
  s = walk(kLedgers, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    ++rep.ledgers;
    const std::string pseudonym(key.substr(0, kPseudonymBytes));
    const int year = static_cast<int>(keys::GetU(key, kPseudonymBytes, 2));
    const auto scheme = static_cast<core::Scheme>(keys::GetU(key, kPseudonymBytes + 2, 1));
    const std::string where =
        absl::StrCat(who(pseudonym), " ", year, " ", core::SchemeName(scheme));
    rec::Ledger l;
    if (!l.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation(absl::StrCat(where, ": damaged ledger"));
      return absl::OkStatus();
    }
    std::vector<core::LedgerItem> items;
    const std::string prefix = keys::PersonYear(pseudonym, year);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kEntries]));
    rec::Entry e;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (e.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
          e.scheme() == static_cast<int>(scheme) && EntryCounts(e)) {
        items.push_back({FromMicros(e.service_time_us()), e.amount_ore(), true});
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "verify scan");
    const Ore cap = rules_.Cap(year, scheme).value_or(0);
    const core::LedgerTotals totals = core::ComputeTotals(items, cap, year);
    if (totals.counted_total != l.counted_total_ore()) {
      violation(absl::StrCat(where, ": summary total ", l.counted_total_ore(),
                             " != counted entries ", totals.counted_total));
    }
    const std::optional<absl::CivilDay> stored =
        l.crossed() ? std::optional<absl::CivilDay>(Day(l.cap_reached_on())) : std::nullopt;
    if (stored != totals.cap_reached_on) {
      violation(absl::StrCat(where, ": crossing date differs from the entries'"));
    }
    const bool under_review = l.card_issued() && l.card().under_review();
    if (l.card_issued()) {
      ++rep.cards;
      if (l.counted_total_ore() < cap && !under_review) {
        violation(absl::StrCat(where, ": card issued below the cap and not under review"));
      }
      auto found = get(kCards, keys::Card(year, l.card().issued_on(), pseudonym, scheme), &v);
      if (!found.ok()) return found.status();
      if (!*found) violation(absl::StrCat(where, ": card missing from the card listing"));
    }
    if (l.refunded_ore() > std::max<Ore>(0, l.counted_total_ore() - cap) && !under_review) {
      violation(absl::StrCat(where, ": refunded ", l.refunded_ore(), " exceeds the excess"));
    }
    if (l.refunded_ore() > 0 && !l.card_issued()) {
      violation(absl::StrCat(where, ": refund paid without a card"));
    }
    rec::Person person;
    auto pf = get(kPersons, pseudonym, &v);
    if (!pf.ok()) return pf.status();
    if (!*pf || !person.ParseFromString(v)) {
      violation(absl::StrCat(where, ": ledger of a person the register does not hold"));
    }
    const bool needs = core::NeedsIssuanceWork(StateOf(year, scheme, l)) && !person.reserved();
    auto marked = get(kDue, keys::Due(year, pseudonym, scheme), &v);
    if (!marked.ok()) return marked.status();
    if (*marked != needs) {
      violation(absl::StrCat(where, needs ? ": work is due but there is no due marker"
                                          : ": due marker where no work is due"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Due markers must name a ledger.
  s = walk(kDue, [&](absl::string_view key, absl::string_view) -> absl::Status {
    ++rep.due_markers;
    std::optional<DueLedger> d = ParseDueKey(key);
    if (!d) {
      violation("damaged due marker key");
      return absl::OkStatus();
    }
    auto found = get(kLedgers, keys::Ledger(d->pseudonym, d->year, d->scheme), &v);
    if (!found.ok()) return found.status();
    if (!*found)
      violation(absl::StrCat(who(d->pseudonym), " ", d->year, ": due marker without a ledger"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Payouts: each names a ledger with a card.
  s = walk(kPayouts, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    if (key.empty() || key[0] != 'Y') return absl::OkStatus();
    ++rep.payouts;
    rec::Payout p;
    rec::Ledger l;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation("damaged payout record");
      return absl::OkStatus();
    }
    auto found = get(
        kLedgers, keys::Ledger(p.pseudonym(), p.year(), static_cast<core::Scheme>(p.scheme())), &v);
    if (!found.ok()) return found.status();
    if (!*found || !l.ParseFromString(v) || !l.card_issued() || l.refunded_ore() < p.amount_ore()) {
      violation(absl::StrCat(who(p.pseudonym()), " ", p.year(), ": payout in ", p.run_id(),
                             " not covered by its ledger's refunded sum"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return rep;
}

}  // namespace

// ---------------------------------------------------------------------------
// Register: factory and blocking forms

absl::StatusOr<std::unique_ptr<Register>> Register::Open(const RegisterOptions& options) {
  if (options.rules == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("register options: rules and clock are required");
  }
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir: must not be empty");
  auto crypto = Crypto::Create(options.secret);
  if (!crypto.ok()) return crypto.status();
  auto reg = std::make_unique<RegisterImpl>(options, *std::move(crypto));
  if (auto s = reg->OpenDb(); !s.ok()) return s;
  return reg;
}

namespace {
template <typename T>
struct Waiter {
  absl::Notification done;
  std::optional<T> value;
  auto Callback() {
    return [this](T v) {
      value.emplace(std::move(v));
      done.Notify();
    };
  }
  T Wait() {
    done.WaitForNotification();
    return *std::move(value);
  }
};
}  // namespace

absl::StatusOr<std::vector<ReportResult>> Register::Submit(
    std::vector<core::CoPaymentInput> items) {
  Waiter<absl::StatusOr<std::vector<ReportResult>>> w;
  SubmitAsync(std::move(items), w.Callback());
  return w.Wait();
}

absl::StatusOr<ReportResult> Register::UpdatePayment(std::string provider_id, std::string report_id,
                                                     int payment) {
  Waiter<absl::StatusOr<ReportResult>> w;
  UpdatePaymentAsync(std::move(provider_id), std::move(report_id), payment, w.Callback());
  return w.Wait();
}

absl::StatusOr<ReportResult> Register::Cancel(std::string provider_id, std::string report_id,
                                              std::string reason) {
  Waiter<absl::StatusOr<ReportResult>> w;
  CancelAsync(std::move(provider_id), std::move(report_id), std::move(reason), w.Callback());
  return w.Wait();
}

absl::Status Register::SetReservation(std::string person_id, bool reserved) {
  Waiter<absl::Status> w;
  SetReservationAsync(std::move(person_id), reserved, w.Callback());
  return w.Wait();
}

absl::StatusOr<std::vector<LedgerOutcome>> Register::DecideNext(RunInfo run,
                                                                std::shared_ptr<DueCursor> cursor,
                                                                size_t limit, DecideFn decide) {
  Waiter<absl::StatusOr<std::vector<LedgerOutcome>>> w;
  DecideNextAsync(std::move(run), std::move(cursor), limit, std::move(decide), w.Callback());
  return w.Wait();
}

}  // namespace frikort::storage
