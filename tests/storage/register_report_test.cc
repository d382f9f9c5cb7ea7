// The register's write path: reports and what they count, duplicates,
// corrections, the due markers the ledgers leave, reservations and concurrent
// submitters.
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/backup.h"
#include "storage/crypto.h"
#include "storage/keys.h"
#include "storage/records.pb.h"
#include "storage/register.h"
#include "storage/register_impl.h"
#include "storage/secret.h"
#include "tests/storage/register_fixture.h"
#include "tests/testing/fixture.h"
#include "tests/testing/id_scan.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"
#include "tests/testing/tamper.h"

namespace frikort::storage {
namespace {

using core::Category;
using core::Outcome;
using core::Payment;
using core::RejectReason;
using core::Scheme;
using ::frikort::testing::MakePersonId;

TEST_F(RegisterTest, AcceptsAndCountsAReport) {
  ReportResult r = SubmitOne(Report("r1", alice_, absl::CivilDay(2024, 3, 1), 50000));
  EXPECT_EQ(r.outcome, Outcome::kAccepted);
  EXPECT_TRUE(r.counted);
  EXPECT_EQ(r.year, 2024);
  EXPECT_EQ(r.scheme, Scheme::kTak);
  SchemeLedger l = Ledger(alice_, 2024, Scheme::kTak);
  EXPECT_EQ(l.counted_total, 50000);
  EXPECT_EQ(l.cap, 316500);
  EXPECT_FALSE(l.cap_reached_on.has_value());
}

TEST_F(RegisterTest, SameReportTwiceIsDuplicateAndCountsOnce) {
  EXPECT_EQ(SubmitOne(Report("r1", alice_, absl::CivilDay(2024, 3, 1), 50000)).outcome,
            Outcome::kAccepted);
  ReportResult again = SubmitOne(Report("r1", alice_, absl::CivilDay(2024, 3, 1), 50000));
  EXPECT_EQ(again.outcome, Outcome::kDuplicate);
  EXPECT_TRUE(again.counted);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 50000);
  // Same ids, other content: refused, nothing changes.
  ReportResult conflict = SubmitOne(Report("r1", alice_, absl::CivilDay(2024, 3, 1), 60000));
  EXPECT_EQ(conflict.outcome, Outcome::kRejected);
  EXPECT_EQ(conflict.reason, RejectReason::kConflictingDuplicate);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 50000);
}

TEST_F(RegisterTest, DuplicateWithinOneBatch) {
  auto r = reg_->Submit({Report("r1", alice_, absl::CivilDay(2024, 3, 1), 100),
                         Report("r1", alice_, absl::CivilDay(2024, 3, 1), 100)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].outcome, Outcome::kAccepted);
  EXPECT_EQ((*r)[1].outcome, Outcome::kDuplicate);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 100);
}

TEST_F(RegisterTest, RejectedItemStoresNothingAndOthersPass) {
  auto bad = Report("r2", alice_, absl::CivilDay(2024, 3, 2), 0);
  auto r = reg_->Submit({Report("r1", alice_, absl::CivilDay(2024, 3, 1), 100), bad});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].outcome, Outcome::kAccepted);
  EXPECT_EQ((*r)[1].outcome, Outcome::kRejected);
  EXPECT_EQ((*r)[1].reason, RejectReason::kInvalidAmount);
  auto v = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->entries.size(), 1u);
  EXPECT_EQ(v->entries[0].report_id, "r1");
}

TEST_F(RegisterTest, CrossingDateFollowsServiceTimeNotArrival) {
  // 2024 cap 3165 NOK. Reports arrive out of order.
  SubmitOne(Report("c", alice_, absl::CivilDay(2024, 9, 1), 200000));
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 2, 1), 100000));
  EXPECT_FALSE(Ledger(alice_, 2024, Scheme::kTak).cap_reached_on.has_value());
  // Reaches the cap; in service-time order the running total crosses on 1 Sep.
  SubmitOne(Report("b", alice_, absl::CivilDay(2024, 5, 1), 20000));
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).cap_reached_on, absl::CivilDay(2024, 9, 1));
  // A late report from before moves the crossing earlier.
  SubmitOne(Report("d", alice_, absl::CivilDay(2024, 6, 1), 100000));
  SchemeLedger l = Ledger(alice_, 2024, Scheme::kTak);
  EXPECT_EQ(l.cap_reached_on, absl::CivilDay(2024, 9, 1));  // 1000+200+1000 = 2200 < 3165 by Jun
  SubmitOne(Report("e", alice_, absl::CivilDay(2024, 7, 1), 100000));
  l = Ledger(alice_, 2024, Scheme::kTak);
  EXPECT_EQ(l.counted_total, 520000);
  EXPECT_EQ(l.cap_reached_on, absl::CivilDay(2024, 7, 1));  // 3200 >= 3165 on 1 Jul
  EXPECT_EQ(l.outstanding, 520000 - 316500);
}

TEST_F(RegisterTest, TwoCapYearKeepsSchemesApart) {
  SubmitOne(Report("t1", alice_, absl::CivilDay(2019, 4, 1), 236900));  // tak1 2369 NOK: reached
  SubmitOne(Report("t2", alice_, absl::CivilDay(2019, 4, 2), 100000, Category::kDental));
  EXPECT_EQ(Ledger(alice_, 2019, Scheme::kTak1).cap_reached_on, absl::CivilDay(2019, 4, 1));
  SchemeLedger t2 = Ledger(alice_, 2019, Scheme::kTak2);
  EXPECT_EQ(t2.counted_total, 100000);
  EXPECT_FALSE(t2.cap_reached_on.has_value());
}

TEST_F(RegisterTest, UnpaidCountsOnlyAfterUpdate) {
  ReportResult r = SubmitOne(Report("u", alice_, absl::CivilDay(2024, 3, 1), 5000,
                                    Category::kPhysician, Payment::kInvoicedUnpaid));
  EXPECT_FALSE(r.counted);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 0);
  auto u = reg_->UpdatePayment("1234567", "u", static_cast<int>(Payment::kPaid));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->outcome, Outcome::kAccepted);
  EXPECT_TRUE(u->counted);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 5000);
  // Retrying the same update changes nothing.
  u = reg_->UpdatePayment("1234567", "u", static_cast<int>(Payment::kPaid));
  EXPECT_EQ(u->outcome, Outcome::kDuplicate);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 5000);
  // The original report resubmitted is still a duplicate, not a conflict.
  EXPECT_EQ(SubmitOne(Report("u", alice_, absl::CivilDay(2024, 3, 1), 5000, Category::kPhysician,
                             Payment::kInvoicedUnpaid))
                .outcome,
            Outcome::kDuplicate);
}

TEST_F(RegisterTest, UpdatePaymentRejections) {
  SubmitOne(Report("p", alice_, absl::CivilDay(2024, 3, 1), 5000));
  auto u = reg_->UpdatePayment("1234567", "p", static_cast<int>(Payment::kPaid));
  EXPECT_EQ(u->reason, RejectReason::kInvalidPaymentStatus);
  u = reg_->UpdatePayment("1234567", "p", static_cast<int>(Payment::kInvoiced));
  EXPECT_EQ(u->reason, RejectReason::kInvalidPaymentStatus);
  u = reg_->UpdatePayment("1234567", "nope", static_cast<int>(Payment::kPaid));
  EXPECT_EQ(u->reason, RejectReason::kUnknownReport);
  u = reg_->UpdatePayment("12a", "p", static_cast<int>(Payment::kPaid));
  EXPECT_EQ(u->reason, RejectReason::kInvalidProviderId);
}

TEST_F(RegisterTest, CancellationKeepsHistoryAndFlagsIssuedCard) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 200000));
  SubmitOne(Report("b", alice_, absl::CivilDay(2024, 4, 1), 200000));
  auto run = reg_->AllocateRunId();
  ASSERT_TRUE(run.ok());
  auto due = reg_->ScanDue(std::nullopt, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  auto out =
      reg_->DecideNext({*run, absl::CivilDay(2024, 5, 1), false, absl::CivilDay(2024, 5, 1)},
                       std::make_shared<storage::DueCursor>(), 10, [](const core::LedgerState& s) {
                         return core::DecideIssuance(s, absl::CivilDay(2024, 5, 1));
                       });
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE((*out)[0].decision.issue_card);
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).card->valid_from, absl::CivilDay(2024, 4, 1));

  auto c = reg_->Cancel("1234567", "b", "wrong patient");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->outcome, Outcome::kAccepted);
  SchemeLedger l = Ledger(alice_, 2024, Scheme::kTak);
  EXPECT_EQ(l.counted_total, 200000);
  EXPECT_FALSE(l.cap_reached_on.has_value());
  ASSERT_TRUE(l.card.has_value());
  EXPECT_TRUE(l.card->under_review);
  // Still exempt until an operator acts.
  auto x = reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "test");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ((*x)[0].status, core::ExemptionStatus::kExempt);
  // History kept.
  auto v = reg_->GetLedger(alice_, 2024);
  ASSERT_EQ(v->entries.size(), 2u);
  EXPECT_TRUE(v->entries[1].cancelled);
  EXPECT_FALSE(v->entries[1].counted);
  EXPECT_EQ(reg_->Cancel("1234567", "b", "again")->reason, RejectReason::kAlreadyCancelled);
  EXPECT_EQ(reg_->UpdatePayment("1234567", "b", 1)->reason, RejectReason::kAlreadyCancelled);
  EXPECT_EQ(reg_->Cancel("1234567", "zz", "x")->reason, RejectReason::kUnknownReport);
}

TEST_F(RegisterTest, DueMarkersFollowTheLedger) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 100000));
  EXPECT_TRUE(reg_->ScanDue(std::nullopt, 10)->empty());
  SubmitOne(Report("b", alice_, absl::CivilDay(2024, 3, 2), 300000));
  ASSERT_EQ(reg_->ScanDue(std::nullopt, 10)->size(), 1u);
  reg_->Cancel("1234567", "b", "x").IgnoreError();
  EXPECT_TRUE(reg_->ScanDue(std::nullopt, 10)->empty());
}

// Chunks of one run queued back to back, none waited for: each takes the
// markers after the ones the chunk before it took, as the writer reaches it
// (here mostly within one group; the simulation holds the commit thread to
// build chunks on a group not yet on disk); a chunk past the last marker
// takes nothing. A dry run walks the same markers and leaves them.
TEST_F(RegisterTest, ChunksQueuedBackToBackTakeConsecutiveMarkers) {
  constexpr int kPeople = 5;
  for (int i = 0; i < kPeople; ++i) {
    SubmitOne(Report(absl::StrCat("r", i), MakePersonId(1 + i, 4, 85, 0),
                     absl::CivilDay(2024, 3, 1), 400000));
  }
  auto due = reg_->ScanDue(std::nullopt, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), static_cast<size_t>(kPeople));
  auto decide = [](const core::LedgerState& s) {
    return core::DecideIssuance(s, absl::CivilDay(2024, 5, 1));
  };
  for (bool dry_run : {true, false}) {
    SCOPED_TRACE(dry_run ? "dry run" : "run");
    std::string run_id = "dry-run";
    if (!dry_run) run_id = *reg_->AllocateRunId();
    auto cursor = std::make_shared<DueCursor>();
    constexpr int kChunks = 4;  // 2 + 2 + 1 + none
    std::vector<absl::StatusOr<std::vector<LedgerOutcome>>> got(kChunks);
    std::vector<absl::Notification> done(kChunks);
    for (int c = 0; c < kChunks; ++c) {
      reg_->DecideNextAsync(
          {run_id, absl::CivilDay(2024, 5, 1), dry_run, absl::CivilDay(2024, 5, 1)}, cursor, 2,
          decide, [&got, &done, c](absl::StatusOr<std::vector<LedgerOutcome>> r) {
            got[c] = std::move(r);
            done[c].Notify();
          });
    }
    std::vector<std::string> taken;
    for (int c = 0; c < kChunks; ++c) {
      done[c].WaitForNotification();
      ASSERT_TRUE(got[c].ok()) << got[c].status();
      EXPECT_EQ(got[c]->size(), c < 2 ? 2u : c == 2 ? 1u : 0u) << "chunk " << c;
      for (const LedgerOutcome& o : *got[c]) {
        EXPECT_FALSE(o.skipped);
        EXPECT_TRUE(o.decision.issue_card);
        taken.push_back(o.ledger.pseudonym);
      }
    }
    ASSERT_EQ(taken.size(), static_cast<size_t>(kPeople));
    for (int i = 0; i < kPeople; ++i) EXPECT_EQ(taken[i], (*due)[i].pseudonym) << i;
    EXPECT_EQ(reg_->ScanDue(std::nullopt, 10)->size(), dry_run ? 5u : 0u);
  }
  EXPECT_THAT(reg_->DecideNext(
                      {"run-000009", absl::CivilDay(2024, 5, 1), false, absl::CivilDay(2024, 5, 1)},
                      std::make_shared<DueCursor>(), 0, decide)
                  .status()
                  .message(),
              ::testing::HasSubstr("limit"));
}

TEST_F(RegisterTest, ReservationRefusesReportsHidesStatusAndParksMarkers) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 400000));
  ASSERT_EQ(reg_->ScanDue(std::nullopt, 10)->size(), 1u);
  ASSERT_TRUE(reg_->SetReservation(alice_, true).ok());
  EXPECT_TRUE(reg_->ScanDue(std::nullopt, 10)->empty());
  ReportResult r = SubmitOne(Report("b", alice_, absl::CivilDay(2024, 3, 2), 100));
  EXPECT_EQ(r.reason, RejectReason::kPersonReserved);
  auto x = reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "test");
  EXPECT_EQ((*x)[0].status, core::ExemptionStatus::kNotExempt);
  EXPECT_TRUE(reg_->GetLedger(alice_, 2024)->reserved);
  ASSERT_TRUE(reg_->SetReservation(alice_, false).ok());
  EXPECT_EQ(reg_->ScanDue(std::nullopt, 10)->size(), 1u);
  x = reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "test");
  EXPECT_EQ((*x)[0].status, core::ExemptionStatus::kCapReached);
  EXPECT_FALSE(reg_->SetReservation("123", true).ok());
}

TEST_F(RegisterTest, ConcurrentSubmittersAllDurableAndCountedOnce) {
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = reg_->Submit(
            {Report(absl::StrCat("t", t, "-", i), alice_, absl::CivilDay(2024, 1, 1 + i % 28), 1)});
        ASSERT_TRUE(r.ok());
        ASSERT_EQ((*r)[0].outcome, Outcome::kAccepted);
      }
    });
  }
  for (auto& th : threads) th.join();
  Reopen();
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, kThreads * kPerThread);
}

}  // namespace
}  // namespace frikort::storage
