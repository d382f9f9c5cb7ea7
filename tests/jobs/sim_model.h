// The reference model of the simulation test (simulation_test.cc): the
// register's rules restated as plain maps, written from the rules (README "The
// rules") and the contract (proto/frikort/v1/frikort.proto, README "The
// issuance job"), never from core/ledger.cc. It holds every report as sent and as it stands now,
// the cards, refunded sums and payouts, and predicts every answer the register gives: report
// outcomes, ledgers, cards, payouts, exemption status and what the issuance job decides for one
// ledger.
//
// Caps, refund minimums and the years that require an agreement on direct
// settlement come from the rules file; which scheme a category counts toward,
// what counts (whose agreement, on which day), the crossing date, the refund
// rule and the due rule are the model's own. Dates are Oslo dates from absl's time zone
// database, not from core/calendar.
#ifndef FRIKORT_TESTS_JOBS_SIM_MODEL_H_
#define FRIKORT_TESTS_JOBS_SIM_MODEL_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "core/rules.h"
#include "core/types.h"
#include "storage/register.h"
#include "tests/jobs/sim_agreements.h"

namespace frikort::jobs::sim {

using core::Category;
using core::Ore;
using core::Outcome;
using core::Payment;
using core::RejectReason;
using core::Scheme;

// Europe/Oslo, loaded once. Aborts without tzdata (the tests cannot run then).
inline const absl::TimeZone& Oslo() {
  static const absl::TimeZone* const zone = [] {
    auto* z = new absl::TimeZone;
    if (!absl::LoadTimeZone("Europe/Oslo", z)) std::abort();
    return z;
  }();
  return *zone;
}
inline absl::CivilDay OsloDay(absl::Time t) { return absl::ToCivilDay(t, Oslo()); }
inline absl::Time OsloMidnight(absl::CivilDay day) {
  return absl::FromCivil(absl::CivilSecond(day), Oslo());
}

// Rule 5: a report more than 14 days after the service is noted as late.
inline constexpr int kLateAfterDays = 14;
// The contract: an approved co-payment is 1 øre to 100,000 NOK.
inline constexpr Ore kMaxAmount = Ore{100'000} * 100;
// Rule 6: the card must reach the person within three weeks of the cap.
inline constexpr int kDeadlineDays = 21;

// One (person, year, scheme): the unit that has a cap, a card and refunds.
struct LedgerKey {
  std::string person;
  int year = 0;
  Scheme scheme = Scheme::kUnspecified;
  bool operator<(const LedgerKey& o) const {
    return std::tie(person, year, scheme) < std::tie(o.person, o.year, o.scheme);
  }
};

// What the issuance job does with one due ledger on a decision date.
struct ModelDecision {
  bool skipped = false;  // not due any more when its turn came
  bool issue_card = false;
  bool past_deadline = false;
  Ore payout = 0;
  Ore carried = 0;
};

class Model {
 public:
  // Rule 2 and the tak2 line of the circular: these count in tak 2 in the
  // two-cap years; every other category (patient travel included) in tak 1.
  static bool InTak2(Category c) {
    return c == Category::kDental || c == Category::kPhysiotherapy ||
           c == Category::kRehabilitation || c == Category::kClimateTravel;
  }
  // Rule 4: paid or invoiced, given in Norway (climate travel is abroad by
  // nature and counts), not cancelled.
  static bool Counts(Payment p, Category c, bool abroad, bool cancelled) {
    const bool charged = p == Payment::kPaid || p == Payment::kInvoiced;
    return charged && (!abroad || c == Category::kClimateTravel) && !cancelled;
  }

  // What a change to the registry did (the fields PutProvider answers with).
  struct AgreementEffect {
    int64_t entries_changed = 0;
    int64_t ledgers_changed = 0;
    int64_t cards_under_review = 0;
  };

  // A report as the register holds it now, and the content it was sent with.
  struct Stored {
    core::CoPaymentInput sent;
    absl::Time service_time;
    int year = 0;
    Scheme scheme = Scheme::kUnspecified;
    Payment payment = Payment::kUnspecified;  // now
    bool paid_by_update = false;
    bool cancelled = false;
    absl::Time received;
    bool late = false;
    // Rule 13: its year requires an agreement in force on the service day
    // and neither its provider nor its practice held one.
    bool lacks_agreement = false;
    bool counts_otherwise() const {
      return Counts(payment, static_cast<Category>(sent.category), sent.performed_abroad,
                    cancelled);
    }
    bool counted() const { return counts_otherwise() && !lacks_agreement; }
  };

  explicit Model(const core::RulesTable* rules) : rules_(rules) {}

  // ---- rules of a year ----
  bool HasRules(int year) const { return rules_->ForYear(year) != nullptr; }
  std::vector<Scheme> Schemes(int year) const {
    const core::YearRules* r = rules_->ForYear(year);
    if (r == nullptr) return {};
    if (r->two_caps) return {Scheme::kTak1, Scheme::kTak2};
    return {Scheme::kTak};
  }
  Scheme SchemeOf(int year, Category c) const {
    const core::YearRules* r = rules_->ForYear(year);
    if (r == nullptr) return Scheme::kUnspecified;
    if (!r->two_caps) return Scheme::kTak;
    return InTak2(c) ? Scheme::kTak2 : Scheme::kTak1;
  }
  Ore Cap(int year, Scheme s) const {
    const core::YearRules* r = rules_->ForYear(year);
    if (r == nullptr) return 0;
    if (s == Scheme::kTak1) return r->cap_tak1;
    if (s == Scheme::kTak2) return r->cap_tak2;
    return r->cap_tak;
  }
  Ore Minimum(int year) const {
    const core::YearRules* r = rules_->ForYear(year);
    return r == nullptr ? 0 : r->refund_minimum;
  }

  // ---- the write path ----
  // The contract's answer to one co-payment, and its effect. The generator
  // only makes well-formed ids, so id checks are left to the core tests.
  storage::ReportResult Submit(const core::CoPaymentInput& in, absl::Time now) {
    storage::ReportResult r;
    r.report_id = in.report_id;
    r.outcome = Outcome::kRejected;
    const RejectReason invalid = Validate(in, now);
    if (invalid != RejectReason::kNone) {
      r.reason = invalid;
      return r;
    }
    const auto id = std::make_pair(in.provider_id, in.report_id);
    if (auto it = reports_.find(id); it != reports_.end()) {
      if (!SameContent(it->second.sent, in)) {
        r.reason = RejectReason::kConflictingDuplicate;
        return r;
      }
      r.outcome = Outcome::kDuplicate;
      r.counted = it->second.counted();
      r.year = it->second.year;
      r.scheme = it->second.scheme;
      return r;
    }
    if (reserved_.contains(in.person_id)) {
      r.reason = RejectReason::kPersonReserved;
      return r;
    }
    Stored s;
    s.sent = in;
    s.service_time = *in.service_time;
    s.year = YearOf(in);
    s.scheme = SchemeOf(s.year, static_cast<Category>(in.category));
    s.payment = static_cast<Payment>(in.payment);
    s.received = now;
    s.late = OsloDay(now) > OsloDay(s.service_time) + kLateAfterDays;
    s.lacks_agreement = LacksAgreement(s);
    reports_.emplace(id, s);
    r.outcome = Outcome::kAccepted;
    r.counted = s.counted();
    r.year = s.year;
    r.scheme = s.scheme;
    return r;
  }

  // The one change allowed is INVOICED_UNPAID -> PAID; repeating it is a
  // duplicate.
  storage::ReportResult UpdatePayment(const std::string& provider, const std::string& report_id,
                                      int payment) {
    storage::ReportResult r;
    r.report_id = report_id;
    r.outcome = Outcome::kRejected;
    if (payment != static_cast<int>(Payment::kPaid)) {
      r.reason = RejectReason::kInvalidPaymentStatus;
      return r;
    }
    Stored* found = Correctable(provider, report_id, &r);
    if (found == nullptr) return r;
    Stored& s = *found;
    if (s.paid_by_update) {
      r.outcome = Outcome::kDuplicate;
    } else if (s.payment != Payment::kInvoicedUnpaid) {
      r.reason = RejectReason::kInvalidPaymentStatus;
      return r;
    } else {
      r.outcome = Outcome::kAccepted;
      s.payment = Payment::kPaid;
      s.paid_by_update = true;
    }
    r.counted = s.counted();
    r.year = s.year;
    r.scheme = s.scheme;
    FlagCard({s.sent.person_id, s.year, s.scheme});
    return r;
  }

  // A cancellation is a new fact on the entry; a card it takes below the cap
  // (or below what was refunded) is flagged, never revoked.
  storage::ReportResult Cancel(const std::string& provider, const std::string& report_id) {
    storage::ReportResult r;
    r.report_id = report_id;
    r.outcome = Outcome::kRejected;
    Stored* found = Correctable(provider, report_id, &r);
    if (found == nullptr) return r;
    Stored& s = *found;
    s.cancelled = true;
    r.outcome = Outcome::kAccepted;
    r.year = s.year;
    r.scheme = s.scheme;
    FlagCard({s.sent.person_id, s.year, s.scheme});
    return r;
  }

  // PutProvider: the record replaced, and every stored report of the
  // provider or practice decided again; a card whose ledger no longer covers
  // the cap plus what was refunded is flagged (never revoked).
  AgreementEffect PutProvider(const std::string& id, std::vector<Period> periods) {
    agreements_.Put(id, std::move(periods));
    AgreementEffect effect;
    std::set<LedgerKey> changed;
    for (auto& [key, s] : reports_) {
      if (s.sent.provider_id != id && s.sent.practice_id != id) continue;
      const bool before = s.counted();
      s.lacks_agreement = LacksAgreement(s);
      if (s.counted() == before) continue;
      ++effect.entries_changed;
      changed.insert({s.sent.person_id, s.year, s.scheme});
    }
    effect.ledgers_changed = static_cast<int64_t>(changed.size());
    for (const LedgerKey& k : changed) {
      if (FlagCard(k)) ++effect.cards_under_review;
    }
    return effect;
  }
  const Agreements& agreements() const { return agreements_; }
  int FirstYear() const { return rules_->first_year(); }
  int LastYear() const { return rules_->last_year(); }

  void SetReservation(const std::string& person, bool reserved) {
    if (reserved) {
      reserved_.insert(person);
    } else {
      reserved_.erase(person);
    }
  }
  bool Reserved(const std::string& person) const { return reserved_.contains(person); }

  // ---- ledger arithmetic ----
  // The counted total, and the date the running total in service-time order
  // first reached the cap (never before 1 January: medicine attributed to the
  // next year was handed out the year before).
  Ore Total(const LedgerKey& k) const {
    Ore total = 0;
    for (const Stored* s : Counted(k)) total += s->sent.amount;
    return total;
  }
  std::optional<absl::CivilDay> CapReachedOn(const LedgerKey& k) const {
    const Ore cap = Cap(k.year, k.scheme);
    Ore running = 0;
    for (const Stored* s : Counted(k)) {
      running += s->sent.amount;
      if (running >= cap) {
        return std::max(OsloDay(s->service_time), absl::CivilDay(k.year, 1, 1));
      }
    }
    return std::nullopt;
  }
  // Above the cap and not refunded yet.
  Ore Excess(const LedgerKey& k) const {
    return std::max<Ore>(0, Total(k) - Cap(k.year, k.scheme) - Refunded(k));
  }
  // The refund minimum holds back an excess below it (rule 7); 0 = none.
  bool Payable(int year, Ore excess) const { return excess > 0 && excess >= Minimum(year); }
  Ore Refunded(const LedgerKey& k) const {
    auto it = ledgers_.find(k);
    return it == ledgers_.end() ? 0 : it->second.refunded;
  }
  const storage::Card* CardOf(const LedgerKey& k) const {
    auto it = ledgers_.find(k);
    return it == ledgers_.end() || !it->second.card ? nullptr : &*it->second.card;
  }
  // The job has work here: the cap is reached and there is no card, or a card
  // and an excess that may be paid now; never for a reserved person.
  bool Due(const LedgerKey& k) const {
    if (Reserved(k.person)) return false;
    if (CardOf(k) == nullptr) return CapReachedOn(k).has_value();
    return Payable(k.year, Excess(k));
  }
  std::vector<LedgerKey> DueLedgers() const {
    std::vector<LedgerKey> out;
    for (const LedgerKey& k : AllLedgers()) {
      if (Due(k)) out.push_back(k);
    }
    return out;
  }

  // ---- the issuance job, one ledger ----
  // A ledger whose cap is reached after `as_of` waits; otherwise it gets its
  // card (valid from the crossing to 31 December) if it has none, and its
  // excess is paid, or carried while below the refund minimum. A card is
  // what was decided on its issue date: later facts may move the crossing
  // but not the card (only its flag, see FlagCard). The minimum is that of
  // the ledger's year whenever the job runs, and a carried excess is not
  // forfeited on 31 December: a late report of the same year that brings it
  // to the minimum gets it paid ("gjelder samme kalenderår" in the circular
  // is about the co-payments' year).
  // `decided_on`: the real date of the run (after as_of for a backdated
  // run); the deadline is measured against it.
  ModelDecision Decide(const LedgerKey& k, absl::CivilDay as_of, absl::CivilDay decided_on,
                       const std::string& run_id, bool dry_run) {
    ModelDecision d;
    if (!Due(k)) {
      d.skipped = true;
      return d;
    }
    const std::optional<absl::CivilDay> reached = CapReachedOn(k);
    if (!reached || *reached > as_of) return d;
    d.issue_card = CardOf(k) == nullptr;
    d.past_deadline = d.issue_card && decided_on - *reached > kDeadlineDays;
    const Ore excess = Excess(k);
    if (Payable(k.year, excess)) {
      d.payout = excess;
    } else {
      d.carried = excess;
    }
    if (dry_run) return d;
    Facts& f = ledgers_[k];
    if (d.issue_card) {
      storage::Card& c = f.card.emplace();
      c.person_id = k.person;
      c.year = k.year;
      c.scheme = k.scheme;
      c.valid_from = *reached;
      c.valid_to = absl::CivilDay(k.year, 12, 31);
      c.issued_on = as_of;
      c.basis_total = Total(k);
    }
    f.refunded += d.payout;
    if (d.payout > 0) {
      payouts_.push_back({k.person, k.year, k.scheme, d.payout, run_id, as_of});
    }
    return d;
  }
  std::string AllocateRunId() { return absl::StrFormat("run-%06d", ++runs_); }

  // ---- reads ----
  std::vector<storage::SchemeExemption> Exemption(const std::string& person, absl::CivilDay date,
                                                  Category category) const {
    const int year = static_cast<int>(date.year());
    std::vector<Scheme> schemes = Schemes(year);
    if (category != Category::kUnspecified) schemes = {SchemeOf(year, category)};
    std::vector<storage::SchemeExemption> out;
    for (Scheme scheme : schemes) {
      storage::SchemeExemption x;
      x.scheme = scheme;
      x.status = core::ExemptionStatus::kNotExempt;
      const LedgerKey k{person, year, scheme};
      const storage::Card* card = CardOf(k);
      const std::optional<absl::CivilDay> reached = CapReachedOn(k);
      if (Reserved(person)) {
        // Rule 9: the answer must not reveal the opt-out.
      } else if (card != nullptr && card->valid_from <= date && date <= card->valid_to) {
        x.status = core::ExemptionStatus::kExempt;
        x.valid_from = card->valid_from;
        x.valid_to = card->valid_to;
      } else if (reached && *reached <= date) {
        x.status = core::ExemptionStatus::kCapReached;
        x.valid_from = *reached;
        x.valid_to = absl::CivilDay(year, 12, 31);
      }
      out.push_back(x);
    }
    return out;
  }

  // GetLedger's view; entries in (service time, provider, report id) order.
  storage::LedgerView Ledger(const std::string& person, int year) const {
    storage::LedgerView v;
    v.person_id = person;
    v.year = year;
    v.reserved = Reserved(person);
    for (Scheme scheme : Schemes(year)) {
      const LedgerKey k{person, year, scheme};
      storage::SchemeLedger l;
      l.scheme = scheme;
      l.cap = Cap(year, scheme);
      l.counted_total = Total(k);
      l.cap_reached_on = CapReachedOn(k);
      if (const storage::Card* c = CardOf(k)) l.card = *c;
      l.refunded = Refunded(k);
      l.outstanding = Excess(k);
      v.schemes.push_back(std::move(l));
    }
    for (const Stored* s : Entries(person, year)) {
      storage::Entry e;
      e.report_id = s->sent.report_id;
      e.provider_id = s->sent.provider_id;
      e.practice_id = s->sent.practice_id;
      e.service_time = s->service_time;
      e.category = static_cast<Category>(s->sent.category);
      e.scheme = s->scheme;
      e.amount = s->sent.amount;
      e.payment = s->payment;
      e.counted = s->counted();
      if (s->counts_otherwise() && s->lacks_agreement) {
        e.not_counted_reason = core::NotCountedReason::kNoDirectSettlement;
      }
      e.cancelled = s->cancelled;
      e.received_time = s->received;
      e.late = s->late;
      e.performed_abroad = s->sent.performed_abroad;
      v.entries.push_back(std::move(e));
    }
    return v;
  }
  std::vector<storage::Card> Cards(int year) const {
    std::vector<storage::Card> out;
    for (const auto& [k, f] : ledgers_) {
      if (k.year == year && f.card) out.push_back(*f.card);
    }
    return out;
  }
  // run_id empty = every run; year 0 = every year.
  std::vector<storage::Payout> Payouts(const std::string& run_id, int year) const {
    std::vector<storage::Payout> out;
    for (const storage::Payout& p : payouts_) {
      if ((run_id.empty() || p.run_id == run_id) && (year == 0 || p.year == year)) {
        out.push_back(p);
      }
    }
    return out;
  }

  // ---- for the generator ----
  const Stored* Find(const std::string& provider, const std::string& report_id) const {
    auto it = reports_.find({provider, report_id});
    return it == reports_.end() ? nullptr : &it->second;
  }
  const std::map<std::pair<std::string, std::string>, Stored>& reports() const { return reports_; }
  // The year a valid report counts toward (rule 3).
  static int YearOf(const core::CoPaymentInput& in) {
    return in.attributed_year != 0 ? in.attributed_year
                                   : static_cast<int>(OsloDay(*in.service_time).year());
  }
  // Every ledger that has a report, a card or a refund.
  std::set<LedgerKey> AllLedgers() const {
    std::set<LedgerKey> out;
    for (const auto& [id, s] : reports_) out.insert({s.sent.person_id, s.year, s.scheme});
    for (const auto& [k, f] : ledgers_) out.insert(k);
    return out;
  }
  // Years with rules in which the person has entries.
  std::set<int> YearsOf(const std::string& person) const {
    std::set<int> out;
    for (const auto& [id, s] : reports_) {
      if (s.sent.person_id == person) out.insert(s.year);
    }
    return out;
  }

 private:
  // The report a correction names, or nullptr with the reason in `r`: not
  // there, or cancelled before (a cancelled report changes no more).
  Stored* Correctable(const std::string& provider, const std::string& report_id,
                      storage::ReportResult* r) {
    auto it = reports_.find({provider, report_id});
    if (it == reports_.end()) {
      r->reason = RejectReason::kUnknownReport;
      return nullptr;
    }
    if (it->second.cancelled) {
      r->reason = RejectReason::kAlreadyCancelled;
      return nullptr;
    }
    return &it->second;
  }

  struct Facts {
    std::optional<storage::Card> card;
    Ore refunded = 0;
  };

  // The contract's validation order, for the fields the generator varies.
  RejectReason Validate(const core::CoPaymentInput& in, absl::Time now) const {
    // "In the future" allows for the reporter's clock running a little ahead.
    if (!in.service_time || *in.service_time > now + core::kClockSkewAllowance) {
      return RejectReason::kInvalidServiceTime;
    }
    if (in.category < 1 || in.category > core::kMaxCategory) return RejectReason::kInvalidCategory;
    if (in.amount < 1 || in.amount > kMaxAmount) return RejectReason::kInvalidAmount;
    if (in.payment < 1 || in.payment > core::kMaxPayment) {
      return RejectReason::kInvalidPaymentStatus;
    }
    const int service_year = static_cast<int>(OsloDay(*in.service_time).year());
    if (in.attributed_year != 0 && (static_cast<Category>(in.category) != Category::kPrescription ||
                                    in.attributed_year != service_year + 1)) {
      return RejectReason::kInvalidAttributedYear;
    }
    if (!HasRules(YearOf(in))) return RejectReason::kNoRulesForYear;
    return RejectReason::kNone;
  }
  static bool SameContent(const core::CoPaymentInput& a, const core::CoPaymentInput& b) {
    return std::tie(a.person_id, a.service_time, a.category, a.amount, a.payment,
                    a.performed_abroad, a.attributed_year, a.practice_id) ==
           std::tie(b.person_id, b.service_time, b.category, b.amount, b.payment,
                    b.performed_abroad, b.attributed_year, b.practice_id);
  }
  // A person's entries of a year (both schemes), in service-time order with
  // ties in (provider, report id) order.
  std::vector<const Stored*> Entries(const std::string& person, int year) const {
    std::vector<const Stored*> out;
    for (const auto& [id, s] : reports_) {
      if (s.sent.person_id == person && s.year == year) out.push_back(&s);
    }
    std::stable_sort(out.begin(), out.end(), [](const Stored* a, const Stored* b) {
      return a->service_time < b->service_time;
    });
    return out;
  }
  std::vector<const Stored*> Counted(const LedgerKey& k) const {
    std::vector<const Stored*> out;
    for (const Stored* s : Entries(k.person, k.year)) {
      if (s->scheme == k.scheme && s->counted()) out.push_back(s);
    }
    return out;
  }
  // After a correction: a card whose counted total no longer covers the cap
  // plus what was refunded goes to an operator (and stays flagged). True when
  // this flagged it.
  bool FlagCard(const LedgerKey& k) {
    auto it = ledgers_.find(k);
    if (it == ledgers_.end() || !it->second.card || it->second.card->under_review) return false;
    if (Total(k) - Cap(k.year, k.scheme) >= it->second.refunded) return false;
    it->second.card->under_review = true;
    return true;
  }
  bool LacksAgreement(const Stored& s) const {
    if (!rules_->RequiresDirectSettlement(s.year)) return false;
    const absl::CivilDay day = OsloDay(s.service_time);
    return !agreements_.InForce(s.sent.provider_id, day) &&
           !agreements_.InForce(s.sent.practice_id, day);
  }

  const core::RulesTable* const rules_;
  std::map<std::pair<std::string, std::string>, Stored> reports_;  // (provider, report id)
  std::set<std::string> reserved_;
  Agreements agreements_;
  std::map<LedgerKey, Facts> ledgers_;
  std::vector<storage::Payout> payouts_;
  int runs_ = 0;
};

}  // namespace frikort::jobs::sim

#endif  // FRIKORT_TESTS_JOBS_SIM_MODEL_H_
