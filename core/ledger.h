// Ledger arithmetic, pure: the counted total of one (person, year, scheme), the
// date the cap was crossed in service-time order, and the issuance decision
// (card, refund, carry) the job takes for a ledger.
#ifndef FRIKORT_CORE_LEDGER_H_
#define FRIKORT_CORE_LEDGER_H_

#include <optional>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/types.h"

namespace frikort::core {

// One co-payment as the arithmetic sees it.
struct LedgerItem {
  absl::Time service_time;
  Ore amount = 0;
  bool counted = false;  // paid/invoiced, in Norway (or climate travel), not cancelled
};

struct LedgerTotals {
  Ore counted_total = 0;
  // The Oslo service date of the counted item that took the running total, in
  // service-time order, to the cap or above; never before 1 January of `year`
  // (medicine attributed to the next year was handed out the year before).
  std::optional<absl::CivilDay> cap_reached_on;
};

// `items` must be in service-time order (ties in any fixed order). `cap` > 0.
LedgerTotals ComputeTotals(absl::Span<const LedgerItem> items, Ore cap, int year);

// Counted øre of one service day of a ledger's year: what the crossing date
// needs, in at most kMaxDaySums records however many items the ledger holds.
// `day` counts from 1 January (0); service days before it (medicine attributed
// from the year before) count on day 0, since the crossing date is never
// before 1 January.
struct DaySum {
  int day = 0;
  Ore ore = 0;
  friend bool operator==(const DaySum& a, const DaySum& b) {
    return a.day == b.day && a.ore == b.ore;
  }
};
inline constexpr int kMaxDaySums = 366;

// The day of `year` a service time counts on (0 = 1 January, never below 0).
int CountingDay(absl::Time service_time, int year);
// Adds `delta` to `day` in `sums` (kept in day order, without zero sums).
void AddToDay(std::vector<DaySum>* sums, int day, Ore delta);
// The day sums of the counted items.
std::vector<DaySum> DaySumsOf(absl::Span<const LedgerItem> items, int year);
// The totals the day sums give: ComputeTotals of the items they sum, read in
// one walk over at most kMaxDaySums sums. `sums` in day order.
LedgerTotals TotalsOfDays(absl::Span<const DaySum> sums, Ore cap, int year);

// The refund rule: excess = counted_total - cap - already_refunded (never
// negative). With a minimum > 0, an excess below it is carried (not paid);
// once it reaches the minimum all of it is paid. With minimum 0 every øre is paid.
struct RefundDecision {
  Ore excess = 0;
  Ore payout = 0;
  Ore carried = 0;
};
RefundDecision DecideRefund(Ore counted_total, Ore cap, Ore already_refunded, Ore minimum);

// What the issuance job decides for one due ledger on `as_of`.
struct LedgerState {
  int year = 0;
  Ore cap = 0;
  Ore refund_minimum = 0;
  Ore counted_total = 0;
  std::optional<absl::CivilDay> cap_reached_on;
  bool has_card = false;
  Ore refunded = 0;
};
struct IssuanceDecision {
  bool issue_card = false;
  absl::CivilDay valid_from;   // when issue_card
  absl::CivilDay valid_to;     // 31 December of the year, when issue_card
  bool past_deadline = false;  // issued more than 21 days after cap_reached_on
  RefundDecision refund;       // payout/carry; all zero when no card results
  // True when the ledger has nothing more to do unless new reports arrive
  // (the job then removes its due marker).
  bool done = true;
};
inline constexpr int kIssuanceDeadlineDays = 21;
// Whether a card decided on `decided_on` (the real date, never a backdated
// run's as_of) comes more than kIssuanceDeadlineDays after the crossing.
bool PastDeadline(absl::CivilDay cap_reached_on, absl::CivilDay decided_on);
IssuanceDecision DecideIssuance(const LedgerState& state, absl::CivilDay as_of);

// Whether a ledger needs the job (a due marker): cap reached and no card, or a
// card with a payable excess. Matches DecideIssuance's notion of work.
bool NeedsIssuanceWork(const LedgerState& state);

// The card a decision issues, as the register stores it.
struct CardFields {
  absl::CivilDay valid_from;
  absl::CivilDay valid_to;
  absl::CivilDay issued_on;
  Ore basis_total = 0;  // the counted total the card was issued on
  bool under_review = false;
};

// What the register writes for one ledger's decision, taken on `as_of`:
// the card (when one is issued), the payout (when > 0), the ledger's
// refunded sum afterwards, and whether its due marker goes.
struct DecisionEffect {
  std::optional<CardFields> card;
  Ore payout = 0;
  Ore refunded_after = 0;
  bool clear_due = false;
};
DecisionEffect EffectOf(const LedgerState& state, const IssuanceDecision& decision,
                        absl::CivilDay as_of);

// The review rule: an issued card is flagged for an operator (never revoked)
// once corrections take its ledger's counted total below the cap, or below
// the cap plus what was already refunded.
bool CardNeedsReview(Ore counted_total, Ore cap, Ore refunded);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_LEDGER_H_
