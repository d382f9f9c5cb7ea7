// Verify: walks the whole register in one snapshot and checks its
// invariants (see Register::Verify), in memory bounded by one person-year.
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/register_impl.h"

namespace frikort::storage::internal {

absl::StatusOr<Register::VerifyReport> RegisterImpl::Verify() {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  VerifyReport rep;
  // One snapshot: the walk sees one consistent state while writes go on.
  const std::unique_ptr<StoreReader> snap = store_->Snapshot();
  auto get = [&](Table table, const std::string& key, std::string* v) -> absl::StatusOr<bool> {
    absl::StatusOr<std::optional<std::string>> got = snap->Get(table, key);
    if (!got.ok()) return got.status();
    if (!got->has_value()) return false;
    *v = **std::move(got);
    return true;
  };
  auto who = [](absl::string_view pseudonym) {
    return absl::StrCat("person ", absl::BytesToHexString(pseudonym.substr(0, 6)));
  };
  auto violation = [&](std::string m) {
    if (rep.violations.size() < 10000) rep.violations.push_back(std::move(m));
  };
  auto walk = [&](Table table,
                  const std::function<absl::Status(absl::string_view, absl::string_view)>& visit) {
    absl::Status failed;
    absl::Status s = snap->Scan(table, ScanRange{}, [&](absl::string_view k, absl::string_view v) {
      failed = visit(k, v);
      return failed.ok();
    });
    return s.ok() ? failed : s;
  };
  std::string v;

  // Persons: every id decrypts under this key; the entry counts per year
  // match the entries.
  absl::Status s = walk(Table::kPersons, [&](absl::string_view key, absl::string_view value) {
    ++rep.persons;
    rec::Person p;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation(absl::StrCat(who(key), ": damaged person record"));
      return absl::OkStatus();
    }
    if (auto id = crypto_.Decrypt(p.encrypted_id(), key);
        !id.ok() || crypto_.Pseudonym(*id) != key) {
      violation(absl::StrCat(who(key), ": encrypted id does not belong to its pseudonym"));
    }
    // The entry counts per year the cap on a person-year is checked against.
    std::map<int, int> counted;
    ScanRange range;
    range.prefix = std::string(key);
    absl::Status scanned =
        snap->Scan(Table::kEntries, range, [&](absl::string_view k, absl::string_view) {
          ++counted[static_cast<int>(keys::GetU(k, kPseudonymBytes, 2))];
          return true;
        });
    if (!scanned.ok()) return scanned;
    for (const rec::YearEntries& y : p.entries()) counted.emplace(y.year(), 0);
    for (const auto& [year, n] : counted) {
      if (EntriesInYear(p, year) != n) {
        violation(absl::StrCat(who(key), " ", year, ": person record counts ",
                               EntriesInYear(p, year), " entries, the register holds ", n));
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Entries -> index.
  s = walk(Table::kEntries, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    ++rep.entries;
    rec::Entry e;
    if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation(absl::StrCat(who(key), ": damaged entry"));
      return absl::OkStatus();
    }
    rec::ReportIndex index;
    auto found = get(Table::kReports, keys::Report(e.provider_id(), e.report_id()), &v);
    if (!found.ok()) return found.status();
    if (!*found || !index.ParseFromString(v) || index.entry_key() != key) {
      violation(absl::StrCat(who(key), ": entry ", e.provider_id(), "/", e.report_id(),
                             " has no idempotency index pointing at it"));
    }
    absl::StatusOr<std::string> agreement = VerifyAgreement(*snap, rules_, key, e);
    if (!agreement.ok()) return agreement.status();
    if (!agreement->empty()) violation(absl::StrCat(who(key), ": ", *agreement));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Index -> entries.
  s = walk(Table::kReports, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    rec::ReportIndex index;
    rec::Entry e;
    if (!index.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation("damaged idempotency index record");
      return absl::OkStatus();
    }
    auto found = get(Table::kEntries, index.entry_key(), &v);
    if (!found.ok()) return found.status();
    if (!*found || !e.ParseFromString(v) || keys::Report(e.provider_id(), e.report_id()) != key) {
      violation(absl::StrCat("idempotency index ", absl::CEscape(key.substr(1)),
                             " points at no matching entry"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Ledgers: recomputed from their entries; cards, refunds and due markers.
  s = walk(Table::kLedgers, [&](absl::string_view key, absl::string_view value) -> absl::Status {
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
    rec::Entry e;
    ScanRange range;
    range.prefix = prefix;
    absl::Status scanned =
        snap->Scan(Table::kEntries, range, [&](absl::string_view, absl::string_view ev) {
          if (e.ParseFromArray(ev.data(), static_cast<int>(ev.size())) &&
              e.scheme() == static_cast<int>(scheme) && EntryCounts(e)) {
            items.push_back({absl::FromUnixMicros(e.service_time_us()), e.amount_ore(), true});
          }
          return true;
        });
    if (!scanned.ok()) return scanned;
    const core::Ore cap = rules_.Cap(year, scheme).value_or(0);
    const core::LedgerTotals totals = core::ComputeTotals(items, cap, year);
    if (totals.counted_total != l.counted_total_ore()) {
      violation(absl::StrCat(where, ": summary total ", l.counted_total_ore(),
                             " != counted entries ", totals.counted_total));
    }
    const std::optional<absl::CivilDay> stored =
        l.crossed() ? std::optional<absl::CivilDay>(core::DayFromNumber(l.cap_reached_on()))
                    : std::nullopt;
    if (stored != totals.cap_reached_on) {
      violation(absl::StrCat(where, ": crossing date differs from the entries'"));
    }
    if (DaySumsOf(l) != core::DaySumsOf(items, year)) {
      violation(absl::StrCat(where, ": day sums differ from the entries'"));
    }
    const bool under_review = l.card_issued() && l.card().under_review();
    if (l.card_issued()) {
      ++rep.cards;
      if (l.counted_total_ore() < cap && !under_review) {
        violation(absl::StrCat(where, ": card issued below the cap and not under review"));
      }
      auto found =
          get(Table::kCards, keys::Card(year, l.card().issued_on(), pseudonym, scheme), &v);
      if (!found.ok()) return found.status();
      if (!*found) violation(absl::StrCat(where, ": card missing from the card listing"));
    }
    if (l.refunded_ore() > std::max<core::Ore>(0, l.counted_total_ore() - cap) && !under_review) {
      violation(absl::StrCat(where, ": refunded ", l.refunded_ore(), " exceeds the excess"));
    }
    if (l.refunded_ore() > 0 && !l.card_issued()) {
      violation(absl::StrCat(where, ": refund paid without a card"));
    }
    rec::Person person;
    auto pf = get(Table::kPersons, pseudonym, &v);
    if (!pf.ok()) return pf.status();
    if (!*pf || !person.ParseFromString(v)) {
      violation(absl::StrCat(where, ": ledger of a person the register does not hold"));
    }
    const bool needs =
        core::NeedsIssuanceWork(machine_.StateOf(year, scheme, l)) && !person.reserved();
    auto marked = get(Table::kDue, keys::Due(year, pseudonym, scheme), &v);
    if (!marked.ok()) return marked.status();
    if (*marked != needs) {
      violation(absl::StrCat(where, needs ? ": work is due but there is no due marker"
                                          : ": due marker where no work is due"));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Due markers must name a ledger.
  s = walk(Table::kDue, [&](absl::string_view key, absl::string_view) -> absl::Status {
    ++rep.due_markers;
    std::optional<LedgerId> d = ParseDueKey(key);
    if (!d) {
      violation("damaged due marker key");
      return absl::OkStatus();
    }
    auto found = get(Table::kLedgers, keys::Ledger(d->pseudonym, d->year, d->scheme), &v);
    if (!found.ok()) return found.status();
    if (!*found)
      violation(absl::StrCat(who(d->pseudonym), " ", d->year, ": due marker without a ledger"));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  // Payouts: each names a ledger with a card, and the person's listing holds
  // it (and holds nothing else).
  s = walk(Table::kPayouts, [&](absl::string_view key, absl::string_view value) -> absl::Status {
    if (key.empty() || (key[0] != 'Y' && key[0] != 'P')) return absl::OkStatus();
    rec::Payout p;
    rec::Ledger l;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      violation("damaged payout record");
      return absl::OkStatus();
    }
    const auto scheme = static_cast<core::Scheme>(p.scheme());
    absl::StatusOr<uint64_t> run = ParseRunId(p.run_id());
    if (!run.ok()) {
      violation(absl::StrCat(who(p.pseudonym()), " ", p.year(), ": payout without a run id"));
      return absl::OkStatus();
    }
    if (key[0] == 'P') {
      auto listed =
          get(Table::kPayouts, keys::PayoutByYear(p.year(), *run, p.pseudonym(), scheme), &v);
      if (!listed.ok()) return listed.status();
      if (!*listed || v != value) {
        violation(absl::StrCat(who(p.pseudonym()), " ", p.year(), ": person's payout in ",
                               p.run_id(), " is not in the payout listing"));
      }
      return absl::OkStatus();
    }
    ++rep.payouts;
    auto indexed =
        get(Table::kPayouts, keys::PayoutByPerson(p.pseudonym(), p.year(), *run, scheme), &v);
    if (!indexed.ok()) return indexed.status();
    if (!*indexed || v != value) {
      violation(absl::StrCat(who(p.pseudonym()), " ", p.year(), ": payout in ", p.run_id(),
                             " missing from the person's payout listing"));
    }
    auto found =
        get(Table::kLedgers,
            keys::Ledger(p.pseudonym(), p.year(), static_cast<core::Scheme>(p.scheme())), &v);
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

}  // namespace frikort::storage::internal
