// The register's records over a group's overlay: persons, entries, the
// idempotency index, ledgers, due markers, cards, payouts and the run
// counter, each read and written by what it is, not by its key. Key layouts
// stay in keys.h; the apply logic (state_machine.h) speaks only this.
//
// Thread safety: that of the overlay (the writer thread only). Damaged
// records fail the overlay (DataLoss) and read as absent.
#ifndef FRIKORT_STORAGE_RECORDS_H_
#define FRIKORT_STORAGE_RECORDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/ledger.h"
#include "core/provider.h"
#include "core/types.h"
#include "storage/overlay.h"
#include "storage/records.pb.h"

namespace frikort::storage {

namespace rec = ::frikort::storage::records;

// One ledger: a person's year in one scheme.
struct LedgerId {
  std::string pseudonym;  // 32 raw bytes
  int year = 0;
  core::Scheme scheme = core::Scheme::kUnspecified;
};

// Where an entry is stored: its key orders a person's year by service time.
using EntryKey = std::string;
EntryKey EntryKeyOf(absl::string_view pseudonym, const rec::Entry& e);
// The person an entry key belongs to.
absl::string_view EntryOwner(absl::string_view entry_key);

// A ledger's day sums (records::Ledger sum_day/sum_ore), in day order.
std::vector<core::DaySum> DaySumsOf(const rec::Ledger& l);
void SetDaySums(rec::Ledger* l, const std::vector<core::DaySum>& sums);
// The entries a person holds in `year` (0 when none), and setting it.
int EntriesInYear(const rec::Person& p, int year);
void SetEntriesInYear(rec::Person* p, int year, int count);
// A provider record as stored, and back.
rec::Provider ToProviderRecord(const core::ProviderRecord& p);
core::ProviderRecord FromProviderRecord(const rec::Provider& p);

// The ledger a due marker names; nullopt for a damaged key.
std::optional<LedgerId> ParseDueKey(absl::string_view key);

class Records {
 public:
  explicit Records(Overlay& overlay) : o_(overlay) {}

  Overlay& overlay() { return o_; }
  absl::Time now() const { return o_.now(); }
  bool failed() const { return !o_.status().ok(); }
  void Fail(absl::Status s) { o_.Fail(std::move(s)); }

  bool GetPerson(absl::string_view pseudonym, rec::Person* p);
  void PutPerson(absl::string_view pseudonym, const rec::Person& p);

  // The idempotency index of (provider, report id).
  bool GetReport(absl::string_view provider_id, absl::string_view report_id,
                 rec::ReportIndex* index);
  void PutReport(absl::string_view provider_id, absl::string_view report_id,
                 const rec::ReportIndex& index);

  bool GetEntry(const EntryKey& key, rec::Entry* e);
  void PutEntry(const EntryKey& key, const rec::Entry& e);

  bool GetLedger(const LedgerId& id, rec::Ledger* l);
  void PutLedger(const LedgerId& id, const rec::Ledger& l);
  // Reads the ledgers in one batch ahead of the Gets that follow.
  void PrefetchLedgers(const std::vector<LedgerId>& ids);
  // The same for persons, idempotency index records (provider id, report id)
  // and provider records.
  void PrefetchPersons(std::vector<std::string> pseudonyms);
  void PrefetchReports(
      const std::vector<std::pair<absl::string_view, absl::string_view>>& provider_reports);
  void PrefetchProviders(const std::vector<absl::string_view>& provider_ids);
  // Every ledger of the person, in (year, scheme) order.
  void ForEachLedger(absl::string_view pseudonym,
                     const std::function<void(const LedgerId&, const rec::Ledger&)>& visit);

  // The due marker: the ledger needs the issuance job.
  void SetDue(const LedgerId& id);
  void ClearDue(const LedgerId& id);
  // Up to `limit` marked ledgers strictly after the marker `after` ("" =
  // from the first), in marker order; `last` gets the last marker taken.
  std::vector<LedgerId> DueAfter(absl::string_view after, size_t limit, std::string* last);

  // The card listing's copy of a ledger's card.
  void PutCard(const LedgerId& id, const rec::Card& card);
  // A payout, under each of its listings (by year, by run and by person).
  void PutPayout(uint64_t run_seq, const rec::Payout& p);

  // The provider registry (core::ProviderRecord as stored) and its index of
  // entries by provider or practice and year.
  bool GetProvider(absl::string_view provider_id, rec::Provider* p);
  void PutProvider(const rec::Provider& p);
  void PutProviderEntry(absl::string_view provider_id, int year, const EntryKey& entry_key);

  // The run counter: the last run number handed out (0 = none yet).
  uint64_t RunCounter();
  void PutRunCounter(uint64_t n);

 private:
  Overlay& o_;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_RECORDS_H_
