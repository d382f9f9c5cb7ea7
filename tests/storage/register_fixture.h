// Shared by the register tests (tests/storage/register_*_test.cc): a real
// Register in a fresh folder with the deployed rules and a FakeClock, reopened
// at will, and helpers to report, read a scheme's ledger and list lookups.
#ifndef FRIKORT_TESTS_STORAGE_REGISTER_FIXTURE_H_
#define FRIKORT_TESTS_STORAGE_REGISTER_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "gtest/gtest.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"

namespace frikort::storage {

inline const std::string kSecret(32, 's');

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
                              core::Category category = core::Category::kPhysician,
                              core::Payment payment = core::Payment::kPaid) {
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
  SchemeLedger Ledger(const std::string& person, int year, core::Scheme scheme) {
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
  const std::string alice_ = ::frikort::testing::MakePersonId(15, 3, 80, 0);
  const std::string bob_ = ::frikort::testing::MakePersonId(2, 11, 91, 0);
};

}  // namespace frikort::storage

#endif  // FRIKORT_TESTS_STORAGE_REGISTER_FIXTURE_H_
