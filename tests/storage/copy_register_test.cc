// Moving a register from RocksDB into PostgreSQL (storage/copy_register.h), on
// a PostgreSQL of the test's own (tests/testing/pg_server.h): every table and
// the lookup log arrive row for row in chunks, the copy opens as a register
// that reads the same and verifies clean; a target that is not empty, a
// source that is not a register or was made with another key are refused
// before anything is written; an interrupted copy leaves a target that
// neither a register nor a second copy opens until it is emptied.
#include "storage/copy_register.h"

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ledger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/crypto.h"
#include "storage/pg_store.h"
#include "storage/rocks_store.h"
#include "tests/storage/register_fixture.h"
#include "tests/testing/mem_store.h"
#include "tests/testing/pg_server.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MemStore;
using ::testing::HasSubstr;
using Rows = std::vector<std::pair<std::string, std::string>>;

// A MemStore whose commits fail from the `n`th on (a copy cut off midway).
class MemStoreFailingFrom : public MemStore {
 public:
  explicit MemStoreFailingFrom(int n) : n_(n) {}
  absl::Status Commit(const WriteSet& writes) override {
    if (++calls_ == n_) FailCommits(absl::UnavailableError("connection lost"));
    return MemStore::Commit(writes);
  }

 private:
  const int n_;
  int calls_ = 0;
};

Rows AllRows(StoreReader& store, Table t) {
  Rows out;
  absl::Status s = store.Scan(t, {}, [&](absl::string_view k, absl::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

class CopyRegisterTest : public RegisterTest {
 protected:
  void SetUp() override {
    RegisterTest::SetUp();
    absl::StatusOr<frikort::testing::PgServer*> server = frikort::testing::PgServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::string> dsn = (*server)->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }

  // The register in PostgreSQL, under `secret`.
  RegisterOptions PgOptions(const std::string& secret = kSecret) {
    RegisterOptions o = Options(secret);
    o.data_dir = "PostgreSQL";
    o.open_store = [dsn = dsn_](const RegisterOptions&) {
      return OpenPgStore(PgStoreOptions{.dsn = dsn});
    };
    return o;
  }

  std::unique_ptr<Store> OpenPg() {
    absl::StatusOr<std::unique_ptr<Store>> s = OpenPgStore(PgStoreOptions{.dsn = dsn_});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // Reports over the cap for alice (a card and a payout), a cancellation,
  // bob reserved, and lookups of both.
  void FillSource() {
    for (int i = 0; i < 12; ++i) {
      SubmitOne(Report("r" + std::to_string(i), i % 2 == 0 ? alice_ : bob_,
                       absl::CivilDay(2024, 2, 1 + i), 60000));
    }
    ASSERT_TRUE(reg_->Cancel("1234567", "r1", "wrong patient").ok());
    auto run = reg_->AllocateRunId();
    ASSERT_TRUE(run.ok()) << run.status();
    auto out =
        reg_->DecideNext({*run, absl::CivilDay(2024, 5, 1), false, absl::CivilDay(2024, 5, 1)},
                         std::make_shared<DueCursor>(), 10, [](const core::LedgerState& s) {
                           return core::DecideIssuance(s, absl::CivilDay(2024, 5, 1));
                         });
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_TRUE(reg_->SetReservation(bob_, true).ok());
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(reg_->CheckExemption(i % 2 == 0 ? alice_ : bob_, absl::CivilDay(2024, 6, 1 + i),
                                       core::Category::kUnspecified, "caller-" + std::to_string(i))
                      .ok());
    }
  }

  std::string dsn_;
};

TEST_F(CopyRegisterTest, CopiesEveryTableAndTheLookupLogInChunks) {
  FillSource();
  auto alice_before = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(alice_before.ok());
  ASSERT_TRUE(alice_before->schemes[0].card.has_value()) << "the source has a card";
  const std::vector<std::string> lookups_before = AllLookupCallers(alice_, 2);
  reg_.reset();

  // Chunks of 3 rows: every table takes several commits.
  absl::StatusOr<CopyRegisterReport> r =
      CopyRegister(Options(kSecret), PgOptions(), CopyOptions{.chunk_rows = 3});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->verify.violations, ::testing::IsEmpty());
  EXPECT_EQ(r->verify.entries, 12u);
  EXPECT_EQ(r->verify.cards, 1u);
  EXPECT_EQ(r->copied[static_cast<int>(Table::kLookups)], 7u);

  // Row for row, every table.
  absl::StatusOr<std::unique_ptr<Store>> rocks =
      OpenRocksStore(RocksStoreOptionsFrom(Options(kSecret)));
  ASSERT_TRUE(rocks.ok()) << rocks.status();
  {
    std::unique_ptr<Store> pg = OpenPg();
    ASSERT_NE(pg, nullptr);
    for (int t = 0; t < kNumTables; ++t) {
      const Rows source = AllRows(**rocks, static_cast<Table>(t));
      EXPECT_EQ(AllRows(*pg, static_cast<Table>(t)), source) << TableName(static_cast<Table>(t));
      EXPECT_EQ(r->copied[t], source.size()) << TableName(static_cast<Table>(t));
    }
  }
  rocks->reset();

  // The copy is the register: same ledgers, same lookup log, serving.
  auto opened = Register::Open(PgOptions());
  ASSERT_TRUE(opened.ok()) << opened.status();
  reg_ = *std::move(opened);
  auto alice_after = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(alice_after.ok());
  ASSERT_EQ(alice_after->entries.size(), alice_before->entries.size());
  for (size_t i = 0; i < alice_after->entries.size(); ++i) {
    EXPECT_EQ(alice_after->entries[i].report_id, alice_before->entries[i].report_id);
    EXPECT_EQ(alice_after->entries[i].amount, alice_before->entries[i].amount);
  }
  EXPECT_EQ(alice_after->schemes[0].card->valid_from, alice_before->schemes[0].card->valid_from);
  EXPECT_TRUE(reg_->GetLedger(bob_, 2024)->reserved);
  EXPECT_EQ(AllLookupCallers(alice_, 2), lookups_before);
  EXPECT_EQ(SubmitOne(Report("r0", alice_, absl::CivilDay(2024, 2, 1), 60000)).outcome,
            core::Outcome::kDuplicate);
  EXPECT_EQ(SubmitOne(Report("new", alice_, absl::CivilDay(2024, 7, 1), 100)).outcome,
            core::Outcome::kAccepted);
}

TEST_F(CopyRegisterTest, RefusesATargetThatIsNotEmpty) {
  FillSource();
  reg_.reset();
  {
    std::unique_ptr<Store> pg = OpenPg();
    ASSERT_NE(pg, nullptr);
    const std::string value = "x";
    WriteSet w;
    w.tables[static_cast<int>(Table::kCards)].push_back({"k", &value});
    ASSERT_TRUE(pg->Commit(w).ok());
  }
  absl::StatusOr<CopyRegisterReport> r = CopyRegister(Options(kSecret), PgOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("not empty (table cards holds rows)"));
  std::unique_ptr<Store> pg = OpenPg();
  EXPECT_TRUE(AllRows(*pg, Table::kMeta).empty()) << "nothing written";
}

TEST_F(CopyRegisterTest, RefusesAnotherKeyAndAFolderWithoutARegister) {
  FillSource();
  reg_.reset();
  const std::string other(32, 'o');
  absl::StatusOr<CopyRegisterReport> r = CopyRegister(Options(other), PgOptions(other));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("pseudonym key does not match"));

  RegisterOptions empty = Options(kSecret);
  empty.data_dir = (dir_ / "nothing-here").string();
  std::filesystem::create_directories(empty.data_dir);
  r = CopyRegister(empty, PgOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("holds no register"));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(empty.data_dir) / "CURRENT"))
      << "no register created where there was none";

  std::unique_ptr<Store> pg = OpenPg();
  for (int t = 0; t < kNumTables; ++t) {
    EXPECT_TRUE(AllRows(*pg, static_cast<Table>(t)).empty()) << TableName(static_cast<Table>(t));
  }
}

TEST_F(CopyRegisterTest, AnInterruptedCopyIsRefusedUntilTheTargetIsEmptied) {
  FillSource();
  reg_.reset();
  auto source = OpenRocksStore(RocksStoreOptionsFrom(Options(kSecret)));
  ASSERT_TRUE(source.ok()) << source.status();
  auto crypto = Crypto::Create(kSecret);
  ASSERT_TRUE(crypto.ok());
  MemStoreFailingFrom target(4);
  absl::StatusOr<CopyCounts> cut =
      CopyStore(**source, target, crypto->SecretCheck(), CopyOptions{.chunk_rows = 2});
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kUnavailable);
  const MemStore::Tables left = target.tables();

  // A second copy says what happened and how to start over.
  MemStore again(left);
  absl::StatusOr<CopyCounts> second = CopyStore(**source, again, crypto->SecretCheck());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("interrupted copy; empty it"));

  // The register does not open the half copy.
  RegisterOptions o = Options(kSecret);
  o.open_store = [left](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
    return std::make_unique<MemStore>(left);
  };
  EXPECT_EQ(Register::Open(o).status().code(), absl::StatusCode::kFailedPrecondition);

  // Emptied, the copy goes through.
  MemStore fresh;
  absl::StatusOr<CopyCounts> full = CopyStore(**source, fresh, crypto->SecretCheck());
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(fresh.Get(Table::kMeta, "secret_check")->value_or(""), crypto->SecretCheck());
}

}  // namespace
}  // namespace frikort::storage
