// The issuance job's refunds against the real register: the refund minimum
// (2019) and its absence (2024), co-payments after the card, over-refunds and
// corrections, and a random history checked against the refund rule.
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/issuance_fixture.h"

namespace frikort::jobs::testing {
namespace {

using ::testing::IsEmpty;

TEST_F(IssuanceTest, Refund2019MinimumCarriesUntil200Nok) {
  const std::string p = Person(5);
  Pay(p, Day(2019, 3, 1), 200000);
  Pay(p, Day(2019, 4, 1), 51900);  // total 2519 NOK: excess 150 NOK

  RunSummary first = RunJob(Day(2019, 4, 10));
  EXPECT_EQ(first.cards_issued, 1);
  EXPECT_EQ(first.payouts, 0);
  EXPECT_EQ(first.payout_total, 0);
  EXPECT_EQ(first.carried_forward, 15000);
  EXPECT_THAT(Payouts("", 2019), IsEmpty());
  storage::SchemeLedger l = Ledger(p, 2019, Scheme::kTak1);
  EXPECT_EQ(l.refunded, 0);
  EXPECT_EQ(l.outstanding, 15000);
  // A carried excess below the minimum is no work: no marker, nothing examined.
  EXPECT_EQ(DueCount(), 0u);
  EXPECT_EQ(RunJob(Day(2019, 4, 11)).ledgers_examined, 0);

  // 30 NOK more: 180 NOK, still below the minimum; still no work.
  Pay(p, Day(2019, 4, 20), 3000);
  EXPECT_EQ(DueCount(), 0u);
  RunSummary still = RunJob(Day(2019, 4, 25));
  EXPECT_EQ(still.payouts, 0);
  EXPECT_THAT(Payouts("", 2019), IsEmpty());

  // 70 NOK more: 250 NOK, at or above the minimum: all of it is paid, once.
  Pay(p, Day(2019, 5, 1), 7000);
  EXPECT_EQ(DueCount(), 1u);
  RunSummary paid = RunJob(Day(2019, 5, 5));
  EXPECT_EQ(paid.ledgers_examined, 1);
  EXPECT_EQ(paid.cards_issued, 0);
  EXPECT_EQ(paid.payouts, 1);
  EXPECT_EQ(paid.payout_total, 25000);
  EXPECT_EQ(paid.carried_forward, 0);
  std::vector<Payout> payouts = Payouts("", 2019);
  ASSERT_EQ(payouts.size(), 1u);
  EXPECT_EQ(payouts[0].amount, 25000);
  EXPECT_EQ(payouts[0].run_id, paid.run_id);
  EXPECT_EQ(payouts[0].scheme, Scheme::kTak1);
  EXPECT_EQ(Ledger(p, 2019, Scheme::kTak1).refunded, 25000);
  EXPECT_EQ(Ledger(p, 2019, Scheme::kTak1).outstanding, 0);
  // One card all along.
  EXPECT_EQ(Cards(2019).size(), 1u);
  EXPECT_EQ(RunJob(Day(2019, 5, 6)).ledgers_examined, 0);
  ExpectConsistent();
}

TEST_F(IssuanceTest, Refund2019ExactlyTheMinimumIsPaid) {
  const std::string p = Person(6);
  Pay(p, Day(2019, 3, 1), kTak1Cap2019 + kMinimum2019);
  RunSummary s = RunJob(Day(2019, 3, 5));
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(s.payout_total, kMinimum2019);
  EXPECT_EQ(s.carried_forward, 0);
}

TEST_F(IssuanceTest, Refund2019CarryStillBelowTheMinimumAtYearEndIsNeverPaid) {
  const std::string p = Person(15);
  Pay(p, Day(2019, 11, 1), kTak1Cap2019 + kMinimum2019 - 1);  // 199.99 NOK over
  RunSummary s = RunJob(Day(2019, 12, 31));
  EXPECT_EQ(s.cards_issued, 1);
  EXPECT_EQ(s.payouts, 0);
  EXPECT_EQ(s.carried_forward, kMinimum2019 - 1);
  RunSummary next_year = RunJob(Day(2020, 6, 1));
  EXPECT_EQ(next_year.ledgers_examined, 0);
  EXPECT_EQ(next_year.payouts, 0);
  EXPECT_THAT(Payouts("", 2019), IsEmpty());
  EXPECT_EQ(Ledger(p, 2019, Scheme::kTak1).refunded, 0);
}

TEST_F(IssuanceTest, Refund2024HasNoMinimumEveryOreIsPaid) {
  const std::string p = Person(7);
  Pay(p, Day(2024, 2, 1), 300000);
  Pay(p, Day(2024, 3, 1), 16501);  // one øre above the cap
  RunSummary s = RunJob(Day(2024, 3, 10));
  EXPECT_EQ(s.cards_issued, 1);
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(s.payout_total, 1);
  EXPECT_EQ(s.carried_forward, 0);
  std::vector<Payout> payouts = Payouts("", 2024);
  ASSERT_EQ(payouts.size(), 1u);
  EXPECT_EQ(payouts[0].amount, 1);
  EXPECT_EQ(payouts[0].person_id, p);
}

TEST_F(IssuanceTest, CoPaymentsAfterTheCardArePaidInTheNextRun) {
  const std::string p = Person(10);
  Pay(p, Day(2024, 3, 1), kCap2024);
  RunSummary first = RunJob(Day(2024, 3, 5));
  EXPECT_EQ(first.cards_issued, 1);
  EXPECT_EQ(first.payouts, 0);
  EXPECT_EQ(DueCount(), 0u);

  // The practitioner could not confirm the card and charged 50 NOK: the write
  // path marks the ledger due again.
  Pay(p, Day(2024, 3, 10), 5000);
  EXPECT_EQ(DueCount(), 1u);
  EXPECT_EQ(Status(p, Day(2024, 3, 10)).status, ExemptionStatus::kExempt);
  RunSummary second = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(second.ledgers_examined, 1);
  EXPECT_EQ(second.cards_issued, 0);
  EXPECT_EQ(second.payouts, 1);
  EXPECT_EQ(second.payout_total, 5000);

  Pay(p, Day(2024, 4, 2), 2500);
  RunSummary third = RunJob(Day(2024, 4, 10));
  EXPECT_EQ(third.payouts, 1);
  EXPECT_EQ(third.payout_total, 2500);

  std::vector<Payout> payouts = Payouts("", 2024);
  ASSERT_EQ(payouts.size(), 2u);
  std::map<std::string, Ore> by_run;
  for (const Payout& x : payouts) by_run[x.run_id] += x.amount;
  EXPECT_EQ(by_run[second.run_id], 5000);
  EXPECT_EQ(by_run[third.run_id], 2500);
  storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  EXPECT_EQ(l.refunded, 7500);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_EQ(l.card->basis_total, kCap2024);  // the card is not re-issued
  EXPECT_EQ(l.card->issued_on, Day(2024, 3, 5));
  EXPECT_EQ(Cards(2024).size(), 1u);
  ExpectConsistent();
}

TEST_F(IssuanceTest, InvoicedCoPaymentReportedPaidAfterTheCardIsRefunded) {
  const std::string p = Person(11);
  Pay(p, Day(2024, 3, 1), kCap2024);
  ASSERT_EQ(RunJob(Day(2024, 3, 5)).cards_issued, 1);
  // Invoiced and not paid: does not count, nothing to refund yet.
  core::CoPaymentInput unpaid = Input("inv", p, Day(2024, 3, 8), 4000);
  unpaid.payment = static_cast<int>(Payment::kInvoicedUnpaid);
  auto r = reg_->Submit({unpaid});
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE((*r)[0].counted);
  EXPECT_EQ(DueCount(), 0u);
  EXPECT_EQ(RunJob(Day(2024, 3, 10)).payouts, 0);
  // Reported paid: now it counts and is refunded by the next run.
  auto u = reg_->UpdatePayment(kProvider, "inv", static_cast<int>(Payment::kPaid));
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->counted);
  RunSummary s = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(s.payout_total, 4000);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).refunded, 4000);
}

TEST_F(IssuanceTest, LaterCoPaymentsFirstCoverAnOverRefund) {
  // Refunded 935 NOK; then a cancelled co-payment of 100 NOK leaves the total
  // above the cap but the person refunded 100 NOK too much. A later 60 NOK
  // co-payment is not paid out (the excess net of refunds is still negative);
  // 90 NOK more makes 50 NOK payable.
  const std::string p = Person(13);
  Pay(p, Day(2024, 3, 1), 200000, Category::kPhysician, "a");
  Pay(p, Day(2024, 4, 1), 200000, Category::kPhysician, "b");
  Pay(p, Day(2024, 4, 2), 10000, Category::kPhysician, "c");
  ASSERT_EQ(RunJob(Day(2024, 4, 10)).payout_total, 93500);
  ASSERT_EQ(reg_->Cancel(kProvider, "c", "double entry")->outcome, core::Outcome::kAccepted);
  Pay(p, Day(2024, 4, 20), 6000);
  EXPECT_EQ(RunJob(Day(2024, 4, 25)).payout_total, 0);
  Pay(p, Day(2024, 4, 21), 9000);
  RunSummary s = RunJob(Day(2024, 4, 26));
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(s.payout_total, 5000);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).refunded, 415000 - kCap2024);
}

// A cancellation after a payout that keeps the total at or above the cap but
// below cap + refunded leaves the person over-refunded: an operator must hear
// of it (the card goes under review), nothing is clawed back, and the
// register's invariants hold.
TEST_F(IssuanceTest, OverRefundByCancellationFlagsTheCard) {
  const std::string p = Person(14);
  Pay(p, Day(2024, 3, 1), 200000, Category::kPhysician, "a");
  Pay(p, Day(2024, 4, 1), 200000, Category::kPhysician, "b");
  Pay(p, Day(2024, 4, 2), 10000, Category::kPhysician, "c");
  ASSERT_EQ(RunJob(Day(2024, 4, 10)).payout_total, 93500);
  ASSERT_EQ(reg_->Cancel(kProvider, "c", "double entry")->outcome, core::Outcome::kAccepted);
  storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_TRUE(l.card->under_review);
  EXPECT_EQ(l.refunded, 93500);  // nothing clawed back
  EXPECT_EQ(Status(p, Day(2024, 6, 1)).status, ExemptionStatus::kExempt);
  EXPECT_EQ(RunJob(Day(2024, 5, 1)).payouts, 0);
  ExpectConsistent();
}

TEST_F(IssuanceTest, CancellationBelowTheCapFlagsTheCardAndKeepsItValid) {
  const std::string p = Person(70);
  Pay(p, Day(2024, 3, 1), 200000, Category::kPhysician, "a");
  Pay(p, Day(2024, 4, 1), 200000, Category::kPhysician, "b");
  Pay(p, Day(2024, 4, 2), 10000, Category::kPhysician, "c");
  RunSummary first = RunJob(Day(2024, 4, 10));
  ASSERT_EQ(first.cards_issued, 1);
  ASSERT_EQ(first.payout_total, 410000 - kCap2024);

  // A cancellation that keeps the total above the cap plus what was refunded
  // flags nothing.
  Pay(p, Day(2024, 4, 5), 20000, Category::kPhysician, "d");
  ASSERT_EQ(reg_->Cancel(kProvider, "c", "double entry")->outcome, core::Outcome::kAccepted);
  EXPECT_FALSE(Ledger(p, 2024, Scheme::kTak).card->under_review);
  EXPECT_FALSE(Cards(2024)[0].under_review);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).outstanding, 10000);

  // One that takes it below the cap flags the card; nothing is revoked.
  ASSERT_EQ(reg_->Cancel(kProvider, "b", "wrong patient")->outcome, core::Outcome::kAccepted);
  storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_TRUE(l.card->under_review);
  EXPECT_EQ(l.card->valid_from, Day(2024, 4, 1));
  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_TRUE(cards[0].under_review);
  EXPECT_EQ(Cards(2024, Day(2024, 4, 10)).size(), 1u);
  storage::SchemeExemption x = Status(p, Day(2024, 6, 1));
  EXPECT_EQ(x.status, ExemptionStatus::kExempt);
  EXPECT_EQ(x.valid_from, Day(2024, 4, 1));

  // The next runs do nothing for it: no second card, no clawback, no payout.
  RunSummary next = RunJob(Day(2024, 5, 1));
  EXPECT_EQ(next.cards_issued, 0);
  EXPECT_EQ(next.payouts, 0);
  EXPECT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(Status(p, Day(2024, 6, 1)).status, ExemptionStatus::kExempt);
  ExpectConsistent();
}

// A seeded random history of reports (out of order, late), payment updates,
// cancellations and runs on random decision dates, for 2019 (two caps, 200 NOK
// minimum) and 2024 (one cap, no minimum). After a final run past every
// crossing, each ledger obeys the refund rule against an independent model.
TEST_F(IssuanceTest, RandomHistoryFollowsTheRefundRule) {
  struct Rep {
    std::string id, person;
    int year;
    Scheme scheme;
    Day day;
    Ore amount;
    bool counted;
  };
  std::mt19937 rng(20240601);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int kPeople = 12;
  std::vector<Rep> reps;
  std::vector<RunSummary> runs;
  int64_t cards_issued = 0;
  for (int step = 0; step < 260; ++step) {
    const int op = uniform(0, 99);
    if (op < 70 || reps.empty()) {
      Rep r;
      r.id = absl::StrCat("h", step);
      r.person = Person(2000 + uniform(0, kPeople - 1));
      r.year = uniform(0, 1) ? 2024 : 2019;
      const Category cat = uniform(0, 3) == 0 ? Category::kDental : Category::kPhysician;
      r.scheme = r.year == 2024 ? Scheme::kTak
                                : (cat == Category::kDental ? Scheme::kTak2 : Scheme::kTak1);
      r.day = Day(r.year, uniform(1, 12), uniform(1, 28));
      r.amount = uniform(1, 4) == 1 ? uniform(1, 999) : uniform(10000, 90000);
      core::CoPaymentInput in = Input(r.id, r.person, r.day, r.amount, cat);
      r.counted = uniform(0, 5) != 0;
      if (!r.counted) in.payment = static_cast<int>(Payment::kInvoicedUnpaid);
      auto res = reg_->Submit({in});
      ASSERT_TRUE(res.ok());
      ASSERT_EQ((*res)[0].outcome, core::Outcome::kAccepted) << (*res)[0].message;
      ASSERT_EQ((*res)[0].counted, r.counted);
      reps.push_back(r);
    } else if (op < 80) {
      Rep& r = reps[uniform(0, static_cast<int>(reps.size()) - 1)];
      auto u = reg_->UpdatePayment(kProvider, r.id, static_cast<int>(Payment::kPaid));
      ASSERT_TRUE(u.ok());
      if (u->outcome == core::Outcome::kAccepted) r.counted = true;
    } else if (op < 85) {
      Rep& r = reps[uniform(0, static_cast<int>(reps.size()) - 1)];
      auto c = reg_->Cancel(kProvider, r.id, "random");
      ASSERT_TRUE(c.ok());
      if (c->outcome == core::Outcome::kAccepted) {
        r.counted = false;
        r.amount = 0;  // gone from every total
      }
    } else {
      const int year = uniform(0, 1) ? 2024 : 2019;
      runs.push_back(RunJob(Day(year, uniform(1, 12), uniform(1, 28))));
      cards_issued += runs.back().cards_issued;
    }
  }
  RunSummary last = RunJob(Day(2024, 12, 31));
  cards_issued += last.cards_issued;
  EXPECT_EQ(RunJob(Day(2024, 12, 31)).ledgers_examined, 0);
  EXPECT_EQ(DueCount(), 0u);

  // The model: totals and crossing dates from the reports.
  struct Key {
    std::string person;
    int year;
    Scheme scheme;
    bool operator<(const Key& o) const {
      return std::tie(person, year, scheme) < std::tie(o.person, o.year, o.scheme);
    }
  };
  std::map<Key, std::vector<const Rep*>> ledgers;
  for (const Rep& r : reps) ledgers[{r.person, r.year, r.scheme}].push_back(&r);
  std::map<Key, Ore> paid;
  for (int year : {2019, 2024}) {
    for (const Payout& p : Payouts("", year, 7)) paid[{p.person_id, p.year, p.scheme}] += p.amount;
  }
  int64_t cards = 0;
  for (auto& [key, items] : ledgers) {
    SCOPED_TRACE(absl::StrCat(key.person, " ", key.year, " ", static_cast<int>(key.scheme)));
    std::stable_sort(items.begin(), items.end(),
                     [](const Rep* a, const Rep* b) { return a->day < b->day; });
    const Ore cap = *rules_.Cap(key.year, key.scheme);
    const Ore minimum = rules_.ForYear(key.year)->refund_minimum;
    Ore total = 0;
    std::optional<Day> crossing;
    for (const Rep* r : items) {
      if (!r->counted) continue;
      total += r->amount;
      if (!crossing && total >= cap) crossing = r->day;
    }
    storage::SchemeLedger l = Ledger(key.person, key.year, key.scheme);
    EXPECT_EQ(l.counted_total, total);
    EXPECT_EQ(l.cap_reached_on, crossing);
    EXPECT_EQ(l.refunded, paid[key]);
    if (l.card) ++cards;
    if (crossing) {
      ASSERT_TRUE(l.card.has_value());
      // (Its valid_from is the crossing as it was at issuance: later facts may
      // have moved the crossing since.)
      EXPECT_EQ(l.card->valid_from.year(), key.year);
      EXPECT_EQ(l.card->valid_to, Day(key.year, 12, 31));
      EXPECT_LE(l.card->valid_from, l.card->issued_on);  // never issued ahead of the cap
      if (!l.card->under_review) {
        const Ore net = total - cap - l.refunded;
        if (minimum == 0) {
          EXPECT_LE(net, 0);
        } else {
          EXPECT_LT(net, minimum);
        }
      }
    } else if (l.card) {
      EXPECT_TRUE(l.card->under_review);  // fell below the cap after issuance
    } else {
      EXPECT_EQ(l.refunded, 0);
    }
  }
  EXPECT_EQ(cards, cards_issued);
  EXPECT_EQ(cards, static_cast<int64_t>(Cards(2019).size() + Cards(2024).size()));
  // The register's own invariants hold too.
  ExpectConsistent();
}

}  // namespace
}  // namespace frikort::jobs::testing
