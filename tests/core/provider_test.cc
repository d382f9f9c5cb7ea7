#include "core/provider.h"

#include <string>
#include <vector>

#include "core/copayment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace frikort::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const RulesTable& Rules() {
  static const RulesTable* const rules =
      new RulesTable(*RulesTable::Parse("year 2020 tak1=2460 tak2=2176 minimum=200\n"
                                        "year 2021 tak=2460 minimum=200 direct_settlement=yes\n"
                                        "year 2022 tak=2921 minimum=0 direct_settlement=yes\n"
                                        "year 2023 tak=3040 minimum=0 direct_settlement=yes\n"
                                        "tak2 DENTAL\n"));
  return *rules;
}

ProviderInput Input(std::vector<ProviderInput::Agreement> agreements) {
  ProviderInput in;
  in.id = "123456";
  in.name = "Legesenteret";
  in.agreements = std::move(agreements);
  return in;
}

absl::CivilDay Day(int y, int m, int d) { return absl::CivilDay(y, m, d); }

TEST(RulesDirectSettlementTest, PerYearAndOffWhenNotSaid) {
  EXPECT_FALSE(Rules().RequiresDirectSettlement(2020));
  EXPECT_TRUE(Rules().RequiresDirectSettlement(2021));
  EXPECT_FALSE(Rules().RequiresDirectSettlement(2030));
  auto bad = RulesTable::Parse("year 2021 tak=2460 minimum=200 direct_settlement=maybe\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("direct_settlement"));
  EXPECT_FALSE(
      RulesTable::Parse("year 2021 tak=1 minimum=0 direct_settlement=no direct_settlement=yes\n")
          .ok());
}

TEST(ProviderIdTest, PracticeIdIsANineDigitOrganisationNumber) {
  EXPECT_TRUE(ValidatePracticeId("974760673").ok());
  EXPECT_THAT(std::string(ValidatePracticeId("123456").message()), StartsWith("practice_id: "));
  EXPECT_THAT(std::string(ValidatePracticeId("974760672").message()),
              StartsWith("practice_id: organisation number check digit"));
  EXPECT_THAT(std::string(ValidatePracticeId("97476067a").message()), StartsWith("practice_id: "));
}

TEST(ValidateProviderTest, SortsPeriodsAndKeepsOpenEnds) {
  auto p = ValidateProvider(Input({{"2022-01-01", "", "v2"}, {"2021-01-01", "2021-12-31", "v1"}}),
                            Rules());
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->agreements.size(), 2u);
  EXPECT_EQ(p->agreements[0].from, Day(2021, 1, 1));
  EXPECT_EQ(p->agreements[0].to, Day(2021, 12, 31));
  EXPECT_EQ(p->agreements[1].from, Day(2022, 1, 1));
  EXPECT_FALSE(p->agreements[1].to.has_value());
  EXPECT_EQ(p->agreements[1].version, "v2");
}

TEST(ValidateProviderTest, RefusalsNameTheField) {
  auto message = [](const ProviderInput& in) {
    auto p = ValidateProvider(in, Rules());
    EXPECT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(p.status().message());
  };
  ProviderInput bad_id = Input({});
  bad_id.id = "974760672";
  EXPECT_THAT(message(bad_id), StartsWith("provider_id: "));
  ProviderInput no_name = Input({});
  no_name.name = "";
  EXPECT_THAT(message(no_name), StartsWith("name: "));
  ProviderInput long_name = Input({});
  long_name.name = std::string(201, 'x');
  EXPECT_THAT(message(long_name), StartsWith("name: 201 characters"));
  EXPECT_THAT(message(Input({{"2021-02-30", "", ""}})), StartsWith("agreements[0].valid_from: "));
  EXPECT_THAT(message(Input({{"2021-01-01", "2020-12-31", ""}})),
              StartsWith("agreements[0].valid_to: 2020-12-31 is before valid_from 2021-01-01"));
  EXPECT_THAT(message(Input({{"2019-12-31", "", ""}})),
              StartsWith("agreements[0].valid_from: 2019-12-31 is outside the years 2020-2023"));
  EXPECT_THAT(message(Input({{"2021-01-01", "2024-01-01", ""}})),
              StartsWith("agreements[0].valid_to: 2024-01-01 is outside"));
  EXPECT_THAT(message(Input({{"2021-01-01", "", std::string(65, 'v')}})),
              StartsWith("agreements[0].version: 65 characters"));
  EXPECT_THAT(message(Input({{"2021-01-01", "2021-06-30", ""}, {"2021-06-30", "", ""}})),
              StartsWith("agreements: the period from 2021-01-01 overlaps the period from "
                         "2021-06-30"));
  // An open-ended period overlaps every later one.
  EXPECT_THAT(message(Input({{"2021-01-01", "", ""}, {"2022-01-01", "2022-02-01", ""}})),
              StartsWith("agreements: "));
}

TEST(InForceTest, InclusiveEndsAndGaps) {
  auto p =
      ValidateProvider(Input({{"2021-03-01", "2021-03-31", ""}, {"2021-06-01", "", ""}}), Rules());
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(InForce(p->agreements, Day(2021, 2, 28)));
  EXPECT_TRUE(InForce(p->agreements, Day(2021, 3, 1)));
  EXPECT_TRUE(InForce(p->agreements, Day(2021, 3, 31)));
  EXPECT_FALSE(InForce(p->agreements, Day(2021, 4, 1)));
  EXPECT_TRUE(InForce(p->agreements, Day(2023, 12, 31)));
  EXPECT_FALSE(InForce({}, Day(2021, 3, 1)));
}

TEST(AffectedYearsTest, OnlyYearsWhoseCoveredDaysChangeAndThatRequireAgreements) {
  const std::vector<AgreementPeriod> open2021 = {{Day(2021, 1, 1), std::nullopt, ""}};
  const std::vector<AgreementPeriod> ended2022 = {{Day(2021, 1, 1), Day(2022, 6, 30), ""}};
  EXPECT_THAT(AffectedYears({}, open2021, Rules()), ElementsAre(2021, 2022, 2023));
  EXPECT_THAT(AffectedYears(open2021, ended2022, Rules()), ElementsAre(2022, 2023));
  EXPECT_THAT(AffectedYears(open2021, open2021, Rules()), ElementsAre());
  // Split into two touching periods: the same days, so nothing to re-evaluate.
  const std::vector<AgreementPeriod> split = {{Day(2021, 1, 1), Day(2021, 12, 31), "v1"},
                                              {Day(2022, 1, 1), std::nullopt, "v2"}};
  EXPECT_THAT(AffectedYears(open2021, split, Rules()), ElementsAre());
  // 2020 does not require agreements, but its prescriptions attributed to
  // 2021 do; a year before that would touch nothing.
  EXPECT_THAT(AffectedYears({}, {{Day(2020, 1, 1), Day(2020, 12, 31), ""}}, Rules()),
              ElementsAre(2020));
  const RulesTable early = *RulesTable::Parse(
      "year 2019 tak=1 minimum=0\nyear 2020 tak=1 minimum=0\nyear 2021 tak=1 minimum=0 "
      "direct_settlement=yes\n");
  EXPECT_THAT(AffectedYears({}, {{Day(2019, 1, 1), Day(2019, 12, 31), ""}}, early), ElementsAre());
}

TEST(WhyNotCountedTest, OneReasonPerRule) {
  using P = Payment;
  using C = Category;
  EXPECT_EQ(WhyNotCounted(P::kPaid, C::kPhysician, false, false, false), NotCountedReason::kNone);
  EXPECT_EQ(WhyNotCounted(P::kInvoicedUnpaid, C::kPhysician, false, false, false),
            NotCountedReason::kUnpaid);
  EXPECT_EQ(WhyNotCounted(P::kExemptFrikort, C::kPhysician, false, false, false),
            NotCountedReason::kExemptByFreeCard);
  EXPECT_EQ(WhyNotCounted(P::kPaid, C::kPhysician, true, false, false),
            NotCountedReason::kPerformedAbroad);
  EXPECT_EQ(WhyNotCounted(P::kPaid, C::kClimateTravel, true, false, false),
            NotCountedReason::kNone);
  EXPECT_EQ(WhyNotCounted(P::kPaid, C::kPhysician, false, true, true),
            NotCountedReason::kCancelled);
  EXPECT_EQ(WhyNotCounted(P::kInvoiced, C::kPhysician, false, false, true),
            NotCountedReason::kNoDirectSettlement);
}

}  // namespace
}  // namespace frikort::core
