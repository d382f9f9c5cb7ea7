// Fault tests of the register under a file system that fails or loses data
// (tests/testing/fault_fs.h):
//  - a write error (a full disk) fails the register closed: the write is not
//    acknowledged, and every later read and write answers UNAVAILABLE instead
//    of an answer that may be wrong; after a restart nothing acknowledged is
//    missing and nothing is half-applied;
//  - a power loss (every byte not synced is gone) keeps every acknowledged
//    report, over seeded rounds of concurrent writers cut at random points;
//  - the same power loss without synced writes does lose acknowledged reports,
//    which shows the harness can see a loss at all;
//  - a group built while the group before it is still being written reads
//    that group's changes, and fails with it when its write fails.
//
//   FRIKORT_POWER_LOSS_ROUNDS=N (default 8), FRIKORT_POWER_LOSS_SEED=S
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/backup.h"
#include "storage/register.h"
#include "tests/testing/fault_fs.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::FaultFs;
using ::frikort::testing::MakePersonId;
using ::frikort::testing::RocksStoreOn;

const std::string kSecret(32, 'f');
constexpr int kPersons = 20;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  uint64_t n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) ? n : fallback;
}

// Two reports of one person, 2,000 NOK each, in two groups: the first held
// in its sync (on its way to disk) while the writer builds the second on top.
struct HeldPair {
  absl::StatusOr<std::vector<ReportResult>> first, second;
  absl::Notification first_done, second_done;
};

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    dir_ = frikort::testing::FreshTestDir("frikort_fault_test_");
    for (int p = 0; p < kPersons; ++p) persons_.push_back(MakePersonId(1 + p, 6, 75, p));
  }
  void TearDown() override {
    reg_.reset();
    std::filesystem::remove_all(dir_);
  }

  void SubmitPairAcrossAHeldSync(HeldPair* pair);
  void Open(rocksdb::Env* env, bool sync = true) {
    reg_.reset();
    RegisterOptions o;
    o.data_dir = dir_.string();
    o.secret = kSecret;
    o.rules = &rules_;
    o.clock = &clock_;
    o.open_store = RocksStoreOn(env);
    o.sync_writes = sync;
    auto r = Register::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }

  core::CoPaymentInput Report(const std::string& id, int person, int minute, core::Ore amount) {
    core::CoPaymentInput in;
    in.report_id = id;
    in.provider_id = "1234567";
    in.person_id = persons_[person];
    in.service_time = core::OsloStartOfDay(absl::CivilDay(2024, 1, 1)) + absl::Minutes(minute);
    in.category = static_cast<int>(core::Category::kPhysician);
    in.amount = amount;
    in.payment = static_cast<int>(core::Payment::kPaid);
    return in;
  }

  // Report id -> copies stored, over every person's 2024 ledger.
  std::map<std::string, int> Stored() {
    std::map<std::string, int> stored;
    for (const std::string& person : persons_) {
      auto ledger = reg_->GetLedger(person, 2024);
      EXPECT_TRUE(ledger.ok()) << ledger.status();
      if (!ledger.ok()) continue;
      for (const Entry& e : ledger->entries) ++stored[e.report_id];
    }
    return stored;
  }

  void ExpectVerifyClean() {
    auto rep = reg_->Verify();
    ASSERT_TRUE(rep.ok()) << rep.status();
    EXPECT_THAT(rep->violations, ::testing::IsEmpty());
  }

  // Writers submit random batches until the file system fails under them;
  // the returned ids are those whose batch was acknowledged. The "power"
  // goes after `cut_after` acknowledged batches.
  std::set<std::string> WriteUntilCut(FaultFs* fs, uint64_t seed, int round, int cut_after) {
    absl::Mutex mu;
    std::set<std::string> acked;
    std::atomic<int> batches{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&, w] {
        std::mt19937_64 rng(seed * 7 + w);
        for (int b = 0; b < 10000; ++b) {
          std::vector<core::CoPaymentInput> batch;
          const int size = std::uniform_int_distribution<int>(1, 40)(rng);
          for (int i = 0; i < size; ++i) {
            batch.push_back(Report(absl::StrCat("r", round, "-w", w, "-b", b, "-", i),
                                   std::uniform_int_distribution<int>(0, kPersons - 1)(rng),
                                   std::uniform_int_distribution<int>(0, 300000)(rng),
                                   std::uniform_int_distribution<int>(1000, 90000)(rng)));
          }
          auto results = reg_->Submit(batch);
          if (!results.ok()) return;  // the disk is gone
          absl::MutexLock l(&mu);
          for (const ReportResult& r : *results) {
            EXPECT_EQ(r.outcome, core::Outcome::kAccepted) << r.message;
            acked.insert(r.report_id);
          }
          if (++batches == cut_after) fs->FailWrites(true);
        }
      });
    }
    for (std::thread& t : writers) t.join();
    absl::MutexLock l(&mu);
    return acked;
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::filesystem::path dir_;
  std::vector<std::string> persons_;
  FaultFs fs_;  // for tests that may stop midway: outlives reg_
  std::unique_ptr<Register> reg_;
};

TEST_F(FaultTest, WriteErrorFailsClosedAndLosesNothingAcknowledged) {
  FaultFs fs;
  Open(fs.env());
  auto first = reg_->Submit({Report("before", 0, 60, 400000)});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ((*first)[0].outcome, core::Outcome::kAccepted);

  fs.FailWrites(true);
  auto failed = reg_->Submit({Report("during", 1, 60, 5000)});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()), ::testing::HasSubstr("no space"));

  // The disk recovers, the register does not pretend to: it answers nothing
  // it cannot vouch for until an operator restarts it.
  fs.FailWrites(false);
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reg_->GetLedger(persons_[0], 2024).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reg_->CheckExemption(persons_[0], absl::CivilDay(2024, 6, 1),
                                 core::Category::kPhysician, "desk")
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(reg_->Submit({Report("after", 2, 60, 5000)}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(reg_->SetReservation(persons_[3], true).code(), absl::StatusCode::kUnavailable);

  reg_.reset();
  fs.DropUnsyncedData();
  Open(nullptr);
  std::map<std::string, int> stored = Stored();
  EXPECT_EQ(stored["before"], 1);
  EXPECT_EQ(stored.count("during"), 0u);
  EXPECT_EQ(stored.count("after"), 0u);
  ExpectVerifyClean();
}

// Submits `in` without waiting; the result arrives in *out, then `done`.
void SubmitInBackground(Register* reg, core::CoPaymentInput in,
                        absl::StatusOr<std::vector<ReportResult>>* out, absl::Notification* done) {
  reg->SubmitAsync({std::move(in)}, [out, done](absl::StatusOr<std::vector<ReportResult>> r) {
    *out = std::move(r);
    done->Notify();
  });
}

void FaultTest::SubmitPairAcrossAHeldSync(HeldPair* pair) {
  fs_.HoldSyncs();
  SubmitInBackground(reg_.get(), Report("a", 0, 60, 200000), &pair->first, &pair->first_done);
  fs_.WaitForHeldSync();  // the first group is on its way to disk
  SubmitInBackground(reg_.get(), Report("b", 0, 120, 200000), &pair->second, &pair->second_done);
  absl::SleepFor(absl::Milliseconds(100));  // the writer builds the second group meanwhile
}

TEST_F(FaultTest, GroupBuiltDuringACommitSeesItsChanges) {
  Open(fs_.env());
  HeldPair pair;
  // 2024 cap: 3165 NOK. The first report alone stays below it; the second
  // crosses it only if its group adds to the first one's unwritten total.
  SubmitPairAcrossAHeldSync(&pair);
  auto& [first, second, first_done, second_done] = pair;
  EXPECT_FALSE(first_done.HasBeenNotified());  // nothing is answered before its sync
  fs_.ReleaseSyncs();
  first_done.WaitForNotification();
  second_done.WaitForNotification();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*first)[0].outcome, core::Outcome::kAccepted);
  EXPECT_EQ((*second)[0].outcome, core::Outcome::kAccepted);
  auto ledger = reg_->GetLedger(persons_[0], 2024);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  const SchemeLedger& scheme = ledger->schemes[0];
  EXPECT_EQ(scheme.counted_total, 400000);
  ASSERT_TRUE(scheme.cap_reached_on.has_value());
  EXPECT_EQ(*scheme.cap_reached_on, absl::CivilDay(2024, 1, 1));
  ExpectVerifyClean();
}

TEST_F(FaultTest, GroupBuiltOnAFailedWriteFailsWithIt) {
  Open(fs_.env());
  HeldPair pair;
  SubmitPairAcrossAHeldSync(&pair);
  auto& [first, second, first_done, second_done] = pair;
  fs_.FailWrites(true);  // the held sync fails when released
  fs_.ReleaseSyncs();
  first_done.WaitForNotification();
  second_done.WaitForNotification();
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable) << first.status();
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kUnavailable);

  reg_.reset();
  fs_.FailWrites(false);
  fs_.DropUnsyncedData();
  Open(nullptr);
  std::map<std::string, int> stored = Stored();
  EXPECT_EQ(stored.count("a"), 0u);
  EXPECT_EQ(stored.count("b"), 0u);
  ExpectVerifyClean();
}

TEST_F(FaultTest, FullDiskAtOpenIsOneClearError) {
  FaultFs fs;
  fs.FailWrites(true);
  RegisterOptions o;
  o.data_dir = dir_.string();
  o.secret = kSecret;
  o.rules = &rules_;
  o.clock = &clock_;
  o.open_store = RocksStoreOn(fs.env());
  auto r = Register::Open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("no space"));
}

TEST_F(FaultTest, PowerLossKeepsEveryAcknowledgedReport) {
  const uint64_t rounds = EnvNumber("FRIKORT_POWER_LOSS_ROUNDS", 8);
  const uint64_t seed = EnvNumber("FRIKORT_POWER_LOSS_SEED", std::random_device()());
  std::cerr << "power loss: FRIKORT_POWER_LOSS_SEED=" << seed << "\n";
  std::mt19937_64 rng(seed);
  std::set<std::string> acked;
  for (uint64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round, " of seed ", seed));
    FaultFs fs;
    Open(fs.env());
    const int cut_after = std::uniform_int_distribution<int>(1, 60)(rng);
    std::set<std::string> now_acked =
        WriteUntilCut(&fs, seed + round, static_cast<int>(round), cut_after);
    acked.insert(now_acked.begin(), now_acked.end());
    reg_.reset();
    fs.DropUnsyncedData();

    Open(nullptr);
    std::map<std::string, int> stored = Stored();
    for (const std::string& id : acked) ASSERT_EQ(stored[id], 1) << id;
    for (const auto& [id, copies] : stored) ASSERT_EQ(copies, 1) << id;
    ExpectVerifyClean();
    if (HasFailure()) return;
  }
  EXPECT_GT(acked.size(), 0u);
}

TEST_F(FaultTest, WithoutSyncAPowerLossLosesAcknowledgedReports) {
  // The counterfactual: the same cut with unsynced writes loses what was
  // acknowledged. This is why every configuration syncs.
  FaultFs fs;
  Open(fs.env(), /*sync=*/false);
  std::set<std::string> acked = WriteUntilCut(&fs, 1, 0, 20);
  ASSERT_GE(acked.size(), 20u);
  reg_.reset();
  fs.DropUnsyncedData();
  Open(nullptr);
  std::map<std::string, int> stored = Stored();
  size_t lost = 0;
  for (const std::string& id : acked) lost += stored.count(id) == 0;
  EXPECT_GT(lost, 0u);
}

// The lookup log's WAL is written unsynced and synced by its own thread,
// with no further write or close to prompt it: once that thread has run,
// lookups answered before the power goes are all there.
TEST_F(FaultTest, LookupLogSurvivesAPowerLossAfterItsSyncInterval) {
  FaultFs fs;
  Open(fs.env());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(persons_[0], absl::CivilDay(2024, 6, 1),
                                     core::Category::kUnspecified, absl::StrCat("desk", i))
                    .ok());
  }
  // Waits for the sync thread (every 200 ms; generous for a loaded machine).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fs.UnsyncedBytes(internal::kLookupLogDir) > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(fs.UnsyncedBytes(internal::kLookupLogDir), 0u) << "the lookup log was never synced";
  fs.FailWrites(true);  // the power goes: nothing more reaches the disk
  reg_.reset();
  fs.DropUnsyncedData();
  Open(nullptr);
  auto log = reg_->ListLookups(persons_[0], 100, "");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->items.size(), 5u);
}

// A lookup log that cannot be synced refuses lookups (UNAVAILABLE, naming
// the log) rather than answer ones it may lose.
TEST_F(FaultTest, LookupLogThatCannotSyncRefusesLookups) {
  FaultFs fs;
  Open(fs.env());
  auto look = [&] {
    absl::Notification done;
    absl::Status status;
    reg_->CheckExemptionAsync(persons_[0], absl::CivilDay(2024, 6, 1), core::Category::kUnspecified,
                              "desk", [&](absl::StatusOr<std::vector<SchemeExemption>> got) {
                                status = got.status();
                                done.Notify();
                              });
    done.WaitForNotification();
    return status;
  };
  ASSERT_TRUE(look().ok());
  fs.FailSyncs(true);
  // Lookups go on being logged until the sync thread (every 200 ms; waited
  // for generously, for a loaded machine) has tried and failed.
  absl::Status refused = look();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (refused.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    refused = look();
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(refused.message(), ::testing::HasSubstr("lookup log"));
  auto direct = reg_->CheckExemption(persons_[0], absl::CivilDay(2024, 6, 1),
                                     core::Category::kUnspecified, "desk");
  EXPECT_EQ(direct.status().code(), absl::StatusCode::kUnavailable) << direct.status();
  // The health check says so (operators and load balancers see it) ...
  absl::Status health = reg_->Health();
  EXPECT_EQ(health.code(), absl::StatusCode::kUnavailable) << health;
  EXPECT_THAT(health.message(), ::testing::HasSubstr("lookup log"));
  // ... and it stays so when the disk recovers: a record may be lost, so the
  // register is restarted (and the cause looked at) before lookups resume.
  fs.FailSyncs(false);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(look().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kUnavailable);
  reg_.reset();  // before the file system it writes through
}

}  // namespace
}  // namespace frikort::storage
