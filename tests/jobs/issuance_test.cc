// The issuance job against the real register: cards, refunds with and without
// the refund minimum, the deadline count, idempotence, dry runs, corrections,
// reservations, two-cap years and the listings.
#include "jobs/issuance.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "tests/jobs/job_fixture.h"

namespace frikort::jobs::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr Ore kCap2024 = 316500;      // 3165 NOK, one cap
constexpr Ore kTak1Cap2019 = 236900;  // 2369 NOK
constexpr Ore kTak2Cap2019 = 208500;  // 2085 NOK
constexpr Ore kMinimum2019 = 20000;   // 200 NOK

using Day = absl::CivilDay;

class IssuanceTest : public JobTest {};

TEST_F(IssuanceTest, CardStartsAtTheCrossingInServiceTimeOrder) {
  const std::string p = Person(1);
  // Reported out of service order: in arrival order the cap would be crossed
  // by the 5 March report; in service-time order it is crossed on 20 April.
  Pay(p, Day(2024, 4, 20), 100000);
  Pay(p, Day(2024, 2, 10), 100000);
  Pay(p, Day(2024, 3, 5), 150000);

  // Before the run: CAP_REACHED from the crossing date, nothing before it.
  storage::SchemeExemption before = Status(p, Day(2024, 4, 25));
  EXPECT_EQ(before.status, ExemptionStatus::kCapReached);
  EXPECT_EQ(before.valid_from, Day(2024, 4, 20));
  EXPECT_EQ(Status(p, Day(2024, 4, 19)).status, ExemptionStatus::kNotExempt);
  EXPECT_THAT(Cards(2024), IsEmpty());

  const RunSummary s = RunJob(Day(2024, 5, 2));
  EXPECT_FALSE(s.dry_run);
  EXPECT_EQ(s.as_of, Day(2024, 5, 2));
  EXPECT_THAT(s.run_id, ::testing::StartsWith("run-"));
  EXPECT_EQ(s.ledgers_examined, 1);
  EXPECT_EQ(s.cards_issued, 1);
  EXPECT_EQ(s.cards_past_deadline, 0);
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(s.payout_total, 350000 - kCap2024);
  EXPECT_EQ(s.carried_forward, 0);

  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  const Card& c = cards[0];
  EXPECT_EQ(c.person_id, p);
  EXPECT_EQ(c.year, 2024);
  EXPECT_EQ(c.scheme, Scheme::kTak);
  EXPECT_EQ(c.valid_from, Day(2024, 4, 20));
  EXPECT_EQ(c.valid_to, Day(2024, 12, 31));
  EXPECT_EQ(c.issued_on, Day(2024, 5, 2));
  EXPECT_EQ(c.basis_total, 350000);
  EXPECT_FALSE(c.under_review);
  // The ledger holds the same card.
  storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_EQ(l.card->valid_from, Day(2024, 4, 20));
  EXPECT_EQ(l.card->issued_on, Day(2024, 5, 2));
  EXPECT_EQ(l.refunded, 350000 - kCap2024);
  EXPECT_EQ(l.outstanding, 0);

  // After the run: EXEMPT from valid_from to 31 December, not the day before.
  storage::SchemeExemption on = Status(p, Day(2024, 4, 20));
  EXPECT_EQ(on.status, ExemptionStatus::kExempt);
  EXPECT_EQ(on.valid_from, Day(2024, 4, 20));
  EXPECT_EQ(on.valid_to, Day(2024, 12, 31));
  EXPECT_EQ(Status(p, Day(2024, 12, 31)).status, ExemptionStatus::kExempt);
  EXPECT_EQ(Status(p, Day(2024, 4, 19)).status, ExemptionStatus::kNotExempt);

  std::vector<Payout> payouts = Payouts(s.run_id, 0);
  ASSERT_EQ(payouts.size(), 1u);
  EXPECT_EQ(payouts[0].person_id, p);
  EXPECT_EQ(payouts[0].amount, 350000 - kCap2024);
  EXPECT_EQ(payouts[0].run_id, s.run_id);
  EXPECT_EQ(payouts[0].created_on, Day(2024, 5, 2));
  EXPECT_EQ(payouts[0].year, 2024);
  EXPECT_EQ(payouts[0].scheme, Scheme::kTak);
  EXPECT_EQ(DueCount(), 0u);
  ExpectConsistent();
}

TEST_F(IssuanceTest, CapReachedAfterAsOfWaitsForALaterRun) {
  const std::string p = Person(2);
  Pay(p, Day(2024, 3, 1), 200000);
  Pay(p, Day(2024, 6, 1), 200000);  // crossing on 1 June

  RunSummary early = RunJob(Day(2024, 5, 15));
  EXPECT_EQ(early.ledgers_examined, 1);
  EXPECT_EQ(early.cards_issued, 0);
  EXPECT_EQ(early.payouts, 0);
  EXPECT_EQ(early.payout_total, 0);
  EXPECT_THAT(Cards(2024), IsEmpty());
  EXPECT_THAT(Payouts("", 2024), IsEmpty());
  EXPECT_EQ(DueCount(), 1u);  // the marker stays for the run that may act
  EXPECT_FALSE(Ledger(p, 2024, Scheme::kTak).card.has_value());

  // Still not due on the day before the crossing.
  EXPECT_EQ(RunJob(Day(2024, 5, 31)).cards_issued, 0);
  EXPECT_EQ(DueCount(), 1u);

  RunSummary later = RunJob(Day(2024, 6, 5));
  EXPECT_EQ(later.ledgers_examined, 1);
  EXPECT_EQ(later.cards_issued, 1);
  EXPECT_EQ(later.payout_total, 400000 - kCap2024);
  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].valid_from, Day(2024, 6, 1));
  EXPECT_EQ(cards[0].issued_on, Day(2024, 6, 5));
  EXPECT_EQ(DueCount(), 0u);
  ExpectConsistent();
}

TEST_F(IssuanceTest, CrossingOnTheDecisionDateIsIssued) {
  const std::string p = Person(3);
  Pay(p, Day(2024, 6, 1), kCap2024);
  RunSummary s = RunJob(Day(2024, 6, 1));
  EXPECT_EQ(s.cards_issued, 1);
  ASSERT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(Cards(2024)[0].valid_from, Day(2024, 6, 1));
}

TEST_F(IssuanceTest, LateReportBeforeIssuanceMovesTheCardsStart) {
  const std::string p = Person(4);
  Pay(p, Day(2024, 3, 1), 200000);
  Pay(p, Day(2024, 5, 1), 200000);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).cap_reached_on, Day(2024, 5, 1));
  EXPECT_EQ(Status(p, Day(2024, 4, 15)).status, ExemptionStatus::kNotExempt);

  // A late report of an April service: the cap was in fact reached on 1 April.
  Pay(p, Day(2024, 4, 1), 150000);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).cap_reached_on, Day(2024, 4, 1));

  RunSummary s = RunJob(Day(2024, 5, 10));
  EXPECT_EQ(s.cards_issued, 1);
  // 39 days after the (moved) crossing date: a broken promise, counted.
  EXPECT_EQ(s.cards_past_deadline, 1);
  EXPECT_EQ(s.payout_total, 550000 - kCap2024);
  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].valid_from, Day(2024, 4, 1));
  EXPECT_EQ(cards[0].basis_total, 550000);
  EXPECT_EQ(Status(p, Day(2024, 4, 1)).status, ExemptionStatus::kExempt);
  EXPECT_EQ(Status(p, Day(2024, 3, 31)).status, ExemptionStatus::kNotExempt);
  ExpectConsistent();
}

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

TEST_F(IssuanceTest, CapReachedExactlyGivesACardAndNoPayout) {
  const std::string a = Person(8);
  const std::string b = Person(9);
  Pay(a, Day(2024, 2, 1), 300000);
  Pay(a, Day(2024, 3, 1), 16500);         // exactly 3165 NOK
  Pay(b, Day(2019, 3, 1), kTak1Cap2019);  // exactly 2369 NOK in 2019
  RunSummary s = RunJob(Day(2024, 3, 10));
  EXPECT_EQ(s.ledgers_examined, 2);
  EXPECT_EQ(s.cards_issued, 2);
  EXPECT_EQ(s.payouts, 0);
  EXPECT_EQ(s.payout_total, 0);
  EXPECT_EQ(s.carried_forward, 0);
  EXPECT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(Cards(2019).size(), 1u);
  EXPECT_THAT(Payouts(s.run_id, 0), IsEmpty());
  EXPECT_EQ(Cards(2024)[0].valid_from, Day(2024, 3, 1));
  EXPECT_EQ(DueCount(), 0u);
  ExpectConsistent();
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

TEST_F(IssuanceTest, MedicineAttributedToNextYearWaitsForFirstOfJanuary) {
  // Medicine handed out on 20 December 2024 for a stay abroad, attributed to
  // 2025, fills the 2025 cap: the crossing is 1 January 2025.
  const std::string p = Person(12);
  core::CoPaymentInput in = Input("abroad", p, Day(2024, 12, 20), 330000, Category::kPrescription);
  in.attributed_year = 2025;
  auto r = reg_->Submit({in});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)[0].outcome, core::Outcome::kAccepted) << (*r)[0].message;
  ASSERT_EQ((*r)[0].year, 2025);
  EXPECT_EQ(Ledger(p, 2025, Scheme::kTak).cap_reached_on, Day(2025, 1, 1));

  RunSummary december = RunJob(Day(2024, 12, 28));
  EXPECT_EQ(december.ledgers_examined, 1);
  EXPECT_EQ(december.cards_issued, 0);
  EXPECT_EQ(december.payouts, 0);
  EXPECT_EQ(DueCount(), 1u);
  RunSummary january = RunJob(Day(2025, 1, 2));
  EXPECT_EQ(january.cards_issued, 1);
  EXPECT_EQ(january.cards_past_deadline, 0);
  EXPECT_EQ(january.payout_total, 330000 - 327800);  // 2025 cap 3278 NOK
  std::vector<Card> cards = Cards(2025);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].valid_from, Day(2025, 1, 1));
  EXPECT_EQ(cards[0].valid_to, Day(2025, 12, 31));
  EXPECT_THAT(Cards(2024), IsEmpty());
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

TEST_F(IssuanceTest, RepeatedRunIssuesAndPaysNothingNew) {
  for (int i = 0; i < 5; ++i) Pay(Person(20 + i), Day(2024, 2, 1 + i), kCap2024 + 1000 * i);
  Pay(Person(30), Day(2019, 6, 1), kTak1Cap2019 + 5000);  // carried, 50 NOK
  RunSummary first = RunJob(Day(2024, 3, 1));
  EXPECT_EQ(first.ledgers_examined, 6);
  EXPECT_EQ(first.cards_issued, 6);
  EXPECT_EQ(first.payouts, 4);
  EXPECT_EQ(first.payout_total, 1000 + 2000 + 3000 + 4000);
  EXPECT_EQ(first.carried_forward, 5000);

  RunSummary again = RunJob(Day(2024, 3, 1));
  EXPECT_NE(again.run_id, first.run_id);
  EXPECT_EQ(again.ledgers_examined, 0);
  EXPECT_EQ(again.cards_issued, 0);
  EXPECT_EQ(again.payouts, 0);
  EXPECT_EQ(again.payout_total, 0);
  EXPECT_EQ(again.carried_forward, 0);
  EXPECT_EQ(Cards(2024).size(), 5u);
  EXPECT_EQ(Cards(2019).size(), 1u);
  EXPECT_EQ(Payouts("", 2024).size(), 4u);
  EXPECT_THAT(Payouts(again.run_id, 0), IsEmpty());
  // A later decision date changes nothing either.
  EXPECT_EQ(RunJob(Day(2024, 12, 31)).ledgers_examined, 0);
  ExpectConsistent();
}

TEST_F(IssuanceTest, DryRunComputesTheSameSummaryAndWritesNothing) {
  const Day as_of(2024, 6, 30);
  const std::string a = Person(40), b = Person(41), c = Person(42), d = Person(43);
  const std::string e = Person(44);
  // e's card comes first, then extra co-payments and a reservation: e's ledger
  // is not the job's business while reserved.
  Pay(e, Day(2024, 1, 15), kCap2024 + 700);
  ASSERT_EQ(RunJob(Day(2024, 1, 20)).cards_issued, 1);
  Pay(e, Day(2024, 2, 1), 800);
  ASSERT_TRUE(reg_->SetReservation(e, true).ok());
  Pay(a, Day(2024, 6, 20), kCap2024 + 12345);    // card + payout
  Pay(b, Day(2019, 5, 1), kTak1Cap2019 + 9900);  // card, 99 NOK carried
  Pay(c, Day(2024, 5, 1), kCap2024);             // card, past the deadline
  Pay(d, Day(2024, 7, 15), kCap2024 + 500);      // crossing after as_of: waits
  const size_t due_before = DueCount();
  ASSERT_EQ(due_before, 4u);
  ASSERT_EQ(Payouts("", 2024).size(), 1u);  // e's, from the first run

  int observed = 0;
  job_->set_observer([&](const RunSummary&) { ++observed; });
  RunSummary dry = RunJob(as_of, /*dry_run=*/true);
  EXPECT_TRUE(dry.dry_run);
  EXPECT_EQ(observed, 0);  // dry runs are not reported as runs
  EXPECT_EQ(dry.ledgers_examined, 4);
  EXPECT_EQ(dry.cards_issued, 3);
  EXPECT_EQ(dry.payouts, 1);
  EXPECT_EQ(dry.payout_total, 12345);
  EXPECT_EQ(dry.carried_forward, 9900);
  EXPECT_EQ(dry.cards_past_deadline, 2);  // c (60 days) and b (2019)
  // Nothing written: no cards, no payouts, markers and ledgers as they were.
  EXPECT_EQ(Cards(2024).size(), 1u);  // e's, from before
  EXPECT_THAT(Cards(2019), IsEmpty());
  EXPECT_EQ(Payouts("", 2024).size(), 1u);
  EXPECT_THAT(Payouts("", 2019), IsEmpty());
  EXPECT_EQ(DueCount(), due_before);
  EXPECT_FALSE(Ledger(a, 2024, Scheme::kTak).card.has_value());
  EXPECT_EQ(Ledger(a, 2024, Scheme::kTak).refunded, 0);
  EXPECT_EQ(Status(a, Day(2024, 6, 25)).status, ExemptionStatus::kCapReached);
  // A dry run twice gives the same answer (it decided nothing).
  ExpectSameCounts(RunJob(as_of, true), dry);

  RunSummary real = RunJob(as_of);
  EXPECT_FALSE(real.dry_run);
  EXPECT_EQ(observed, 1);
  ExpectSameCounts(real, dry);
  EXPECT_EQ(Cards(2024).size(), 3u);
  EXPECT_EQ(Cards(2019).size(), 1u);
  EXPECT_EQ(Payouts(real.run_id, 0).size(), 1u);
  EXPECT_EQ(DueCount(), 1u);  // d waits for its crossing date
  ExpectConsistent();
}

TEST_F(IssuanceTest, CardsPastDeadlineCountsMoreThan21Days) {
  const Day as_of(2024, 6, 30);
  Pay(Person(50), as_of, kCap2024);                  // 0 days
  Pay(Person(51), as_of - 21, kCap2024);             // exactly 21 days: in time
  Pay(Person(52), as_of - 22, kCap2024);             // 22 days: late
  Pay(Person(53), Day(2024, 1, 2), kCap2024 + 100);  // months late
  RunSummary seen;
  job_->set_observer([&](const RunSummary& s) { seen = s; });
  RunSummary s = RunJob(as_of);
  EXPECT_EQ(s.cards_issued, 4);
  EXPECT_EQ(s.cards_past_deadline, 2);
  // The observer (logging and metrics) hears the same summary.
  EXPECT_EQ(seen.run_id, s.run_id);
  EXPECT_EQ(seen.cards_past_deadline, 2);
  // Only issuing a card can break the promise: a payout-only run cannot.
  Pay(Person(53), Day(2024, 7, 1), 100);
  RunSummary later = RunJob(Day(2024, 12, 1));
  EXPECT_EQ(later.payouts, 1);
  EXPECT_EQ(later.cards_past_deadline, 0);
}

TEST_F(IssuanceTest, LedgersExaminedGrowsWithDueLedgersNotPopulation) {
  std::vector<core::CoPaymentInput> below;
  for (int i = 0; i < 300; ++i) {
    below.push_back(Input(absl::StrCat("pop", i), Person(1000 + i), Day(2024, 3, 1), 100000));
  }
  auto r = reg_->Submit(std::move(below));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& x : *r) ASSERT_EQ(x.outcome, core::Outcome::kAccepted) << x.message;
  Pay(Person(60), Day(2024, 3, 2), kCap2024);
  Pay(Person(61), Day(2024, 3, 3), kCap2024 + 100);
  RunSummary s = RunJob(Day(2024, 3, 10));
  EXPECT_EQ(s.ledgers_examined, 2);
  EXPECT_EQ(s.cards_issued, 2);
  EXPECT_EQ(s.payouts, 1);
  EXPECT_EQ(RunJob(Day(2024, 3, 11)).ledgers_examined, 0);
  // A third person crossing: exactly one more examined.
  Pay(Person(1000), Day(2024, 3, 4), kCap2024);
  EXPECT_EQ(RunJob(Day(2024, 3, 12)).ledgers_examined, 1);
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

TEST_F(IssuanceTest, ReservedPersonGetsNoCardUntilTheReservationIsWithdrawn) {
  const std::string p = Person(80);
  const std::string q = Person(81);
  Pay(p, Day(2024, 3, 1), kCap2024 + 2000);
  Pay(q, Day(2024, 3, 1), kCap2024 + 3000);
  ASSERT_TRUE(reg_->SetReservation(p, true).ok());

  RunSummary s = RunJob(Day(2024, 3, 10));
  EXPECT_EQ(s.cards_issued, 1);  // q only
  EXPECT_EQ(s.payout_total, 3000);
  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].person_id, q);
  EXPECT_FALSE(Ledger(p, 2024, Scheme::kTak).card.has_value());
  EXPECT_EQ(Status(p, Day(2024, 3, 5)).status, ExemptionStatus::kNotExempt);

  ASSERT_TRUE(reg_->SetReservation(p, false).ok());
  RunSummary after = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(after.ledgers_examined, 1);
  EXPECT_EQ(after.cards_issued, 1);
  EXPECT_EQ(after.payout_total, 2000);
  storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_EQ(l.card->valid_from, Day(2024, 3, 1));
  EXPECT_EQ(l.card->issued_on, Day(2024, 3, 20));
  EXPECT_EQ(Status(p, Day(2024, 3, 5)).status, ExemptionStatus::kExempt);
  ExpectConsistent();
}

TEST_F(IssuanceTest, ReservationQueuedBeforeAChunkKeepsTheLedgerOutOfIt) {
  // The run has started; the person opts out before the writer reaches the
  // chunk that would have taken their ledger.
  const std::string p = Person(82);
  Pay(p, Day(2024, 3, 1), kCap2024 + 2000);
  DelegatingRegister hooked(reg_.get());
  BeforeEveryChunk(hooked, [&] { ASSERT_TRUE(reg_->SetReservation(p, true).ok()); });
  IssuanceJob job(&hooked, &clock_);
  auto s = job.Run(Day(2024, 3, 10), false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ledgers_examined, 0);
  EXPECT_EQ(s->cards_issued, 0);
  EXPECT_EQ(s->payouts, 0);
  EXPECT_THAT(Cards(2024), IsEmpty());
  EXPECT_EQ(DueCount(), 0u);
  ExpectConsistent();

  ASSERT_TRUE(reg_->SetReservation(p, false).ok());
  RunSummary after = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(after.cards_issued, 1);
  EXPECT_EQ(after.payout_total, 2000);
}

TEST_F(IssuanceTest, ReservationBetweenChunksTakesOutALedgerAheadOfTheCursor) {
  // Two due people, one ledger per chunk. Before the second chunk is queued
  // both opt out: the one decided by the first chunk keeps its card, the one
  // still ahead of the cursor is not taken by this run.
  const std::string p = Person(83), q = Person(84);
  Pay(p, Day(2024, 3, 1), kCap2024 + 2000);
  Pay(q, Day(2024, 3, 1), kCap2024 + 3000);
  const auto both_opt_out = [&] {
    ASSERT_TRUE(reg_->SetReservation(p, true).ok());
    ASSERT_TRUE(reg_->SetReservation(q, true).ok());
  };
  DelegatingRegister hooked(reg_.get());
  BeforeChunk(hooked, 1, both_opt_out);
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(1);
  auto s = job.Run(Day(2024, 3, 10), false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ledgers_examined, 1);
  EXPECT_EQ(s->cards_issued, 1);
  EXPECT_EQ(s->payouts, 1);
  ASSERT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(DueCount(), 0u);
  ExpectConsistent();
  // Withdrawn, the one left out is due again and decided by the next run.
  ASSERT_TRUE(reg_->SetReservation(p, false).ok());
  ASSERT_TRUE(reg_->SetReservation(q, false).ok());
  RunSummary after = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(after.cards_issued, 1);
  EXPECT_EQ(after.payout_total + s->payout_total, 5000);
  EXPECT_EQ(Cards(2024).size(), 2u);
}

TEST_F(IssuanceTest, TwoCapYearSchemesAreIndependent) {
  const std::string p = Person(90);
  // Tak 1 (physician, patient travel) reaches 2369 NOK on 10 May, 300 NOK over.
  Pay(p, Day(2019, 2, 1), 150000, Category::kPhysician);
  Pay(p, Day(2019, 5, 10), 116900, Category::kPatientTravel);
  // Tak 2 (dental, physiotherapy) stays below 2085 NOK for now.
  Pay(p, Day(2019, 3, 1), 150000, Category::kDental);
  Pay(p, Day(2019, 4, 1), 50000, Category::kPhysiotherapy);

  RunSummary first = RunJob(Day(2019, 5, 20));
  EXPECT_EQ(first.ledgers_examined, 1);
  EXPECT_EQ(first.cards_issued, 1);
  EXPECT_EQ(first.payout_total, 30000);
  storage::SchemeLedger t1 = Ledger(p, 2019, Scheme::kTak1);
  storage::SchemeLedger t2 = Ledger(p, 2019, Scheme::kTak2);
  ASSERT_TRUE(t1.card.has_value());
  EXPECT_EQ(t1.card->valid_from, Day(2019, 5, 10));
  EXPECT_FALSE(t2.card.has_value());
  EXPECT_EQ(Status(p, Day(2019, 6, 1), Category::kLaboratory).status, ExemptionStatus::kExempt);
  EXPECT_EQ(Status(p, Day(2019, 6, 1), Category::kDental).status, ExemptionStatus::kNotExempt);

  // Tak 2 crosses on 1 June, 100 NOK over: its own card; the excess is carried
  // (below the 2019 minimum), tak 1 is untouched.
  Pay(p, Day(2019, 6, 1), 18500, Category::kRehabilitation);
  RunSummary second = RunJob(Day(2019, 6, 10));
  EXPECT_EQ(second.ledgers_examined, 1);
  EXPECT_EQ(second.cards_issued, 1);
  EXPECT_EQ(second.payouts, 0);
  EXPECT_EQ(second.carried_forward, 10000);
  t1 = Ledger(p, 2019, Scheme::kTak1);
  t2 = Ledger(p, 2019, Scheme::kTak2);
  ASSERT_TRUE(t2.card.has_value());
  EXPECT_EQ(t2.card->valid_from, Day(2019, 6, 1));
  EXPECT_EQ(t2.card->basis_total, kTak2Cap2019 + 10000);
  EXPECT_EQ(t1.card->issued_on, Day(2019, 5, 20));
  EXPECT_EQ(t1.refunded, 30000);
  EXPECT_EQ(t2.refunded, 0);
  EXPECT_EQ(Status(p, Day(2019, 6, 1), Category::kDental).status, ExemptionStatus::kExempt);
  EXPECT_EQ(Status(p, Day(2019, 5, 31), Category::kDental).status, ExemptionStatus::kNotExempt);

  std::vector<Card> cards = Cards(2019);
  ASSERT_EQ(cards.size(), 2u);
  std::set<Scheme> schemes;
  for (const Card& c : cards) schemes.insert(c.scheme);
  EXPECT_EQ(schemes, (std::set<Scheme>{Scheme::kTak1, Scheme::kTak2}));
  std::vector<Payout> payouts = Payouts("", 2019);
  ASSERT_EQ(payouts.size(), 1u);
  EXPECT_EQ(payouts[0].scheme, Scheme::kTak1);
  EXPECT_EQ(payouts[0].amount, 30000);

  // More dental after the tak 2 card: 100 + 150 NOK = 250 NOK, paid in tak 2.
  Pay(p, Day(2019, 7, 1), 15000, Category::kDental);
  RunSummary third = RunJob(Day(2019, 7, 5));
  EXPECT_EQ(third.ledgers_examined, 1);
  EXPECT_EQ(third.payout_total, 25000);
  std::vector<Payout> run3 = Payouts(third.run_id, 2019);
  ASSERT_EQ(run3.size(), 1u);
  EXPECT_EQ(run3[0].scheme, Scheme::kTak2);
  EXPECT_EQ(Ledger(p, 2019, Scheme::kTak1).refunded, 30000);
  ExpectConsistent();
}

TEST_F(IssuanceTest, ListFreeCardsByYearAndIssueDateWithPaging) {
  for (int i = 0; i < 7; ++i) Pay(Person(100 + i), Day(2024, 4, 1), kCap2024);
  Pay(Person(120), Day(2023, 5, 1), 304000);  // 2023 cap, another year
  ASSERT_EQ(RunJob(Day(2024, 5, 1)).cards_issued, 8);
  for (int i = 0; i < 5; ++i) Pay(Person(200 + i), Day(2024, 5, 20), kCap2024);
  ASSERT_EQ(RunJob(Day(2024, 6, 1)).cards_issued, 5);

  std::set<std::string> all;
  for (const Card& c : Cards(2024, std::nullopt, 3)) {
    EXPECT_EQ(c.year, 2024);
    EXPECT_TRUE(all.insert(c.person_id).second) << "listed twice";
  }
  EXPECT_EQ(all.size(), 12u);
  std::vector<Card> may = Cards(2024, Day(2024, 5, 1), 2);
  EXPECT_EQ(may.size(), 7u);
  for (const Card& c : may) EXPECT_EQ(c.issued_on, Day(2024, 5, 1));
  std::vector<Card> june = Cards(2024, Day(2024, 6, 1), 100);
  EXPECT_EQ(june.size(), 5u);
  EXPECT_THAT(Cards(2024, Day(2024, 5, 2)), IsEmpty());
  std::vector<Card> y2023 = Cards(2023);
  ASSERT_EQ(y2023.size(), 1u);
  EXPECT_EQ(y2023[0].person_id, Person(120));
  EXPECT_EQ(y2023[0].issued_on, Day(2024, 5, 1));

  // Pages are full until the last one.
  auto p1 = reg_->ListFreeCards(2024, std::nullopt, 5, "");
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->items.size(), 5u);
  EXPECT_FALSE(p1->next_page_token.empty());
  // A token of one listing is refused by another; garbage is refused.
  auto other = reg_->ListFreeCards(2023, std::nullopt, 5, p1->next_page_token);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = reg_->ListFreeCards(2024, std::nullopt, 5, "not a token");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IssuanceTest, CardPageTokensStayValidWhileCardsAreAdded) {
  for (int i = 0; i < 6; ++i) Pay(Person(300 + i), Day(2024, 4, 1), kCap2024);
  ASSERT_EQ(RunJob(Day(2024, 5, 1)).cards_issued, 6);
  std::set<std::string> existing;
  for (const Card& c : Cards(2024)) existing.insert(c.person_id);

  auto page = reg_->ListFreeCards(2024, std::nullopt, 2, "");
  ASSERT_TRUE(page.ok());
  std::vector<std::string> seen;
  for (const Card& c : page->items) seen.push_back(c.person_id);
  // Between pages: more cards on the same issue date (anywhere in key order)
  // and on a later one.
  for (int i = 0; i < 4; ++i) Pay(Person(400 + i), Day(2024, 4, 2), kCap2024);
  ASSERT_EQ(RunJob(Day(2024, 5, 1)).cards_issued, 4);
  Pay(Person(410), Day(2024, 6, 1), kCap2024);
  ASSERT_EQ(RunJob(Day(2024, 6, 2)).cards_issued, 1);

  std::string token = page->next_page_token;
  while (!token.empty()) {
    auto next = reg_->ListFreeCards(2024, std::nullopt, 2, token);
    ASSERT_TRUE(next.ok()) << next.status();
    for (const Card& c : next->items) seen.push_back(c.person_id);
    token = next->next_page_token;
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a card was listed twice";
  for (const std::string& p : existing) EXPECT_EQ(unique.count(p), 1u) << "a card was skipped";
  // The card issued on a later date sorts after every page already read.
  EXPECT_EQ(unique.count(Person(410)), 1u);
}

TEST_F(IssuanceTest, ListPayoutsByRunAndYearWithPaging) {
  std::map<std::string, Ore> expected_run1;
  for (int i = 0; i < 4; ++i) {
    Pay(Person(500 + i), Day(2024, 3, 1), kCap2024 + 100 * (i + 1));
    expected_run1[Person(500 + i)] = 100 * (i + 1);
  }
  for (int i = 0; i < 2; ++i) {
    Pay(Person(510 + i), Day(2019, 3, 1), kTak1Cap2019 + 30000 + i);
    expected_run1[Person(510 + i)] = 30000 + i;
  }
  RunSummary run1 = RunJob(Day(2024, 4, 1));
  ASSERT_EQ(run1.payouts, 6);
  for (int i = 0; i < 3; ++i) Pay(Person(520 + i), Day(2024, 4, 5), kCap2024 + 7);
  Pay(Person(500), Day(2024, 4, 6), 50);  // a second payout for one person
  RunSummary run2 = RunJob(Day(2024, 4, 10));
  ASSERT_EQ(run2.payouts, 4);

  // By run: every year of that run.
  std::vector<Payout> r1 = Payouts(run1.run_id, 0, 2);
  ASSERT_EQ(r1.size(), 6u);
  Ore total = 0;
  for (const Payout& p : r1) {
    EXPECT_EQ(p.run_id, run1.run_id);
    EXPECT_EQ(p.created_on, Day(2024, 4, 1));
    ASSERT_EQ(expected_run1.count(p.person_id), 1u) << p.person_id;  // person id in clear
    EXPECT_EQ(p.amount, expected_run1[p.person_id]);
    total += p.amount;
  }
  EXPECT_EQ(total, run1.payout_total);
  EXPECT_EQ(Payouts(run1.run_id, 2024, 3).size(), 4u);
  EXPECT_EQ(Payouts(run1.run_id, 2019, 1).size(), 2u);
  std::vector<Payout> r2 = Payouts(run2.run_id, 0, 3);
  ASSERT_EQ(r2.size(), 4u);
  for (const Payout& p : r2) EXPECT_EQ(p.run_id, run2.run_id);

  // By year: every run of that year.
  std::vector<Payout> y2024 = Payouts("", 2024, 3);
  EXPECT_EQ(y2024.size(), 8u);
  std::multiset<std::string> runs;
  for (const Payout& p : y2024) runs.insert(p.run_id);
  EXPECT_EQ(runs.count(run1.run_id), 4u);
  EXPECT_EQ(runs.count(run2.run_id), 4u);
  EXPECT_EQ(Payouts("", 2019, 1).size(), 2u);
  EXPECT_THAT(Payouts("", 2023), IsEmpty());

  // Page tokens stay valid while a new run adds payouts.
  auto page = reg_->ListPayouts("", 2024, 3, "");
  ASSERT_TRUE(page.ok());
  std::vector<Payout> seen = page->items;
  Pay(Person(530), Day(2024, 5, 1), kCap2024 + 11);
  RunSummary run3 = RunJob(Day(2024, 5, 5));
  ASSERT_EQ(run3.payouts, 1);
  std::string token = page->next_page_token;
  while (!token.empty()) {
    auto next = reg_->ListPayouts("", 2024, 3, token);
    ASSERT_TRUE(next.ok()) << next.status();
    seen.insert(seen.end(), next->items.begin(), next->items.end());
    token = next->next_page_token;
  }
  EXPECT_EQ(seen.size(), 9u);  // a later run sorts after the pages already read

  EXPECT_EQ(reg_->ListPayouts("", 0, 10, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg_->ListPayouts("bogus", 0, 10, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Payouts("run-999999", 0), IsEmpty());
}

TEST_F(IssuanceTest, AsOfDefaultsToTodayInOslo) {
  // 23:30 UTC on 31 May is already 1 June in Oslo (summer time).
  clock_.Set(absl::FromCivil(absl::CivilSecond(2024, 5, 31, 23, 30, 0), absl::UTCTimeZone()));
  Pay(Person(600), Day(2024, 5, 20), kCap2024);
  auto s = job_->Run(std::nullopt, false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->as_of, Day(2024, 6, 1));
  ASSERT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(Cards(2024)[0].issued_on, Day(2024, 6, 1));
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
