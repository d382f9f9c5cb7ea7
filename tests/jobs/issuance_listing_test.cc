// The issuance job's listings against the real register: free cards and
// payouts, by year, issue date and run, with paging.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/issuance_fixture.h"

namespace frikort::jobs::testing {
namespace {

using ::testing::IsEmpty;

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

}  // namespace
}  // namespace frikort::jobs::testing
