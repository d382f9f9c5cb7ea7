// The register over another Store than RocksDB (an in-memory one): the seam
// is all the register needs, and a failed commit closes the register with the
// store's own status code (DATA_LOSS for damage, UNAVAILABLE for I/O).
#include <memory>
#include <string>
#include <utility>

#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/mem_store.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MakePersonId;
using ::frikort::testing::MemStore;

class StoreSeamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(core::InitOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    RegisterOptions o;
    o.secret = std::string(32, 'm');
    o.rules = &rules_;
    o.clock = &clock_;
    o.open_store = [this](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
      auto store = std::make_unique<MemStore>();
      store_ = store.get();
      return store;
    };
    auto r = Register::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }

  core::CoPaymentInput Report(const std::string& id, core::Ore amount) {
    core::CoPaymentInput in;
    in.report_id = id;
    in.provider_id = "1234567";
    in.person_id = alice_;
    in.service_time = core::OsloStartOfDay(absl::CivilDay(2024, 3, 1)) + absl::Hours(12);
    in.category = static_cast<int>(core::Category::kPhysician);
    in.amount = amount;
    in.payment = static_cast<int>(core::Payment::kPaid);
    return in;
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  MemStore* store_ = nullptr;  // owned by the register
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
};

TEST_F(StoreSeamTest, TheRegisterRunsOverAnyStore) {
  auto r = reg_->Submit({Report("r1", 400000)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].outcome, core::Outcome::kAccepted);
  EXPECT_GE(store_->commits(), 2) << "the secret check, then the report's group";
  auto ledger = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ASSERT_EQ(ledger->entries.size(), 1u);
  EXPECT_EQ(ledger->schemes[0].counted_total, 400000);
  EXPECT_TRUE(ledger->schemes[0].cap_reached_on.has_value());
  auto verify = reg_->Verify();
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->violations.empty());
  EXPECT_EQ(verify->entries, 1u);
  EXPECT_EQ(verify->due_markers, 1u);
}

TEST_F(StoreSeamTest, DamageReportedByTheStoreClosesTheRegisterAsDataLoss) {
  store_->FailCommits(absl::DataLossError("checksum mismatch in a table file"));
  auto r = reg_->Submit({Report("r1", 5000)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("nothing of this call"));
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kDataLoss);
  // Closed: later calls are refused, reads too, even once the store would work.
  store_->FailCommits(absl::OkStatus());
  EXPECT_EQ(reg_->Submit({Report("r2", 5000)}).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(reg_->GetLedger(alice_, 2024).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(StoreSeamTest, AnIoFailureClosesTheRegisterAsUnavailable) {
  store_->FailCommits(absl::UnavailableError("no space left on device"));
  auto r = reg_->Submit({Report("r1", 5000)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace frikort::storage
