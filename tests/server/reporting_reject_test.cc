// Reporting service through a real gRPC channel to an in-process server: every
// RejectReason, and one bad item never failing the others.
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/reporting_fixture.h"
#include "tests/server/test_util.h"
#include "tests/testing/id_scan.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

TEST_F(ReportingTest, InvalidPersonId) {
  const std::string good = PersonId(10);
  ExpectRejected(Valid("p-1", WithBadCheckDigit(good)), v1::INVALID_PERSON_ID, "person_id");
  ExpectRejected(Valid("p-2", good.substr(0, 10)), v1::INVALID_PERSON_ID, "person_id");
  ExpectRejected(Valid("p-3", "0101601234a"), v1::INVALID_PERSON_ID, "person_id");
  ExpectRejected(Valid("p-4", ""), v1::INVALID_PERSON_ID, "person_id");
  // H-number (month + 40): refused; synthetic ids are off.
  const std::string h_number =
      MakePersonIdFor(absl::CivilDay(1970, 5, 5), 0, 0, /*month_offset=*/40);
  ExpectRejected(Valid("p-5", h_number), v1::INVALID_PERSON_ID, "person_id");
  // FH-number (first digit 8 or 9).
  std::string fh;
  for (int n = 12345678; fh.empty(); ++n) fh = WithCheckDigits(absl::StrCat(8, n));
  ExpectRejected(Valid("p-6", fh), v1::INVALID_PERSON_ID, "person_id");
  // Not a real date: 31 February.
  std::string feb31 = WithCheckDigits("310270100");
  for (int ind = 101; feb31.empty(); ++ind) feb31 = WithCheckDigits(absl::StrCat("310270", ind));
  ExpectRejected(Valid("p-7", feb31), v1::INVALID_PERSON_ID, "person_id");
}

TEST_F(ReportingTest, InvalidProviderId) {
  const std::string person = PersonId(11);
  CoPaymentSpec s = Valid("pr-1", person);
  int n = 0;
  for (const std::string& bad :
       {std::string(""), WithBadCheckDigit(OrgNumber(2)), std::string("1234567890"),
        std::string("12a4567"), std::string(" 1234567"), std::string("123456789012")}) {
    s.provider_id = bad;
    s.report_id = absl::StrCat("pr-bad-", n++);
    ExpectRejected(s, v1::INVALID_PROVIDER_ID, "provider_id");
  }
  // Both valid forms are accepted.
  s.provider_id = "1";
  s.report_id = "pr-ok-hpr";
  EXPECT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  s.provider_id = OrgNumber(3);
  s.report_id = "pr-ok-org";
  EXPECT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, InvalidReportId) {
  const std::string person = PersonId(12);
  for (const std::string& bad : {std::string(""), std::string("has space"), std::string(65, 'a'),
                                 std::string("slash/no"), std::string("\xc3\xb8")}) {
    ExpectRejected(Valid(bad, person), v1::INVALID_REPORT_ID, "report_id");
  }
  EXPECT_EQ(SubmitOne(Valid(std::string(64, 'a'), person)).outcome(), v1::ACCEPTED);
  EXPECT_EQ(SubmitOne(Valid("A-z.0:9_", person)).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, ReportIdHoldingANationalIdIsRejectedWithoutEchoingIt) {
  const std::string person = PersonId(13);
  const std::string typed = PersonId(14);  // someone's id typed into report_id
  for (const std::string& bad : {typed, "bill-" + typed, typed + ":2", "r" + person}) {
    const v1::CoPayment item = MakeCoPayment(Valid(bad, person));
    ExpectRejected(item, v1::INVALID_REPORT_ID, "report_id: holds a national id");
    const v1::ReportResult r = SubmitOne(item);
    EXPECT_EQ(r.message(),
              "report_id: holds a national id (an 11-digit number that validates); use an id "
              "of the practitioner system's own");
  }
  // Eleven digits that do not validate, or a longer run, are ordinary ids.
  EXPECT_EQ(SubmitOne(Valid("bill-" + WithBadCheckDigit(typed), person)).outcome(), v1::ACCEPTED);
  EXPECT_EQ(SubmitOne(Valid("bill-0" + typed, person)).outcome(), v1::ACCEPTED);
  // Payment updates and cancellations name a report the same way.
  v1::ReportResult u = UpdatePayment("1234567", "bill-" + typed, v1::PAID);
  EXPECT_EQ(u.outcome(), v1::REJECTED);
  EXPECT_EQ(u.reason(), v1::INVALID_REPORT_ID);
  EXPECT_THAT(u.message(), Not(HasSubstr(typed)));
  v1::ReportResult c = Cancel("1234567", "bill-" + typed);
  EXPECT_EQ(c.outcome(), v1::REJECTED);
  EXPECT_EQ(c.reason(), v1::INVALID_REPORT_ID);
  EXPECT_THAT(c.message(), Not(HasSubstr(typed)));
}

TEST_F(ReportingTest, InvalidAmount) {
  const std::string person = PersonId(13);
  CoPaymentSpec s = Valid("a-1", person);
  for (int64_t bad : {int64_t{0}, int64_t{-100}, core::kMaxAmountOre + 1,
                      std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    s.amount_ore = bad;
    ExpectRejected(s, v1::INVALID_AMOUNT, "amount");
  }
  s.amount_ore = core::kMaxAmountOre;
  EXPECT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, InvalidCategory) {
  const std::string person = PersonId(14);
  CoPaymentSpec s = Valid("cat-1", person);
  s.category = v1::SERVICE_CATEGORY_UNSPECIFIED;
  ExpectRejected(s, v1::INVALID_CATEGORY, "category");
  s.category = static_cast<v1::ServiceCategory>(99);  // unknown enum number on the wire
  ExpectRejected(s, v1::INVALID_CATEGORY, "category");
  s.category = static_cast<v1::ServiceCategory>(-1);
  ExpectRejected(s, v1::INVALID_CATEGORY, "category");
}

TEST_F(ReportingTest, InvalidServiceTime) {
  const std::string person = PersonId(15);
  v1::CoPayment missing = MakeCoPayment(Valid("t-missing", person));
  missing.clear_service_time();
  ExpectRejected(missing, v1::INVALID_SERVICE_TIME, "service_time");

  CoPaymentSpec future = Valid("t-future", person);
  future.service_time = StartTime() + absl::Hours(1);
  ExpectRejected(future, v1::INVALID_SERVICE_TIME, "service_time");

  v1::CoPayment bad_nanos = MakeCoPayment(Valid("t-nanos", person));
  bad_nanos.mutable_service_time()->set_nanos(1'000'000'000);
  ExpectRejected(bad_nanos, v1::INVALID_SERVICE_TIME, "service_time");
  bad_nanos.mutable_service_time()->set_nanos(-1);
  ExpectRejected(bad_nanos, v1::INVALID_SERVICE_TIME, "service_time");

  v1::CoPayment bad_seconds = MakeCoPayment(Valid("t-seconds", person));
  bad_seconds.mutable_service_time()->set_seconds(253402300800);  // year 10000
  ExpectRejected(bad_seconds, v1::INVALID_SERVICE_TIME, "service_time");
  bad_seconds.mutable_service_time()->set_seconds(std::numeric_limits<int64_t>::min());
  ExpectRejected(bad_seconds, v1::INVALID_SERVICE_TIME, "service_time");

  // Within the allowed clock skew: accepted.
  CoPaymentSpec skew = Valid("t-skew", person);
  skew.service_time = StartTime() + absl::Minutes(2);
  EXPECT_EQ(SubmitOne(skew).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, InvalidPaymentStatus) {
  const std::string person = PersonId(16);
  CoPaymentSpec s = Valid("pay-1", person);
  s.payment = v1::PAYMENT_STATUS_UNSPECIFIED;
  ExpectRejected(s, v1::INVALID_PAYMENT_STATUS, "payment");
  s.payment = static_cast<v1::PaymentStatus>(42);
  ExpectRejected(s, v1::INVALID_PAYMENT_STATUS, "payment");
}

TEST_F(ReportingTest, AttributedYear) {
  const std::string person = PersonId(17);
  // Only prescriptions may be attributed, and only to the next year.
  CoPaymentSpec physician = Valid("y-1", person);
  physician.service_time = OsloTime(2025, 12, 1);
  physician.attributed_year = 2026;
  ExpectRejected(physician, v1::INVALID_ATTRIBUTED_YEAR, "attributed_year");

  CoPaymentSpec two_ahead = Valid("y-2", person);
  two_ahead.category = v1::PRESCRIPTION;
  two_ahead.service_time = OsloTime(2025, 12, 1);
  two_ahead.attributed_year = 2027;
  ExpectRejected(two_ahead, v1::INVALID_ATTRIBUTED_YEAR, "attributed_year");

  CoPaymentSpec back = Valid("y-3", person);
  back.category = v1::PRESCRIPTION;
  back.attributed_year = 2025;
  ExpectRejected(back, v1::INVALID_ATTRIBUTED_YEAR, "attributed_year");

  CoPaymentSpec next_year = Valid("y-ok", person);
  next_year.category = v1::PRESCRIPTION;
  next_year.service_time = OsloTime(2025, 12, 1);
  next_year.attributed_year = 2026;
  v1::ReportResult r = SubmitOne(next_year);
  EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.ShortDebugString();
  EXPECT_EQ(r.year(), 2026);
  EXPECT_EQ(r.scheme(), v1::TAK);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
  EXPECT_THAT(Ledger(person, 2025).entries(), SizeIs(0));
}

TEST_F(ReportingTest, NoRulesForYear) {
  const std::string person = PersonId(18);
  CoPaymentSpec s = Valid("nr-1", person);
  s.service_time = OsloTime(2009, 5, 5);
  v1::ReportResult r = SubmitOne(s);
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_EQ(r.reason(), v1::NO_RULES_FOR_YEAR);
  EXPECT_THAT(r.message(), HasSubstr("2009"));
  // 2009 has no ledger to look at: GetLedger refuses the year.
  v1::Ledger ledger;
  EXPECT_EQ(GetLedger(person, 2009, &ledger).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ReportingTest, DuplicateAndConflictingDuplicate) {
  const std::string person = PersonId(19);
  CoPaymentSpec s = Valid("dup-1", person);
  EXPECT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  v1::ReportResult again = SubmitOne(s);
  EXPECT_EQ(again.outcome(), v1::DUPLICATE);
  EXPECT_EQ(again.report_id(), "dup-1");

  CoPaymentSpec changed = s;
  changed.amount_ore = s.amount_ore + 1;
  v1::ReportResult conflict = SubmitOne(changed);
  EXPECT_EQ(conflict.outcome(), v1::REJECTED);
  EXPECT_EQ(conflict.reason(), v1::CONFLICTING_DUPLICATE);
  EXPECT_FALSE(conflict.message().empty());

  // The same report id from another provider is another report.
  CoPaymentSpec other_provider = s;
  other_provider.provider_id = OrgNumber(4);
  EXPECT_EQ(SubmitOne(other_provider).outcome(), v1::ACCEPTED);

  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(2));
  for (const v1::LedgerEntry& e : ledger.entries()) EXPECT_EQ(e.amount_ore(), s.amount_ore);
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 2 * s.amount_ore);
}

TEST_F(ReportingTest, DuplicateInsideOneBatch) {
  const std::string person = PersonId(20);
  v1::CoPayment item = MakeCoPayment(Valid("same", person));
  v1::SubmitCoPaymentsResponse response;
  ASSERT_TRUE(Submit({item, item}, &response).ok());
  ASSERT_THAT(response.results(), SizeIs(2));
  EXPECT_EQ(response.results(0).outcome(), v1::ACCEPTED);
  EXPECT_EQ(response.results(1).outcome(), v1::DUPLICATE);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

TEST_F(ReportingTest, PersonReserved) {
  const std::string person = PersonId(21);
  ASSERT_TRUE(SetReservation(person, true).ok());
  v1::ReportResult r = SubmitOne(Valid("res-1", person));
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_EQ(r.reason(), v1::PERSON_RESERVED);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(0));
  // Withdrawn: reports are stored again.
  ASSERT_TRUE(SetReservation(person, false).ok());
  EXPECT_EQ(SubmitOne(Valid("res-2", person)).outcome(), v1::ACCEPTED);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

TEST_F(ReportingTest, OneBadItemNeverFailsTheOthers) {
  const std::string a = PersonId(22);
  const std::string b = PersonId(23);
  CoPaymentSpec bad = Valid("mix-2", b);
  bad.amount_ore = -1;
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit(
      {MakeCoPayment(Valid("mix-1", a)), MakeCoPayment(bad), MakeCoPayment(Valid("mix-3", a))},
      &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(3));
  EXPECT_EQ(response.results(0).report_id(), "mix-1");
  EXPECT_EQ(response.results(0).outcome(), v1::ACCEPTED);
  EXPECT_EQ(response.results(1).report_id(), "mix-2");
  EXPECT_EQ(response.results(1).outcome(), v1::REJECTED);
  EXPECT_EQ(response.results(1).reason(), v1::INVALID_AMOUNT);
  EXPECT_EQ(response.results(2).report_id(), "mix-3");
  EXPECT_EQ(response.results(2).outcome(), v1::ACCEPTED);
  EXPECT_THAT(Ledger(a, 2026).entries(), SizeIs(2));
  EXPECT_THAT(Ledger(b, 2026).entries(), SizeIs(0));
}

}  // namespace
}  // namespace frikort::testutil
