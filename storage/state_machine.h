// The register's apply logic: what each change does to the records, kept
// apart from how they are stored (TigerBeetle's state machine beside its
// storage). Reports, payment updates, cancellations, reservations and the
// issuance job's decisions are applied to a group's records on the writer
// thread; a change either writes all it should or, on a read failure, fails
// the group.
//
// The ledger is kept in step with its entries on every change, through one
// function (SetCounted): counted øre per service day, counted total, crossing
// date (the day the running total in service-time order reached the cap),
// due marker (exactly when core::NeedsIssuanceWork and the person is not
// reserved), and the review flag of an issued card (core::CardNeedsReview).
// A change never reads the person's other entries: its cost is a few point
// reads and one walk over at most core::kMaxDaySums day sums, however many
// entries the person-year holds. One person-year holds at most
// max_entries_per_person_year entries; a report beyond is refused
// (PERSON_YEAR_FULL), the batch goes on.
//
// Thread safety: Prepare may run on any thread; the Apply methods on the
// writer thread only (they take its records).
#ifndef FRIKORT_STORAGE_STATE_MACHINE_H_
#define FRIKORT_STORAGE_STATE_MACHINE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/copayment.h"
#include "core/ledger.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "storage/crypto.h"
#include "storage/records.h"
#include "storage/register.h"

namespace frikort::storage {

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

// A report's answer for a rejected change.
ReportResult Rejected(std::string report_id, core::RejectReason reason, std::string message);
// Whether a stored entry counts toward its ledger, and if not, why.
bool EntryCounts(const rec::Entry& e);
core::NotCountedReason EntryNotCountedReason(const rec::Entry& e);

class StateMachine {
 public:
  static constexpr int kMaxEntriesPerPersonYear = 10000;
  // Entries a re-evaluation hands the writer per operation (a person's
  // entries are never split): small enough that reporters' changes queued
  // meanwhile wait for one chunk only, large enough that a group commit is
  // shared by thousands of entries and each ledger is recomputed once.
  static constexpr size_t kReevaluateChunk = 8192;

  // Not owned; must outlive the state machine.
  StateMachine(const core::RulesTable* rules, const Crypto* crypto,
               const core::PersonIdOptions* id_options,
               int max_entries_per_person_year = kMaxEntriesPerPersonYear)
      : rules_(*rules),
        crypto_(*crypto),
        id_options_(*id_options),
        max_entries_per_person_year_(max_entries_per_person_year) {}

  // Validation and cryptography, on the caller's thread (so many callers use
  // many cores; the writer only reads and writes).
  PreparedReport Prepare(core::CoPaymentInput in, absl::Time now) const;

  // Reads what ApplyReport of each of `reports` will read (index record,
  // person, ledger, provider records) in one batch per table, so a store
  // whose reads are round trips (PostgreSQL) makes a few per batch instead of
  // several per report.
  void PrefetchReports(Records& r, const std::vector<PreparedReport>& reports);
  ReportResult ApplyReport(Records& r, const PreparedReport& p);
  // The one allowed change: INVOICED_UNPAID -> PAID (`payment` is the raw
  // enum number from the request).
  ReportResult ApplyUpdatePayment(Records& r, const std::string& provider_id,
                                  const std::string& report_id, int payment);
  ReportResult ApplyCancel(Records& r, const std::string& provider_id, const std::string& report_id,
                           const std::string& reason);
  // `digits`: a valid national id. Due markers follow the reservation.
  void ApplyReservation(Records& r, const std::string& digits, bool reserved);
  // Takes the next `limit` due markers after `cursor`, moves it past them,
  // and applies decide(state) to each ledger (nothing with run.dry_run).
  std::vector<LedgerOutcome> ApplyDecideNext(Records& r, const RunInfo& run, uint64_t run_seq,
                                             DueCursor* cursor, size_t limit,
                                             const Register::DecideFn& decide);
  // The next run number, counted durably.
  uint64_t ApplyAllocateRun(Records& r);

  // ---- the provider registry (provider_apply.cc) ----
  // Whether an entry of `year` served on `day` lacks the agreement on direct
  // settlement its year requires (neither provider nor practice in force).
  bool LacksAgreement(Records& r, int year, absl::CivilDay day, absl::string_view provider_id,
                      absl::string_view practice_id);
  // Stores the record and returns the entry years to re-evaluate: those whose
  // covered days changed, each with the year after (a prescription attributed
  // to next year is served in this one); for a provider's first record every
  // year that requires agreements.
  std::vector<int> ApplyPutProvider(Records& r, const core::ProviderRecord& p);
  // Decides the entries under `entry_keys` again; an entry whose counted flag
  // flips is applied to its ledger through SetCounted (a bounded cost per
  // entry, never a rescan of the person's year). Adds to the counts of
  // `change`.
  void ApplyReevaluate(Records& r, const std::vector<EntryKey>& entry_keys, ProviderChange* change);

  // The state the issuance job sees of a ledger.
  core::LedgerState StateOf(int year, core::Scheme scheme, const rec::Ledger& l) const;

  // Applies "the entry stored under `key` now counts" (or no longer counts)
  // to its ledger: day sum, total, crossing date, card review and due marker.
  // Call it exactly when EntryCounts(e) changes (e: the entry as it is now);
  // it reads and writes only the ledger (and the person's reservation).
  void SetCounted(Records& r, const EntryKey& key, const rec::Entry& e, bool counts);
  // SetCounted for several entries of one ledger at once: each DaySum adds
  // its øre (negative: no longer counts) to its counting day; the totals,
  // crossing date, card review and due marker follow the end state, read and
  // written once. True when it put the ledger's card under review.
  bool AdjustLedger(Records& r, const LedgerId& id, absl::Span<const core::DaySum> changes);

 private:
  LedgerOutcome ApplyDecide(Records& r, const RunInfo& run, uint64_t run_seq, const LedgerId& id,
                            const Register::DecideFn& decide);
  // Stores the ledger, flags an issued card for review, and keeps the due
  // marker in step with NeedsIssuanceWork. True when it flagged the card.
  bool StoreLedger(Records& r, const LedgerId& id, rec::Ledger* l, bool was_due);
  bool IsReserved(Records& r, absl::string_view pseudonym) {
    rec::Person p;
    return r.GetPerson(pseudonym, &p) && p.reserved();
  }
  // Finds a report through the idempotency index; nullopt when found, else
  // the UNKNOWN_REPORT rejection that answers the change (a dangling index
  // also fails the group, DataLoss).
  std::optional<ReportResult> FindReport(Records& r, const std::string& provider_id,
                                         const std::string& report_id, EntryKey* entry_key,
                                         rec::Entry* entry);

  const core::RulesTable& rules_;
  const Crypto& crypto_;
  const core::PersonIdOptions& id_options_;
  const int max_entries_per_person_year_;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_STATE_MACHINE_H_
