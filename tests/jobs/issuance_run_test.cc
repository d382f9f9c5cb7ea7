// The issuance job's runs against the real register: idempotence, dry runs,
// the deadline count, the work a run does and its default date.
#include <string>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/issuance_fixture.h"

namespace frikort::jobs::testing {
namespace {

using ::testing::IsEmpty;

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

}  // namespace
}  // namespace frikort::jobs::testing
