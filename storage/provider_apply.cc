// The provider registry on the writer thread: the counting rule of direct
// settlement (domain rule 13) for a new entry, storing a provider record, and
// re-evaluating stored entries when a record changes.
#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/state_machine.h"

namespace frikort::storage {
namespace {

// The agreement periods of provider records, each record read and decoded
// once however many entries ask about it.
class AgreementLookup {
 public:
  explicit AgreementLookup(Records& r) : r_(r) {}

  // Whether the stored record of `id` holds an agreement in force on `day`.
  bool Holds(absl::string_view id, absl::CivilDay day) {
    if (id.empty()) return false;
    auto it = periods_.find(id);
    if (it == periods_.end()) {
      std::vector<std::pair<int64_t, int64_t>> periods;
      rec::Provider p;
      if (r_.GetProvider(id, &p)) {
        for (const rec::Agreement& a : p.agreements()) {
          periods.emplace_back(a.valid_from(), a.open_ended() ? std::numeric_limits<int64_t>::max()
                                                              : static_cast<int64_t>(a.valid_to()));
        }
      }
      it = periods_.emplace(id, std::move(periods)).first;
    }
    const int64_t n = core::DayNumber(day);
    for (const auto& [from, to] : it->second) {
      if (from <= n && n <= to) return true;
    }
    return false;
  }

 private:
  Records& r_;
  absl::flat_hash_map<std::string, std::vector<std::pair<int64_t, int64_t>>> periods_;
};

bool Lacks(const core::RulesTable& rules, AgreementLookup& agreements, int year, absl::CivilDay day,
           absl::string_view provider_id, absl::string_view practice_id) {
  if (!rules.RequiresDirectSettlement(year)) return false;
  return !agreements.Holds(provider_id, day) && !agreements.Holds(practice_id, day);
}

}  // namespace

bool StateMachine::LacksAgreement(Records& r, int year, absl::CivilDay day,
                                  absl::string_view provider_id, absl::string_view practice_id) {
  AgreementLookup agreements(r);
  return Lacks(rules_, agreements, year, day, provider_id, practice_id);
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
  AgreementLookup agreements(r);
  // The entries whose counted flag flips, gathered per ledger (in the order
  // first met), so each ledger is read, recomputed and written once.
  std::vector<LedgerId> ledgers;
  std::vector<std::vector<core::DaySum>> changes;
  absl::flat_hash_map<std::string, size_t> index;  // ledger key -> position
  for (const EntryKey& key : entry_keys) {
    rec::Entry e;
    if (!r.GetEntry(key, &e)) {
      r.Fail(absl::DataLossError("the provider index points at a missing entry"));
      return;
    }
    ++change->entries_reevaluated;
    const absl::Time served = absl::FromUnixMicros(e.service_time_us());
    const bool lacks = Lacks(rules_, agreements, e.year(), core::OsloDate(served), e.provider_id(),
                             e.practice_id());
    if (lacks == e.lacks_agreement()) continue;
    const bool counted_before = EntryCounts(e);
    e.set_lacks_agreement(lacks);
    r.PutEntry(key, e);
    if (EntryCounts(e) == counted_before) continue;
    ++change->entries_changed;
    LedgerId id{std::string(EntryOwner(key)), e.year(), static_cast<core::Scheme>(e.scheme())};
    auto [at, added] =
        index.try_emplace(keys::Ledger(id.pseudonym, id.year, id.scheme), ledgers.size());
    if (added) {
      ledgers.push_back(std::move(id));
      changes.emplace_back();
    }
    changes[at->second].push_back(core::DaySum{core::CountingDay(served, e.year()),
                                               counted_before ? -e.amount_ore() : e.amount_ore()});
  }
  r.PrefetchLedgers(ledgers);
  for (size_t i = 0; i < ledgers.size(); ++i) {
    ++change->ledgers_changed;
    if (AdjustLedger(r, ledgers[i], changes[i])) ++change->cards_under_review;
  }
}

}  // namespace frikort::storage
