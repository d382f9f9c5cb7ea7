// The register: the national co-payment ledger behind one interface.
//
// Register owns its store (storage/store.h; RocksDB by default). Every change (reports, payment
// updates, cancellations, reservations, issuance decisions) is an operation queued to a single
// writer thread, which applies all queued operations in arrival order into one group (reading its
// own uncommitted writes); a commit thread writes each group with one synced write (group commit)
// and only then completes its operations' callbacks, in order, while the writer builds the next
// group on top of the one being synced (storage/pipeline.h). So:
//  - writes to one person are serialized (one writer), each report is atomic
//    (a WriteBatch never lands half), many callers share one fsync;
//  - an operation whose callback reported success survives kill -9 and a power
//    cut (synced WAL, unless RegisterOptions::sync_writes is off);
//  - reads (lookups, ledgers, listings) run on the caller's thread against the
//    committed state and never see half an operation.
// After a failed write the register fails closed: every later call returns
// UNAVAILABLE; no answer is served from a state that may be behind the disk.
//
// Thread safety: all public methods may be called from any thread. Callbacks run
// on the commit thread and must not block or call the Register's sync methods.
#ifndef FRIKORT_STORAGE_REGISTER_H_
#define FRIKORT_STORAGE_REGISTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/copayment.h"
#include "core/ledger.h"
#include "core/national_id.h"
#include "core/provider.h"
#include "core/rules.h"
#include "core/types.h"
#include "storage/store.h"

namespace frikort::storage {

struct RegisterOptions {
  std::string data_dir;
  // The operator's secret (>= 32 bytes). Pseudonyms are HMAC-SHA-256 of the
  // national id under a key derived from it; ids are stored AES-256-GCM
  // encrypted under another derived key. Opening with a different secret than
  // the register was created with fails with FailedPrecondition.
  std::string secret;
  const core::RulesTable* rules = nullptr;  // not owned; must outlive the Register
  const core::Clock* clock = nullptr;       // not owned; must outlive the Register
  core::PersonIdOptions id_options;
  // Memory is bounded by these, not by data size.
  uint64_t block_cache_bytes = 512ull << 20;
  uint64_t write_buffer_bytes = 256ull << 20;
  // Synced WAL on every group commit. Only tests that measure something else
  // may turn it off.
  bool sync_writes = true;
  // Upper bound of reports applied in one group commit.
  int max_group_reports = 20000;
  // Entries one person may hold in one year; a report beyond is refused
  // (PERSON_YEAR_FULL). Tests lower it.
  int max_entries_per_person_year = 10000;
  // Opens the store the register keeps its records in; unset = the RocksDB
  // store in data_dir, bounded by the two memory options above. Tests pass
  // one over a file system that injects faults or drops unsynced data.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const RegisterOptions&)> open_store;
};

// One report's answer, mirroring the contract's ReportResult.
struct ReportResult {
  std::string report_id;
  core::Outcome outcome = core::Outcome::kUnspecified;
  core::RejectReason reason = core::RejectReason::kNone;
  std::string message;
  bool counted = false;
  int year = 0;
  core::Scheme scheme = core::Scheme::kUnspecified;
  core::NotCountedReason not_counted_reason = core::NotCountedReason::kNone;
};

struct Entry {
  std::string report_id;
  std::string provider_id;
  absl::Time service_time;
  core::Category category = core::Category::kUnspecified;
  core::Scheme scheme = core::Scheme::kUnspecified;
  core::Ore amount = 0;
  core::Payment payment = core::Payment::kUnspecified;
  bool counted = false;
  bool cancelled = false;
  absl::Time received_time;
  bool late = false;
  bool performed_abroad = false;
  std::string practice_id;
  core::NotCountedReason not_counted_reason = core::NotCountedReason::kNone;
};

struct Card {
  std::string person_id;  // national id, decrypted for the caller
  int year = 0;
  core::Scheme scheme = core::Scheme::kUnspecified;
  absl::CivilDay valid_from;
  absl::CivilDay valid_to;
  absl::CivilDay issued_on;  // the run's decision date (as_of)
  // The real date the run decided it: later than issued_on for a backdated
  // run; equal to it for cards decided before the register recorded both.
  absl::CivilDay decided_on;
  core::Ore basis_total = 0;
  bool under_review = false;
};

struct SchemeLedger {
  core::Scheme scheme = core::Scheme::kUnspecified;
  core::Ore cap = 0;
  core::Ore counted_total = 0;
  std::optional<absl::CivilDay> cap_reached_on;
  std::optional<Card> card;
  core::Ore refunded = 0;
  core::Ore outstanding = 0;  // max(0, counted_total - cap - refunded)
};

struct LedgerView {
  std::string person_id;
  int year = 0;
  bool reserved = false;
  std::vector<SchemeLedger> schemes;  // every scheme of the year, in scheme order
  std::vector<Entry> entries;         // in service-time order
  // GetLedgerPage: the token of the next page; empty on the last one.
  std::string next_page_token;
};

struct SchemeExemption {
  core::Scheme scheme = core::Scheme::kUnspecified;
  core::ExemptionStatus status = core::ExemptionStatus::kNotExempt;
  std::optional<absl::CivilDay> valid_from;  // set for EXEMPT and CAP_REACHED
  std::optional<absl::CivilDay> valid_to;
};

struct LookupRecord {
  absl::Time time;
  std::string caller;
  absl::CivilDay date;
  core::Category category = core::Category::kUnspecified;
};

struct Payout {
  std::string person_id;
  int year = 0;
  core::Scheme scheme = core::Scheme::kUnspecified;
  core::Ore amount = 0;
  std::string run_id;
  absl::CivilDay created_on;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // empty on the last page
};

// What a PutProvider stored and what its re-evaluation changed.
struct ProviderChange {
  core::ProviderRecord provider;
  int64_t entries_reevaluated = 0;  // stored co-payments of the provider or practice looked at
  int64_t entries_changed = 0;      // whose counted flag flipped
  int64_t ledgers_changed = 0;
  int64_t cards_under_review = 0;  // cards whose basis fell below the cap because of it
};

// A due marker: (year, pseudonym, scheme) whose ledger needs the issuance job.
struct DueLedger {
  int year = 0;
  std::string pseudonym;  // 32 raw bytes
  core::Scheme scheme = core::Scheme::kUnspecified;
};

// What happened to one due ledger in an issuance decision.
struct LedgerOutcome {
  DueLedger ledger;
  bool skipped = false;  // marker without its ledger (a damaged register): nothing decided
  core::IssuanceDecision decision;
};

// Where one run's walk over the due markers stands. Created empty (before the
// first marker) by the job and handed to every DecideNextAsync of the run;
// only the register's writer thread reads and moves it, in queue order.
struct DueCursor {
  std::string after;  // due key of the last ledger taken; "" = none yet
};

struct RunInfo {
  std::string run_id;
  absl::CivilDay as_of;
  bool dry_run = false;
  // The real date the run decides on (today, Oslo); recorded on each card it
  // issues. Equal to as_of except for a backdated run.
  absl::CivilDay decided_on;
};

class Register {
 public:
  // Opens (creating if missing) the register under options.data_dir. Errors:
  // FailedPrecondition for a folder locked by another process or a wrong
  // secret, InvalidArgument for bad options, Unavailable/Internal for I/O.
  static absl::StatusOr<std::unique_ptr<Register>> Open(const RegisterOptions& options);
  virtual ~Register() = default;
  Register(const Register&) = delete;
  Register& operator=(const Register&) = delete;

  // ---- write path (queued to the writer; callbacks after the synced write) ----
  using SubmitDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<ReportResult>>) &&>;
  using ResultDone = absl::AnyInvocable<void(absl::StatusOr<ReportResult>) &&>;

  // One ReportResult per item, in order. Whole-call errors only for I/O
  // (UNAVAILABLE); every per-item problem is a REJECTED result.
  virtual void SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) = 0;
  // The one allowed change: INVOICED_UNPAID -> PAID. `payment` is the raw enum
  // number from the request.
  virtual void UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                                  ResultDone done) = 0;
  virtual void CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                           ResultDone done) = 0;
  // InvalidArgument for a bad person id.
  virtual void SetReservationAsync(std::string person_id, bool reserved,
                                   absl::AnyInvocable<void(absl::Status) &&> done) = 0;

  // Blocking forms of the above, for tests and tools (never on a callback thread).
  absl::StatusOr<std::vector<ReportResult>> Submit(std::vector<core::CoPaymentInput> items);
  absl::StatusOr<ReportResult> UpdatePayment(std::string provider_id, std::string report_id,
                                             int payment);
  absl::StatusOr<ReportResult> Cancel(std::string provider_id, std::string report_id,
                                      std::string reason);
  absl::Status SetReservation(std::string person_id, bool reserved);

  // ---- reads ----
  // InvalidArgument for a bad person id or a year without rules.
  virtual absl::StatusOr<LedgerView> GetLedger(absl::string_view person_id, int year) = 0;
  // The same with the entries in pages: every scheme, and up to page_size
  // entries (0 = 100; at most 1000) after `page_token` (empty = from the
  // first) in service-time order. InvalidArgument also for a negative size or
  // a token not returned by this person-year's pages.
  virtual absl::StatusOr<LedgerView> GetLedgerPage(absl::string_view person_id, int year,
                                                   int page_size, absl::string_view page_token) = 0;
  // Status per scheme on `date` (category kUnspecified = every scheme of the
  // year) and, in the same call, the audit record of the lookup. The caller
  // checks the date window. InvalidArgument for a bad id, unknown category or
  // a year without rules.
  virtual absl::StatusOr<std::vector<SchemeExemption>> CheckExemption(absl::string_view person_id,
                                                                      absl::CivilDay date,
                                                                      core::Category category,
                                                                      absl::string_view caller) = 0;
  // The same, answered through `done` once the audit record is in the log.
  // With RocksDB the reads run on the caller's thread; with a store whose
  // reads are round trips (PostgreSQL) lookups queue for the register's
  // lookup readers, which read concurrent ones together. The records of
  // concurrent lookups are written together by the register's audit
  // thread, so no caller (a gRPC thread) waits on the store's writes.
  // `done` runs on the audit thread, a lookup reader, or the caller's thread
  // (a refusal), and must not block. The default implementation calls
  // CheckExemption and `done` inline.
  using ExemptionDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<SchemeExemption>>) &&>;
  virtual void CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                                   core::Category category, absl::string_view caller,
                                   ExemptionDone done) {
    std::move(done)(CheckExemption(person_id, date, category, caller));
  }
  // Newest first. page_size <= 0 means a default of 100; capped at 1000.
  virtual absl::StatusOr<Page<LookupRecord>> ListLookups(absl::string_view person_id, int page_size,
                                                         absl::string_view page_token) = 0;
  // The person's payouts of `year`, in run order (a handful a year: not
  // paged). InvalidArgument for a bad person id.
  virtual absl::StatusOr<std::vector<Payout>> ListPersonPayouts(absl::string_view person_id,
                                                                int year) = 0;
  virtual absl::StatusOr<Page<Card>> ListFreeCards(int year,
                                                   std::optional<absl::CivilDay> issued_on,
                                                   int page_size, absl::string_view page_token) = 0;
  // run_id empty = every run; year 0 = every year (at least one must be given).
  virtual absl::StatusOr<Page<Payout>> ListPayouts(absl::string_view run_id, int year,
                                                   int page_size, absl::string_view page_token) = 0;

  // ---- issuance support (used by jobs/) ----
  // Due markers in key order, strictly after `after` (nullopt: from the start).
  virtual absl::StatusOr<std::vector<DueLedger>> ScanDue(const std::optional<DueLedger>& after,
                                                         size_t limit) = 0;
  // A new run id, durable and unique ("run-000001", ...).
  virtual absl::StatusOr<std::string> AllocateRunId() = 0;
  // On the writer thread, when it reaches this call in its queue: takes the
  // next `limit` due markers after `cursor` (in key order, as every change
  // queued before this call left them), moves the cursor past them, and for
  // each ledger reads its state, calls decide(state) and applies the result
  // in one atomic write with its peers: card (valid_from, valid_to,
  // issued_on = run.as_of, basis = counted total), payout record tagged with
  // run.run_id, refunded sum, and the due marker removed when the decision is
  // done. With run.dry_run nothing is written. A reserved person has no
  // markers (reserving removes them, withdrawing puts them back), so nothing
  // of theirs is taken. One outcome per marker taken, in key order; none when no marker
  // is left after the cursor. Because each call starts where the call queued
  // before it ended, a run may queue its next chunk before the previous one
  // is on disk: chunk N+1 is then built while chunk N is being synced.
  using DecideFn = std::function<core::IssuanceDecision(const core::LedgerState&)>;
  using DecideDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<LedgerOutcome>>) &&>;
  virtual void DecideNextAsync(RunInfo run, std::shared_ptr<DueCursor> cursor, size_t limit,
                               DecideFn decide, DecideDone done) = 0;
  absl::StatusOr<std::vector<LedgerOutcome>> DecideNext(RunInfo run,
                                                        std::shared_ptr<DueCursor> cursor,
                                                        size_t limit, DecideFn decide);

  // ---- the provider registry (storage/providers.cc) ----
  // Validates and stores the whole record (replacing what was stored; a
  // refused record stores nothing), then re-evaluates every stored entry of
  // this provider or practice in the years whose covered days changed, in
  // chunks on the writer (each person's entries of a year in one chunk), so
  // other changes are applied between chunks. Blocks until done.
  // InvalidArgument naming the field.
  virtual absl::StatusOr<ProviderChange> PutProvider(const core::ProviderInput& in) {
    return absl::UnimplementedError("this register keeps no provider registry");
  }
  // NotFound when the registry has no such provider.
  virtual absl::StatusOr<core::ProviderRecord> GetProvider(absl::string_view provider_id) {
    return absl::UnimplementedError("this register keeps no provider registry");
  }
  // By id; `in_force_on` keeps only providers with an agreement in force that
  // day (a page may then hold fewer than page_size).
  virtual absl::StatusOr<Page<core::ProviderRecord>> ListProviders(
      std::optional<absl::CivilDay> in_force_on, int page_size, absl::string_view page_token) {
    return absl::UnimplementedError("this register keeps no provider registry");
  }

  // ---- operations ----
  // Walks the whole register and checks its invariants: every ledger summary
  // equals what its counted entries add up to (total and crossing date); the
  // idempotency index and the entries point at each other; every card's
  // ledger reached its cap or is under review; refunds never exceed the
  // excess (unless a card under review explains it), every payout is in its
  // person's listing and back; due markers sit exactly
  // where NeedsIssuanceWork says and the person is not reserved. Runs in time
  // proportional to the data, in memory bounded by one person-year.
  struct VerifyReport {
    uint64_t persons = 0, entries = 0, ledgers = 0, cards = 0, due_markers = 0, payouts = 0;
    std::vector<std::string> violations;  // no national id in clear
  };
  virtual absl::StatusOr<VerifyReport> Verify() = 0;
  // An online, consistent backup into the folder `dest_dir` (created if
  // missing) with RocksDB's BackupEngine: the live table files plus the live
  // write-ahead log, so every write acknowledged before the call is in it, and
  // writes go on meanwhile. Backups in one folder share unchanged files. The
  // pseudonym key is never copied, only its check value (the key must be
  // backed up apart). InvalidArgument for a relative path or one inside the
  // data folder, Aborted while another backup runs, Unavailable for I/O.
  virtual absl::StatusOr<BackupInfo> Backup(const std::string& dest_dir) = 0;

  struct RestoreReport {
    BackupInfo backup;
    VerifyReport verify;
  };
  // Restores the newest backup in `backup_dir` into options.data_dir, then
  // opens it with options.secret, verifies it (Verify()) and closes it. The
  // data folder must be missing or hold nothing but pseudonym.key. Refused
  // before anything is written, with FailedPrecondition, when the secret is
  // not the one the backed-up register was created with or the folder is not
  // empty; NotFound when backup_dir holds no backup.
  static absl::StatusOr<RestoreReport> Restore(const std::string& backup_dir,
                                               const RegisterOptions& options);

  // Approximate on-disk size and pending compaction bytes (for metrics).
  virtual uint64_t ApproximateSizeBytes() = 0;
  virtual uint64_t PendingCompactionBytes() = 0;
  // Ok while the register can serve; Unavailable after a failed write or
  // sync of the register or of its lookup log (until restart).
  virtual absl::Status Health() = 0;
  // The person's pseudonym as text (internal::PseudonymText: base32 in groups,
  // never a run of 11 digits), for audit logs that must not hold the
  // national id in clear; "" for an invalid id (and from registers that keep
  // no pseudonyms, such as test doubles).
  virtual std::string AuditPseudonym(absl::string_view person_id) const { return ""; }

 protected:
  Register() = default;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_REGISTER_H_
