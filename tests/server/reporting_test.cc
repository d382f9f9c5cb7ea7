// Reporting service through a real gRPC channel to an in-process server.
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/id_scan.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class ReportingTest : public ServerTest {
 protected:
  // A valid PAID physician co-payment of 100 NOK on 1 June 2026.
  CoPaymentSpec Valid(const std::string& report_id, const std::string& person) {
    CoPaymentSpec s;
    s.report_id = report_id;
    s.person_id = person;
    s.amount_ore = 10000;
    s.service_time = OsloTime(2026, 6, 1, 9, 30);
    return s;
  }

  // Submits `spec`, expects REJECTED with `reason` and a message naming
  // `field`, and that the person's 2026 ledger stays empty.
  void ExpectRejected(const v1::CoPayment& item, v1::RejectReason reason,
                      const std::string& field) {
    v1::ReportResult r = SubmitOne(item);
    EXPECT_EQ(r.outcome(), v1::REJECTED) << r.ShortDebugString();
    EXPECT_EQ(r.reason(), reason) << r.ShortDebugString();
    // Echoed within the contract's 64 characters, else left empty.
    EXPECT_EQ(r.report_id(), item.report_id().size() <= 64 ? item.report_id() : "");
    EXPECT_FALSE(r.counted());
    EXPECT_THAT(r.message(), HasSubstr(field));
    v1::Ledger ledger;
    if (GetLedger(item.person_id(), 2026, &ledger).ok()) {
      EXPECT_THAT(ledger.entries(), SizeIs(0)) << "a rejected report was stored";
      for (const v1::SchemeLedger& s : ledger.schemes()) EXPECT_EQ(s.counted_total_ore(), 0);
    }
  }
  void ExpectRejected(const CoPaymentSpec& spec, v1::RejectReason reason,
                      const std::string& field) {
    ExpectRejected(MakeCoPayment(spec), reason, field);
  }
};

TEST_F(ReportingTest, AcceptedReportIsStoredWithAllFields) {
  const std::string person = PersonId(1);
  CoPaymentSpec spec = Valid("r-1", person);
  spec.category = v1::LABORATORY;
  spec.amount_ore = 12345;
  spec.provider_id = OrgNumber(1);
  v1::CoPayment item = MakeCoPayment(spec);
  item.add_takst_codes("2ae");
  v1::ReportResult r = SubmitOne(item);
  EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.ShortDebugString();
  EXPECT_EQ(r.reason(), v1::REJECT_REASON_UNSPECIFIED);
  EXPECT_EQ(r.report_id(), "r-1");
  EXPECT_TRUE(r.counted());
  EXPECT_EQ(r.year(), 2026);
  EXPECT_EQ(r.scheme(), v1::TAK);

  v1::Ledger ledger = Ledger(person, 2026);
  EXPECT_EQ(ledger.person_id(), person);
  EXPECT_EQ(ledger.year(), 2026);
  EXPECT_FALSE(ledger.reserved());
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  const v1::LedgerEntry& e = ledger.entries(0);
  EXPECT_EQ(e.report_id(), "r-1");
  EXPECT_EQ(e.provider_id(), spec.provider_id);
  EXPECT_EQ(FromTs(e.service_time()), spec.service_time);
  EXPECT_EQ(e.category(), v1::LABORATORY);
  EXPECT_EQ(e.scheme(), v1::TAK);
  EXPECT_EQ(e.amount_ore(), 12345);
  EXPECT_EQ(e.payment(), v1::PAID);
  EXPECT_TRUE(e.counted());
  EXPECT_FALSE(e.cancelled());
  EXPECT_FALSE(e.performed_abroad());
  EXPECT_EQ(FromTs(e.received_time()), StartTime());
  EXPECT_FALSE(e.late());  // 14 days after 1 June is 15 June
  ASSERT_THAT(ledger.schemes(), SizeIs(1));
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 12345);
}

TEST_F(ReportingTest, LateReportIsAcceptedAndMarkedLate) {
  const std::string person = PersonId(2);
  CoPaymentSpec spec = Valid("late-1", person);
  spec.service_time = OsloTime(2026, 5, 1);
  EXPECT_EQ(SubmitOne(spec).outcome(), v1::ACCEPTED);
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  EXPECT_TRUE(ledger.entries(0).late());
  EXPECT_TRUE(ledger.entries(0).counted());
}

TEST_F(ReportingTest, DNumberIsAccepted) {
  const std::string d_number = MakePersonIdFor(absl::CivilDay(1985, 3, 7), 0, /*day_offset=*/40);
  ASSERT_EQ(d_number.substr(0, 2), "47");
  EXPECT_EQ(SubmitOne(Valid("d-1", d_number)).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, WhatCountsAndWhatDoesNot) {
  const std::string person = PersonId(3);
  CoPaymentSpec invoiced = Valid("c-invoiced", person);
  invoiced.payment = v1::INVOICED;
  CoPaymentSpec unpaid = Valid("c-unpaid", person);
  unpaid.payment = v1::INVOICED_UNPAID;
  CoPaymentSpec exempt = Valid("c-exempt", person);
  exempt.payment = v1::EXEMPT_FRIKORT;
  CoPaymentSpec abroad = Valid("c-abroad", person);
  abroad.performed_abroad = true;
  CoPaymentSpec climate = Valid("c-climate", person);
  climate.category = v1::CLIMATE_TRAVEL;
  climate.performed_abroad = true;

  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit({MakeCoPayment(invoiced), MakeCoPayment(unpaid), MakeCoPayment(exempt),
                           MakeCoPayment(abroad), MakeCoPayment(climate)},
                          &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(5));
  const bool expect_counted[] = {true, false, false, false, true};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(response.results(i).outcome(), v1::ACCEPTED) << i;
    EXPECT_EQ(response.results(i).counted(), expect_counted[i]) << i;
  }
  v1::Ledger ledger = Ledger(person, 2026);
  EXPECT_THAT(ledger.entries(), SizeIs(5));
  ASSERT_THAT(ledger.schemes(), SizeIs(1));
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 20000);
}

// ---- every RejectReason ---------------------------------------------------------

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

// ---- batch limits -----------------------------------------------------------------

TEST_F(ReportingTest, EmptyBatchIsInvalidArgument) {
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit({}, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
}

TEST_F(ReportingTest, BatchOf10001IsInvalidArgumentAnd10000IsServed) {
  const std::string person = PersonId(24);
  std::vector<v1::CoPayment> items;
  for (int i = 0; i < 10000; ++i) {
    CoPaymentSpec s = Valid(absl::StrCat("big-", i), person);
    s.amount_ore = 0;  // rejected per item: cheap, and nothing is stored
    items.push_back(MakeCoPayment(s));
  }
  items.push_back(MakeCoPayment(Valid("big-10000", person)));  // valid, must not be stored
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit(items, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_THAT(s.error_message(), HasSubstr("10001"));
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(0));

  items.erase(items.begin());  // 10,000 items, the last one valid
  response.Clear();
  s = Submit(items, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(10000));
  EXPECT_EQ(response.results(0).reason(), v1::INVALID_AMOUNT);
  EXPECT_EQ(response.results(9999).report_id(), "big-10000");
  EXPECT_EQ(response.results(9999).outcome(), v1::ACCEPTED);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

// ---- stream -------------------------------------------------------------------------

TEST_F(ReportingTest, StreamAnswersEveryMessageInOrder) {
  const int kMessages = 40;
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  std::vector<std::vector<std::string>> sent;
  // Write everything first (the server reads ahead and answers in order).
  std::thread writer([&] {
    for (int m = 0; m < kMessages; ++m) {
      v1::SubmitCoPaymentsRequest request;
      for (int i = 0; i <= m % 5; ++i) {
        CoPaymentSpec s = Valid(absl::StrCat("s-", m, "-", i), PersonId(100 + (m + i) % 7));
        if (i == 1) s.amount_ore = 0;  // some rejected items
        *request.add_co_payments() = MakeCoPayment(s);
      }
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  for (int m = 0; m < kMessages; ++m) {
    std::vector<std::string> ids;
    for (int i = 0; i <= m % 5; ++i) ids.push_back(absl::StrCat("s-", m, "-", i));
    sent.push_back(ids);
  }
  v1::SubmitCoPaymentsResponse response;
  int m = 0;
  while (stream->Read(&response)) {
    ASSERT_LT(m, kMessages);
    ASSERT_EQ(response.results_size(), static_cast<int>(sent[m].size())) << "message " << m;
    for (int i = 0; i < response.results_size(); ++i) {
      EXPECT_EQ(response.results(i).report_id(), sent[m][i]);
      EXPECT_EQ(response.results(i).outcome(), i == 1 ? v1::REJECTED : v1::ACCEPTED);
    }
    ++m;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m, kMessages);
  int stored = 0;
  for (int p = 0; p < 7; ++p) stored += Ledger(PersonId(100 + p), 2026).entries_size();
  int expected = 0;
  for (int k = 0; k < kMessages; ++k) expected += (k % 5 + 1) - (k % 5 >= 1 ? 1 : 0);
  EXPECT_EQ(stored, expected);
}

TEST_F(ReportingTest, StreamPingPongAndDuplicateAcrossMessages) {
  const std::string person = PersonId(30);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest request;
  *request.add_co_payments() = MakeCoPayment(Valid("pp-1", person));
  v1::SubmitCoPaymentsResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).outcome(), v1::ACCEPTED);
  ASSERT_TRUE(stream->Write(request));  // the same report again
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).outcome(), v1::DUPLICATE);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

TEST_F(ReportingTest, StreamWithEmptyMessageFinishesInvalidArgument) {
  const std::string before = PersonId(31);
  const std::string after = PersonId(32);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest first;
  *first.add_co_payments() = MakeCoPayment(Valid("e-1", before));
  v1::SubmitCoPaymentsRequest empty;
  v1::SubmitCoPaymentsRequest third;
  *third.add_co_payments() = MakeCoPayment(Valid("e-3", after));
  stream->Write(first);
  stream->Write(empty);
  stream->Write(third);
  stream->WritesDone();
  v1::SubmitCoPaymentsResponse response;
  int responses = 0;
  while (stream->Read(&response)) {
    ++responses;
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).report_id(), "e-1");
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_EQ(responses, 1);  // the message before the bad one is answered
  EXPECT_THAT(Ledger(before, 2026).entries(), SizeIs(1));
  EXPECT_THAT(Ledger(after, 2026).entries(), SizeIs(0));  // nothing after it is read
}

TEST_F(ReportingTest, StreamWithOversizedMessageFinishesInvalidArgument) {
  const std::string person = PersonId(33);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest big;
  for (int i = 0; i <= 10000; ++i) {
    *big.add_co_payments() = MakeCoPayment(Valid(absl::StrCat("o-", i), person));
  }
  stream->Write(big);
  stream->WritesDone();
  v1::SubmitCoPaymentsResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(0));
}

TEST_F(ReportingTest, StreamCancelledByClientDoesNotHangTheServer) {
  const std::string person = PersonId(34);
  {
    grpc::ClientContext ctx;
    auto stream = reporting_->StreamCoPayments(&ctx);
    v1::SubmitCoPaymentsRequest request;
    for (int i = 0; i < 100; ++i) {
      *request.add_co_payments() = MakeCoPayment(Valid(absl::StrCat("x-", i), person));
    }
    for (int m = 0; m < 5; ++m) stream->Write(request);
    ctx.TryCancel();
    stream->Finish();
  }
  // The server keeps serving; Shutdown in TearDown must not hang either.
  EXPECT_EQ(SubmitOne(Valid("x-after", person)).outcome(), v1::ACCEPTED);
}

// ---- UpdatePayment ------------------------------------------------------------------

TEST_F(ReportingTest, UpdatePaymentUnpaidToPaidMakesItCount) {
  const std::string person = PersonId(40);
  CoPaymentSpec s = Valid("u-1", person);
  s.payment = v1::INVOICED_UNPAID;
  s.amount_ore = 50000;
  v1::ReportResult r = SubmitOne(s);
  EXPECT_EQ(r.outcome(), v1::ACCEPTED);
  EXPECT_FALSE(r.counted());
  EXPECT_EQ(Ledger(person, 2026).schemes(0).counted_total_ore(), 0);

  v1::ReportResult u = UpdatePayment(s.provider_id, "u-1", v1::PAID);
  EXPECT_EQ(u.outcome(), v1::ACCEPTED) << u.ShortDebugString();
  EXPECT_EQ(u.report_id(), "u-1");
  EXPECT_TRUE(u.counted());
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  EXPECT_EQ(ledger.entries(0).payment(), v1::PAID);
  EXPECT_TRUE(ledger.entries(0).counted());
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 50000);

  // A retried update is idempotent: DUPLICATE, nothing changes.
  v1::ReportResult again = UpdatePayment(s.provider_id, "u-1", v1::PAID);
  EXPECT_EQ(again.outcome(), v1::DUPLICATE) << again.ShortDebugString();
  EXPECT_TRUE(again.counted());
  // Any other change: INVALID_PAYMENT_STATUS, no change.
  v1::ReportResult back = UpdatePayment(s.provider_id, "u-1", v1::INVOICED_UNPAID);
  EXPECT_EQ(back.outcome(), v1::REJECTED);
  EXPECT_EQ(back.reason(), v1::INVALID_PAYMENT_STATUS);
  EXPECT_EQ(Ledger(person, 2026).schemes(0).counted_total_ore(), 50000);
}

TEST_F(ReportingTest, UpdatePaymentOtherTransitionsAreRejected) {
  const std::string person = PersonId(41);
  CoPaymentSpec s = Valid("u-2", person);
  s.payment = v1::INVOICED_UNPAID;
  ASSERT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  for (int to : {int{v1::INVOICED}, int{v1::EXEMPT_FRIKORT}, int{v1::PAYMENT_STATUS_UNSPECIFIED}}) {
    v1::ReportResult r = UpdatePayment(s.provider_id, "u-2", to);
    EXPECT_EQ(r.outcome(), v1::REJECTED) << to;
    EXPECT_EQ(r.reason(), v1::INVALID_PAYMENT_STATUS) << to;
  }
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  EXPECT_EQ(ledger.entries(0).payment(), v1::INVOICED_UNPAID);
  EXPECT_FALSE(ledger.entries(0).counted());

  // From PAID nothing is allowed either.
  CoPaymentSpec paid = Valid("u-3", person);
  ASSERT_EQ(SubmitOne(paid).outcome(), v1::ACCEPTED);
  v1::ReportResult r = UpdatePayment(paid.provider_id, "u-3", v1::INVOICED_UNPAID);
  EXPECT_EQ(r.reason(), v1::INVALID_PAYMENT_STATUS);
}

TEST_F(ReportingTest, UpdatePaymentUnknownEnumNumberIsInvalidArgument) {
  grpc::Status status;
  UpdatePayment("1234567", "whatever", 99, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("payment"));
  UpdatePayment("1234567", "whatever", -3, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ReportingTest, UpdatePaymentUnknownReport) {
  v1::ReportResult r = UpdatePayment("1234567", "never-sent", v1::PAID);
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_EQ(r.reason(), v1::UNKNOWN_REPORT);
  EXPECT_EQ(r.report_id(), "never-sent");
}

// A report id is free text: one that holds a valid national id is refused
// (ReportIdHoldingANationalIdIsRejectedWithoutEchoingIt), and the messages of
// a result never repeat any report id either, so an 11-digit run that does
// not validate (a mistyped id) is not echoed (the result's report_id field
// names the report).
TEST_F(ReportingTest, ResultMessagesDoNotRepeatTheReportId) {
  const std::string report_id = "visit-12345678901";  // month 34: no valid id
  v1::ReportResult unknown = UpdatePayment("1234567", report_id, v1::PAID);
  EXPECT_EQ(unknown.reason(), v1::UNKNOWN_REPORT);
  EXPECT_THAT(unknown.message(), HasSubstr("report_id"));
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(unknown.message())) << unknown.message();
  EXPECT_EQ(unknown.report_id(), report_id);

  CoPaymentSpec s = Valid(report_id, PersonId(21));
  ASSERT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  s.amount_ore += 1;
  v1::ReportResult conflict = SubmitOne(s);
  EXPECT_EQ(conflict.reason(), v1::CONFLICTING_DUPLICATE);
  EXPECT_THAT(conflict.message(), HasSubstr("report_id"));
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(conflict.message())) << conflict.message();
  EXPECT_EQ(conflict.report_id(), report_id);
}

// ---- CancelCoPayment ----------------------------------------------------------------

TEST_F(ReportingTest, CancelKeepsTheEntryAndUncountsIt) {
  const std::string person = PersonId(50);
  CoPaymentSpec s = Valid("k-1", person);
  s.amount_ore = 30000;
  ASSERT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  ASSERT_TRUE(SubmitOne(Valid("k-2", person)).counted());
  EXPECT_EQ(Ledger(person, 2026).schemes(0).counted_total_ore(), 40000);

  v1::ReportResult c = Cancel(s.provider_id, "k-1");
  EXPECT_EQ(c.outcome(), v1::ACCEPTED) << c.ShortDebugString();
  EXPECT_EQ(c.report_id(), "k-1");
  EXPECT_FALSE(c.counted());

  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(2));  // history is kept
  for (const v1::LedgerEntry& e : ledger.entries()) {
    if (e.report_id() == "k-1") {
      EXPECT_TRUE(e.cancelled());
      EXPECT_FALSE(e.counted());
      EXPECT_EQ(e.amount_ore(), 30000);
    } else {
      EXPECT_FALSE(e.cancelled());
      EXPECT_TRUE(e.counted());
    }
  }
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 10000);

  v1::ReportResult twice = Cancel(s.provider_id, "k-1");
  EXPECT_EQ(twice.outcome(), v1::REJECTED);
  EXPECT_EQ(twice.reason(), v1::ALREADY_CANCELLED);
  EXPECT_EQ(twice.report_id(), "k-1");

  // Resubmitting the cancelled report does not bring it back.
  v1::ReportResult resubmit = SubmitOne(s);
  EXPECT_NE(resubmit.outcome(), v1::ACCEPTED);
  EXPECT_EQ(Ledger(person, 2026).schemes(0).counted_total_ore(), 10000);
}

TEST_F(ReportingTest, UpdatePaymentOfCancelledReportIsAlreadyCancelled) {
  const std::string person = PersonId(51);
  CoPaymentSpec s = Valid("k-3", person);
  s.payment = v1::INVOICED_UNPAID;
  ASSERT_EQ(SubmitOne(s).outcome(), v1::ACCEPTED);
  ASSERT_EQ(Cancel(s.provider_id, "k-3").outcome(), v1::ACCEPTED);
  v1::ReportResult r = UpdatePayment(s.provider_id, "k-3", v1::PAID);
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_EQ(r.reason(), v1::ALREADY_CANCELLED);
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  EXPECT_FALSE(ledger.entries(0).counted());
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 0);
}

TEST_F(ReportingTest, CancelUnknownReportAndOverlongReason) {
  v1::ReportResult r = Cancel("1234567", "never-sent");
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_EQ(r.reason(), v1::UNKNOWN_REPORT);

  v1::CancelCoPaymentRequest request;
  request.set_provider_id("1234567");
  request.set_report_id("never-sent");
  request.set_reason(std::string(5000, 'x'));
  v1::ReportResult result;
  grpc::Status s = reporting_->CancelCoPayment(Ctx().get(), request, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reason"));
}

TEST_F(ReportingTest, CancelReasonHoldingANationalIdIsInvalidArgument) {
  const CoPaymentSpec spec = Valid("k-9", PersonId(15));
  ASSERT_EQ(SubmitOne(MakeCoPayment(spec)).outcome(), v1::ACCEPTED);
  v1::CancelCoPaymentRequest request;
  request.set_provider_id(spec.provider_id);
  request.set_report_id("k-9");
  request.set_reason(absl::StrCat("wrong patient, meant ", PersonId(16)));
  v1::ReportResult result;
  grpc::Status s = reporting_->CancelCoPayment(Ctx().get(), request, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "reason: holds a national id (an 11-digit number that validates); describe the "
            "cancellation without it");
  // Nothing was cancelled: the same cancellation without the id goes through.
  EXPECT_EQ(Cancel(spec.provider_id, "k-9", "wrong patient").outcome(), v1::ACCEPTED);
}

// ---- shutdown -----------------------------------------------------------------------

TEST_F(ReportingTest, EveryAcknowledgedCallIsStoredWhenShutdownCutsIn) {
  const std::string person = PersonId(60);
  std::vector<std::string> acked;
  std::thread client([&] {
    for (int b = 0; b < 200; ++b) {
      std::vector<v1::CoPayment> items;
      for (int i = 0; i < 10; ++i) {
        CoPaymentSpec s = Valid(absl::StrCat("sd-", b, "-", i), person);
        s.amount_ore = 100;
        items.push_back(MakeCoPayment(s));
      }
      v1::SubmitCoPaymentsResponse response;
      grpc::Status st = Submit(items, &response);
      if (!st.ok()) break;
      for (const v1::ReportResult& r : response.results()) {
        if (r.outcome() == v1::ACCEPTED) acked.push_back(r.report_id());
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(150));
  StopServer();
  client.join();
  absl::StatusOr<storage::LedgerView> ledger = reg_->GetLedger(person, 2026);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  std::set<std::string> stored;
  for (const storage::Entry& e : ledger->entries) stored.insert(e.report_id);
  for (const std::string& id : acked) EXPECT_EQ(stored.count(id), 1u) << id;
  EXPECT_GE(stored.size(), acked.size());
}

}  // namespace
}  // namespace frikort::testutil
