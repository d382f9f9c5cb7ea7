// The person's payout listing: written with every payout, built for older
// registers by the migration payouts_by_person, and checked by Verify.
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "storage/migrate_payouts_by_person.h"
#include "storage/register.h"
#include "storage/rocks_store.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MakePersonId;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const std::string kSecret(32, 's');

class PayoutsByPersonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    dir_ = frikort::testing::FreshTestDir("frikort_payouts_by_person_test_");
    Reopen();
  }
  void TearDown() override {
    reg_.reset();
    std::filesystem::remove_all(dir_);
  }
  RegisterOptions Options() {
    RegisterOptions o;
    o.data_dir = dir_.string();
    o.secret = kSecret;
    o.rules = &rules_;
    o.clock = &clock_;
    return o;
  }
  void Reopen() {
    reg_.reset();
    auto r = Register::Open(Options());
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }

  void Report(const std::string& id, const std::string& person, absl::CivilDay day,
              core::Ore amount) {
    auto r = reg_->Submit({frikort::testing::PaidPhysicianReport(id, person, day, amount)});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ((*r)[0].outcome, core::Outcome::kAccepted) << (*r)[0].message;
  }
  // One issuance run as of `as_of`: cards and payouts for every due ledger.
  void Issue(absl::CivilDay as_of) {
    auto run = reg_->AllocateRunId();
    ASSERT_TRUE(run.ok()) << run.status();
    auto out = reg_->DecideNext(
        {*run, as_of, false, as_of}, std::make_shared<DueCursor>(), 100,
        [as_of](const core::LedgerState& s) { return core::DecideIssuance(s, as_of); });
    ASSERT_TRUE(out.ok()) << out.status();
  }
  // Removes, directly in the store, what a register written before the
  // person's listing existed would not hold: its keys and the migration mark.
  void MakeOld(bool keep_mark = false) {
    reg_.reset();
    auto store = OpenRocksStore(RocksStoreOptionsFrom(Options()));
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<std::string> person_keys;
    ScanRange range;
    range.prefix = "P";
    ASSERT_TRUE((*store)
                    ->Scan(Table::kPayouts, range,
                           [&](absl::string_view k, absl::string_view) {
                             person_keys.emplace_back(k);
                             return true;
                           })
                    .ok());
    ASSERT_THAT(person_keys, Not(IsEmpty()));
    WriteSet w;
    for (const std::string& k : person_keys) {
      w.tables[static_cast<int>(Table::kPayouts)].push_back({k, nullptr});
    }
    if (!keep_mark) {
      w.tables[static_cast<int>(Table::kMeta)].push_back({kPayoutsByPersonMigration, nullptr});
    }
    ASSERT_TRUE((*store)->Commit(w).ok());
    store->reset();
    Reopen();
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::filesystem::path dir_;
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
  const std::string bob_ = MakePersonId(2, 11, 91, 0);
};

// Alice over the 2024 cap twice (two runs, two payouts); Bob over it once.
TEST_F(PayoutsByPersonTest, EachPersonSeesOnlyTheirOwnPayoutsInRunOrder) {
  Report("a1", alice_, absl::CivilDay(2024, 3, 1), 320000);
  Report("b1", bob_, absl::CivilDay(2024, 3, 2), 330000);
  Issue(absl::CivilDay(2024, 4, 1));
  Report("a2", alice_, absl::CivilDay(2024, 5, 1), 5000);
  Issue(absl::CivilDay(2024, 6, 1));

  auto alice = reg_->ListPersonPayouts(alice_, 2024);
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_THAT(*alice, SizeIs(2));
  EXPECT_EQ((*alice)[0].amount, 320000 - 316500);
  EXPECT_EQ((*alice)[0].run_id, "run-000001");
  EXPECT_EQ((*alice)[1].amount, 5000);
  EXPECT_EQ((*alice)[1].run_id, "run-000002");
  EXPECT_EQ((*alice)[1].person_id, alice_);
  auto bob = reg_->ListPersonPayouts(bob_, 2024);
  ASSERT_TRUE(bob.ok());
  ASSERT_THAT(*bob, SizeIs(1));
  EXPECT_EQ((*bob)[0].amount, 330000 - 316500);
  EXPECT_THAT(*reg_->ListPersonPayouts(alice_, 2023), IsEmpty());
  EXPECT_EQ(reg_->ListPersonPayouts("12345678901", 2024).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto verified = reg_->Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_THAT(verified->violations, IsEmpty());
  EXPECT_EQ(verified->payouts, 3u);
}

TEST_F(PayoutsByPersonTest, MigrationBuildsTheListingOfAnOlderRegisterOnce) {
  Report("a1", alice_, absl::CivilDay(2024, 3, 1), 320000);
  Report("b1", bob_, absl::CivilDay(2024, 3, 2), 330000);
  Issue(absl::CivilDay(2024, 4, 1));
  MakeOld();  // reopened: the migration ran

  auto alice = reg_->ListPersonPayouts(alice_, 2024);
  ASSERT_TRUE(alice.ok()) << alice.status();
  ASSERT_THAT(*alice, SizeIs(1));
  EXPECT_EQ((*alice)[0].amount, 320000 - 316500);
  ASSERT_THAT(*reg_->ListPersonPayouts(bob_, 2024), SizeIs(1));
  auto verified = reg_->Verify();
  ASSERT_TRUE(verified.ok());
  EXPECT_THAT(verified->violations, IsEmpty());

  // Recorded as done: opening again indexes nothing.
  reg_.reset();
  auto store = OpenRocksStore(RocksStoreOptionsFrom(Options()));
  ASSERT_TRUE(store.ok());
  auto mark = (*store)->Get(Table::kMeta, kPayoutsByPersonMigration);
  ASSERT_TRUE(mark.ok());
  EXPECT_TRUE(mark->has_value());
  auto again = MigratePayoutsByPerson(**store);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

TEST_F(PayoutsByPersonTest, VerifyFindsAPayoutMissingFromThePersonsListing) {
  Report("a1", alice_, absl::CivilDay(2024, 3, 1), 320000);
  Issue(absl::CivilDay(2024, 4, 1));
  MakeOld(/*keep_mark=*/true);  // the listing lost, the migration marked done
  auto verified = reg_->Verify();
  ASSERT_TRUE(verified.ok());
  ASSERT_THAT(verified->violations, SizeIs(1));
  EXPECT_THAT(verified->violations[0], HasSubstr("missing from the person's payout listing"));
}

}  // namespace
}  // namespace frikort::storage
