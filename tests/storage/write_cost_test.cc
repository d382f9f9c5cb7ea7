// What one report may cost the single writer: a change never reads the
// person's other entries (the ledger keeps counted øre per service day), one
// person-year holds a bounded number of entries, and a register written
// before the day sums gets them when it opens (the "day_sums" migration).
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "storage/migrate_day_sums.h"
#include "storage/records.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/mem_store.h"
#include "tests/testing/oslo.h"

namespace frikort::storage {
namespace {

using core::RejectReason;
using ::frikort::testing::MakePersonId;
using ::frikort::testing::MemStore;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// An in-memory store that counts the scans of the entries table.
class CountingStore : public MemStore {
 public:
  using MemStore::MemStore;
  absl::Status Scan(
      Table t, const ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    if (t == Table::kEntries) ++entry_scans;
    return MemStore::Scan(t, range, visit);
  }
  std::atomic<int> entry_scans{0};
};

class WriteCostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRulesWithoutAgreementRequirement();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
  }
  // Opens a register over a counting store holding `tables`.
  void Open(MemStore::Tables tables = {}, int max_entries = 10000) {
    reg_.reset();
    RegisterOptions o;
    o.secret = std::string(32, 'm');
    o.rules = &rules_;
    o.clock = &clock_;
    o.max_entries_per_person_year = max_entries;
    o.open_store = [this,
                    &tables](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
      auto store = std::make_unique<CountingStore>(std::move(tables));
      store_ = store.get();
      return store;
    };
    auto r = Register::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }
  // Everything the store holds now.
  MemStore::Tables Copy() {
    MemStore::Tables tables;
    std::unique_ptr<StoreReader> snap = store_->Snapshot();
    for (int t = 0; t < kNumTables; ++t) {
      EXPECT_TRUE(snap->Scan(static_cast<Table>(t), ScanRange{},
                             [&](absl::string_view k, absl::string_view v) {
                               tables[t].emplace(std::string(k), std::string(v));
                               return true;
                             })
                      .ok());
    }
    return tables;
  }

  core::CoPaymentInput Report(const std::string& id, const std::string& person, absl::CivilDay day,
                              core::Ore amount) {
    return frikort::testing::PaidPhysicianReport(id, person, day, amount);
  }
  // Changes, counting the entry scans they make (reads, such as GetLedger's
  // listing of the entries, are not counted).
  std::vector<ReportResult> Submit(std::vector<core::CoPaymentInput> items) {
    const int before = store_->entry_scans;
    auto r = reg_->Submit(std::move(items));
    write_scans_ += store_->entry_scans - before;
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<ReportResult>{};
  }
  SchemeLedger Tak(const std::string& person, int year) {
    auto v = reg_->GetLedger(person, year);
    EXPECT_TRUE(v.ok()) << v.status();
    for (const auto& s : v->schemes) {
      if (s.scheme == core::Scheme::kTak) return s;
    }
    return {};
  }
  ReportResult Cancel(const std::string& report_id) {
    const int before = store_->entry_scans;
    auto r = reg_->Cancel("1234567", report_id, "wrong person");
    write_scans_ += store_->entry_scans - before;
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ReportResult{};
  }
  ReportResult Pay(const std::string& report_id) {
    const int before = store_->entry_scans;
    auto r = reg_->UpdatePayment("1234567", report_id, static_cast<int>(core::Payment::kPaid));
    write_scans_ += store_->entry_scans - before;
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ReportResult{};
  }
  std::vector<std::string> Violations() {
    auto v = reg_->Verify();
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->violations : std::vector<std::string>{};
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  CountingStore* store_ = nullptr;  // owned by the register
  int write_scans_ = 0;
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
  const std::string bob_ = MakePersonId(2, 7, 91, 1);
};

TEST_F(WriteCostTest, OutOfOrderReportsAndCancellationsNeverReadThePersonsEntries) {
  Open();
  // 400 reports of 10 kr from March on cross the 2024 cap (3165 kr) in August.
  std::vector<core::CoPaymentInput> history;
  for (int i = 0; i < 400; ++i) {
    history.push_back(
        Report(absl::StrCat("h", i), alice_, absl::CivilDay(2024, 3, 1) + i / 2, 1000));
  }
  Submit(std::move(history));
  const absl::CivilDay crossed = Tak(alice_, 2024).cap_reached_on.value();
  EXPECT_EQ(crossed, absl::CivilDay(2024, 3, 1) + 316 / 2);
  write_scans_ = 0;

  // Reports dated before the crossing move it earlier; cancelling them and
  // one of the history moves it back and later.
  Submit({Report("early1", alice_, absl::CivilDay(2024, 2, 1), 50000),
          Report("early2", alice_, absl::CivilDay(2024, 3, 1), 50000)});
  EXPECT_EQ(Tak(alice_, 2024).cap_reached_on, absl::CivilDay(2024, 3, 1) + 216 / 2);
  ASSERT_EQ(Cancel("early1").outcome, core::Outcome::kAccepted);
  ASSERT_EQ(Cancel("early2").outcome, core::Outcome::kAccepted);
  ASSERT_EQ(Cancel("h0").outcome, core::Outcome::kAccepted);
  EXPECT_EQ(Tak(alice_, 2024).cap_reached_on, absl::CivilDay(2024, 3, 1) + 317 / 2);
  EXPECT_EQ(Tak(alice_, 2024).counted_total, 399 * 1000);
  // An unpaid report paid later counts from its own day.
  auto unpaid = Report("late-paid", alice_, absl::CivilDay(2024, 1, 2), 400000);
  unpaid.payment = static_cast<int>(core::Payment::kInvoicedUnpaid);
  Submit({unpaid});
  EXPECT_EQ(Tak(alice_, 2024).cap_reached_on, absl::CivilDay(2024, 3, 1) + 317 / 2);
  ASSERT_EQ(Pay("late-paid").outcome, core::Outcome::kAccepted);
  EXPECT_EQ(Tak(alice_, 2024).cap_reached_on, absl::CivilDay(2024, 1, 2));

  EXPECT_EQ(write_scans_, 0)
      << "a report, a cancellation or a payment update read the person's entries";
  EXPECT_THAT(Violations(), ::testing::IsEmpty());
}

TEST_F(WriteCostTest, APersonYearHoldsABoundedNumberOfEntries) {
  Open({}, /*max_entries=*/5);
  std::vector<core::CoPaymentInput> batch;
  for (int i = 0; i < 7; ++i) {
    batch.push_back(Report(absl::StrCat("a", i), alice_, absl::CivilDay(2024, 3, 1 + i), 100));
  }
  batch.push_back(Report("b0", bob_, absl::CivilDay(2024, 3, 1), 100));
  batch.push_back(Report("a-2023", alice_, absl::CivilDay(2023, 3, 1), 100));
  const std::vector<ReportResult> r = Submit(std::move(batch));
  ASSERT_EQ(r.size(), 9u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r[i].outcome, core::Outcome::kAccepted) << i;
  for (int i = 5; i < 7; ++i) {
    EXPECT_EQ(r[i].outcome, core::Outcome::kRejected) << i;
    EXPECT_EQ(r[i].reason, RejectReason::kPersonYearFull);
    EXPECT_THAT(r[i].message, HasSubstr("person_id"));
    EXPECT_THAT(r[i].message, HasSubstr("2024"));
    EXPECT_THAT(r[i].message, Not(HasSubstr(alice_)));
  }
  // Other persons and other years go on; a stored report is still a duplicate.
  EXPECT_EQ(r[7].outcome, core::Outcome::kAccepted);
  EXPECT_EQ(r[8].outcome, core::Outcome::kAccepted);
  EXPECT_EQ(Submit({Report("a0", alice_, absl::CivilDay(2024, 3, 1), 100)})[0].outcome,
            core::Outcome::kDuplicate);
  // A cancelled entry is still held: cancelling frees no room.
  ASSERT_EQ(Cancel("a0").outcome, core::Outcome::kAccepted);
  EXPECT_EQ(Submit({Report("a7", alice_, absl::CivilDay(2024, 4, 1), 100)})[0].reason,
            RejectReason::kPersonYearFull);
  EXPECT_EQ(Tak(alice_, 2024).counted_total, 400);
  EXPECT_THAT(Violations(), ::testing::IsEmpty());
}

TEST_F(WriteCostTest, ARegisterWrittenBeforeTheDaySumsGetsThemWhenItOpens) {
  Open();
  std::vector<core::CoPaymentInput> reports;
  for (int i = 0; i < 50; ++i) {
    reports.push_back(
        Report(absl::StrCat("a", i), alice_, absl::CivilDay(2024, 1, 1) + 5 * i, 9000));
    reports.push_back(Report(absl::StrCat("b", i), bob_, absl::CivilDay(2023, 1, 1) + i, 100));
  }
  Submit(std::move(reports));
  ASSERT_EQ(Cancel("a3").outcome, core::Outcome::kAccepted);
  const SchemeLedger want = Tak(alice_, 2024);
  ASSERT_TRUE(want.cap_reached_on.has_value());

  // The records as a register before the day sums wrote them: no sums in
  // the ledgers, no entry counts in the persons, no migration key.
  MemStore::Tables old = Copy();
  for (auto& [key, value] : old[static_cast<int>(Table::kLedgers)]) {
    rec::Ledger l;
    ASSERT_TRUE(l.ParseFromString(value));
    ASSERT_GT(l.sum_day_size(), 0);
    l.clear_sum_day();
    l.clear_sum_ore();
    l.set_crossing_key(std::string(key));
    value = l.SerializeAsString();
  }
  for (auto& [key, value] : old[static_cast<int>(Table::kPersons)]) {
    rec::Person p;
    ASSERT_TRUE(p.ParseFromString(value));
    ASSERT_GT(p.entries_size(), 0);
    p.clear_entries();
    value = p.SerializeAsString();
  }
  ASSERT_EQ(old[static_cast<int>(Table::kMeta)].erase(std::string(kDaySumsMigration)), 1u);

  // Verify sees what the old records lack...
  MemStore::Tables unmigrated = old;
  unmigrated[static_cast<int>(Table::kMeta)][std::string(kDaySumsMigration)] = "1";
  Open(std::move(unmigrated));
  const std::vector<std::string> lacking = Violations();
  EXPECT_THAT(lacking, Contains(HasSubstr("day sums differ")));
  EXPECT_THAT(lacking, Contains(HasSubstr("person record counts 0 entries")));

  // ...and opening runs the migration, once.
  Open(std::move(old));
  EXPECT_THAT(Violations(), ::testing::IsEmpty());
  const SchemeLedger got = Tak(alice_, 2024);
  EXPECT_EQ(got.counted_total, want.counted_total);
  EXPECT_EQ(got.cap_reached_on, want.cap_reached_on);
  const int commits = store_->commits();
  ASSERT_TRUE(MigrateDaySums(*store_).ok());
  EXPECT_EQ(store_->commits(), commits) << "a second run found it done";

  // The migrated register goes on where the old one stopped: a report dated
  // before the crossing moves it, without reading the entries, and the cap
  // counts what the old register held.
  write_scans_ = 0;
  Submit({Report("early", alice_, absl::CivilDay(2024, 1, 1), 400000)});
  EXPECT_EQ(Tak(alice_, 2024).cap_reached_on, absl::CivilDay(2024, 1, 1));
  EXPECT_EQ(write_scans_, 0);
  EXPECT_THAT(Violations(), ::testing::IsEmpty());
}

// A store's reads may be round trips (PostgreSQL): a batch of new reports
// reads its index records, persons and ledgers in one batch per table, not
// one read per report.
TEST_F(WriteCostTest, ABatchOfReportsReadsTheStoreInBatches) {
  Open();
  std::vector<core::CoPaymentInput> batch;
  for (int i = 0; i < 200; ++i) {
    batch.push_back(Report(absl::StrCat("r", i), frikort::testing::PersonN(i % 100),
                           absl::CivilDay(2024, 3, 1 + i % 28), 1000));
  }
  const int gets = store_->gets(), multi_gets = store_->multi_gets();
  std::vector<ReportResult> results = Submit(batch);
  ASSERT_EQ(results.size(), 200u);
  for (const ReportResult& r : results) ASSERT_EQ(r.outcome, core::Outcome::kAccepted);
  EXPECT_LE(store_->gets() - gets, 2) << "one point read per report or more";
  EXPECT_LE(store_->multi_gets() - multi_gets, 4);
  // And what they read is what they would have read one by one.
  EXPECT_EQ(Tak(frikort::testing::PersonN(7), 2024).counted_total, 2000);
  EXPECT_THAT(Violations(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace frikort::storage
