#include "core/copayment.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::core {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string RulesPath() {
  if (const char* dir = std::getenv("FRIKORT_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/deploy/rules.txt");
  }
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/tests/core/")) + "/deploy/rules.txt";
}

absl::Time Oslo(int y, int m, int d, int h = 12, int mi = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, h, mi, 0), OsloTimeZone());
}

class CoPaymentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    absl::StatusOr<RulesTable> rules = frikort::testing::ReadRulesFile(RulesPath());
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    now_ = Oslo(2024, 6, 15);
  }

  CoPaymentInput Valid() const {
    CoPaymentInput in;
    in.report_id = "bill-2024-0001";
    in.provider_id = "974760673";
    in.person_id = "15076500565";
    in.service_time = Oslo(2024, 6, 10, 9, 30);
    in.category = static_cast<int>(Category::kPhysician);
    in.amount = 25'000;
    in.payment = static_cast<int>(Payment::kPaid);
    return in;
  }

  Validation Check(const CoPaymentInput& in) const {
    return ValidateCoPayment(in, rules_, PersonIdOptions{}, now_);
  }

  void ExpectReject(const CoPaymentInput& in, RejectReason reason, absl::string_view field) {
    const Validation v = Check(in);
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.reason, reason) << RejectReasonName(v.reason) << ": " << v.message;
    EXPECT_THAT(v.message, StartsWith(absl::StrCat(field, ": ")));
  }

  RulesTable rules_ = *RulesTable::Parse("year 2000 tak=1 minimum=0");
  absl::Time now_;
};

TEST_F(CoPaymentTest, ValidReport) {
  const Validation v = Check(Valid());
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.reason, RejectReason::kNone);
  EXPECT_EQ(v.value.person.digits, "15076500565");
  EXPECT_EQ(v.value.service_time, Oslo(2024, 6, 10, 9, 30));
  EXPECT_EQ(v.value.service_date, absl::CivilDay(2024, 6, 10));
  EXPECT_EQ(v.value.year, 2024);
  EXPECT_EQ(v.value.scheme, Scheme::kTak);
  EXPECT_EQ(v.value.category, Category::kPhysician);
  EXPECT_EQ(v.value.payment, Payment::kPaid);
  EXPECT_EQ(v.value.amount, 25'000);
  EXPECT_FALSE(v.value.performed_abroad);
  EXPECT_FALSE(v.value.late);
}

TEST_F(CoPaymentTest, InvalidReportId) {
  CoPaymentInput in = Valid();
  in.report_id = "";
  ExpectReject(in, RejectReason::kInvalidReportId, "report_id");
  in.report_id = "has space";
  ExpectReject(in, RejectReason::kInvalidReportId, "report_id");
  // The person's own id typed into the report id: refused, and not echoed.
  in.report_id = "bill-15076500565";
  ExpectReject(in, RejectReason::kInvalidReportId, "report_id");
  const Validation v = Check(in);
  EXPECT_THAT(v.message, HasSubstr("holds a national id"));
  EXPECT_THAT(v.message, ::testing::Not(HasSubstr("15076500565")));
  // Eleven digits that do not validate are an ordinary report id.
  in.report_id = "bill-15076500566";
  EXPECT_TRUE(Check(in).ok()) << Check(in).message;
}

TEST(CancelReasonTest, HoldingANationalIdIsRefusedWithoutEchoingIt) {
  const PersonIdOptions production;
  EXPECT_TRUE(ValidateCancelReason("", production).ok());
  EXPECT_TRUE(ValidateCancelReason("wrong patient, see ticket 12345678901", production).ok());
  const absl::Status st = ValidateCancelReason("wrong patient 15076500565", production);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "reason: holds a national id (an 11-digit number that validates); describe the "
            "cancellation without it");
}

TEST_F(CoPaymentTest, InvalidProviderId) {
  CoPaymentInput in = Valid();
  in.provider_id = "974760674";  // org number with a wrong check digit
  ExpectReject(in, RejectReason::kInvalidProviderId, "provider_id");
  in.provider_id = "";
  ExpectReject(in, RejectReason::kInvalidProviderId, "provider_id");
}

TEST_F(CoPaymentTest, PracticeIdIsOptionalAndValidatedAsAnOrganisationNumber) {
  CoPaymentInput in = Valid();
  in.practice_id = "974760673";
  Validation v = ValidateCoPayment(in, rules_, {}, now_);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.practice_id, "974760673");
  in.practice_id = "974760674";
  ExpectReject(in, RejectReason::kInvalidProviderId, "practice_id");
  in.practice_id = "123456";  // an HPR number is no practice
  ExpectReject(in, RejectReason::kInvalidProviderId, "practice_id");
}

TEST_F(CoPaymentTest, InvalidPersonId) {
  CoPaymentInput in = Valid();
  in.person_id = "15076500566";
  ExpectReject(in, RejectReason::kInvalidPersonId, "person_id");
  in.person_id = "1507650056";
  ExpectReject(in, RejectReason::kInvalidPersonId, "person_id");
}

TEST_F(CoPaymentTest, SyntheticIdsFollowTheOptions) {
  // A synthetic id: born 15 May 1990 with month + 80, and valid check digits.
  CoPaymentInput in = Valid();
  in.person_id = "";
  constexpr int kW1[9] = {3, 7, 6, 1, 8, 9, 4, 5, 2};
  constexpr int kW2[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
  for (int individual = 100; individual < 200 && in.person_id.empty(); ++individual) {
    std::string n = absl::StrCat("158590", individual);
    int s1 = 0, s2 = 0;
    for (int i = 0; i < 9; ++i) s1 += (n[i] - '0') * kW1[i];
    const int k1 = (11 - s1 % 11) % 11;
    if (k1 == 10) continue;
    n += static_cast<char>('0' + k1);
    for (int i = 0; i < 10; ++i) s2 += (n[i] - '0') * kW2[i];
    const int k2 = (11 - s2 % 11) % 11;
    if (k2 == 10) continue;
    in.person_id = n + static_cast<char>('0' + k2);
  }
  ASSERT_FALSE(in.person_id.empty());
  ExpectReject(in, RejectReason::kInvalidPersonId, "person_id");
  const Validation v =
      ValidateCoPayment(in, rules_, PersonIdOptions{.allow_synthetic = true}, now_);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_TRUE(v.value.person.synthetic);
}

TEST_F(CoPaymentTest, InvalidServiceTime) {
  CoPaymentInput in = Valid();
  in.service_time.reset();
  ExpectReject(in, RejectReason::kInvalidServiceTime, "service_time");
  EXPECT_EQ(Check(in).message, "service_time: not given");
  in.service_time_out_of_range = true;  // given, but no timestamp
  ExpectReject(in, RejectReason::kInvalidServiceTime, "service_time");
  EXPECT_THAT(Check(in).message, HasSubstr("service_time: out of range"));
  in.service_time_out_of_range = false;

  in.service_time = now_ + kClockSkewAllowance + absl::Nanoseconds(1);
  ExpectReject(in, RejectReason::kInvalidServiceTime, "service_time");
  EXPECT_THAT(Check(in).message, HasSubstr("future"));
  in.service_time = now_ + absl::Hours(24);
  ExpectReject(in, RejectReason::kInvalidServiceTime, "service_time");
  in.service_time = absl::InfiniteFuture();
  ExpectReject(in, RejectReason::kInvalidServiceTime, "service_time");

  // Within the allowed clock skew is accepted.
  in.service_time = now_ + kClockSkewAllowance;
  EXPECT_TRUE(Check(in).ok()) << Check(in).message;
}

TEST_F(CoPaymentTest, InvalidCategory) {
  CoPaymentInput in = Valid();
  in.category = 0;
  ExpectReject(in, RejectReason::kInvalidCategory, "category");
  EXPECT_EQ(Check(in).message, "category: not given");
  in.category = 99;
  ExpectReject(in, RejectReason::kInvalidCategory, "category");
  EXPECT_EQ(Check(in).message, "category: unknown value 99");
  in.category = -1;
  ExpectReject(in, RejectReason::kInvalidCategory, "category");
  in.category = kMaxCategory + 1;
  ExpectReject(in, RejectReason::kInvalidCategory, "category");
  in.category = kMaxCategory;
  EXPECT_TRUE(Check(in).ok());
}

TEST_F(CoPaymentTest, InvalidAmount) {
  CoPaymentInput in = Valid();
  for (Ore bad :
       {Ore{0}, Ore{-1}, Ore{-25'000}, kMaxAmountOre + 1, Ore{INT64_MAX}, Ore{INT64_MIN}}) {
    in.amount = bad;
    ExpectReject(in, RejectReason::kInvalidAmount, "amount");
  }
  for (Ore good : {Ore{1}, kMaxAmountOre}) {
    in.amount = good;
    EXPECT_TRUE(Check(in).ok()) << good;
  }
}

TEST_F(CoPaymentTest, InvalidPaymentStatus) {
  CoPaymentInput in = Valid();
  in.payment = 0;
  ExpectReject(in, RejectReason::kInvalidPaymentStatus, "payment");
  in.payment = 99;
  ExpectReject(in, RejectReason::kInvalidPaymentStatus, "payment");
  in.payment = -3;
  ExpectReject(in, RejectReason::kInvalidPaymentStatus, "payment");
  for (int p = 1; p <= kMaxPayment; ++p) {
    in.payment = p;
    const Validation v = Check(in);
    ASSERT_TRUE(v.ok()) << p;
    EXPECT_EQ(v.value.payment, static_cast<Payment>(p));
  }
}

TEST_F(CoPaymentTest, AttributedYear) {
  now_ = Oslo(2024, 12, 20);
  CoPaymentInput in = Valid();
  in.service_time = Oslo(2024, 12, 18);
  in.category = static_cast<int>(Category::kPrescription);
  in.attributed_year = 2025;
  Validation v = Check(in);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.year, 2025);
  EXPECT_EQ(v.value.service_date, absl::CivilDay(2024, 12, 18));  // the date is not moved
  EXPECT_EQ(v.value.scheme, Scheme::kTak);

  // Only prescriptions may be attributed.
  in.category = static_cast<int>(Category::kPhysician);
  ExpectReject(in, RejectReason::kInvalidAttributedYear, "attributed_year");
  // Only to the year after the service year.
  in.category = static_cast<int>(Category::kPrescription);
  for (int bad : {2024, 2023, 2026, 1, -2025}) {
    in.attributed_year = bad;
    ExpectReject(in, RejectReason::kInvalidAttributedYear, "attributed_year");
  }
}

TEST_F(CoPaymentTest, AttributedYearAcrossTheSchemeChange) {
  // Medicine handed out in December 2020 for 2021 counts in 2021's single cap.
  now_ = Oslo(2020, 12, 20);
  CoPaymentInput in = Valid();
  in.service_time = Oslo(2020, 12, 15);
  in.category = static_cast<int>(Category::kPrescription);
  in.attributed_year = 2021;
  Validation v = Check(in);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.year, 2021);
  EXPECT_EQ(v.value.scheme, Scheme::kTak);
  in.attributed_year = 0;
  v = Check(in);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.year, 2020);
  EXPECT_EQ(v.value.scheme, Scheme::kTak1);
}

TEST_F(CoPaymentTest, NoRulesForYear) {
  CoPaymentInput in = Valid();
  in.service_time = Oslo(2009, 6, 1);
  ExpectReject(in, RejectReason::kNoRulesForYear, "service_time");
  EXPECT_THAT(Check(in).message, HasSubstr("2009"));

  // The year after the table: a service in it, and medicine attributed to it.
  const int after = rules_.last_year() + 1;
  now_ = Oslo(after, 3, 1);
  in.service_time = Oslo(after, 2, 1);
  ExpectReject(in, RejectReason::kNoRulesForYear, "service_time");

  now_ = Oslo(after - 1, 12, 20);
  in.service_time = Oslo(after - 1, 12, 19);
  in.category = static_cast<int>(Category::kPrescription);
  in.attributed_year = after;
  ExpectReject(in, RejectReason::kNoRulesForYear, "attributed_year");
  in.attributed_year = 0;
  EXPECT_TRUE(Check(in).ok());

  in.service_time = absl::InfinitePast();
  ExpectReject(in, RejectReason::kNoRulesForYear, "service_time");
}

TEST_F(CoPaymentTest, YearIsTheOsloYear) {
  // 23:30 UTC on New Year's Eve 2020 is 2021 in Oslo: one cap, not tak 2.
  now_ = Oslo(2021, 1, 5);
  CoPaymentInput in = Valid();
  in.category = static_cast<int>(Category::kDental);
  in.service_time =
      absl::FromCivil(absl::CivilSecond(2020, 12, 31, 23, 30, 0), absl::UTCTimeZone());
  Validation v = Check(in);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.year, 2021);
  EXPECT_EQ(v.value.service_date, absl::CivilDay(2021, 1, 1));
  EXPECT_EQ(v.value.scheme, Scheme::kTak);

  in.service_time =
      absl::FromCivil(absl::CivilSecond(2020, 12, 31, 22, 30, 0), absl::UTCTimeZone());
  v = Check(in);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.value.year, 2020);
  EXPECT_EQ(v.value.scheme, Scheme::kTak2);
}

TEST_F(CoPaymentTest, SchemeDerivation) {
  now_ = Oslo(2025, 1, 10);
  const struct {
    int year;
    Category category;
    Scheme scheme;
  } cases[] = {
      {2020, Category::kDental, Scheme::kTak2},
      {2020, Category::kPhysiotherapy, Scheme::kTak2},
      {2020, Category::kClimateTravel, Scheme::kTak2},
      {2020, Category::kPatientTravel, Scheme::kTak1},
      {2020, Category::kPrescription, Scheme::kTak1},
      {2017, Category::kRehabilitation, Scheme::kTak2},
      {2017, Category::kPsychologist, Scheme::kTak1},
      {2021, Category::kDental, Scheme::kTak},
      {2021, Category::kPhysician, Scheme::kTak},
      {2024, Category::kRehabilitation, Scheme::kTak},
  };
  for (const auto& c : cases) {
    CoPaymentInput in = Valid();
    in.service_time = Oslo(c.year, 5, 5);
    in.category = static_cast<int>(c.category);
    const Validation v = Check(in);
    ASSERT_TRUE(v.ok()) << v.message;
    EXPECT_EQ(v.value.year, c.year);
    EXPECT_EQ(v.value.scheme, c.scheme) << c.year << " " << CategoryName(c.category);
    EXPECT_EQ(v.value.category, c.category);
  }
}

TEST_F(CoPaymentTest, LateAfter14Days) {
  // now_ is 2024-06-15 (Oslo).
  CoPaymentInput in = Valid();
  in.service_time = Oslo(2024, 6, 1, 8, 0);  // 14 days before: in time
  EXPECT_FALSE(Check(in).value.late);
  in.service_time = Oslo(2024, 5, 31, 23, 59);  // 15 days before: late
  ASSERT_TRUE(Check(in).ok());
  EXPECT_TRUE(Check(in).value.late);
  // 22:30 UTC on 31 May is already 1 June in Oslo: in time.
  in.service_time = absl::FromCivil(absl::CivilSecond(2024, 5, 31, 22, 30, 0), absl::UTCTimeZone());
  EXPECT_FALSE(Check(in).value.late);
  in.service_time = Oslo(2023, 1, 1);
  EXPECT_TRUE(Check(in).value.late);
}

TEST_F(CoPaymentTest, FirstFailingCheckWins) {
  CoPaymentInput in = Valid();
  in.report_id = "";
  in.provider_id = "x";
  in.person_id = "1";
  in.service_time.reset();
  in.category = 0;
  in.amount = 0;
  in.payment = 0;
  in.attributed_year = 1;
  const RejectReason order[] = {
      RejectReason::kInvalidReportId,      RejectReason::kInvalidProviderId,
      RejectReason::kInvalidPersonId,      RejectReason::kInvalidServiceTime,
      RejectReason::kInvalidCategory,      RejectReason::kInvalidAmount,
      RejectReason::kInvalidPaymentStatus, RejectReason::kInvalidAttributedYear,
  };
  const CoPaymentInput good = Valid();
  for (RejectReason expected : order) {
    EXPECT_EQ(Check(in).reason, expected) << RejectReasonName(expected);
    // Fix the field just reported and go on to the next.
    switch (expected) {
      case RejectReason::kInvalidReportId:
        in.report_id = good.report_id;
        break;
      case RejectReason::kInvalidProviderId:
        in.provider_id = good.provider_id;
        break;
      case RejectReason::kInvalidPersonId:
        in.person_id = good.person_id;
        break;
      case RejectReason::kInvalidServiceTime:
        in.service_time = good.service_time;
        break;
      case RejectReason::kInvalidCategory:
        in.category = good.category;
        break;
      case RejectReason::kInvalidAmount:
        in.amount = good.amount;
        break;
      case RejectReason::kInvalidPaymentStatus:
        in.payment = good.payment;
        break;
      default:
        in.attributed_year = 0;
        break;
    }
  }
  EXPECT_TRUE(Check(in).ok());
}

TEST(CountsTest, WhatCounts) {
  using P = Payment;
  using C = Category;
  EXPECT_TRUE(Counts(P::kPaid, C::kPhysician, false, false));
  EXPECT_TRUE(Counts(P::kInvoiced, C::kDental, false, false));
  EXPECT_FALSE(Counts(P::kInvoicedUnpaid, C::kPhysician, false, false));
  EXPECT_FALSE(Counts(P::kExemptFrikort, C::kPhysician, false, false));
  EXPECT_FALSE(Counts(P::kUnspecified, C::kPhysician, false, false));
  EXPECT_FALSE(Counts(P::kPaid, C::kPhysician, false, /*cancelled=*/true));
  EXPECT_FALSE(Counts(P::kPaid, C::kPhysician, /*performed_abroad=*/true, false));
  EXPECT_FALSE(Counts(P::kPaid, C::kPrescription, true, false));
  EXPECT_TRUE(Counts(P::kPaid, C::kClimateTravel, true, false));
  EXPECT_TRUE(Counts(P::kInvoiced, C::kClimateTravel, true, false));
  EXPECT_FALSE(Counts(P::kPaid, C::kClimateTravel, true, true));
  EXPECT_FALSE(Counts(P::kInvoicedUnpaid, C::kClimateTravel, true, false));
}

TEST(TypesTest, Names) {
  EXPECT_EQ(CategoryName(Category::kPatientTravel), "PATIENT_TRAVEL");
  EXPECT_EQ(CategoryName(Category::kClimateTravel), "CLIMATE_TRAVEL");
  EXPECT_EQ(CategoryName(static_cast<Category>(99)), "UNKNOWN");
  EXPECT_EQ(CategoryName(static_cast<Category>(-1)), "UNKNOWN");
  EXPECT_EQ(SchemeName(Scheme::kTak2), "TAK2");
  EXPECT_EQ(SchemeName(Scheme::kTak), "TAK");
  EXPECT_EQ(PaymentName(Payment::kInvoicedUnpaid), "INVOICED_UNPAID");
  EXPECT_EQ(RejectReasonName(RejectReason::kInvalidAmount), "INVALID_AMOUNT");
  EXPECT_EQ(RejectReasonName(RejectReason::kAlreadyCancelled), "ALREADY_CANCELLED");
  EXPECT_EQ(RejectReasonName(RejectReason::kPersonYearFull), "PERSON_YEAR_FULL");
  EXPECT_EQ(RejectReasonName(static_cast<RejectReason>(15)), "UNKNOWN");
  for (int c = 1; c <= kMaxCategory; ++c) {
    EXPECT_EQ(CategoryFromName(CategoryName(static_cast<Category>(c))), static_cast<Category>(c));
  }
  EXPECT_EQ(CategoryFromName("dental"), Category::kUnspecified);
  EXPECT_EQ(CategoryFromName(""), Category::kUnspecified);
  EXPECT_EQ(CategoryFromName("UNKNOWN"), Category::kUnspecified);
}

}  // namespace
}  // namespace frikort::core
