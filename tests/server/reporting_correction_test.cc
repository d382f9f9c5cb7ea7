// Reporting service through a real gRPC channel to an in-process server:
// corrections of a stored report (UpdatePayment, CancelCoPayment).
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
using ::testing::SizeIs;

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

}  // namespace
}  // namespace frikort::testutil
