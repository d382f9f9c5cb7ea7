#include "storage/records.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "storage/crypto.h"
#include "storage/keys.h"

namespace frikort::storage {
namespace {

std::string LedgerKey(const LedgerId& id) { return keys::Ledger(id.pseudonym, id.year, id.scheme); }
std::string DueKey(const LedgerId& id) { return keys::Due(id.year, id.pseudonym, id.scheme); }

}  // namespace

EntryKey EntryKeyOf(absl::string_view pseudonym, const rec::Entry& e) {
  return keys::Entry(pseudonym, e.year(), e.service_time_us(), e.provider_id(), e.report_id());
}

absl::string_view EntryOwner(absl::string_view entry_key) {
  return entry_key.substr(0, kPseudonymBytes);
}

std::vector<core::DaySum> DaySumsOf(const rec::Ledger& l) {
  std::vector<core::DaySum> sums;
  const int n = std::min(l.sum_day_size(), l.sum_ore_size());
  sums.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) sums.push_back({l.sum_day(i), l.sum_ore(i)});
  return sums;
}

void SetDaySums(rec::Ledger* l, const std::vector<core::DaySum>& sums) {
  l->clear_sum_day();
  l->clear_sum_ore();
  l->mutable_sum_day()->Reserve(static_cast<int>(sums.size()));
  l->mutable_sum_ore()->Reserve(static_cast<int>(sums.size()));
  for (const core::DaySum& s : sums) {
    l->add_sum_day(s.day);
    l->add_sum_ore(s.ore);
  }
}

int EntriesInYear(const rec::Person& p, int year) {
  for (const rec::YearEntries& y : p.entries()) {
    if (y.year() == year) return y.count();
  }
  return 0;
}

void SetEntriesInYear(rec::Person* p, int year, int count) {
  auto* years = p->mutable_entries();
  int i = 0;
  while (i < years->size() && years->Get(i).year() < year) ++i;
  if (i == years->size() || years->Get(i).year() != year) {
    // Kept in year order: appended, then moved into place.
    rec::YearEntries* added = years->Add();
    added->set_year(year);
    for (int j = years->size() - 1; j > i; --j) years->SwapElements(j, j - 1);
  }
  years->Mutable(i)->set_count(count);
}

rec::Provider ToProviderRecord(const core::ProviderRecord& p) {
  rec::Provider out;
  out.set_provider_id(p.id);
  out.set_name(p.name);
  for (const core::AgreementPeriod& a : p.agreements) {
    rec::Agreement* r = out.add_agreements();
    r->set_valid_from(core::DayNumber(a.from));
    r->set_open_ended(!a.to.has_value());
    if (a.to.has_value()) r->set_valid_to(core::DayNumber(*a.to));
    r->set_version(a.version);
  }
  return out;
}

core::ProviderRecord FromProviderRecord(const rec::Provider& p) {
  core::ProviderRecord out;
  out.id = p.provider_id();
  out.name = p.name();
  for (const rec::Agreement& r : p.agreements()) {
    core::AgreementPeriod a;
    a.from = core::DayFromNumber(r.valid_from());
    if (!r.open_ended()) a.to = core::DayFromNumber(r.valid_to());
    a.version = r.version();
    out.agreements.push_back(std::move(a));
  }
  return out;
}

std::optional<LedgerId> ParseDueKey(absl::string_view k) {
  if (k.size() != keys::kDueKeySize) return std::nullopt;
  LedgerId d;
  d.year = static_cast<int>(keys::GetU(k, 0, 2));
  d.pseudonym = std::string(k.substr(2, kPseudonymBytes));
  d.scheme = static_cast<core::Scheme>(keys::GetU(k, 2 + kPseudonymBytes, 1));
  return d;
}

bool Records::GetPerson(absl::string_view pseudonym, rec::Person* p) {
  return o_.GetMsg(Table::kPersons, pseudonym, p);
}
void Records::PutPerson(absl::string_view pseudonym, const rec::Person& p) {
  o_.PutMsg(Table::kPersons, pseudonym, p);
}

bool Records::GetReport(absl::string_view provider_id, absl::string_view report_id,
                        rec::ReportIndex* index) {
  return o_.GetMsg(Table::kReports, keys::Report(provider_id, report_id), index);
}
void Records::PutReport(absl::string_view provider_id, absl::string_view report_id,
                        const rec::ReportIndex& index) {
  o_.PutMsg(Table::kReports, keys::Report(provider_id, report_id), index);
}

bool Records::GetEntry(const EntryKey& key, rec::Entry* e) {
  return o_.GetMsg(Table::kEntries, key, e);
}
void Records::PutEntry(const EntryKey& key, const rec::Entry& e) {
  o_.PutMsg(Table::kEntries, key, e);
}

bool Records::GetLedger(const LedgerId& id, rec::Ledger* l) {
  return o_.GetMsg(Table::kLedgers, LedgerKey(id), l);
}
void Records::PutLedger(const LedgerId& id, const rec::Ledger& l) {
  o_.PutMsg(Table::kLedgers, LedgerKey(id), l);
}
void Records::PrefetchLedgers(const std::vector<LedgerId>& ids) {
  std::vector<std::string> wanted;
  wanted.reserve(ids.size());
  for (const LedgerId& id : ids) wanted.push_back(LedgerKey(id));
  o_.Prefetch(Table::kLedgers, std::move(wanted));
}

void Records::PrefetchPersons(std::vector<std::string> pseudonyms) {
  o_.Prefetch(Table::kPersons, std::move(pseudonyms));
}
void Records::PrefetchReports(
    const std::vector<std::pair<absl::string_view, absl::string_view>>& provider_reports) {
  std::vector<std::string> wanted;
  wanted.reserve(provider_reports.size());
  for (const auto& [provider, report] : provider_reports) {
    wanted.push_back(keys::Report(provider, report));
  }
  o_.Prefetch(Table::kReports, std::move(wanted));
}
void Records::PrefetchProviders(const std::vector<absl::string_view>& provider_ids) {
  std::vector<std::string> wanted;
  wanted.reserve(provider_ids.size());
  for (absl::string_view id : provider_ids) wanted.push_back(keys::ProviderRecord(id));
  o_.Prefetch(Table::kProviders, std::move(wanted));
}

void Records::ForEachLedger(absl::string_view pseudonym,
                            const std::function<void(const LedgerId&, const rec::Ledger&)>& visit) {
  std::vector<std::pair<LedgerId, rec::Ledger>> found;
  o_.Scan(Table::kLedgers, pseudonym, [&](absl::string_view key, absl::string_view value) {
    if (failed()) return;
    rec::Ledger l;
    if (!l.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return Fail(absl::DataLossError("damaged ledger record"));
    }
    LedgerId id;
    id.pseudonym = std::string(pseudonym);
    id.year = static_cast<int>(keys::GetU(key, kPseudonymBytes, 2));
    id.scheme = static_cast<core::Scheme>(keys::GetU(key, kPseudonymBytes + 2, 1));
    found.emplace_back(std::move(id), std::move(l));
  });
  if (failed()) return;
  // Visited after the scan: a visitor may write to the ledgers' table.
  for (const auto& [id, l] : found) visit(id, l);
}

void Records::SetDue(const LedgerId& id) { o_.Put(Table::kDue, DueKey(id), ""); }
void Records::ClearDue(const LedgerId& id) { o_.Delete(Table::kDue, DueKey(id)); }

std::vector<LedgerId> Records::DueAfter(absl::string_view after, size_t limit, std::string* last) {
  std::vector<LedgerId> out;
  std::vector<std::string> due_keys = o_.KeysAfter(Table::kDue, after, limit);
  if (failed() || due_keys.empty()) return out;
  out.reserve(due_keys.size());
  for (const std::string& k : due_keys) {
    std::optional<LedgerId> d = ParseDueKey(k);
    if (!d) {
      Fail(absl::DataLossError("damaged due marker key"));
      return {};
    }
    out.push_back(*std::move(d));
  }
  *last = std::move(due_keys.back());
  return out;
}

void Records::PutCard(const LedgerId& id, const rec::Card& card) {
  rec::CardIndex ci;
  ci.set_pseudonym(id.pseudonym);
  ci.set_year(id.year);
  ci.set_scheme(static_cast<int>(id.scheme));
  *ci.mutable_card() = card;
  o_.PutMsg(Table::kCards, keys::Card(id.year, card.issued_on(), id.pseudonym, id.scheme), ci);
}

void Records::PutPayout(uint64_t run_seq, const rec::Payout& p) {
  const auto scheme = static_cast<core::Scheme>(p.scheme());
  o_.PutMsg(Table::kPayouts, keys::PayoutByYear(p.year(), run_seq, p.pseudonym(), scheme), p);
  o_.PutMsg(Table::kPayouts, keys::PayoutByRun(run_seq, p.year(), p.pseudonym(), scheme), p);
  o_.PutMsg(Table::kPayouts, keys::PayoutByPerson(p.pseudonym(), p.year(), run_seq, scheme), p);
}

uint64_t Records::RunCounter() {
  uint64_t current = 0;
  if (auto v = o_.Get(Table::kMeta, "run_counter"); v && !absl::SimpleAtoi(*v, &current)) {
    Fail(absl::DataLossError("damaged run counter"));
  }
  return current;
}
bool Records::GetProvider(absl::string_view provider_id, rec::Provider* p) {
  return o_.GetMsg(Table::kProviders, keys::ProviderRecord(provider_id), p);
}
void Records::PutProvider(const rec::Provider& p) {
  o_.PutMsg(Table::kProviders, keys::ProviderRecord(p.provider_id()), p);
}
void Records::PutProviderEntry(absl::string_view provider_id, int year, const EntryKey& entry_key) {
  o_.Put(Table::kProviders, keys::ProviderEntry(provider_id, year, entry_key), "");
}

void Records::PutRunCounter(uint64_t n) { o_.Put(Table::kMeta, "run_counter", absl::StrCat(n)); }

}  // namespace frikort::storage
