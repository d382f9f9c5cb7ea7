// Register::Backup and Register::Restore: online backups restore to a register
// that answers exactly like the original; a wrong key, a used folder or a bad
// destination is refused with a clear error and nothing written.
#include "storage/backup.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/backup_engine.h"
#include "storage/register.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kKey(32, 'k');

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    const char* src = std::getenv("FRIKORT_SOURCE_DIR");
    ASSERT_NE(src, nullptr);
    absl::StatusOr<core::RulesTable> rules =
        frikort::testing::ReadRulesFileWithoutAgreementRequirement(
            absl::StrCat(src, "/deploy/rules.txt"));
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    root_ = fs::temp_directory_path() /
            absl::StrCat("frikort_backup_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    absl::StatusOr<std::unique_ptr<Register>> reg = Register::Open(At("data"));
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = *std::move(reg);
  }
  void TearDown() override {
    reg_.reset();
    fs::remove_all(root_);
  }

  RegisterOptions At(const std::string& name, const std::string& key = kKey) {
    RegisterOptions o;
    o.data_dir = (root_ / name).string();
    o.secret = key;
    o.rules = &rules_;
    o.clock = &clock_;
    return o;
  }
  std::string Path(const std::string& name) { return (root_ / name).string(); }

  // `n` reports of 1000 NOK for person `person` in March 2024.
  void Submit(int person, int first, int n) {
    std::vector<core::CoPaymentInput> items;
    for (int i = first; i < first + n; ++i) {
      core::CoPaymentInput in;
      in.report_id = absl::StrCat("r-", person, "-", i);
      in.provider_id = "1234567";
      in.person_id = testing::PersonN(person);
      in.service_time = core::OsloStartOfDay(absl::CivilDay(2024, 3, 1) + i) + absl::Hours(9);
      in.category = static_cast<int>(core::Category::kPhysician);
      in.amount = 100000;
      in.payment = static_cast<int>(core::Payment::kPaid);
      items.push_back(std::move(in));
    }
    absl::StatusOr<std::vector<ReportResult>> r = reg_->Submit(std::move(items));
    ASSERT_TRUE(r.ok()) << r.status();
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  fs::path root_;
  std::unique_ptr<Register> reg_;
};

// A ledger as comparable text.
std::string Describe(const LedgerView& v) {
  std::string out = absl::StrCat(v.person_id, " ", v.year, " reserved=", v.reserved, "\n");
  for (const SchemeLedger& s : v.schemes) {
    absl::StrAppend(&out, static_cast<int>(s.scheme), " cap=", s.cap, " counted=", s.counted_total,
                    " card=", s.card.has_value(), " refunded=", s.refunded, "\n");
  }
  for (const Entry& e : v.entries) {
    absl::StrAppend(&out, e.report_id, " ", e.amount, " ", e.counted, " ", e.cancelled, "\n");
  }
  return out;
}

TEST_F(BackupTest, OnlineBackupRestoresToTheSameAnswers) {
  for (int p = 0; p < 5; ++p) Submit(p, 0, 3);
  // Writes go on while the backup runs; what was acknowledged before it is in it.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 100; !stop.load() && i < 400; ++i) Submit(9, i, 1);
  });
  absl::StatusOr<BackupInfo> info = reg_->Backup(Path("backups"));
  stop = true;
  writer.join();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->backup_id, 1u);
  EXPECT_EQ(info->backups_in_dest, 1);
  EXPECT_GT(info->files, 0u);
  EXPECT_GT(info->size_bytes, 0u);
  ASSERT_TRUE(reg_->SetReservation(testing::PersonN(2), true).ok());
  absl::StatusOr<BackupInfo> second = reg_->Backup(Path("backups"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->backup_id, 2u);
  EXPECT_EQ(second->backups_in_dest, 2);

  absl::StatusOr<Register::RestoreReport> restored =
      Register::Restore(Path("backups"), At("restored"));
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->backup.backup_id, 2u);
  EXPECT_TRUE(restored->verify.violations.empty());
  EXPECT_GE(restored->verify.persons, 5u);

  absl::StatusOr<std::unique_ptr<Register>> copy = Register::Open(At("restored"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  for (int p : {0, 1, 2, 3, 4, 9}) {
    absl::StatusOr<LedgerView> a = reg_->GetLedger(testing::PersonN(p), 2024);
    absl::StatusOr<LedgerView> b = (*copy)->GetLedger(testing::PersonN(p), 2024);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(Describe(*a), Describe(*b)) << "person " << p;
  }
  absl::StatusOr<LedgerView> reserved = (*copy)->GetLedger(testing::PersonN(2), 2024);
  EXPECT_TRUE(reserved->reserved);
}

// The lookup log lives in a database of its own: it is backed up with the
// register, and the restore brings back the log of the backup it restores.
TEST_F(BackupTest, LookupLogIsBackedUpAndRestoredWithTheRegister) {
  Submit(1, 0, 1);
  auto look = [&](const std::string& caller) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(testing::PersonN(1), absl::CivilDay(2024, 6, 1),
                                     core::Category::kUnspecified, caller)
                    .ok());
  };
  look("before-1");
  look("before-2");
  ASSERT_TRUE(reg_->Backup(Path("backups")).ok());
  look("after");  // not in the backup
  // A lookup log backup that no register backup names (as a backup that
  // failed after its log was copied leaves): the restore takes the named one,
  // not the newest.
  {
    rocksdb::Options scratch_options;
    scratch_options.create_if_missing = true;
    rocksdb::DB* scratch = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(scratch_options, Path("scratch"), &scratch).ok());
    std::unique_ptr<rocksdb::DB> owned(scratch);
    rocksdb::BackupEngine* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions(Path("backups/lookup-log")),
                                    rocksdb::Env::Default(), &raw)
            .ok());
    std::unique_ptr<rocksdb::BackupEngine> engine(raw);
    ASSERT_TRUE(engine->CreateNewBackup(scratch).ok());
  }
  ASSERT_TRUE(Register::Restore(Path("backups"), At("restored")).ok());
  absl::StatusOr<std::unique_ptr<Register>> copy = Register::Open(At("restored"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  absl::StatusOr<Page<LookupRecord>> log = (*copy)->ListLookups(testing::PersonN(1), 100, "");
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<std::string> callers;
  for (const LookupRecord& r : log->items) callers.push_back(r.caller);
  EXPECT_EQ(callers, (std::vector<std::string>{"before-2", "before-1"}));
}

TEST_F(BackupTest, BackupWithoutItsLookupLogIsRefusedBeforeAnythingIsWritten) {
  Submit(1, 0, 1);
  ASSERT_TRUE(reg_->Backup(Path("backups")).ok());
  fs::remove_all(fs::path(Path("backups")) / internal::kLookupLogDir);
  absl::StatusOr<Register::RestoreReport> r = Register::Restore(Path("backups"), At("restored"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("lookup log backup 1"));
  EXPECT_THAT(r.status().message(), HasSubstr("Nothing was written"));
  EXPECT_FALSE(fs::exists(Path("restored")));
}

TEST_F(BackupTest, WrongKeyIsRefusedBeforeAnythingIsWritten) {
  Submit(1, 0, 2);
  ASSERT_TRUE(reg_->Backup(Path("backups")).ok());
  absl::StatusOr<Register::RestoreReport> r =
      Register::Restore(Path("backups"), At("restored", std::string(32, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("pseudonym key does not match"));
  EXPECT_FALSE(fs::exists(Path("restored")));
}

TEST_F(BackupTest, RestoreOnlyIntoANewFolder) {
  ASSERT_TRUE(reg_->Backup(Path("backups")).ok());
  fs::create_directories(Path("used"));
  std::ofstream(Path("used") + "/CURRENT") << "x";
  absl::StatusOr<Register::RestoreReport> r = Register::Restore(Path("backups"), At("used"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("not empty"));

  // Development mode's key file may be there already, and stays.
  fs::create_directories(Path("dev"));
  std::ofstream(Path("dev") + "/pseudonym.key") << "the key\n";
  r = Register::Restore(Path("backups"), At("dev"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(fs::exists(Path("dev") + "/pseudonym.key"));
}

TEST_F(BackupTest, MissingOrEmptyBackupFolder) {
  absl::StatusOr<Register::RestoreReport> r = Register::Restore(Path("nothing"), At("restored"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("no such folder"));
  fs::create_directories(Path("empty"));
  r = Register::Restore(Path("empty"), At("restored"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("holds no backup"));
}

TEST_F(BackupTest, BadDestinations) {
  absl::StatusOr<BackupInfo> r = reg_->Backup("relative/backups");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("absolute"));
  r = reg_->Backup(Path("data") + "/backups");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("inside the data folder"));
  r = reg_->Backup(Path("data"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frikort::storage
