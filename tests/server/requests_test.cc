// The request checks on their own, at their boundaries: no server, no clock
// (today is an argument). The gRPC tests show the same checks through the
// handlers; tests/fuzz/fuzz_requests.cc throws arbitrary messages at them.
#include "server/requests.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "core/rules.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/ids.h"

namespace frikort::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr core::PersonIdOptions kProduction;
const absl::CivilDay kToday(2024, 6, 15);

// gMock's string matchers take std::string; absl::string_view is not one here.
std::string Message(const absl::Status& status) { return std::string(status.message()); }

core::RulesTable Rules() {
  return *core::RulesTable::Parse("year 2023 tak=3040 minimum=0\nyear 2024 tak=3165 minimum=0\n");
}

TEST(RequestsTest, BatchOfOneToTheLimit) {
  v1::SubmitCoPaymentsRequest request;
  EXPECT_THAT(Message(CheckRequest(request)), StartsWith("co_payments: empty"));
  request.add_co_payments()->set_report_id("r-1");
  EXPECT_TRUE(CheckRequest(request).ok());
  ASSERT_EQ(ToInputs(request).size(), 1u);
  EXPECT_EQ(ToInputs(request)[0].report_id, "r-1");
  while (request.co_payments_size() < kMaxBatchItems) request.add_co_payments();
  EXPECT_TRUE(CheckRequest(request).ok());
  request.add_co_payments();
  EXPECT_EQ(CheckRequest(request).message(),
            "co_payments: 10001 co-payments; at most 10000 per message");
}

TEST(RequestsTest, PaymentNumberAndReasonLength) {
  v1::UpdatePaymentRequest update;
  update.set_payment(v1::PAID);
  EXPECT_EQ(*CheckRequest(update), core::Payment::kPaid);
  update.set_payment(static_cast<v1::PaymentStatus>(5));
  EXPECT_EQ(CheckRequest(update).status().message(), "payment: 5 is not a known PaymentStatus");

  v1::CancelCoPaymentRequest cancel;
  cancel.set_reason(std::string(kMaxCancelReasonBytes, 'x'));
  EXPECT_TRUE(CheckRequest(cancel, kProduction).ok());
  cancel.mutable_reason()->push_back('x');
  EXPECT_EQ(CheckRequest(cancel, kProduction).message(), "reason: 4097 bytes; at most 4096");
}

TEST(RequestsTest, CancelReasonHoldingANationalIdIsRefused) {
  v1::CancelCoPaymentRequest cancel;
  const std::string id = testing::PersonN(7);
  cancel.set_reason("billed the wrong patient, " + id);
  const absl::Status status = CheckRequest(cancel, kProduction);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), StartsWith("reason: holds a national id"));
  EXPECT_THAT(Message(status), Not(HasSubstr(id)));
  std::string bad = id;
  bad.back() = bad.back() == '9' ? '0' : static_cast<char>(bad.back() + 1);
  cancel.set_reason("billed the wrong patient, " + bad);
  EXPECT_TRUE(CheckRequest(cancel, kProduction).ok());
}

TEST(RequestsTest, LookupWindowEdges) {
  v1::CheckExemptionRequest request;
  request.set_person_id(testing::PersonN(1));
  request.set_category(v1::DENTAL);
  absl::StatusOr<ExemptionQuery> query = CheckRequest(request, kProduction, kToday, 2);
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->date, kToday);
  EXPECT_EQ(query->category, core::Category::kDental);

  request.set_date("2022-01-01");
  EXPECT_TRUE(CheckRequest(request, kProduction, kToday, 2).ok());
  request.set_date("2021-12-31");
  EXPECT_THAT(
      Message(CheckRequest(request, kProduction, kToday, 2).status()),
      StartsWith("date: 2021-12-31 is too far back; lookups cover 2022-01-01 to 2024-12-31"));
  request.set_date("2024-12-31");
  EXPECT_TRUE(CheckRequest(request, kProduction, kToday, 2).ok());
  request.set_date("2025-01-01");
  EXPECT_THAT(Message(CheckRequest(request, kProduction, kToday, 2).status()),
              HasSubstr("is in a later year than today (2024-06-15)"));
}

TEST(RequestsTest, PersonIdIsCheckedFirstAndNeverEchoed) {
  std::string bad = testing::PersonN(2);
  bad.back() = bad.back() == '9' ? '0' : bad.back() + 1;  // k2 no longer matches
  v1::CheckExemptionRequest lookup;
  lookup.set_person_id(bad);
  lookup.set_date("not a date");
  const absl::Status status = CheckRequest(lookup, kProduction, kToday, 2).status();
  EXPECT_THAT(Message(status), StartsWith("person_id: "));
  EXPECT_THAT(Message(status), Not(HasSubstr(bad)));

  v1::GetLedgerRequest ledger;
  ledger.set_person_id(bad);
  EXPECT_THAT(Message(CheckRequest(ledger, kProduction, Rules())), StartsWith("person_id: "));
  ledger.set_person_id(testing::PersonN(2));
  EXPECT_EQ(CheckRequest(ledger, kProduction, Rules()).message(), "year: required");
  ledger.set_year(2024);
  EXPECT_TRUE(CheckRequest(ledger, kProduction, Rules()).ok());
}

// Found by tests/fuzz/fuzz_requests: the id put in the date field by mistake
// came back in clear in the error message.
TEST(RequestsTest, IdInTheDateFieldIsNotEchoed) {
  const std::string id = testing::PersonN(3);
  v1::CheckExemptionRequest request;
  request.set_person_id(id);
  request.set_date(id);
  const absl::Status status = CheckRequest(request, kProduction, kToday, 2).status();
  EXPECT_THAT(Message(status), StartsWith("date: not a date in the form YYYY-MM-DD"));
  EXPECT_THAT(Message(status), Not(HasSubstr(id)));
}

TEST(RequestsTest, DecisionDateMayBeTodayNotLater) {
  v1::RunIssuanceRequest request;
  EXPECT_EQ(*CheckRequest(request, kToday), std::nullopt);
  request.set_as_of("2024-06-15");
  EXPECT_EQ(*CheckRequest(request, kToday), kToday);
  request.set_as_of("2024-06-16");
  EXPECT_EQ(CheckRequest(request, kToday).status().message(),
            "as_of: 2024-06-16 is after today (2024-06-15); a run decides on today or an earlier "
            "day");
}

TEST(RequestsTest, ListingsCheckYearThenPageSizeThenFilter) {
  v1::ListFreeCardsRequest cards;
  cards.set_year(2019);
  cards.set_page_size(-1);
  cards.set_issued_on("2024-13-01");
  EXPECT_EQ(CheckRequest(cards, Rules()).status().message(),
            "year: no rules for 2019 (the rules table covers 2023-2024)");
  cards.set_year(2024);
  EXPECT_THAT(Message(CheckRequest(cards, Rules()).status()), StartsWith("page_size: -1"));
  cards.set_page_size(0);
  EXPECT_THAT(Message(CheckRequest(cards, Rules()).status()), StartsWith("issued_on: "));
  cards.set_issued_on("2024-03-01");
  EXPECT_EQ(*CheckRequest(cards, Rules()), absl::CivilDay(2024, 3, 1));

  v1::ListPayoutsRequest payouts;
  EXPECT_EQ(CheckRequest(payouts, Rules()).message(),
            "run_id, year: give a run_id, a year, or both");
  payouts.set_run_id("run-000001");
  EXPECT_TRUE(CheckRequest(payouts, Rules()).ok());
  payouts.set_year(2019);
  EXPECT_THAT(Message(CheckRequest(payouts, Rules())), StartsWith("year: no rules for 2019"));
}

}  // namespace
}  // namespace frikort::server
