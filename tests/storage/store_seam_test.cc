// The register over other Stores than RocksDB (an in-memory one, and
// PostgreSQL on a server of the test's own): the seam is all the register
// needs, and a failed commit closes the register with the store's own status
// code (DATA_LOSS for damage, UNAVAILABLE for I/O). Every case runs over each
// store.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/pg_store.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/mem_store.h"
#include "tests/testing/oslo.h"
#include "tests/testing/pg_server.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MakePersonId;
using ::frikort::testing::MemStore;

// Any store, with its commits counted and, when told, failed before they
// reach it.
class ObservedStore : public Store {
 public:
  explicit ObservedStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  int commits() const { return commits_; }
  void FailCommits(absl::Status s) {
    absl::MutexLock l(&mu_);
    commit_failure_ = std::move(s);
  }

  absl::StatusOr<std::optional<std::string>> Get(Table t, absl::string_view key) override {
    return inner_->Get(t, key);
  }
  absl::Status MultiGet(
      Table t, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    return inner_->MultiGet(t, keys, sorted, found);
  }
  absl::Status Scan(
      Table t, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    return inner_->Scan(t, range, visit);
  }
  absl::Status Commit(const WriteSet& writes) override {
    {
      absl::MutexLock l(&mu_);
      if (!commit_failure_.ok()) return commit_failure_;
    }
    ++commits_;
    return inner_->Commit(writes);
  }
  std::unique_ptr<StoreReader> Snapshot() override { return inner_->Snapshot(); }
  absl::Status AppendLookups(
      absl::Span<const std::pair<std::string, std::string>> records) override {
    return inner_->AppendLookups(records);
  }
  absl::Status SyncLookups() override { return inner_->SyncLookups(); }
  uint64_t ApproximateSizeBytes() override { return inner_->ApproximateSizeBytes(); }
  uint64_t PendingCompactionBytes() override { return inner_->PendingCompactionBytes(); }
  absl::StatusOr<BackupInfo> Backup(const std::string& dest, absl::string_view check) override {
    return inner_->Backup(dest, check);
  }

 private:
  const std::unique_ptr<Store> inner_;
  std::atomic<int> commits_{0};
  absl::Mutex mu_;
  absl::Status commit_failure_ ABSL_GUARDED_BY(mu_);
};

enum class Engine { kMemory, kPostgres };

class StoreSeamTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    std::string dsn;
    if (GetParam() == Engine::kPostgres) {
      absl::StatusOr<frikort::testing::PgServer*> server = frikort::testing::PgServer::Shared();
      ASSERT_TRUE(server.ok()) << server.status();
      absl::StatusOr<std::string> db = (*server)->CreateDatabase();
      ASSERT_TRUE(db.ok()) << db.status();
      dsn = *db;
    }
    RegisterOptions o;
    o.secret = std::string(32, 'm');
    o.rules = &rules_;
    o.clock = &clock_;
    o.open_store = [this, dsn](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
      std::unique_ptr<Store> inner;
      if (dsn.empty()) {
        inner = std::make_unique<MemStore>();
      } else {
        absl::StatusOr<std::unique_ptr<Store>> pg = OpenPgStore(PgStoreOptions{.dsn = dsn});
        if (!pg.ok()) return pg.status();
        inner = *std::move(pg);
      }
      auto store = std::make_unique<ObservedStore>(std::move(inner));
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
  ObservedStore* store_ = nullptr;  // owned by the register
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
};

TEST_P(StoreSeamTest, TheRegisterRunsOverAnyStore) {
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

TEST_P(StoreSeamTest, DamageReportedByTheStoreClosesTheRegisterAsDataLoss) {
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

TEST_P(StoreSeamTest, AnIoFailureClosesTheRegisterAsUnavailable) {
  store_->FailCommits(absl::UnavailableError("no space left on device"));
  auto r = reg_->Submit({Report("r1", 5000)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(reg_->Health().code(), absl::StatusCode::kUnavailable);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreSeamTest,
                         ::testing::Values(Engine::kMemory, Engine::kPostgres),
                         [](const ::testing::TestParamInfo<Engine>& info) {
                           return info.param == Engine::kMemory ? "Memory" : "Postgres";
                         });

}  // namespace
}  // namespace frikort::storage
