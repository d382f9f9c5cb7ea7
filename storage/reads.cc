// The register's reads: ledgers, the listings and their paging, the due
// markers (exemption lookups: exemptions.cc). They run on the caller's
// thread against the committed state.
#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/register_impl.h"

namespace frikort::storage::internal {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

absl::CivilDay Day(int64_t n) { return core::DayFromNumber(n); }

Entry ToEntry(const rec::Entry& e) {
  Entry out;
  out.report_id = e.report_id();
  out.provider_id = e.provider_id();
  out.service_time = absl::FromUnixMicros(e.service_time_us());
  out.category = static_cast<core::Category>(e.category());
  out.scheme = static_cast<core::Scheme>(e.scheme());
  out.amount = e.amount_ore();
  out.payment = static_cast<core::Payment>(e.payment());
  out.counted = EntryCounts(e);
  out.cancelled = e.cancelled();
  out.received_time = absl::FromUnixMicros(e.received_time_us());
  out.late = e.late();
  out.performed_abroad = e.performed_abroad();
  out.practice_id = e.practice_id();
  out.not_counted_reason = EntryNotCountedReason(e);
  return out;
}

Card ToCard(std::string person_id, int year, core::Scheme scheme, const rec::Card& card) {
  Card c;
  c.person_id = std::move(person_id);
  c.year = year;
  c.scheme = scheme;
  c.valid_from = Day(card.valid_from());
  c.valid_to = Day(card.valid_to());
  c.issued_on = Day(card.issued_on());
  c.decided_on = card.decided_on() != 0 ? Day(card.decided_on()) : c.issued_on;
  c.basis_total = card.basis_total_ore();
  c.under_review = card.under_review();
  return c;
}

// Reads one record; false when absent.
template <typename Msg>
absl::StatusOr<bool> ReadMsg(StoreReader& store, Table table, absl::string_view key, Msg* msg) {
  absl::StatusOr<std::optional<std::string>> v = store.Get(table, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return false;
  if (!msg->ParseFromString(**v)) {
    return absl::DataLossError(absl::StrCat("damaged record in ", TableName(table)));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> RegisterImpl::PersonIdOf(absl::string_view pseudonym) {
  rec::Person p;
  auto found = ReadMsg(*store_, Table::kPersons, pseudonym, &p);
  if (!found.ok()) return found.status();
  if (!*found) return absl::DataLossError("a record names a person the register does not hold");
  return crypto_.Decrypt(p.encrypted_id(), pseudonym);
}

absl::StatusOr<LedgerView> RegisterImpl::LedgerHead(absl::string_view person_id, int year,
                                                    std::string* pseudonym) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  if (rules_.ForYear(year) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("year: the register has no rules for ", year));
  }
  *pseudonym = crypto_.Pseudonym(id->digits);
  LedgerView view;
  view.person_id = id->digits;
  view.year = year;
  rec::Person person;
  auto found = ReadMsg(*store_, Table::kPersons, *pseudonym, &person);
  if (!found.ok()) return found.status();
  view.reserved = person.reserved();
  for (core::Scheme scheme : rules_.SchemesOf(year)) {
    rec::Ledger l;
    auto has = ReadMsg(*store_, Table::kLedgers, keys::Ledger(*pseudonym, year, scheme), &l);
    if (!has.ok()) return has.status();
    SchemeLedger sl;
    sl.scheme = scheme;
    sl.cap = rules_.Cap(year, scheme).value_or(0);
    sl.counted_total = l.counted_total_ore();
    if (l.crossed()) sl.cap_reached_on = Day(l.cap_reached_on());
    sl.refunded = l.refunded_ore();
    sl.outstanding = std::max<core::Ore>(0, sl.counted_total - sl.cap - sl.refunded);
    if (l.card_issued()) sl.card = ToCard(id->digits, year, scheme, l.card());
    view.schemes.push_back(std::move(sl));
  }
  return view;
}

absl::StatusOr<LedgerView> RegisterImpl::GetLedger(absl::string_view person_id, int year) {
  std::string pseudonym;
  absl::StatusOr<LedgerView> view = LedgerHead(person_id, year, &pseudonym);
  if (!view.ok()) return view;
  ScanRange range;
  range.prefix = keys::PersonYear(pseudonym, year);
  rec::Entry e;
  bool damaged = false;
  absl::Status s =
      store_->Scan(Table::kEntries, range, [&](absl::string_view, absl::string_view v) {
        if (!e.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          damaged = true;
          return false;
        }
        view->entries.push_back(ToEntry(e));
        return true;
      });
  if (!s.ok()) return s;
  if (damaged) return absl::DataLossError("damaged entry record");
  return view;
}

absl::StatusOr<LedgerView> RegisterImpl::GetLedgerPage(absl::string_view person_id, int year,
                                                       int page_size,
                                                       absl::string_view page_token) {
  std::string pseudonym;
  absl::StatusOr<LedgerView> view = LedgerHead(person_id, year, &pseudonym);
  if (!view.ok()) return view;
  // Entry keys are the person-year followed by the service time: a page is
  // a run of them in service-time order.
  auto token = ScanPage(Table::kEntries, keys::PersonYear(pseudonym, year), page_token, page_size,
                        [&](absl::string_view, absl::string_view value) {
                          rec::Entry e;
                          if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                            return absl::DataLossError("damaged entry record");
                          }
                          view->entries.push_back(ToEntry(e));
                          return absl::OkStatus();
                        });
  if (!token.ok()) return token.status();
  view->next_page_token = *std::move(token);
  return view;
}

absl::StatusOr<std::string> RegisterImpl::ScanPage(
    Table table, const std::string& prefix, absl::string_view page_token, int page_size,
    const std::function<absl::Status(absl::string_view, absl::string_view)>& visit) {
  if (page_size < 0) return absl::InvalidArgumentError("page_size: must not be negative");
  if (page_size == 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  ScanRange range;
  range.prefix = prefix;
  if (!page_token.empty()) {
    std::string raw;
    if (!absl::WebSafeBase64Unescape(page_token, &raw) || !absl::StartsWith(raw, prefix)) {
      return absl::InvalidArgumentError(
          "page_token: not a token returned by this listing with these filters");
    }
    range.start = std::move(raw);
  }
  int n = 0;
  std::string last, token;
  absl::Status failed;
  absl::Status s = store_->Scan(table, range, [&](absl::string_view key, absl::string_view value) {
    // The token names the last key of the page before: it is not repeated.
    if (!page_token.empty() && key == range.start) return true;
    if (n == page_size) {
      absl::WebSafeBase64Escape(last, &token);
      return false;
    }
    failed = visit(key, value);
    if (!failed.ok()) return false;
    last.assign(key.data(), key.size());
    ++n;
    return true;
  });
  if (!s.ok()) return s;
  if (!failed.ok()) return failed;
  return token;
}

absl::StatusOr<Page<LookupRecord>> RegisterImpl::ListLookups(absl::string_view person_id,
                                                             int page_size,
                                                             absl::string_view page_token) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  Page<LookupRecord> page;
  auto token =
      ScanPage(Table::kLookups, crypto_.Pseudonym(id->digits), page_token, page_size,
               [&](absl::string_view, absl::string_view value) {
                 rec::Lookup r;
                 if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                   return absl::DataLossError("damaged lookup record");
                 }
                 page.items.push_back({absl::FromUnixMicros(r.time_us()), r.caller(), Day(r.date()),
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
  if (auto s = pipeline_->status(); !s.ok()) return s;
  const std::string prefix =
      issued_on ? keys::CardPrefix(year, core::DayNumber(*issued_on)) : keys::CardPrefix(year);
  Page<Card> page;
  auto token =
      ScanPage(Table::kCards, prefix, page_token, page_size,
               [&](absl::string_view, absl::string_view value) -> absl::Status {
                 rec::CardIndex ci;
                 if (!ci.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                   return absl::DataLossError("damaged card record");
                 }
                 auto person = PersonIdOf(ci.pseudonym());
                 if (!person.ok()) return person.status();
                 page.items.push_back(ToCard(*std::move(person), ci.year(),
                                             static_cast<core::Scheme>(ci.scheme()), ci.card()));
                 return absl::OkStatus();
               });
  if (!token.ok()) return token.status();
  page.next_page_token = *std::move(token);
  return page;
}

absl::StatusOr<Page<Payout>> RegisterImpl::ListPayouts(absl::string_view run_id, int year,
                                                       int page_size,
                                                       absl::string_view page_token) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
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
      Table::kPayouts, prefix, page_token, page_size,
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

absl::StatusOr<std::vector<Payout>> RegisterImpl::ListPersonPayouts(absl::string_view person_id,
                                                                    int year) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  ScanRange range;
  range.prefix = keys::PayoutByPersonPrefix(crypto_.Pseudonym(id->digits), year);
  std::vector<Payout> out;
  rec::Payout p;
  bool damaged = false;
  absl::Status s =
      store_->Scan(Table::kPayouts, range, [&](absl::string_view, absl::string_view v) {
        if (!p.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          damaged = true;
          return false;
        }
        out.push_back({id->digits, p.year(), static_cast<core::Scheme>(p.scheme()), p.amount_ore(),
                       p.run_id(), Day(p.created_on())});
        return true;
      });
  if (!s.ok()) return s;
  if (damaged) return absl::DataLossError("damaged payout record");
  return out;
}

absl::StatusOr<std::vector<DueLedger>> RegisterImpl::ScanDue(const std::optional<DueLedger>& after,
                                                             size_t limit) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  std::vector<DueLedger> out;
  if (limit == 0) return out;
  ScanRange range;
  if (after) range.start = keys::Due(after->year, after->pseudonym, after->scheme);
  bool damaged = false;
  absl::Status s = store_->Scan(Table::kDue, range, [&](absl::string_view k, absl::string_view) {
    if (after && k == range.start) return true;
    std::optional<LedgerId> d = ParseDueKey(k);
    if (!d) {
      damaged = true;
      return false;
    }
    out.push_back(DueLedger{d->year, std::move(d->pseudonym), d->scheme});
    return out.size() < limit;
  });
  if (!s.ok()) return s;
  if (damaged) return absl::DataLossError("damaged due marker key");
  return out;
}

}  // namespace frikort::storage::internal
