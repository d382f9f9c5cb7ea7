#include "core/ledger.h"

#include <algorithm>
#include <vector>

#include "core/calendar.h"

namespace frikort::core {

LedgerTotals ComputeTotals(absl::Span<const LedgerItem> items, Ore cap, int year) {
  // The contract asks for service-time order; tolerate a caller that forgot, since
  // a wrong crossing date would move a card's validity. The stable sort keeps the
  // caller's tie order.
  std::vector<const LedgerItem*> ordered;
  ordered.reserve(items.size());
  for (const LedgerItem& item : items) ordered.push_back(&item);
  const auto by_time = [](const LedgerItem* a, const LedgerItem* b) {
    return a->service_time < b->service_time;
  };
  if (!std::is_sorted(ordered.begin(), ordered.end(), by_time)) {
    std::stable_sort(ordered.begin(), ordered.end(), by_time);
  }

  LedgerTotals totals;
  const absl::CivilDay first_of_year(year, 1, 1);
  for (const LedgerItem* item : ordered) {
    if (!item->counted) continue;
    const bool was_below = totals.counted_total < cap;
    totals.counted_total += item->amount;
    const bool is_below = totals.counted_total < cap;
    // Amounts are positive for validated reports, so the total crosses once; a
    // negative correction that dips below the cap clears the crossing and a later
    // item sets it again, so the date is always that of the crossing that holds.
    if (was_below && !is_below) {
      totals.cap_reached_on = std::max(OsloDate(item->service_time), first_of_year);
    } else if (!was_below && is_below) {
      totals.cap_reached_on.reset();
    }
  }
  return totals;
}

int CountingDay(absl::Time service_time, int year) {
  const absl::CivilDay first_of_year(year, 1, 1);
  return static_cast<int>(std::max<absl::civil_diff_t>(0, OsloDate(service_time) - first_of_year));
}

void AddToDay(std::vector<DaySum>* sums, int day, Ore delta) {
  auto it = std::lower_bound(sums->begin(), sums->end(), day,
                             [](const DaySum& s, int d) { return s.day < d; });
  if (it == sums->end() || it->day != day) it = sums->insert(it, DaySum{day, 0});
  it->ore += delta;
  if (it->ore == 0) sums->erase(it);
}

std::vector<DaySum> DaySumsOf(absl::Span<const LedgerItem> items, int year) {
  std::vector<DaySum> sums;
  for (const LedgerItem& item : items) {
    if (item.counted) AddToDay(&sums, CountingDay(item.service_time, year), item.amount);
  }
  return sums;
}

LedgerTotals TotalsOfDays(absl::Span<const DaySum> sums, Ore cap, int year) {
  LedgerTotals totals;
  const absl::CivilDay first_of_year(year, 1, 1);
  for (const DaySum& s : sums) {
    const bool was_below = totals.counted_total < cap;
    totals.counted_total += s.ore;
    const bool is_below = totals.counted_total < cap;
    // As in ComputeTotals: within a day every amount is positive, so a day's
    // sum crosses exactly when one of its items does.
    if (was_below && !is_below) {
      totals.cap_reached_on = first_of_year + s.day;
    } else if (!was_below && is_below) {
      totals.cap_reached_on.reset();
    }
  }
  return totals;
}

RefundDecision DecideRefund(Ore counted_total, Ore cap, Ore already_refunded, Ore minimum) {
  RefundDecision d;
  d.excess = std::max<Ore>(0, counted_total - cap - already_refunded);
  if (minimum > 0 && d.excess < minimum) {
    d.carried = d.excess;
  } else {
    d.payout = d.excess;
  }
  return d;
}

IssuanceDecision DecideIssuance(const LedgerState& state, absl::CivilDay as_of) {
  IssuanceDecision d;
  if (!state.cap_reached_on.has_value()) {
    // Below the cap (or a card's basis fell below it: operators handle that, not
    // this job). Nothing to do until new reports arrive.
    d.done = true;
    return d;
  }
  const absl::CivilDay reached = *state.cap_reached_on;
  if (reached > as_of) {
    // Typically next year's ledger filled by medicine handed out in December; the
    // crossing date is clamped to 1 January, so the work becomes due then.
    d.done = false;
    return d;
  }
  if (!state.has_card) {
    d.issue_card = true;
    d.valid_from = reached;
    d.valid_to = absl::CivilDay(state.year, 12, 31);
    d.past_deadline = PastDeadline(reached, as_of);
  }
  d.refund = DecideRefund(state.counted_total, state.cap, state.refunded, state.refund_minimum);
  // A carried excess waits for more reports, which mark the ledger due again.
  d.done = true;
  return d;
}

bool PastDeadline(absl::CivilDay cap_reached_on, absl::CivilDay decided_on) {
  return (decided_on - cap_reached_on) > kIssuanceDeadlineDays;
}

bool NeedsIssuanceWork(const LedgerState& state) {
  if (!state.has_card) return state.cap_reached_on.has_value();
  return DecideRefund(state.counted_total, state.cap, state.refunded, state.refund_minimum).payout >
         0;
}

DecisionEffect EffectOf(const LedgerState& state, const IssuanceDecision& decision,
                        absl::CivilDay as_of) {
  DecisionEffect e;
  if (decision.issue_card) {
    e.card = CardFields{decision.valid_from, decision.valid_to, as_of, state.counted_total,
                        /*under_review=*/false};
  }
  e.payout = std::max<Ore>(0, decision.refund.payout);
  e.refunded_after = state.refunded + e.payout;
  e.clear_due = decision.done;
  return e;
}

bool CardNeedsReview(Ore counted_total, Ore cap, Ore refunded) {
  return counted_total < cap || refunded > counted_total - cap;
}

}  // namespace frikort::core
