// The provider registry in the register: the counting rule of direct
// settlement (domain rule 13) on new reports, and PutProvider re-evaluating
// stored ones (cards gained, cards put under review, municipal practices),
// over the in-memory store, plus the migration that indexes entries of a
// register written before the registry.
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/keys.h"
#include "storage/migrate_provider_index.h"
#include "storage/records.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/mem_store.h"
#include "tests/testing/oslo.h"

namespace frikort::storage {
namespace {

using core::NotCountedReason;
using core::Outcome;
using core::Scheme;
using ::frikort::testing::MakeOrgNumber;
using ::frikort::testing::MakePersonId;
using ::frikort::testing::MemStore;
using ::testing::HasSubstr;

constexpr char kDoctor[] = "1234567";  // an HPR number

class ProvidersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    auto rules = frikort::testing::DeployedRules();
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    Open(MemStore::Tables{});
  }

  void Open(MemStore::Tables tables) {
    reg_.reset();
    RegisterOptions o;
    o.secret = std::string(32, 'p');
    o.rules = &rules_;
    o.clock = &clock_;
    o.open_store = [this, tables = std::move(tables)](
                       const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
      auto store = std::make_unique<MemStore>(tables);
      store_ = store.get();
      return store;
    };
    auto r = Register::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
  }

  core::CoPaymentInput Report(const std::string& id, absl::CivilDay day, core::Ore amount,
                              const std::string& provider = kDoctor,
                              const std::string& practice = "") {
    core::CoPaymentInput in;
    in.report_id = id;
    in.provider_id = provider;
    in.practice_id = practice;
    in.person_id = alice_;
    in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
    in.category = static_cast<int>(core::Category::kPhysician);
    in.amount = amount;
    in.payment = static_cast<int>(core::Payment::kPaid);
    return in;
  }
  ReportResult SubmitOne(core::CoPaymentInput in) {
    auto r = reg_->Submit({std::move(in)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0] : ReportResult{};
  }
  ProviderChange Put(const std::string& id, std::vector<core::ProviderInput::Agreement> periods) {
    core::ProviderInput in;
    in.id = id;
    in.name = "Legekontoret";
    in.agreements = std::move(periods);
    auto change = reg_->PutProvider(in);
    EXPECT_TRUE(change.ok()) << change.status();
    return change.ok() ? *change : ProviderChange{};
  }
  SchemeLedger Tak(int year) {
    auto v = reg_->GetLedger(alice_, year);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() && !v->schemes.empty() ? v->schemes.back() : SchemeLedger{};
  }
  void IssueCards(absl::CivilDay as_of) {
    auto run = reg_->AllocateRunId();
    ASSERT_TRUE(run.ok());
    auto out = reg_->DecideNext(
        {*run, as_of, false, as_of}, std::make_shared<DueCursor>(), 100,
        [as_of](const core::LedgerState& s) { return core::DecideIssuance(s, as_of); });
    ASSERT_TRUE(out.ok()) << out.status();
  }

  // What a put changed: entries, ledgers, cards put under review.
  static std::tuple<int64_t, int64_t, int64_t> Changed(const ProviderChange& c) {
    return {c.entries_changed, c.ledgers_changed, c.cards_under_review};
  }
  // Two reports of 2,000 NOK from the doctor (together above the cap), and
  // the card the issuance job gives for them.
  void CardOnTwoReports(absl::CivilDay first, absl::CivilDay second, absl::CivilDay issued) {
    SubmitOne(Report("a", first, 200000));
    SubmitOne(Report("b", second, 200000));
    IssueCards(issued);
    ASSERT_TRUE(Tak(2024).card.has_value());
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  MemStore* store_ = nullptr;  // owned by the register
  std::unique_ptr<Register> reg_;
  const std::string alice_ = MakePersonId(15, 3, 80, 0);
};

TEST_F(ProvidersTest, WithoutAnAgreementAReportFromARequiringYearIsAcceptedButDoesNotCount) {
  ReportResult r = SubmitOne(Report("r1", absl::CivilDay(2024, 3, 1), 50000));
  EXPECT_EQ(r.outcome, Outcome::kAccepted);
  EXPECT_FALSE(r.counted);
  EXPECT_EQ(r.not_counted_reason, NotCountedReason::kNoDirectSettlement);
  EXPECT_EQ(Tak(2024).counted_total, 0);
  auto ledger = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(ledger.ok());
  ASSERT_EQ(ledger->entries.size(), 1u);
  EXPECT_EQ(ledger->entries[0].not_counted_reason, NotCountedReason::kNoDirectSettlement);

  // 2020 requires no agreement.
  ReportResult old = SubmitOne(Report("r0", absl::CivilDay(2020, 3, 1), 50000));
  EXPECT_TRUE(old.counted);
  EXPECT_EQ(old.not_counted_reason, NotCountedReason::kNone);
}

TEST_F(ProvidersTest, AnAgreementInForceOnTheServiceDateCounts) {
  Put(kDoctor, {{"2024-03-01", "2024-03-31", "v1"}});
  EXPECT_FALSE(SubmitOne(Report("feb", absl::CivilDay(2024, 2, 29), 100)).counted);
  EXPECT_TRUE(SubmitOne(Report("mar1", absl::CivilDay(2024, 3, 1), 100)).counted);
  EXPECT_TRUE(SubmitOne(Report("mar31", absl::CivilDay(2024, 3, 31), 100)).counted);
  EXPECT_FALSE(SubmitOne(Report("apr", absl::CivilDay(2024, 4, 1), 100)).counted);
  EXPECT_EQ(Tak(2024).counted_total, 200);
}

TEST_F(ProvidersTest, AnAgreementAddedAfterTheFactTurnsCoPaymentsIntoACard) {
  SubmitOne(Report("a", absl::CivilDay(2024, 3, 1), 200000));
  SubmitOne(Report("b", absl::CivilDay(2024, 4, 1), 200000));
  EXPECT_EQ(Tak(2024).counted_total, 0);
  auto due = reg_->ScanDue(std::nullopt, 10);
  ASSERT_TRUE(due.ok());
  EXPECT_TRUE(due->empty());

  ProviderChange change = Put(kDoctor, {{"2024-01-01", "", "v1"}});
  EXPECT_EQ(change.entries_reevaluated, 2);
  EXPECT_EQ(change.entries_changed, 2);
  EXPECT_EQ(change.ledgers_changed, 1);
  EXPECT_EQ(change.cards_under_review, 0);
  SchemeLedger l = Tak(2024);
  EXPECT_EQ(l.counted_total, 400000);
  EXPECT_EQ(l.cap_reached_on, absl::CivilDay(2024, 4, 1));
  IssueCards(absl::CivilDay(2024, 5, 1));
  l = Tak(2024);
  ASSERT_TRUE(l.card.has_value());
  EXPECT_EQ(l.card->valid_from, absl::CivilDay(2024, 4, 1));

  // The same record again changes nothing.
  ProviderChange again = Put(kDoctor, {{"2024-01-01", "", "v1"}});
  EXPECT_EQ(again.entries_changed, 0);
  EXPECT_EQ(again.ledgers_changed, 0);
}

// A stop between storing a provider's record and the last chunk of its
// re-evaluation leaves a marker; the next start finishes the work before it
// serves, so the record and the entries' counted flags agree again.
TEST_F(ProvidersTest, AReevaluationAStopInterruptedIsFinishedAtTheNextStart) {
  SubmitOne(Report("a", absl::CivilDay(2024, 3, 1), 200000));
  SubmitOne(Report("b", absl::CivilDay(2024, 4, 1), 200000));
  MemStore::Tables before = store_->tables();
  Put(kDoctor, {{"2024-01-01", "", "v1"}});
  MemStore::Tables after = store_->tables();
  const int providers = static_cast<int>(Table::kProviders);
  const int meta = static_cast<int>(Table::kMeta);
  for (const auto& [key, value] : after[meta]) {
    EXPECT_FALSE(absl::StartsWith(key, "reevaluate/")) << "a finished put leaves no marker";
  }

  // What a stop right after the record's commit leaves: the record and its
  // marker, the entries as they were.
  MemStore::Tables interrupted = before;
  const std::string record_key = keys::ProviderRecord(kDoctor);
  ASSERT_TRUE(after[providers].contains(record_key));
  interrupted[providers][record_key] = after[providers][record_key];
  interrupted[meta]["reevaluate/1-1"] = std::string(kDoctor) + ":2024,2025";
  Open(interrupted);
  EXPECT_EQ(Tak(2024).counted_total, 400000);
  EXPECT_EQ(Tak(2024).cap_reached_on, absl::CivilDay(2024, 4, 1));
  EXPECT_FALSE(store_->tables()[meta].contains("reevaluate/1-1"));

  // A damaged marker stops the start rather than leaving the work undone.
  MemStore::Tables damaged = before;
  damaged[meta]["reevaluate/2-1"] = "not a marker";
  reg_.reset();
  RegisterOptions o;
  o.secret = std::string(32, 'p');
  o.rules = &rules_;
  o.clock = &clock_;
  o.open_store = [damaged](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
    return std::make_unique<MemStore>(damaged);
  };
  auto r = Register::Open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ProvidersTest, AnAgreementEndedRetroactivelyPutsTheCardUnderReview) {
  Put(kDoctor, {{"2024-01-01", "", "v1"}});
  ASSERT_NO_FATAL_FAILURE(CardOnTwoReports(absl::CivilDay(2024, 3, 1), absl::CivilDay(2024, 4, 1),
                                           absl::CivilDay(2024, 5, 1)));

  ProviderChange change = Put(kDoctor, {{"2024-01-01", "2024-03-15", "v1"}});
  EXPECT_EQ(change.entries_reevaluated, 2);
  EXPECT_EQ(Changed(change), std::make_tuple(1, 1, 1));
  SchemeLedger l = Tak(2024);
  EXPECT_EQ(l.counted_total, 200000);
  EXPECT_FALSE(l.cap_reached_on.has_value());
  ASSERT_TRUE(l.card.has_value());  // never revoked
  EXPECT_TRUE(l.card->under_review);
  auto ledger = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(ledger->entries[1].not_counted_reason, NotCountedReason::kNoDirectSettlement);
  auto verify = reg_->Verify();
  ASSERT_TRUE(verify.ok());
  EXPECT_THAT(verify->violations, ::testing::IsEmpty());
}

// A moved agreement takes some of a person's co-payments out and brings others
// in: the ledger is judged once, by where it ends, not entry by entry (the
// first two leaving would drop it below the cap on the way).
TEST_F(ProvidersTest, AMovedAgreementJudgesTheCardByTheLedgerItLeaves) {
  Put(kDoctor, {{"2024-01-01", "2024-06-30", "v1"}});
  EXPECT_FALSE(SubmitOne(Report("c", absl::CivilDay(2024, 8, 1), 400000)).counted);
  ASSERT_NO_FATAL_FAILURE(CardOnTwoReports(absl::CivilDay(2024, 2, 1), absl::CivilDay(2024, 3, 1),
                                           absl::CivilDay(2024, 4, 1)));

  ProviderChange change = Put(kDoctor, {{"2024-07-01", "", "v2"}});
  EXPECT_EQ(Changed(change), std::make_tuple(3, 1, 0));
  SchemeLedger l = Tak(2024);
  EXPECT_EQ(l.counted_total, 400000);
  EXPECT_EQ(l.cap_reached_on, absl::CivilDay(2024, 8, 1));
  ASSERT_TRUE(l.card.has_value());
  EXPECT_FALSE(l.card->under_review);
}

TEST_F(ProvidersTest, VerifyFindsAnEntryWhoseFlagDisagreesWithTheRegistry) {
  Put(kDoctor, {{"2024-01-01", "", "v1"}});
  SubmitOne(Report("a", absl::CivilDay(2024, 3, 1), 1000));
  auto clean = reg_->Verify();
  ASSERT_TRUE(clean.ok());
  EXPECT_THAT(clean->violations, ::testing::IsEmpty());
  // The entry as if decided without the agreement.
  MemStore::Tables tables = store_->tables();
  auto& entries = tables[static_cast<int>(Table::kEntries)];
  ASSERT_EQ(entries.size(), 1u);
  rec::Entry e;
  ASSERT_TRUE(e.ParseFromString(entries.begin()->second));
  e.set_lacks_agreement(true);
  const std::string value = e.SerializeAsString();
  WriteSet w;
  w.tables[static_cast<int>(Table::kEntries)].push_back({entries.begin()->first, &value});
  ASSERT_TRUE(store_->Commit(w).ok());
  auto found = reg_->Verify();
  ASSERT_TRUE(found.ok());
  EXPECT_THAT(found->violations,
              ::testing::Contains(HasSubstr("does not count although an agreement is in force")));
}

TEST_F(ProvidersTest, AMunicipalPracticesAgreementCountsItsPractitionersReports) {
  const std::string municipality = MakeOrgNumber(96400000);
  Put(municipality, {{"2023-01-01", "", "v1"}});
  EXPECT_TRUE(
      SubmitOne(Report("n1", absl::CivilDay(2024, 3, 1), 100, "7654321", municipality)).counted);
  EXPECT_TRUE(
      SubmitOne(Report("n2", absl::CivilDay(2024, 3, 2), 100, "7654322", municipality)).counted);
  // The same practitioner without the practice: no agreement of its own.
  EXPECT_FALSE(SubmitOne(Report("n3", absl::CivilDay(2024, 3, 3), 100, "7654321")).counted);
  auto ledger = reg_->GetLedger(alice_, 2024);
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(ledger->entries[0].practice_id, municipality);

  // Ending the municipality's agreement reaches its practitioners' reports.
  ProviderChange change = Put(municipality, {{"2023-01-01", "2023-12-31", "v1"}});
  EXPECT_EQ(change.entries_reevaluated, 2);
  EXPECT_EQ(change.entries_changed, 2);
  EXPECT_EQ(Tak(2024).counted_total, 0);
}

TEST_F(ProvidersTest, ARefusedPutStoresNothingAndGetSaysNotFound) {
  core::ProviderInput in;
  in.id = kDoctor;
  in.name = "Legekontoret";
  in.agreements = {{"2024-01-01", "2024-06-30", ""}, {"2024-06-01", "", ""}};
  auto bad = reg_->PutProvider(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("agreements"));
  auto got = reg_->GetProvider(kDoctor);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);

  Put(kDoctor, {{"2024-01-01", "", "v2"}});
  got = reg_->GetProvider(kDoctor);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "Legekontoret");
  ASSERT_EQ(got->agreements.size(), 1u);
  EXPECT_EQ(got->agreements[0].version, "v2");
  EXPECT_EQ(reg_->GetProvider("12a").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ProvidersTest, ListsByIdInPagesAndFiltersByDay) {
  Put("3", {{"2024-01-01", "2024-01-31", ""}});
  Put("1", {{"2024-02-01", "", ""}});
  Put("2", {});
  std::vector<std::string> ids;
  std::string token;
  do {
    auto page = reg_->ListProviders(std::nullopt, 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& p : page->items) ids.push_back(p.id);
    token = page->next_page_token;
  } while (!token.empty());
  EXPECT_THAT(ids, ::testing::ElementsAre("1", "2", "3"));
  auto in_force = reg_->ListProviders(absl::CivilDay(2024, 1, 15), 0, "");
  ASSERT_TRUE(in_force.ok());
  ASSERT_EQ(in_force->items.size(), 1u);
  EXPECT_EQ(in_force->items[0].id, "3");
}

TEST_F(ProvidersTest, MigrationIndexesARegisterWrittenBeforeTheRegistry) {
  // Written under rules without the requirement, then stripped of what only
  // this version writes: the provider table and the migration's marker.
  const core::RulesTable deployed = rules_;
  rules_ = *core::RulesTable::Parse("year 2024 tak=3165 minimum=0\n");
  Open(MemStore::Tables{});
  SubmitOne(Report("a", absl::CivilDay(2024, 3, 1), 200000));
  SubmitOne(Report("b", absl::CivilDay(2024, 4, 1), 200000));
  EXPECT_EQ(Tak(2024).counted_total, 400000);
  MemStore::Tables old = store_->tables();
  old[static_cast<int>(Table::kProviders)].clear();
  old[static_cast<int>(Table::kMeta)].erase(kProviderIndexMigration);

  rules_ = deployed;
  Open(old);
  auto marker = store_->Get(Table::kMeta, kProviderIndexMigration);
  ASSERT_TRUE(marker.ok());
  EXPECT_TRUE(marker->has_value());
  // The counted flags stay as they were decided until the registry is loaded.
  EXPECT_EQ(Tak(2024).counted_total, 400000);
  // Loading the provider's record reaches the old entries through the index.
  ProviderChange change = Put(kDoctor, {{"2024-03-15", "", "v1"}});
  EXPECT_EQ(change.entries_reevaluated, 2);
  EXPECT_EQ(change.entries_changed, 1);
  EXPECT_EQ(Tak(2024).counted_total, 200000);
  // Run again, the migration finds its marker and writes nothing.
  const int commits = store_->commits();
  ASSERT_TRUE(MigrateProviderIndex(*store_).ok());
  EXPECT_EQ(store_->commits(), commits);
}

}  // namespace
}  // namespace frikort::storage
