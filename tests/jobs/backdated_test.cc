// Backdated runs: a run with an as_of before today keeps as_of as the
// decision date on cards, payouts and its summary, records the real date
// each card was decided, and measures the 21-day deadline against that real
// date, so a backdated run cannot make a late card look on time.
#include <string>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/job_fixture.h"

namespace frikort::jobs::testing {
namespace {

using Day = absl::CivilDay;

constexpr Ore kCap2024 = 316500;

class BackdatedTest : public JobTest {
 protected:
  void SetToday(Day day) { clock_.Set(core::OsloStartOfDay(day) + absl::Hours(12)); }
};

TEST_F(BackdatedTest, ACardDecidedLateCountsAsLateWhateverTheAsOf) {
  const std::string p = Person(1);
  Pay(p, Day(2024, 6, 1), kCap2024 + 5000);  // crossing on 1 June
  SetToday(Day(2024, 7, 20));                // 49 days later

  RunSummary seen;
  job_->set_observer([&](const RunSummary& s) { seen = s; });
  auto s = job_->Run(Day(2024, 6, 5), /*dry_run=*/false);  // 4 days after, on paper
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->as_of, Day(2024, 6, 5));
  EXPECT_EQ(s->decided_on, Day(2024, 7, 20));
  EXPECT_TRUE(s->backdated());
  EXPECT_EQ(s->cards_issued, 1);
  EXPECT_EQ(s->cards_past_deadline, 1);
  EXPECT_EQ(seen.cards_past_deadline, 1) << "the metrics hear the real lateness";

  // The decision date stays as_of on the card and the payout; the card
  // records the real date too.
  const std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].issued_on, Day(2024, 6, 5));
  EXPECT_EQ(cards[0].decided_on, Day(2024, 7, 20));
  const storage::SchemeLedger l = Ledger(p, 2024, Scheme::kTak);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_EQ(l.card->decided_on, Day(2024, 7, 20));
  const std::vector<Payout> payouts = Payouts(s->run_id, 0);
  ASSERT_EQ(payouts.size(), 1u);
  EXPECT_EQ(payouts[0].created_on, Day(2024, 6, 5));
  ExpectConsistent();
}

TEST_F(BackdatedTest, ARunOnTodayIsNotBackdatedAndInTimeCardsStayInTime) {
  Pay(Person(2), Day(2024, 6, 1), kCap2024);
  SetToday(Day(2024, 6, 22));  // exactly 21 days: in time
  auto s = job_->Run(std::nullopt, /*dry_run=*/false);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->backdated());
  EXPECT_EQ(s->as_of, Day(2024, 6, 22));
  EXPECT_EQ(s->cards_issued, 1);
  EXPECT_EQ(s->cards_past_deadline, 0);
  ASSERT_EQ(Cards(2024).size(), 1u);
  EXPECT_EQ(Cards(2024)[0].decided_on, Day(2024, 6, 22));
}

TEST_F(BackdatedTest, ABackdatedDryRunCountsLikeTheRealRunWould) {
  Pay(Person(3), Day(2024, 6, 1), kCap2024);
  SetToday(Day(2024, 9, 1));
  auto dry = job_->Run(Day(2024, 6, 2), /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->cards_past_deadline, 1);
  EXPECT_TRUE(Cards(2024).empty());
}

}  // namespace
}  // namespace frikort::jobs::testing
