// The provider registry on the writer thread: the counting rule of direct
// settlement (domain rule 13) for a new entry, storing a provider record, and
// re-evaluating stored entries when a record changes.
#include <algorithm>
#include <set>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/state_machine.h"

namespace frikort::storage {
namespace {

// Whether the stored record of `id` holds an agreement in force on `day`.
bool HoldsAgreement(Records& r, absl::string_view id, absl::CivilDay day) {
  if (id.empty()) return false;
  rec::Provider p;
  if (!r.GetProvider(id, &p)) return false;
  const int64_t n = core::DayNumber(day);
  for (const rec::Agreement& a : p.agreements()) {
    if (a.valid_from() <= n && (a.open_ended() || n <= a.valid_to())) return true;
  }
  return false;
}

}  // namespace

bool StateMachine::LacksAgreement(Records& r, int year, absl::CivilDay day,
                                  absl::string_view provider_id, absl::string_view practice_id) {
  if (!rules_.RequiresDirectSettlement(year)) return false;
  return !HoldsAgreement(r, provider_id, day) && !HoldsAgreement(r, practice_id, day);
}

std::vector<int> StateMachine::ApplyPutProvider(Records& r, const core::ProviderRecord& p) {
  rec::Provider stored;
  const bool known = r.GetProvider(p.id, &stored);
  r.PutProvider(ToProviderRecord(p));
  std::set<int> years;
  if (!known) {
    // A provider's first record decides every year that requires agreements:
    // entries stored before the registry existed (an upgraded register) were
    // counted without one.
    for (int year = rules_.first_year(); year > 0 && year <= rules_.last_year(); ++year) {
      if (rules_.RequiresDirectSettlement(year)) years.insert(year);
    }
    return std::vector<int>(years.begin(), years.end());
  }
  const std::vector<core::AgreementPeriod> before = FromProviderRecord(stored).agreements;
  // Entries are indexed by the year they count in: a prescription served in
  // an affected year may count in the next one.
  for (int year : core::AffectedYears(before, p.agreements, rules_)) {
    if (rules_.RequiresDirectSettlement(year)) years.insert(year);
    if (rules_.RequiresDirectSettlement(year + 1)) years.insert(year + 1);
  }
  return std::vector<int>(years.begin(), years.end());
}

void StateMachine::ApplyReevaluate(Records& r, const std::vector<EntryKey>& entry_keys,
                                   ProviderChange* change) {
  // One batched read of the chunk's entries (in key order within each
  // person) instead of a point read each.
  r.overlay().Prefetch(Table::kEntries,
                       std::vector<std::string>(entry_keys.begin(), entry_keys.end()));
  absl::flat_hash_set<std::string> changed;  // ledger keys changed by this chunk
  for (const EntryKey& key : entry_keys) {
    rec::Entry e;
    if (!r.GetEntry(key, &e)) {
      r.Fail(absl::DataLossError("the provider index points at a missing entry"));
      return;
    }
    ++change->entries_reevaluated;
    const bool lacks =
        LacksAgreement(r, e.year(), core::OsloDate(absl::FromUnixMicros(e.service_time_us())),
                       e.provider_id(), e.practice_id());
    if (lacks == e.lacks_agreement()) continue;
    const bool counted_before = EntryCounts(e);
    e.set_lacks_agreement(lacks);
    r.PutEntry(key, e);
    if (EntryCounts(e) == counted_before) continue;
    ++change->entries_changed;
    const LedgerId id{std::string(EntryOwner(key)), e.year(),
                      static_cast<core::Scheme>(e.scheme())};
    rec::Ledger before;
    const bool was_review = r.GetLedger(id, &before) && before.card().under_review();
    SetCounted(r, key, e, !counted_before);
    if (changed.insert(keys::Ledger(id.pseudonym, id.year, id.scheme)).second) {
      ++change->ledgers_changed;
    }
    rec::Ledger after;
    if (!was_review && r.GetLedger(id, &after) && after.card().under_review()) {
      ++change->cards_under_review;
    }
  }
}

}  // namespace frikort::storage
