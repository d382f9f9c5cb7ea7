#include "core/ledger.h"

#include <algorithm>
#include <random>
#include <vector>

#include "core/calendar.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"

namespace frikort::core {
namespace {

constexpr Ore Nok(int64_t kroner) { return kroner * kOrePerKrone; }

// An instant at noon Oslo time on the given day.
absl::Time OsloNoon(int y, int m, int d) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, 12, 0, 0), OsloTimeZone());
}

LedgerItem Item(absl::Time t, Ore amount, bool counted = true) {
  return LedgerItem{.service_time = t, .amount = amount, .counted = counted};
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok()); }
};

TEST_F(LedgerTest, BelowCapHasNoCrossing) {
  const std::vector<LedgerItem> items = {Item(OsloNoon(2024, 1, 5), Nok(1000)),
                                         Item(OsloNoon(2024, 2, 5), Nok(2164))};
  const LedgerTotals t = ComputeTotals(items, Nok(3165), 2024);
  EXPECT_EQ(t.counted_total, Nok(3164));
  EXPECT_FALSE(t.cap_reached_on.has_value());
  EXPECT_EQ(ComputeTotals({}, Nok(3165), 2024).counted_total, 0);
}

TEST_F(LedgerTest, CrossingExactlyAtCap) {
  const std::vector<LedgerItem> items = {Item(OsloNoon(2024, 1, 5), Nok(3000)),
                                         Item(OsloNoon(2024, 3, 7), Nok(165)),
                                         Item(OsloNoon(2024, 4, 1), Nok(300))};
  const LedgerTotals t = ComputeTotals(items, Nok(3165), 2024);
  EXPECT_EQ(t.counted_total, Nok(3465));
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2024, 3, 7));  // reached, not passed
}

TEST_F(LedgerTest, DaySumsGiveTheTotalsOfTheirItems) {
  // Many items on few days, some before 1 January (attributed medicine), in
  // random order: the day sums hold at most one sum a day and give the same
  // total and crossing date as the items.
  std::mt19937 rng(7);
  std::vector<LedgerItem> items;
  for (int i = 0; i < 2000; ++i) {
    const int day = static_cast<int>(rng() % 40);
    const absl::Time t = OsloNoon(2024, 1, 1) + absl::Hours(24 * (day - 5) + rng() % 10);
    items.push_back(Item(t, 1 + static_cast<Ore>(rng() % 900), rng() % 5 != 0));
  }
  std::vector<LedgerItem> sorted = items;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.service_time < b.service_time; });
  const std::vector<DaySum> sums = DaySumsOf(items, 2024);
  EXPECT_LE(sums.size(), 35u);
  EXPECT_EQ(sums.front().day, 0);  // the days before 1 January count on it
  for (Ore cap : {Nok(1), Nok(3165), Nok(100000), Nok(10000000)}) {
    const LedgerTotals want = ComputeTotals(sorted, cap, 2024);
    const LedgerTotals got = TotalsOfDays(sums, cap, 2024);
    EXPECT_EQ(got.counted_total, want.counted_total);
    EXPECT_EQ(got.cap_reached_on, want.cap_reached_on) << cap;
  }
}

TEST_F(LedgerTest, AddToDayKeepsDayOrderAndDropsEmptyDays) {
  std::vector<DaySum> sums;
  AddToDay(&sums, 10, 500);
  AddToDay(&sums, 3, 200);
  AddToDay(&sums, 10, 100);
  EXPECT_EQ(sums, (std::vector<DaySum>{{3, 200}, {10, 600}}));
  AddToDay(&sums, 3, -200);
  EXPECT_EQ(sums, (std::vector<DaySum>{{10, 600}}));
  EXPECT_EQ(CountingDay(OsloNoon(2023, 12, 20), 2024), 0);
  EXPECT_EQ(CountingDay(OsloNoon(2024, 12, 31), 2024), 365);
}

TEST_F(LedgerTest, OneOreShortDoesNotCross) {
  const std::vector<LedgerItem> items = {Item(OsloNoon(2024, 1, 5), Nok(3000)),
                                         Item(OsloNoon(2024, 3, 7), Nok(165) - 1),
                                         Item(OsloNoon(2024, 4, 1), 1)};
  const LedgerTotals t = ComputeTotals(items, Nok(3165), 2024);
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2024, 4, 1));
}

TEST_F(LedgerTest, OutOfOrderItemsAreTakenInServiceTimeOrder) {
  // Reported in the order March, January, February; in service order the total
  // reaches 2000 with the February item, not with the March one reported first.
  const std::vector<LedgerItem> reported = {Item(OsloNoon(2024, 3, 1), Nok(1500)),
                                            Item(OsloNoon(2024, 1, 10), Nok(1000)),
                                            Item(OsloNoon(2024, 2, 20), Nok(1000))};
  const LedgerTotals t = ComputeTotals(reported, Nok(2000), 2024);
  EXPECT_EQ(t.counted_total, Nok(3500));
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2024, 2, 20));

  const std::vector<LedgerItem> sorted = {reported[1], reported[2], reported[0]};
  EXPECT_EQ(ComputeTotals(sorted, Nok(2000), 2024).cap_reached_on, t.cap_reached_on);
}

TEST_F(LedgerTest, CrossingDateIsTheOsloDate) {
  // 23:30 UTC on 9 March is 00:30 on 10 March in Oslo.
  const absl::Time late_evening_utc =
      absl::FromCivil(absl::CivilSecond(2024, 3, 9, 23, 30, 0), absl::UTCTimeZone());
  const std::vector<LedgerItem> items = {Item(late_evening_utc, Nok(3165))};
  const LedgerTotals t = ComputeTotals(items, Nok(3165), 2024);
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2024, 3, 10));
}

TEST_F(LedgerTest, UncountedItemsAreIgnored) {
  const std::vector<LedgerItem> items = {
      Item(OsloNoon(2024, 1, 5), Nok(3000)),
      Item(OsloNoon(2024, 2, 1), Nok(500), /*counted=*/false),  // e.g. invoiced unpaid
      Item(OsloNoon(2024, 5, 2), Nok(100)),
      Item(OsloNoon(2024, 6, 3), Nok(65)),
  };
  const LedgerTotals t = ComputeTotals(items, Nok(3165), 2024);
  EXPECT_EQ(t.counted_total, Nok(3165));
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2024, 6, 3));

  const std::vector<LedgerItem> none = {Item(OsloNoon(2024, 1, 5), Nok(5000), false)};
  const LedgerTotals u = ComputeTotals(none, Nok(3165), 2024);
  EXPECT_EQ(u.counted_total, 0);
  EXPECT_FALSE(u.cap_reached_on.has_value());
}

TEST_F(LedgerTest, AttributedYearCrossingIsClampedToFirstOfJanuary) {
  // Medicine for 2025 handed out in December 2024 (attributed to 2025).
  const std::vector<LedgerItem> items = {Item(OsloNoon(2024, 12, 10), Nok(3278)),
                                         Item(OsloNoon(2025, 2, 1), Nok(50))};
  const LedgerTotals t = ComputeTotals(items, Nok(3278), 2025);
  ASSERT_TRUE(t.cap_reached_on.has_value());
  EXPECT_EQ(*t.cap_reached_on, absl::CivilDay(2025, 1, 1));
  EXPECT_EQ(t.counted_total, Nok(3328));

  // A crossing later in the year is not moved.
  const std::vector<LedgerItem> later = {Item(OsloNoon(2024, 12, 10), Nok(3000)),
                                         Item(OsloNoon(2025, 2, 1), Nok(278))};
  EXPECT_EQ(*ComputeTotals(later, Nok(3278), 2025).cap_reached_on, absl::CivilDay(2025, 2, 1));
}

TEST(DecideRefundTest, Year2019WithMinimum200) {
  const Ore cap = Nok(2369), minimum = Nok(200);
  const struct {
    Ore total, refunded;
    Ore excess, payout, carried;
  } cases[] = {
      {Nok(2000), 0, 0, 0, 0},                     // below the cap
      {cap, 0, 0, 0, 0},                           // exactly at the cap
      {cap + Nok(150), 0, Nok(150), 0, Nok(150)},  // under the minimum: carried
      {cap + Nok(200) - 1, 0, Nok(200) - 1, 0, Nok(200) - 1},
      {cap + Nok(200), 0, Nok(200), Nok(200), 0},         // reaches the minimum: paid
      {cap + Nok(250), 0, Nok(250), Nok(250), 0},         // 150 carried + 100 later: all paid
      {cap + Nok(400), Nok(250), Nok(150), 0, Nok(150)},  // new excess after a payout
      {cap + Nok(450), Nok(250), Nok(200), Nok(200), 0},
      {cap + Nok(100), Nok(250), 0, 0, 0},  // refunded more than current excess
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "total=" << c.total << " refunded=" << c.refunded);
    const RefundDecision d = DecideRefund(c.total, cap, c.refunded, minimum);
    EXPECT_EQ(d.excess, c.excess);
    EXPECT_EQ(d.payout, c.payout);
    EXPECT_EQ(d.carried, c.carried);
  }
}

TEST(DecideRefundTest, Year2024WithoutMinimumPaysEveryOre) {
  const Ore cap = Nok(3165);
  for (Ore extra : {Ore{1}, Ore{99}, Nok(150), Nok(199), Nok(5000)}) {
    const RefundDecision d = DecideRefund(cap + extra, cap, 0, 0);
    EXPECT_EQ(d.excess, extra);
    EXPECT_EQ(d.payout, extra);
    EXPECT_EQ(d.carried, 0);
  }
  const RefundDecision after = DecideRefund(cap + Nok(300), cap, Nok(250), 0);
  EXPECT_EQ(after.payout, Nok(50));
  EXPECT_EQ(DecideRefund(cap - 1, cap, 0, 0).payout, 0);
}

LedgerState State2024() {
  LedgerState s;
  s.year = 2024;
  s.cap = Nok(3165);
  s.refund_minimum = 0;
  return s;
}

TEST(DecideIssuanceTest, NothingBelowCap) {
  LedgerState s = State2024();
  s.counted_total = Nok(3000);
  const IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2024, 6, 1));
  EXPECT_FALSE(d.issue_card);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_TRUE(d.done);
  EXPECT_FALSE(NeedsIssuanceWork(s));
}

TEST(DecideIssuanceTest, IssuesCardValidFromCrossingToYearEnd) {
  LedgerState s = State2024();
  s.counted_total = Nok(3165);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  EXPECT_TRUE(NeedsIssuanceWork(s));
  const IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2024, 3, 8));
  EXPECT_TRUE(d.issue_card);
  EXPECT_EQ(d.valid_from, absl::CivilDay(2024, 3, 7));
  EXPECT_EQ(d.valid_to, absl::CivilDay(2024, 12, 31));
  EXPECT_FALSE(d.past_deadline);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_TRUE(d.done);
}

TEST(DecideIssuanceTest, DeadlineIs21Days) {
  LedgerState s = State2024();
  s.counted_total = Nok(3200);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  const absl::CivilDay reached = *s.cap_reached_on;
  EXPECT_FALSE(DecideIssuance(s, reached).past_deadline);
  EXPECT_FALSE(DecideIssuance(s, reached + 21).past_deadline);
  EXPECT_TRUE(DecideIssuance(s, reached + 22).past_deadline);
  EXPECT_TRUE(DecideIssuance(s, reached + 22).issue_card);  // late is still issued
  EXPECT_EQ(DecideIssuance(s, reached + 22).valid_from, reached);
}

TEST(DecideIssuanceTest, NotYetWhenCapReachedAfterAsOf) {
  // Next year's ledger, filled in December by medicine attributed to it.
  LedgerState s = State2024();
  s.year = 2025;
  s.cap = Nok(3278);
  s.counted_total = Nok(3400);
  s.cap_reached_on = absl::CivilDay(2025, 1, 1);
  const IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2024, 12, 20));
  EXPECT_FALSE(d.issue_card);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_EQ(d.refund.excess, 0);
  EXPECT_FALSE(d.done);  // due again later

  const IssuanceDecision on_the_day = DecideIssuance(s, absl::CivilDay(2025, 1, 1));
  EXPECT_TRUE(on_the_day.issue_card);
  EXPECT_EQ(on_the_day.valid_from, absl::CivilDay(2025, 1, 1));
  EXPECT_EQ(on_the_day.valid_to, absl::CivilDay(2025, 12, 31));
  EXPECT_EQ(on_the_day.refund.payout, Nok(122));
  EXPECT_TRUE(on_the_day.done);
}

TEST(DecideIssuanceTest, ExcessPaidWithNewCardAndAfterCard) {
  LedgerState s = State2024();
  s.counted_total = Nok(3265);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2024, 3, 10));
  EXPECT_TRUE(d.issue_card);
  EXPECT_EQ(d.refund.payout, Nok(100));

  // The card exists and that 100 was paid; the person paid 40 more after the cap.
  s.has_card = true;
  s.refunded = Nok(100);
  EXPECT_FALSE(NeedsIssuanceWork(s));
  d = DecideIssuance(s, absl::CivilDay(2024, 4, 1));
  EXPECT_FALSE(d.issue_card);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_TRUE(d.done);

  s.counted_total += Nok(40);
  EXPECT_TRUE(NeedsIssuanceWork(s));
  d = DecideIssuance(s, absl::CivilDay(2024, 5, 1));
  EXPECT_FALSE(d.issue_card);
  EXPECT_EQ(d.refund.excess, Nok(40));
  EXPECT_EQ(d.refund.payout, Nok(40));
  EXPECT_EQ(d.refund.carried, 0);
  EXPECT_TRUE(d.done);
}

TEST(DecideIssuanceTest, ExcessCarriedWithMinimum) {
  LedgerState s;
  s.year = 2019;
  s.cap = Nok(2369);
  s.refund_minimum = Nok(200);
  s.counted_total = Nok(2369 + 150);
  s.cap_reached_on = absl::CivilDay(2019, 9, 2);
  IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2019, 9, 5));
  EXPECT_TRUE(d.issue_card);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_EQ(d.refund.carried, Nok(150));
  EXPECT_TRUE(d.done);  // the carry waits for new reports

  s.has_card = true;
  EXPECT_FALSE(NeedsIssuanceWork(s));  // only a carry: nothing to do
  d = DecideIssuance(s, absl::CivilDay(2019, 10, 1));
  EXPECT_FALSE(d.issue_card);
  EXPECT_EQ(d.refund.payout, 0);
  EXPECT_EQ(d.refund.carried, Nok(150));

  s.counted_total += Nok(100);  // now 250 above the cap: all of it is paid
  EXPECT_TRUE(NeedsIssuanceWork(s));
  d = DecideIssuance(s, absl::CivilDay(2019, 11, 1));
  EXPECT_EQ(d.refund.payout, Nok(250));
  EXPECT_EQ(d.refund.carried, 0);
  EXPECT_TRUE(d.done);
}

TEST(DecideIssuanceTest, CardAlreadyIssuedIsNotReissued) {
  LedgerState s = State2024();
  s.counted_total = Nok(3165);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  s.has_card = true;
  EXPECT_FALSE(NeedsIssuanceWork(s));
  const IssuanceDecision d = DecideIssuance(s, absl::CivilDay(2024, 8, 1));
  EXPECT_FALSE(d.issue_card);
  EXPECT_FALSE(d.past_deadline);
  EXPECT_TRUE(d.done);
}

TEST(EffectOfTest, ANewCardIsDatedByTheRunAndBasedOnTheCountedTotal) {
  LedgerState s = State2024();
  s.counted_total = Nok(3165) + Nok(40);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  const absl::CivilDay as_of(2024, 3, 20);
  const IssuanceDecision d = DecideIssuance(s, as_of);
  const DecisionEffect e = EffectOf(s, d, as_of);
  ASSERT_TRUE(e.card.has_value());
  EXPECT_EQ(e.card->valid_from, absl::CivilDay(2024, 3, 7));
  EXPECT_EQ(e.card->valid_to, absl::CivilDay(2024, 12, 31));
  EXPECT_EQ(e.card->issued_on, as_of);
  EXPECT_EQ(e.card->basis_total, s.counted_total);
  EXPECT_FALSE(e.card->under_review);
  EXPECT_EQ(e.payout, Nok(40));  // every krone from 2022
  EXPECT_EQ(e.refunded_after, Nok(40));
  EXPECT_TRUE(e.clear_due);
}

TEST(EffectOfTest, ARefundOnAnIssuedCardAddsToWhatWasRefunded) {
  LedgerState s = State2024();
  s.counted_total = Nok(3165) + Nok(100);
  s.cap_reached_on = absl::CivilDay(2024, 3, 7);
  s.has_card = true;
  s.refunded = Nok(60);
  const absl::CivilDay as_of(2024, 6, 1);
  const DecisionEffect e = EffectOf(s, DecideIssuance(s, as_of), as_of);
  EXPECT_FALSE(e.card.has_value()) << "an issued card is not issued again";
  EXPECT_EQ(e.payout, Nok(40));
  EXPECT_EQ(e.refunded_after, Nok(100));
}

TEST(EffectOfTest, AFutureCrossingWritesNothingAndKeepsTheMarker) {
  LedgerState s = State2024();
  s.counted_total = Nok(3165);
  s.cap_reached_on = absl::CivilDay(2024, 1, 1);
  const absl::CivilDay as_of(2023, 12, 20);
  const DecisionEffect e = EffectOf(s, DecideIssuance(s, as_of), as_of);
  EXPECT_FALSE(e.card.has_value());
  EXPECT_EQ(e.payout, 0);
  EXPECT_EQ(e.refunded_after, 0);
  EXPECT_FALSE(e.clear_due);
}

TEST(CardNeedsReviewTest, BelowTheCapOrBelowWhatWasRefunded) {
  const Ore cap = Nok(3165);
  EXPECT_FALSE(CardNeedsReview(cap, cap, 0));
  EXPECT_TRUE(CardNeedsReview(cap - 1, cap, 0));
  EXPECT_FALSE(CardNeedsReview(cap + Nok(50), cap, Nok(50)));
  EXPECT_TRUE(CardNeedsReview(cap + Nok(49), cap, Nok(50)));
}

}  // namespace
}  // namespace frikort::core
