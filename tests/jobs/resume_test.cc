// A run killed between two ledgers (or between two chunks) and started again
// finishes the work without paying anyone twice; reports that arrive between
// or during runs are in one run or the next, never lost or counted twice.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "jobs/issuance.h"
#include "tests/jobs/job_fixture.h"

namespace frikort::jobs::testing {
namespace {

using Day = absl::CivilDay;
using ::testing::IsEmpty;

constexpr Ore kCap2024 = 316500;
constexpr int kPeople = 10;

class ResumeTest : public JobTest {
 protected:
  // kPeople persons over the 2024 cap by a distinct excess each.
  void MakeDue() {
    for (int i = 0; i < kPeople; ++i) {
      const std::string p = Person(700 + i);
      Pay(p, Day(2024, 3, 1 + i), kCap2024 + 1000 * (i + 1));
      excess_[p] = 1000 * (i + 1);
    }
    ASSERT_EQ(DueCount(), static_cast<size_t>(kPeople));
  }
  // Every due person holds exactly one card and was paid exactly their excess
  // in exactly one payout, over every run.
  void ExpectEachPaidOnce() {
    std::map<std::string, int> cards;
    for (const Card& c : Cards(2024, std::nullopt, 3)) ++cards[c.person_id];
    std::map<std::string, int> payouts;
    std::map<std::string, Ore> paid;
    for (const Payout& p : Payouts("", 2024, 3)) {
      ++payouts[p.person_id];
      paid[p.person_id] += p.amount;
    }
    EXPECT_EQ(cards.size(), excess_.size());
    EXPECT_EQ(payouts.size(), excess_.size());
    for (const auto& [person, excess] : excess_) {
      EXPECT_EQ(cards[person], 1) << person;
      EXPECT_EQ(payouts[person], 1) << person;
      EXPECT_EQ(paid[person], excess) << person;
      EXPECT_EQ(Ledger(person, 2024, Scheme::kTak).refunded, excess) << person;
    }
    EXPECT_EQ(DueCount(), 0u);
    ExpectConsistent();
  }
  Ore TotalExcess() const {
    Ore t = 0;
    for (const auto& [p, e] : excess_) t += e;
    return t;
  }

  std::map<std::string, Ore> excess_;
};

// The job's own work for one chunk, done by hand: then the process "dies"
// (the register is closed and opened again) and the job is started again.
TEST_F(ResumeTest, KilledAfterSomeLedgersResumesWithoutPayingTwice) {
  MakeDue();
  const Day as_of(2024, 4, 1);
  auto due = reg_->ScanDue(std::nullopt, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), static_cast<size_t>(kPeople));
  auto run_id = reg_->AllocateRunId();
  ASSERT_TRUE(run_id.ok());
  auto outcomes = reg_->DecideNext(
      {*run_id, as_of, false, as_of}, std::make_shared<storage::DueCursor>(), 4,
      [as_of](const core::LedgerState& s) { return core::DecideIssuance(s, as_of); });
  ASSERT_TRUE(outcomes.ok()) << outcomes.status();
  ASSERT_EQ(outcomes->size(), 4u);
  for (size_t i = 0; i < outcomes->size(); ++i) {
    EXPECT_EQ((*outcomes)[i].ledger.pseudonym, (*due)[i].pseudonym);  // the first four markers
  }
  for (const auto& o : *outcomes) ASSERT_TRUE(o.decision.issue_card);

  Reopen();  // the kill: nothing of the job survives but what was written
  ASSERT_EQ(DueCount(), static_cast<size_t>(kPeople - 4));
  RunSummary resumed = RunJob(as_of);
  EXPECT_NE(resumed.run_id, *run_id);
  EXPECT_EQ(resumed.ledgers_examined, kPeople - 4);
  EXPECT_EQ(resumed.cards_issued, kPeople - 4);
  EXPECT_EQ(resumed.payouts, kPeople - 4);
  Ore first_half_paid = 0;
  for (const Payout& p : Payouts(*run_id, 0)) first_half_paid += p.amount;
  EXPECT_EQ(first_half_paid + resumed.payout_total, TotalExcess());
  ExpectEachPaidOnce();
  EXPECT_EQ(RunJob(as_of).ledgers_examined, 0);
}

// The real job, chunk size 1, dies when its 4th chunk goes to the storage:
// either before that chunk's write or after it (the write landed but the job
// never heard). Started again on a reopened register, it finishes the rest.
TEST_F(ResumeTest, JobKilledBetweenChunksFinishesOnRestart) {
  for (const bool before_write : {true, false}) {
    SCOPED_TRACE(before_write ? "before write" : "after write");
    job_.reset();
    reg_.reset();
    std::filesystem::remove_all(dir_);
    excess_.clear();
    Reopen();
    MakeDue();
    const Day as_of(2024, 4, 1);
    const int decided = before_write ? 3 : 4;
    {
      DelegatingRegister hooked(reg_.get());
      {
        // Three chunks go to the register, the 4th kills the run, and the
        // job stops at the failure: no 5th call.
        ::testing::InSequence chunks;
        EXPECT_CALL(hooked, DecideNextAsync).Times(3);
        if (before_write) {
          EXPECT_CALL(hooked, DecideNextAsync).WillOnce(KilledBeforeWrite());
        } else {
          EXPECT_CALL(hooked, DecideNextAsync).WillOnce(KilledAfterWrite(reg_.get()));
        }
      }
      IssuanceJob job(&hooked, &clock_);
      job.set_chunk_size(1);
      auto killed = job.Run(as_of, false);
      ASSERT_FALSE(killed.ok());
      EXPECT_EQ(killed.status().code(), absl::StatusCode::kUnavailable);
    }
    EXPECT_EQ(Cards(2024).size(), static_cast<size_t>(decided));
    EXPECT_EQ(Payouts("", 2024).size(), static_cast<size_t>(decided));
    Reopen();
    RunSummary resumed = RunJob(as_of);
    EXPECT_EQ(resumed.ledgers_examined, kPeople - decided);
    EXPECT_EQ(resumed.cards_issued, kPeople - decided);
    EXPECT_EQ(resumed.payouts, kPeople - decided);
    ExpectEachPaidOnce();
  }
}

TEST_F(ResumeTest, ReportBetweenRunsIsInTheNextRunOnce) {
  const std::string p = Person(800);
  const std::string q = Person(801);
  Pay(p, Day(2024, 3, 1), kCap2024 + 1000);
  RunSummary first = RunJob(Day(2024, 3, 5));
  EXPECT_EQ(first.payout_total, 1000);

  // Between the runs: a co-payment for p (after its card) and q's crossing.
  Pay(p, Day(2024, 3, 10), 2500);
  Pay(q, Day(2024, 3, 11), kCap2024 + 400);
  RunSummary second = RunJob(Day(2024, 3, 20));
  EXPECT_EQ(second.ledgers_examined, 2);
  EXPECT_EQ(second.cards_issued, 1);
  EXPECT_EQ(second.payouts, 2);
  EXPECT_EQ(second.payout_total, 2500 + 400);
  RunSummary third = RunJob(Day(2024, 3, 21));
  EXPECT_EQ(third.ledgers_examined, 0);
  EXPECT_EQ(third.payout_total, 0);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).refunded, 3500);
  EXPECT_EQ(Ledger(p, 2024, Scheme::kTak).counted_total, kCap2024 + 3500);
  EXPECT_EQ(Ledger(q, 2024, Scheme::kTak).refunded, 400);
  ExpectConsistent();
}

// Reports arriving while a run is in progress, for ledgers the run already
// decided (behind its cursor), is deciding now, and has still to decide.
TEST_F(ResumeTest, ReportsDuringARunAreInItOrInTheNext) {
  MakeDue();
  const Day as_of(2024, 4, 1);
  constexpr int kBefore = 3;  // chunks decided when the reports arrive
  constexpr Ore kExtra = 700;
  const auto report_extra = [&] {
    std::vector<core::CoPaymentInput> items;
    int n = 0;
    for (const auto& [person, excess] : excess_) {
      items.push_back(Input(absl::StrCat("during", n++), person, Day(2024, 3, 25), kExtra));
    }
    auto r = reg_->Submit(std::move(items));
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& x : *r) ASSERT_EQ(x.outcome, core::Outcome::kAccepted);
  };
  DelegatingRegister hooked(reg_.get());
  BeforeChunk(hooked, kBefore, report_extra);
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(1);
  auto during = job.Run(as_of, false);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->ledgers_examined, kPeople);
  EXPECT_EQ(during->cards_issued, kPeople);
  EXPECT_EQ(during->payouts, kPeople);
  // The ledgers decided before the reports were paid without them; the one
  // being decided and those after it were paid with them.
  EXPECT_EQ(during->payout_total, TotalExcess() + (kPeople - kBefore) * kExtra);
  EXPECT_EQ(DueCount(), static_cast<size_t>(kBefore));

  RunSummary next = RunJob(Day(2024, 4, 2));
  EXPECT_EQ(next.ledgers_examined, kBefore);
  EXPECT_EQ(next.cards_issued, 0);
  EXPECT_EQ(next.payouts, kBefore);
  EXPECT_EQ(next.payout_total, kBefore * kExtra);
  EXPECT_EQ(RunJob(Day(2024, 4, 3)).ledgers_examined, 0);

  // Every report counted once, every øre above the cap paid once.
  for (const auto& [person, excess] : excess_) {
    storage::SchemeLedger l = Ledger(person, 2024, Scheme::kTak);
    EXPECT_EQ(l.counted_total, kCap2024 + excess + kExtra) << person;
    EXPECT_EQ(l.refunded, excess + kExtra) << person;
    ASSERT_TRUE(l.card.has_value());
  }
  Ore paid = 0;
  for (const Payout& p : Payouts("", 2024)) paid += p.amount;
  EXPECT_EQ(paid, TotalExcess() + kPeople * kExtra);
  EXPECT_EQ(Cards(2024).size(), static_cast<size_t>(kPeople));
  ExpectConsistent();
}

// A new crossing reported during a run, for a person the run had not seen:
// whether its marker lands ahead of or behind the cursor, it is issued by this
// run or the next, exactly once.
TEST_F(ResumeTest, CrossingDuringARunIsIssuedOnce) {
  MakeDue();
  const Day as_of(2024, 4, 1);
  std::vector<std::string> newcomers;
  for (int i = 0; i < 6; ++i) newcomers.push_back(Person(900 + i));
  const auto newcomers_cross = [&] {
    for (size_t i = 0; i < newcomers.size(); ++i) {
      Pay(newcomers[i], Day(2024, 3, 20), kCap2024 + 10);
    }
  };
  DelegatingRegister hooked(reg_.get());
  BeforeChunk(hooked, 5, newcomers_cross);
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(1);
  auto during = job.Run(as_of, false);
  ASSERT_TRUE(during.ok()) << during.status();
  RunSummary next = RunJob(as_of);
  EXPECT_EQ(during->cards_issued + next.cards_issued, kPeople + 6);
  EXPECT_EQ(during->ledgers_examined + next.ledgers_examined, kPeople + 6);
  EXPECT_EQ(RunJob(as_of).ledgers_examined, 0);
  for (const std::string& p : newcomers) excess_[p] = 10;
  ExpectEachPaidOnce();
}

}  // namespace
}  // namespace frikort::jobs::testing
