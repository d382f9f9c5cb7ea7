// The issuance job's free cards against the real register: the crossing in
// service-time order, the decision date, the next-year medicine, reservations
// and the two-cap years.
#include <set>
#include <string>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/issuance_fixture.h"

namespace frikort::jobs::testing {
namespace {

using ::testing::IsEmpty;

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

}  // namespace
}  // namespace frikort::jobs::testing
