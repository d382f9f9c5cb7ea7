// The scheduler runs the job by itself; runs never overlap (a second Run while
// one is in progress is refused with Aborted); Stop returns promptly.
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "jobs/issuance.h"
#include "tests/jobs/job_fixture.h"

namespace frikort::jobs::testing {
namespace {

using Day = absl::CivilDay;

constexpr Ore kCap2024 = 316500;
constexpr absl::Duration kWaitLimit = absl::Seconds(5);

// Polls `done` every 10 ms until it holds or kWaitLimit passes.
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + kWaitLimit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class SchedulerTest : public JobTest {
 protected:
  void SetUp() override {
    JobTest::SetUp();
    // "Today" for the scheduler: 10:00 in Oslo on 1 June 2024.
    clock_.Set(absl::FromCivil(absl::CivilSecond(2024, 6, 1, 8, 0, 0), absl::UTCTimeZone()));
  }
  // Every card and payout of 2024 belongs to a distinct ledger.
  void ExpectNoDuplicates(size_t cards, size_t payouts) {
    std::set<std::string> card_people, payout_people;
    for (const Card& c : Cards(2024)) {
      EXPECT_TRUE(card_people.insert(c.person_id).second) << "two cards for " << c.person_id;
    }
    for (const Payout& p : Payouts("", 2024)) {
      EXPECT_TRUE(payout_people.insert(p.person_id).second) << "paid twice: " << p.person_id;
    }
    EXPECT_EQ(card_people.size(), cards);
    EXPECT_EQ(payout_people.size(), payouts);
  }
};

TEST_F(SchedulerTest, IssuesCardsByItself) {
  const std::string p = Person(1);
  Pay(p, Day(2024, 5, 20), kCap2024 + 900);
  absl::Mutex mu;
  std::vector<RunSummary> runs;
  job_->set_observer([&](const RunSummary& s) {
    absl::MutexLock l(&mu);
    runs.push_back(s);
  });
  std::atomic<int> errors{0};
  Scheduler scheduler(job_.get(), absl::Milliseconds(50),
                      [&](const absl::Status&) { errors.fetch_add(1); });
  scheduler.Start();
  ASSERT_TRUE(Eventually([&] { return Cards(2024).size() == 1; })) << "no card within 5 s";
  // A later report is picked up by a later scheduled run, by itself too.
  Pay(p, Day(2024, 5, 30), 1100);
  ASSERT_TRUE(Eventually([&] { return Payouts("", 2024).size() == 2; }));
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return runs.size() >= 4;
  }));
  scheduler.Stop();

  std::vector<Card> cards = Cards(2024);
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].person_id, p);
  EXPECT_EQ(cards[0].valid_from, Day(2024, 5, 20));
  EXPECT_EQ(cards[0].issued_on, Day(2024, 6, 1));  // as_of = today in Oslo
  Ore paid = 0;
  for (const Payout& x : Payouts("", 2024)) paid += x.amount;
  EXPECT_EQ(paid, 2000);
  {
    absl::MutexLock l(&mu);
    Ore reported = 0;
    int64_t cards_issued = 0;
    for (const RunSummary& s : runs) {
      EXPECT_EQ(s.as_of, Day(2024, 6, 1));
      EXPECT_FALSE(s.dry_run);
      reported += s.payout_total;
      cards_issued += s.cards_issued;
    }
    EXPECT_EQ(reported, 2000);
    EXPECT_EQ(cards_issued, 1);
  }
  EXPECT_EQ(errors.load(), 0);
  ExpectConsistent();
}

TEST_F(SchedulerTest, ZeroIntervalNeverRuns) {
  Pay(Person(2), Day(2024, 5, 20), kCap2024);
  int runs = 0;
  job_->set_observer([&](const RunSummary&) { ++runs; });
  Scheduler scheduler(job_.get(), absl::ZeroDuration());
  scheduler.Start();
  absl::SleepFor(absl::Milliseconds(150));  // three times a short interval
  scheduler.Stop();
  EXPECT_EQ(runs, 0);
  EXPECT_TRUE(Cards(2024).empty());
}

// Deterministic overlap: the first run is held inside its first chunk while a
// second Run is attempted from another thread.
TEST_F(SchedulerTest, SecondRunWhileOneIsInProgressIsAborted) {
  for (int i = 0; i < 5; ++i) Pay(Person(10 + i), Day(2024, 5, 1 + i), kCap2024 + 100);
  DelegatingRegister hooked(reg_.get());
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(2);
  absl::Status second_status;
  // In the first chunk of the first run only.
  BeforeChunk(hooked, 0, [&] {
    std::thread other([&] { second_status = job.Run(Day(2024, 6, 1), false).status(); });
    other.join();
  });
  auto first = job.Run(Day(2024, 6, 1), false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(second_status.code(), absl::StatusCode::kAborted) << second_status;
  EXPECT_EQ(first->cards_issued, 5);
  // A dry run is refused as well while a run holds the job.
  BeforeEveryChunk(hooked, [&] {
    std::thread other([&] { second_status = job.Run(Day(2024, 6, 1), true).status(); });
    other.join();
  });
  Pay(Person(20), Day(2024, 5, 25), kCap2024 + 300);
  auto second = job.Run(Day(2024, 6, 1), false);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->cards_issued, 1);
  EXPECT_EQ(second_status.code(), absl::StatusCode::kAborted);
  // Once the run ended, the job takes runs again.
  EXPECT_CALL(hooked, DecideNextAsync).WillRepeatedly(RealDecide());
  auto third = job.Run(Day(2024, 6, 1), false);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->ledgers_examined, 0);
  ExpectNoDuplicates(6, 6);
}

// Racing runs from two threads: each either runs or is refused, and together
// they issue each card and pay each excess exactly once.
TEST_F(SchedulerTest, ConcurrentRunsNeverDuplicateCardsOrPayouts) {
  constexpr int kPeople = 40;
  std::vector<core::CoPaymentInput> items;
  for (int i = 0; i < kPeople; ++i) {
    items.push_back(Input(absl::StrCat("c", i), Person(100 + i), Day(2024, 5, 2), kCap2024 + 10));
  }
  ASSERT_TRUE(reg_->Submit(std::move(items)).ok());
  std::atomic<int> in_run{0};
  std::atomic<bool> overlapped{false};
  DelegatingRegister hooked(reg_.get());
  BeforeEveryChunk(hooked, [&] {
    if (in_run.fetch_add(1) != 0) overlapped = true;
    absl::SleepFor(absl::Microseconds(200));
    in_run.fetch_sub(1);
  });
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(1);  // long runs: many chances to overlap
  int64_t cards = 0, payouts = 0, ok_runs = 0, aborted = 0;
  absl::Mutex mu;
  auto racer = [&] {
    for (int round = 0; round < 3; ++round) {
      auto r = job.Run(Day(2024, 6, 1), false);
      absl::MutexLock l(&mu);
      if (r.ok()) {
        ++ok_runs;
        cards += r->cards_issued;
        payouts += r->payouts;
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
        ++aborted;
      }
    }
  };
  std::thread a(racer), b(racer);
  a.join();
  b.join();
  EXPECT_FALSE(overlapped) << "two runs were deciding at the same time";
  EXPECT_GE(ok_runs, 1);
  EXPECT_EQ(ok_runs + aborted, 6);
  EXPECT_EQ(cards, kPeople);
  EXPECT_EQ(payouts, kPeople);
  ExpectNoDuplicates(kPeople, kPeople);
  ExpectConsistent();
}

// An operator's manual run while a scheduled run holds the job is refused;
// the scheduler does not report refused runs as failures; the work is done once.
TEST_F(SchedulerTest, ManualRunWhileScheduledRunHoldsTheJob) {
  for (int i = 0; i < 3; ++i) Pay(Person(200 + i), Day(2024, 5, 10), kCap2024 + 50);
  DelegatingRegister hooked(reg_.get());
  IssuanceJob job(&hooked, &clock_);
  absl::Notification entered, release;
  // Holds only the first scheduled chunk.
  BeforeChunk(hooked, 0, [&] {
    entered.Notify();
    release.WaitForNotificationWithTimeout(kWaitLimit);
  });
  std::atomic<int> errors{0};
  Scheduler scheduler(&job, absl::Milliseconds(50),
                      [&](const absl::Status&) { errors.fetch_add(1); });
  scheduler.Start();
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWaitLimit));
  auto manual = job.Run(Day(2024, 6, 1), false);
  EXPECT_EQ(manual.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(manual.status().message()), ::testing::HasSubstr("in progress"));
  release.Notify();
  ASSERT_TRUE(Eventually([&] { return Cards(2024).size() == 3; }));
  scheduler.Stop();
  EXPECT_EQ(errors.load(), 0);
  // The manual run may now go; it finds nothing left.
  auto later = job.Run(Day(2024, 6, 1), false);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->ledgers_examined, 0);
  ExpectNoDuplicates(3, 3);
}

// A manual run holding the job: the scheduler's ticks are refused (Aborted)
// and that is not reported as an error.
TEST_F(SchedulerTest, ScheduledTicksDuringAManualRunAreNotErrors) {
  Pay(Person(300), Day(2024, 5, 10), kCap2024 + 50);
  DelegatingRegister hooked(reg_.get());
  IssuanceJob job(&hooked, &clock_);
  absl::Notification release;
  absl::Notification manual_entered;
  BeforeChunk(hooked, 0, [&] {
    manual_entered.Notify();
    release.WaitForNotificationWithTimeout(kWaitLimit);
  });
  std::atomic<int> errors{0};
  std::atomic<int> finished{0};
  job.set_observer([&](const RunSummary&) { finished.fetch_add(1); });
  std::thread manual([&] { EXPECT_TRUE(job.Run(Day(2024, 6, 1), false).ok()); });
  ASSERT_TRUE(manual_entered.WaitForNotificationWithTimeout(kWaitLimit));
  Scheduler scheduler(&job, absl::Milliseconds(20),
                      [&](const absl::Status&) { errors.fetch_add(1); });
  scheduler.Start();
  // Let the scheduler tick several times while the manual run holds the job
  // (each tick is refused); no scheduled run can finish meanwhile.
  absl::SleepFor(absl::Milliseconds(120));
  EXPECT_EQ(finished.load(), 0);
  release.Notify();
  manual.join();
  ASSERT_TRUE(Eventually([&] { return finished.load() >= 2; }));  // scheduled runs resume
  scheduler.Stop();
  EXPECT_EQ(errors.load(), 0);
  ExpectNoDuplicates(1, 1);
}

TEST_F(SchedulerTest, FailedRunsAreReported) {
  Pay(Person(400), Day(2024, 5, 10), kCap2024 + 50);
  DelegatingRegister hooked(reg_.get());
  EXPECT_CALL(hooked, DecideNextAsync).WillRepeatedly(KilledBeforeWrite());
  IssuanceJob job(&hooked, &clock_);
  absl::Mutex mu;
  std::vector<absl::Status> errors;
  Scheduler scheduler(&job, absl::Milliseconds(20), [&](const absl::Status& s) {
    absl::MutexLock l(&mu);
    errors.push_back(s);
  });
  scheduler.Start();
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return errors.size() >= 2;  // and it keeps trying
  }));
  scheduler.Stop();
  absl::MutexLock l(&mu);
  for (const absl::Status& s : errors) EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
}

TEST_F(SchedulerTest, StopReturnsPromptly) {
  Scheduler idle(job_.get(), absl::Hours(24));
  idle.Start();
  absl::Time start = absl::Now();
  idle.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  idle.Stop();  // twice is fine

  // Stop while a run is in progress waits for that run, which completes.
  Pay(Person(500), Day(2024, 5, 10), kCap2024 + 50);
  DelegatingRegister hooked(reg_.get());
  IssuanceJob job(&hooked, &clock_);
  absl::Notification entered;
  BeforeChunk(hooked, 0, [&] {
    entered.Notify();
    absl::SleepFor(absl::Milliseconds(100));
  });
  {
    Scheduler busy(&job, absl::Milliseconds(10));
    busy.Start();
    ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWaitLimit));
    start = absl::Now();
    busy.Stop();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  }
  EXPECT_EQ(Cards(2024).size(), 1u);  // the run in progress finished its work

  // The destructor stops a started scheduler too.
  {
    Scheduler dropped(job_.get(), absl::Hours(1));
    dropped.Start();
  }
}

}  // namespace
}  // namespace frikort::jobs::testing
