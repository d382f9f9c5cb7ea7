// The register on disk: reopening, the secret and the folder lock, no national
// id in clear, damage refused as data loss, the development secret, and
// verification after every kind of change and of a tampered register.
#include <cstdio>
#include <filesystem>
#include <fstream>

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
using core::Scheme;

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
