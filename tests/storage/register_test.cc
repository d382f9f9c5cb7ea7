#include "storage/register.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
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
#include "storage/register_impl.h"
#include "storage/secret.h"
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
using ::frikort::testing::MakeOrgNumber;
using ::frikort::testing::MakePersonId;

const std::string kSecret(32, 's');

class RegisterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    dir_ = frikort::testing::FreshTestDir("frikort_register_test_");
    Reopen();
  }
  void TearDown() override {
    reg_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(const std::string& secret = kSecret) {
    reg_.reset();
    auto r = Register::Open(Options(secret));
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }
  RegisterOptions Options(const std::string& secret) {
    RegisterOptions o;
    o.data_dir = dir_.string();
    o.secret = secret;
    o.rules = &rules_;
    o.clock = &clock_;
    return o;
  }

  // A paid physician co-payment on an Oslo date at noon.
  core::CoPaymentInput Report(const std::string& report_id, const std::string& person,
                              absl::CivilDay day, core::Ore amount,
                              Category category = Category::kPhysician,
                              Payment payment = Payment::kPaid) {
    core::CoPaymentInput in;
    in.report_id = report_id;
    in.provider_id = "1234567";
    in.person_id = person;
    in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
    in.category = static_cast<int>(category);
    in.amount = amount;
    in.payment = static_cast<int>(payment);
    return in;
  }
  ReportResult SubmitOne(core::CoPaymentInput in) {
    auto r = reg_->Submit({std::move(in)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0] : ReportResult{};
  }
  SchemeLedger Ledger(const std::string& person, int year, Scheme scheme) {
    auto v = reg_->GetLedger(person, year);
    EXPECT_TRUE(v.ok()) << v.status();
    for (const auto& s : v->schemes) {
      if (s.scheme == scheme) return s;
    }
    ADD_FAILURE() << "no scheme " << static_cast<int>(scheme);
    return {};
  }

  // The callers of every lookup of `person`, newest first, read page by page.
  std::vector<std::string> AllLookupCallers(const std::string& person, int page_size) {
    std::vector<std::string> callers;
    std::string token;
    do {
      auto page = reg_->ListLookups(person, page_size, token);
      if (!page.ok()) {
        ADD_FAILURE() << page.status();
        break;
      }
      for (const auto& r : page->items) callers.push_back(r.caller);
      token = page->next_page_token;
    } while (!token.empty());
    return callers;
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::filesystem::path dir_;
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
  const std::string bob_ = MakePersonId(2, 11, 91, 0);
};

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

TEST_F(RegisterTest, SurvivesReopen) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 400000));
  SubmitOne(Report("b", bob_, absl::CivilDay(2024, 3, 1), 100));
  Reopen();
  EXPECT_EQ(Ledger(alice_, 2024, Scheme::kTak).counted_total, 400000);
  EXPECT_EQ(Ledger(bob_, 2024, Scheme::kTak).counted_total, 100);
  EXPECT_EQ(SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 400000)).outcome,
            Outcome::kDuplicate);
}

TEST_F(RegisterTest, WrongSecretAndLockedFolderAreRefused) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 100));
  auto second = Register::Open(Options(kSecret));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr("locked"));
  reg_.reset();
  auto wrong = Register::Open(Options(std::string(32, 'x')));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()), ::testing::HasSubstr("pseudonym key"));
}

TEST_F(RegisterTest, NoNationalIdInClearOnDisk) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 100));
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "d").ok());
  reg_.reset();
  int lookup_log_files = 0;  // the lookup log's database is read too
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir_)) {
    if (!f.is_regular_file()) continue;
    if (f.path().parent_path().filename() == "lookup-log") ++lookup_log_files;
    std::ifstream in(f.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(data.find(alice_), std::string::npos) << f.path();
  }
  EXPECT_GT(lookup_log_files, 0);
}

TEST_F(RegisterTest, LookupsAreLoggedNewestFirstAndPaged) {
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1 + i), Category::kUnspecified,
                                     absl::StrCat("desk", i))
                    .ok());
  }
  auto p1 = reg_->ListLookups(alice_, 3, "");
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->items.size(), 3u);
  EXPECT_EQ(p1->items[0].caller, "desk4");
  EXPECT_EQ(p1->items[2].caller, "desk2");
  ASSERT_FALSE(p1->next_page_token.empty());
  // A lookup made between pages does not disturb the next page.
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 7, 1), Category::kUnspecified, "late")
          .ok());
  auto p2 = reg_->ListLookups(alice_, 3, p1->next_page_token);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->items.size(), 2u);
  EXPECT_EQ(p2->items[0].caller, "desk1");
  EXPECT_EQ(p2->items[1].caller, "desk0");
  EXPECT_TRUE(p2->next_page_token.empty());
  EXPECT_EQ(reg_->ListLookups(alice_, 3, "garbage!").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(reg_->ListLookups(bob_, 3, "")->items.empty());
}

// The log's memtable is unsorted (appended per lookup, sorted when flushed or
// listed): a listing merges it with table files, in order, one person only.
TEST_F(RegisterTest, LookupLogListsFlushedAndFreshRecordsInOrder) {
  auto look = [&](const std::string& who, int i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(who, absl::CivilDay(2024, 6, 1), Category::kUnspecified,
                                     absl::StrCat(who == alice_ ? "a" : "b", i))
                    .ok());
  };
  for (int i = 0; i < 3; ++i) {
    look(bob_, i);
    look(alice_, i);
  }
  Reopen();  // the first three are now in a table file
  for (int i = 3; i < 6; ++i) {
    look(alice_, i);
    look(bob_, i);
  }
  std::vector<std::string> callers = AllLookupCallers(alice_, 2);
  EXPECT_EQ(callers, (std::vector<std::string>{"a5", "a4", "a3", "a2", "a1", "a0"}));
}

// The audit log names a person by the pseudonym in base32 (RFC 4648,
// lowercase, unpadded) in groups of eight: a scanner for national ids never
// finds a run of 11 digits in it, whatever the person.
TEST_F(RegisterTest, AuditPseudonymsHoldNoRunOfElevenDigits) {
  EXPECT_EQ(internal::PseudonymText(""), "");
  EXPECT_EQ(internal::PseudonymText("f"), "my");
  EXPECT_EQ(internal::PseudonymText("foobar"), "mzxw6ytb-oi");
  EXPECT_EQ(internal::PseudonymText(std::string(10, '\xff')), "77777777-77777777");
  EXPECT_EQ(reg_->AuditPseudonym(alice_),
            internal::PseudonymText(Crypto::Create(kSecret)->Pseudonym(alice_)));
  EXPECT_EQ(reg_->AuditPseudonym("not an id"), "");
  int id_like = 0, other_form = 0;
  std::string example;
  for (int n = 0; n < 400; ++n) {
    const std::string text = reg_->AuditPseudonym(frikort::testing::PersonN(n));
    if (!frikort::testing::HasNoIdLikeRun(text)) {
      ++id_like;
      example = text;
    }
    if (!::testing::Value(text, ::testing::MatchesRegex("([a-z2-7]{8}-){6}[a-z2-7]{4}"))) {
      ++other_form;
    }
  }
  EXPECT_EQ(other_form, 0);
  EXPECT_EQ(id_like, 0) << "for example " << example;
}

// A register created before the lookup log had a database of its own kept
// the log in its `audit` family: opening it moves those records over, once.
TEST_F(RegisterTest, OldLookupLogMovesToItsOwnDatabaseOnce) {
  const std::string pseudonym = Crypto::Create(kSecret)->Pseudonym(alice_);
  ASSERT_EQ(pseudonym.size(), kPseudonymBytes);
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "new").ok());
  reg_.reset();
  constexpr size_t kAuditFamily = 8;
  auto with_old_family =
      [&](const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& fn) {
        std::vector<rocksdb::ColumnFamilyDescriptor> descs;
        for (const std::string& name : testing::RegisterColumnFamilies()) {
          descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
        }
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* db = nullptr;
        ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, descs, &handles, &db).ok());
        fn(db, handles[kAuditFamily]);
        for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
        delete db;
      };
  // A register of schema 1, its lookup log in the `audit` family: records
  // as the old register wrote them, a second apart, more than two of the
  // move's steps (10,000 each). (The one lookup made above, already in the
  // new database, is what a move cut short by a crash leaves behind.)
  constexpr int kOld = 25000;
  with_old_family([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit) {
    ASSERT_EQ(testing::RegisterColumnFamilies()[kAuditFamily], "audit");
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "schema_version", "1").ok());
    rocksdb::WriteBatch batch;
    for (int i = 0; i < kOld; ++i) {
      storage::records::Lookup record;
      record.set_time_us(absl::ToUnixMicros(clock_.Now() - absl::Seconds(kOld + 10 - i)));
      record.set_caller(absl::StrCat("old-", i));
      record.set_date(core::DayNumber(absl::CivilDay(2024, 5, 1)));
      batch.Put(audit, keys::Audit(pseudonym, record.time_us(), 1000 + i),
                record.SerializeAsString());
    }
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  });
  Reopen();
  Reopen();  // a second open finds nothing left to move
  std::vector<std::string> callers = AllLookupCallers(alice_, 1000);
  ASSERT_EQ(callers.size(), kOld + 1u);
  EXPECT_EQ(callers[0], "new");
  EXPECT_EQ(callers[1], absl::StrCat("old-", kOld - 1));
  EXPECT_EQ(callers[kOld], "old-0");
  reg_.reset();
  with_old_family([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), audit));
    it->SeekToFirst();
    EXPECT_FALSE(it->Valid()) << "the old family still holds records";
  });
}

// The lookup log has a memtable budget of its own: when a batch feed leaves
// the register's memtables near their shared budget, the lookups that follow
// must not each flush the log's (small) memtable to a table file of its own.
TEST_F(RegisterTest, LookupsAfterAFeedDoNotFlushTheLookupLogEach) {
  reg_.reset();
  RegisterOptions small = Options(kSecret);
  small.write_buffer_bytes = 4 << 20;
  auto r = Register::Open(small);
  ASSERT_TRUE(r.ok()) << r.status();
  reg_ = *std::move(r);
  std::vector<core::CoPaymentInput> batch;
  for (int i = 0; i < 10000; ++i) {
    batch.push_back(Report(absl::StrCat("feed-", i), frikort::testing::PersonN(i),
                           absl::CivilDay(2024, 3, 1), 10000));
  }
  auto fed = reg_->Submit(std::move(batch));
  ASSERT_TRUE(fed.ok()) << fed.status();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified,
                                     absl::StrCat("desk-", i))
                    .ok());
    absl::SleepFor(absl::Milliseconds(10));  // desks ask one by one
  }
  reg_.reset();  // closing waits for any flush under way
  int tables = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / internal::kLookupLogDir)) {
    tables += e.path().extension() == ".sst";
  }
  EXPECT_LE(tables, 1);
}

// From schema 2 a register without its lookup-log folder (copied or
// restored without it) is refused, not given a new empty log.
TEST_F(RegisterTest, MissingLookupLogIsRefusedNotRecreated) {
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "d").ok());
  reg_.reset();
  std::filesystem::remove_all(dir_ / internal::kLookupLogDir);
  auto r = Register::Open(Options(kSecret));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("lookup-log, which is missing"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / internal::kLookupLogDir));
}

TEST_F(RegisterTest, ADamagedRegisterIsRefusedAsDataLoss) {
  SubmitOne(Report("r1", alice_, absl::CivilDay(2024, 3, 1), 50000));
  reg_.reset();
  // Garbage over the MANIFEST (the list of the database's files): RocksDB
  // reports corruption, which is lost data, not a passing fault.
  int damaged = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    if (f.path().filename().string().rfind("MANIFEST-", 0) != 0) continue;
    const auto size = std::filesystem::file_size(f.path());
    std::FILE* out = std::fopen(f.path().c_str(), "r+b");
    ASSERT_NE(out, nullptr);
    const std::string garbage(size, '\x5a');
    std::fwrite(garbage.data(), 1, garbage.size(), out);
    std::fclose(out);
    ++damaged;
  }
  ASSERT_GT(damaged, 0);
  auto r = Register::Open(Options(kSecret));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST_F(RegisterTest, AsyncLookupsAnswerLikeSyncOnesAndAreLoggedFirst) {
  SubmitOne(Report("big", alice_, absl::CivilDay(2024, 3, 1), 400000));
  auto sync = reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kPhysician, "s");
  ASSERT_TRUE(sync.ok());
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        absl::Notification done;
        reg_->CheckExemptionAsync(
            alice_, absl::CivilDay(2024, 6, 1), Category::kPhysician, absl::StrCat("t", t),
            [&](absl::StatusOr<std::vector<SchemeExemption>> got) {
              // Logged before answered: the log holds at least this lookup.
              const int n = answered.fetch_add(1) + 1;
              auto log = reg_->ListLookups(alice_, 1000, "");
              if (!got.ok() || got->size() != sync->size() ||
                  (*got)[0].status != (*sync)[0].status || !log.ok() ||
                  static_cast<int>(log->items.size()) < std::min(n + 1, 1000)) {
                ++wrong;
              }
              done.Notify();
            });
        done.WaitForNotification();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered, kThreads * kEach);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ((*sync)[0].status, core::ExemptionStatus::kCapReached);
  auto log = reg_->ListLookups(alice_, 1000, "");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->items.size(), 1u + kThreads * kEach);
  // A bad id is refused before anything is logged.
  absl::Status bad;
  reg_->CheckExemptionAsync(
      "123", absl::CivilDay(2024, 6, 1), Category::kPhysician, "x",
      [&](absl::StatusOr<std::vector<SchemeExemption>> got) { bad = got.status(); });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
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

TEST(SecretTest, DevSecretIsCreatedPrivateAndReused) {
  auto dir = std::filesystem::temp_directory_path() / absl::StrCat("frikort_secret_", getpid());
  std::filesystem::create_directories(dir);
  auto a = LoadOrCreateDevSecret(dir.string());
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = LoadOrCreateDevSecret(dir.string());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  auto perms = std::filesystem::status(dir / "pseudonym.key").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::group_read, std::filesystem::perms::none);
  std::filesystem::permissions(dir / "pseudonym.key", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto c = LoadSecret((dir / "pseudonym.key").string());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace frikort::storage

namespace frikort::storage {
namespace {

TEST_F(RegisterTest, VerifyIsCleanAfterEveryKindOfChange) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 200000));
  SubmitOne(Report("b", alice_, absl::CivilDay(2024, 2, 1), 200000));
  SubmitOne(Report("c", bob_, absl::CivilDay(2019, 2, 1), 300000, Category::kDental));
  SubmitOne(Report("u", bob_, absl::CivilDay(2019, 2, 2), 100, Category::kPhysician,
                   Payment::kInvoicedUnpaid));
  ASSERT_TRUE(reg_->UpdatePayment("1234567", "u", static_cast<int>(Payment::kPaid)).ok());
  auto run = reg_->AllocateRunId();
  auto due = reg_->ScanDue(std::nullopt, 10);
  ASSERT_EQ(due->size(), 2u);
  auto decided =
      reg_->DecideNext({*run, absl::CivilDay(2024, 5, 1), false, absl::CivilDay(2024, 5, 1)},
                       std::make_shared<storage::DueCursor>(), 10, [](const core::LedgerState& s) {
                         return core::DecideIssuance(s, absl::CivilDay(2024, 5, 1));
                       });
  ASSERT_TRUE(decided.ok());
  ASSERT_EQ(decided->size(), 2u);
  ASSERT_TRUE(reg_->Cancel("1234567", "a", "x").ok());
  ASSERT_TRUE(reg_->SetReservation(bob_, true).ok());
  auto rep = reg_->Verify();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_THAT(rep->violations, ::testing::IsEmpty());
  EXPECT_EQ(rep->entries, 4u);
  EXPECT_EQ(rep->persons, 2u);
  EXPECT_EQ(rep->cards, 2u);
  EXPECT_GE(rep->ledgers, 3u);
}

TEST_F(RegisterTest, VerifyFindsATamperedRegister) {
  SubmitOne(Report("a", alice_, absl::CivilDay(2024, 3, 1), 400000));
  reg_.reset();
  // Remove one idempotency index record and one due marker.
  ASSERT_TRUE(frikort::testing::DeleteFirstRecords(dir_.string(), {"reports", "due"}));
  Reopen();
  auto rep = reg_->Verify();
  ASSERT_TRUE(rep.ok());
  EXPECT_THAT(rep->violations, ::testing::Contains(::testing::HasSubstr("no idempotency index")));
  EXPECT_THAT(rep->violations, ::testing::Contains(::testing::HasSubstr("no due marker")));
}

}  // namespace
}  // namespace frikort::storage
