#include "storage/state_machine.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"

namespace frikort::storage {

using core::Ore;

bool EntryCounts(const rec::Entry& e) {
  return !e.lacks_agreement() && core::Counts(static_cast<core::Payment>(e.payment()),
                                              static_cast<core::Category>(e.category()),
                                              e.performed_abroad(), e.cancelled());
}

core::NotCountedReason EntryNotCountedReason(const rec::Entry& e) {
  return core::WhyNotCounted(static_cast<core::Payment>(e.payment()),
                             static_cast<core::Category>(e.category()), e.performed_abroad(),
                             e.cancelled(), e.lacks_agreement());
}

ReportResult Rejected(std::string report_id, core::RejectReason reason, std::string message) {
  ReportResult r;
  r.report_id = std::move(report_id);
  r.outcome = core::Outcome::kRejected;
  r.reason = reason;
  r.message = std::move(message);
  return r;
}

namespace {

LedgerId LedgerOf(absl::string_view pseudonym, const rec::Entry& e) {
  return LedgerId{std::string(pseudonym), e.year(), static_cast<core::Scheme>(e.scheme())};
}

// The rejection of a change naming a malformed provider or report id.
std::optional<ReportResult> CheckIds(const std::string& provider_id, const std::string& report_id,
                                     const core::PersonIdOptions& id_options) {
  if (auto s = core::ValidateProviderId(provider_id); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidProviderId, std::string(s.message()));
  }
  if (auto s = core::ValidateReportId(report_id, id_options); !s.ok()) {
    return Rejected(report_id, core::RejectReason::kInvalidReportId, std::string(s.message()));
  }
  return std::nullopt;
}

// The messages below name the provider (validated by then: a provider number
// of 1 to 9 digits) but never the report id, which is free text that could
// hold a national id; the result's report_id field names the report.
ReportResult UnknownReport(const std::string& provider_id, const std::string& report_id) {
  return Rejected(report_id, core::RejectReason::kUnknownReport,
                  absl::StrCat("report_id: provider ", provider_id, " has no report with this id"));
}

ReportResult Accepted(std::string report_id, const rec::Entry& e, std::string message) {
  ReportResult r;
  r.report_id = std::move(report_id);
  r.outcome = core::Outcome::kAccepted;
  r.counted = EntryCounts(e);
  r.not_counted_reason = EntryNotCountedReason(e);
  r.year = e.year();
  r.scheme = static_cast<core::Scheme>(e.scheme());
  r.message = std::move(message);
  return r;
}

}  // namespace

PreparedReport StateMachine::Prepare(core::CoPaymentInput in, absl::Time now) const {
  PreparedReport p;
  p.validation = core::ValidateCoPayment(in, rules_, id_options_, now);
  if (p.validation.ok()) {
    const core::ValidatedCoPayment& c = p.validation.value;
    p.service_us = absl::ToUnixMicros(c.service_time);
    p.pseudonym = crypto_.Pseudonym(c.person.digits);
    p.content_hash = crypto_.ContentHash(absl::StrCat(
        in.provider_id, "|", in.report_id, "|", c.person.digits, "|", p.service_us, "|",
        static_cast<int>(c.category), "|", c.amount, "|", static_cast<int>(c.payment), "|",
        c.performed_abroad ? 1 : 0, "|", in.attributed_year,
        // Added with the provider registry: reports without a practice keep
        // the hash they were stored with.
        in.practice_id.empty() ? "" : absl::StrCat("|", in.practice_id)));
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

void StateMachine::PrefetchReports(Records& r, const std::vector<PreparedReport>& reports) {
  std::vector<std::pair<absl::string_view, absl::string_view>> index;
  std::vector<std::string> persons;
  std::vector<LedgerId> ledgers;
  std::vector<absl::string_view> providers;
  for (const PreparedReport& p : reports) {
    if (!p.validation.ok()) continue;
    const core::ValidatedCoPayment& c = p.validation.value;
    index.emplace_back(p.in.provider_id, p.in.report_id);
    persons.push_back(p.pseudonym);
    ledgers.push_back({p.pseudonym, c.year, c.scheme});
    if (rules_.RequiresDirectSettlement(c.year)) {
      providers.push_back(p.in.provider_id);
      if (!c.practice_id.empty()) providers.push_back(c.practice_id);
    }
  }
  if (index.empty()) return;
  r.PrefetchReports(index);
  r.PrefetchPersons(std::move(persons));
  r.PrefetchLedgers(ledgers);
  if (!providers.empty()) r.PrefetchProviders(providers);
}

ReportResult StateMachine::ApplyReport(Records& r, const PreparedReport& p) {
  const core::CoPaymentInput& in = p.in;
  if (!p.validation.ok()) return Rejected(in.report_id, p.validation.reason, p.validation.message);
  const core::ValidatedCoPayment& c = p.validation.value;

  rec::ReportIndex index;
  if (r.GetReport(in.provider_id, in.report_id, &index)) {
    if (index.content_hash() != p.content_hash) {
      return Rejected(in.report_id, core::RejectReason::kConflictingDuplicate,
                      absl::StrCat("report_id: provider ", in.provider_id,
                                   " already reported this id with different content; send a "
                                   "cancellation and a new report_id to correct it"));
    }
    rec::Entry stored;
    ReportResult dup;
    dup.report_id = in.report_id;
    dup.outcome = core::Outcome::kDuplicate;
    dup.message = "report_id: already stored; nothing changed";
    if (r.GetEntry(index.entry_key(), &stored)) {
      dup.counted = EntryCounts(stored);
      dup.not_counted_reason = EntryNotCountedReason(stored);
      dup.year = stored.year();
      dup.scheme = static_cast<core::Scheme>(stored.scheme());
    }
    return dup;
  }

  rec::Person person;
  const bool known = r.GetPerson(p.pseudonym, &person);
  if (person.reserved()) {
    return Rejected(in.report_id, core::RejectReason::kPersonReserved,
                    "person_id: the person has opted out of the automatic free card scheme; "
                    "co-payments for them are not stored");
  }
  const int stored = EntriesInYear(person, c.year);
  if (stored >= max_entries_per_person_year_) {
    // Refused before anything is written: the batch's other reports go on.
    return Rejected(
        in.report_id, core::RejectReason::kPersonYearFull,
        absl::StrCat("person_id: the person already has ", stored, " co-payments stored for ",
                     c.year, ", the most one person-year may hold; nothing was stored"));
  }
  if (!known) {
    if (!p.crypto_status.ok()) {
      r.Fail(p.crypto_status);
      return Rejected(in.report_id, core::RejectReason::kNone, "internal error");
    }
    person.set_encrypted_id(p.sealed_id);
  }

  rec::Entry e;
  e.set_report_id(in.report_id);
  e.set_provider_id(in.provider_id);
  e.set_service_time_us(p.service_us);
  e.set_category(static_cast<int>(c.category));
  e.set_scheme(static_cast<int>(c.scheme));
  e.set_amount_ore(c.amount);
  e.set_payment(static_cast<int>(c.payment));
  e.set_performed_abroad(c.performed_abroad);
  e.set_received_time_us(absl::ToUnixMicros(r.now()));
  e.set_late(c.late);
  e.set_attributed_year(in.attributed_year);
  e.set_year(c.year);
  e.set_practice_id(c.practice_id);
  e.set_lacks_agreement(LacksAgreement(r, c.year, c.service_date, in.provider_id, c.practice_id));
  const EntryKey entry_key = EntryKeyOf(p.pseudonym, e);
  r.PutEntry(entry_key, e);
  r.PutProviderEntry(in.provider_id, c.year, entry_key);
  if (!c.practice_id.empty() && c.practice_id != in.provider_id) {
    r.PutProviderEntry(c.practice_id, c.year, entry_key);
  }
  index.set_entry_key(entry_key);
  index.set_content_hash(p.content_hash);
  r.PutReport(in.provider_id, in.report_id, index);
  SetEntriesInYear(&person, c.year, stored + 1);
  r.PutPerson(p.pseudonym, person);
  if (EntryCounts(e)) SetCounted(r, entry_key, e, true);
  return Accepted(
      in.report_id, e,
      c.late ? "accepted; reported more than 14 days after the service (late)" : "accepted");
}

std::optional<ReportResult> StateMachine::FindReport(Records& r, const std::string& provider_id,
                                                     const std::string& report_id,
                                                     EntryKey* entry_key, rec::Entry* entry) {
  rec::ReportIndex index;
  if (!r.GetReport(provider_id, report_id, &index)) return UnknownReport(provider_id, report_id);
  *entry_key = index.entry_key();
  if (!r.GetEntry(*entry_key, entry)) {
    r.Fail(absl::DataLossError("an idempotency index record points at a missing entry"));
    return UnknownReport(provider_id, report_id);
  }
  return std::nullopt;
}

ReportResult StateMachine::ApplyUpdatePayment(Records& r, const std::string& provider_id,
                                              const std::string& report_id, int payment) {
  if (auto bad = CheckIds(provider_id, report_id, id_options_)) return *std::move(bad);
  if (payment != static_cast<int>(core::Payment::kPaid)) {
    return Rejected(
        report_id, core::RejectReason::kInvalidPaymentStatus,
        absl::StrCat("payment: the only allowed change is INVOICED_UNPAID to PAID; ",
                     core::PaymentName(static_cast<core::Payment>(payment)), " is not allowed"));
  }
  EntryKey entry_key;
  rec::Entry e;
  if (auto unknown = FindReport(r, provider_id, report_id, &entry_key, &e)) return *unknown;
  if (e.cancelled()) {
    return Rejected(report_id, core::RejectReason::kAlreadyCancelled,
                    "report_id: the report is cancelled; its payment cannot change");
  }
  const auto current = static_cast<core::Payment>(e.payment());
  if (current == core::Payment::kPaid && e.paid_by_update()) {
    ReportResult dup = Accepted(report_id, e, "payment: already updated to PAID; nothing changed");
    dup.outcome = core::Outcome::kDuplicate;
    return dup;
  }
  if (current != core::Payment::kInvoicedUnpaid) {
    return Rejected(report_id, core::RejectReason::kInvalidPaymentStatus,
                    absl::StrCat("payment: the report is ", core::PaymentName(current),
                                 "; only INVOICED_UNPAID can change to PAID"));
  }
  const bool counted_before = EntryCounts(e);
  e.set_payment(static_cast<int>(core::Payment::kPaid));
  e.set_paid_by_update(true);
  e.set_payment_updated_time_us(absl::ToUnixMicros(r.now()));
  r.PutEntry(entry_key, e);
  if (EntryCounts(e) != counted_before) SetCounted(r, entry_key, e, !counted_before);
  return Accepted(report_id, e, "payment updated to PAID");
}

ReportResult StateMachine::ApplyCancel(Records& r, const std::string& provider_id,
                                       const std::string& report_id, const std::string& reason) {
  if (auto bad = CheckIds(provider_id, report_id, id_options_)) return *std::move(bad);
  EntryKey entry_key;
  rec::Entry e;
  if (auto unknown = FindReport(r, provider_id, report_id, &entry_key, &e)) return *unknown;
  if (e.cancelled()) {
    return Rejected(report_id, core::RejectReason::kAlreadyCancelled,
                    "report_id: the report was cancelled before");
  }
  const bool counted_before = EntryCounts(e);
  e.set_cancelled(true);
  e.set_cancel_reason(reason);
  e.set_cancelled_time_us(absl::ToUnixMicros(r.now()));
  r.PutEntry(entry_key, e);
  if (counted_before) SetCounted(r, entry_key, e, false);
  return Accepted(report_id, e, "cancelled");
}

core::LedgerState StateMachine::StateOf(int year, core::Scheme scheme, const rec::Ledger& l) const {
  core::LedgerState s;
  s.year = year;
  if (const core::YearRules* yr = rules_.ForYear(year)) s.refund_minimum = yr->refund_minimum;
  s.cap = rules_.Cap(year, scheme).value_or(0);
  s.counted_total = l.counted_total_ore();
  if (l.crossed()) s.cap_reached_on = core::DayFromNumber(l.cap_reached_on());
  s.has_card = l.card_issued();
  s.refunded = l.refunded_ore();
  return s;
}

void StateMachine::SetCounted(Records& r, const EntryKey& key, const rec::Entry& e, bool counts) {
  const LedgerId id = LedgerOf(EntryOwner(key), e);
  const core::DaySum change{core::CountingDay(absl::FromUnixMicros(e.service_time_us()), id.year),
                            counts ? e.amount_ore() : -e.amount_ore()};
  AdjustLedger(r, id, {&change, 1});
}

bool StateMachine::AdjustLedger(Records& r, const LedgerId& id,
                                absl::Span<const core::DaySum> changes) {
  rec::Ledger l;
  r.GetLedger(id, &l);
  const bool was_due = core::NeedsIssuanceWork(StateOf(id.year, id.scheme, l));
  std::vector<core::DaySum> sums = DaySumsOf(l);
  for (const core::DaySum& c : changes) core::AddToDay(&sums, c.day, c.ore);
  SetDaySums(&l, sums);
  const core::LedgerTotals totals =
      core::TotalsOfDays(sums, rules_.Cap(id.year, id.scheme).value_or(0), id.year);
  l.set_counted_total_ore(totals.counted_total);
  l.set_crossed(totals.cap_reached_on.has_value());
  if (totals.cap_reached_on) {
    l.set_cap_reached_on(core::DayNumber(*totals.cap_reached_on));
  } else {
    l.clear_cap_reached_on();
  }
  // Written by registers before the day sums; nothing reads them now.
  l.clear_crossing_key();
  l.clear_max_counted_key();
  return StoreLedger(r, id, &l, was_due);
}

bool StateMachine::StoreLedger(Records& r, const LedgerId& id, rec::Ledger* l, bool was_due) {
  const Ore cap = rules_.Cap(id.year, id.scheme).value_or(0);
  bool flagged = false;
  if (l->card_issued() && !l->card().under_review() &&
      core::CardNeedsReview(l->counted_total_ore(), cap, l->refunded_ore())) {
    // The card stays valid and nothing is clawed back until an operator
    // decides.
    l->mutable_card()->set_under_review(true);
    r.PutCard(id, l->card());
    flagged = true;
  }
  r.PutLedger(id, *l);
  if (core::NeedsIssuanceWork(StateOf(id.year, id.scheme, *l)) && !IsReserved(r, id.pseudonym)) {
    r.SetDue(id);
  } else if (was_due) {
    r.ClearDue(id);
  }
  return flagged;
}

void StateMachine::ApplyReservation(Records& r, const std::string& digits, bool reserved) {
  const std::string pseudonym = crypto_.Pseudonym(digits);
  rec::Person person;
  if (!r.GetPerson(pseudonym, &person)) {
    auto sealed = crypto_.Encrypt(digits, pseudonym);
    if (!sealed.ok()) return r.Fail(sealed.status());
    person.set_encrypted_id(*std::move(sealed));
  }
  person.set_reserved(reserved);
  r.PutPerson(pseudonym, person);
  // Due markers follow the reservation: the job does not act for a reserved
  // person, and picks their ledgers up again once the reservation is withdrawn.
  r.ForEachLedger(pseudonym, [&](const LedgerId& id, const rec::Ledger& l) {
    if (reserved) {
      r.ClearDue(id);
    } else if (core::NeedsIssuanceWork(StateOf(id.year, id.scheme, l))) {
      r.SetDue(id);
    }
  });
}

LedgerOutcome StateMachine::ApplyDecide(Records& r, const RunInfo& run, uint64_t run_seq,
                                        const LedgerId& id, const Register::DecideFn& decide) {
  LedgerOutcome out;
  out.ledger = DueLedger{id.year, id.pseudonym, id.scheme};
  // No opt-out check here: a reservation removes the person's markers in the
  // same write, and no marker is set while it holds (Verify checks both), so
  // the marker just taken is the proof. A marker without its ledger is a
  // damaged register: nothing to decide, the marker goes.
  rec::Ledger l;
  if (!r.GetLedger(id, &l)) {
    out.skipped = true;
    if (!run.dry_run) r.ClearDue(id);
    return out;
  }
  const core::LedgerState state = StateOf(id.year, id.scheme, l);
  out.decision = decide(state);
  if (run.dry_run) return out;
  const core::DecisionEffect effect = core::EffectOf(state, out.decision, run.as_of);
  if (effect.card) {
    rec::Card* card = l.mutable_card();
    card->set_valid_from(core::DayNumber(effect.card->valid_from));
    card->set_valid_to(core::DayNumber(effect.card->valid_to));
    card->set_issued_on(core::DayNumber(effect.card->issued_on));
    card->set_basis_total_ore(effect.card->basis_total);
    card->set_under_review(effect.card->under_review);
    card->set_run_id(run.run_id);
    card->set_decided_on(core::DayNumber(run.decided_on));
    l.set_card_issued(true);
    r.PutCard(id, *card);
  }
  if (effect.payout > 0) {
    rec::Payout p;
    p.set_pseudonym(id.pseudonym);
    p.set_year(id.year);
    p.set_scheme(static_cast<int>(id.scheme));
    p.set_amount_ore(effect.payout);
    p.set_run_id(run.run_id);
    p.set_created_on(core::DayNumber(run.as_of));
    r.PutPayout(run_seq, p);
  }
  l.set_refunded_ore(effect.refunded_after);
  r.PutLedger(id, l);
  if (effect.clear_due) r.ClearDue(id);
  return out;
}

std::vector<LedgerOutcome> StateMachine::ApplyDecideNext(Records& r, const RunInfo& run,
                                                         uint64_t run_seq, DueCursor* cursor,
                                                         size_t limit,
                                                         const Register::DecideFn& decide) {
  std::vector<LedgerOutcome> outcomes;
  // The markers as every change queued before this chunk left them, the
  // chunk queued just before included (it may not be on disk yet).
  std::string last;
  std::vector<LedgerId> ids = r.DueAfter(cursor->after, limit, &last);
  if (r.failed() || ids.empty()) return outcomes;
  cursor->after = std::move(last);
  r.PrefetchLedgers(ids);
  outcomes.reserve(ids.size());
  for (const LedgerId& id : ids) outcomes.push_back(ApplyDecide(r, run, run_seq, id, decide));
  return outcomes;
}

uint64_t StateMachine::ApplyAllocateRun(Records& r) {
  const uint64_t next = r.RunCounter() + 1;
  if (!r.failed()) r.PutRunCounter(next);
  return next;
}

}  // namespace frikort::storage
