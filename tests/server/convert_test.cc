// The edge conversions: status codes, dates, enums, messages. (Timestamps:
// tests/common/timestamp_test.cc.)
#include "server/convert.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"

namespace frikort::server {
namespace {

using ::testing::HasSubstr;

TEST(ConvertTest, StatusCodesMapOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  for (int code = 1; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), "field: why");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "field: why");
  }
  EXPECT_EQ(ToGrpcStatus(absl::AbortedError("a")).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("u")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "x")).error_code(),
            grpc::StatusCode::UNKNOWN);
}

TEST(ConvertTest, MissingOrMalformedServiceTimeBecomesNullopt) {
  v1::CoPayment c;
  c.set_report_id("r");
  c.set_category(static_cast<v1::ServiceCategory>(77));
  c.set_payment(static_cast<v1::PaymentStatus>(-2));
  c.set_amount_ore(-5);
  c.set_attributed_year(2027);
  core::CoPaymentInput in = FromProto(c);
  EXPECT_FALSE(in.service_time.has_value());
  EXPECT_EQ(in.category, 77);  // raw numbers pass through for core to judge
  EXPECT_EQ(in.payment, -2);
  EXPECT_EQ(in.amount, -5);
  EXPECT_EQ(in.attributed_year, 2027);
  EXPECT_FALSE(in.service_time_out_of_range);  // not given
  c.mutable_service_time()->set_nanos(-4);
  EXPECT_FALSE(FromProto(c).service_time.has_value());
  EXPECT_TRUE(FromProto(c).service_time_out_of_range);
  c.mutable_service_time()->set_nanos(0);
  EXPECT_TRUE(FromProto(c).service_time.has_value());
  EXPECT_FALSE(FromProto(c).service_time_out_of_range);
  c.mutable_service_time()->set_seconds(int64_t{1} << 40);  // beyond 9999
  EXPECT_TRUE(FromProto(c).service_time_out_of_range);
}

TEST(ConvertTest, Enums) {
  EXPECT_EQ(*CategoryFromProto(8, "category"), core::Category::kDental);
  EXPECT_EQ(*CategoryFromProto(0, "category"), core::Category::kUnspecified);
  absl::StatusOr<core::Category> bad = CategoryFromProto(12, "category");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("category"));
  EXPECT_FALSE(CategoryFromProto(-1, "category").ok());
  EXPECT_EQ(*PaymentFromProto(3, "payment"), core::Payment::kInvoicedUnpaid);
  EXPECT_FALSE(PaymentFromProto(5, "payment").ok());

  EXPECT_EQ(SchemeToProto(core::Scheme::kTak2), v1::TAK2);
  EXPECT_EQ(SchemeToProto(static_cast<core::Scheme>(9)), v1::SCHEME_UNSPECIFIED);
  EXPECT_EQ(RejectReasonToProto(core::RejectReason::kAlreadyCancelled), v1::ALREADY_CANCELLED);
  EXPECT_EQ(RejectReasonToProto(core::RejectReason::kPersonYearFull), v1::PERSON_YEAR_FULL);
  EXPECT_EQ(RejectReasonToProto(static_cast<core::RejectReason>(15)),
            v1::REJECT_REASON_UNSPECIFIED);
  EXPECT_EQ(ExemptionStatusToProto(core::ExemptionStatus::kCapReached), v1::CAP_REACHED);
  EXPECT_EQ(OutcomeToProto(core::Outcome::kDuplicate), v1::DUPLICATE);
  EXPECT_EQ(CategoryToProto(core::Category::kClimateTravel), v1::CLIMATE_TRAVEL);
  EXPECT_EQ(PaymentToProto(core::Payment::kExemptFrikort), v1::EXEMPT_FRIKORT);
  // The core enums mirror the contract's numbers.
  EXPECT_EQ(core::kMaxCategory, v1::ServiceCategory_MAX);
  EXPECT_EQ(core::kMaxPayment, v1::PaymentStatus_MAX);
  EXPECT_EQ(static_cast<int>(core::RejectReason::kPersonYearFull), v1::RejectReason_MAX);
}

TEST(ConvertTest, OptionalDates) {
  ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
  absl::StatusOr<std::optional<absl::CivilDay>> none = ParseOptionalDate("", "as_of");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  absl::StatusOr<std::optional<absl::CivilDay>> day = ParseOptionalDate("2024-02-29", "as_of");
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(**day, absl::CivilDay(2024, 2, 29));
  absl::StatusOr<std::optional<absl::CivilDay>> bad = ParseOptionalDate("2023-02-29", "as_of");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("as_of"));
}

TEST(ConvertTest, MessagesCarryEveryField) {
  ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
  storage::LedgerView view;
  view.person_id = "01016012345";
  view.year = 2026;
  view.reserved = true;
  storage::SchemeLedger s;
  s.scheme = core::Scheme::kTak;
  s.cap = 327800;
  s.counted_total = 400000;
  s.cap_reached_on = absl::CivilDay(2026, 4, 1);
  s.refunded = 1000;
  s.outstanding = 71200;
  storage::Card card;
  card.person_id = view.person_id;
  card.year = 2026;
  card.scheme = core::Scheme::kTak;
  card.valid_from = absl::CivilDay(2026, 4, 1);
  card.valid_to = absl::CivilDay(2026, 12, 31);
  card.issued_on = absl::CivilDay(2026, 4, 20);
  card.basis_total = 400000;
  card.under_review = true;
  s.card = card;
  view.schemes.push_back(s);
  storage::Entry e;
  e.report_id = "r-1";
  e.provider_id = "1234567";
  e.service_time = absl::FromUnixSeconds(1775000000);
  e.category = core::Category::kRadiology;
  e.scheme = core::Scheme::kTak;
  e.amount = 400000;
  e.payment = core::Payment::kInvoiced;
  e.counted = true;
  e.cancelled = true;
  e.received_time = absl::FromUnixSeconds(1775000100);
  e.late = true;
  e.performed_abroad = true;
  view.entries.push_back(e);

  v1::Ledger out;
  ToProto(view, &out);
  EXPECT_EQ(out.person_id(), "01016012345");
  EXPECT_EQ(out.year(), 2026);
  EXPECT_TRUE(out.reserved());
  ASSERT_EQ(out.schemes_size(), 1);
  EXPECT_EQ(out.schemes(0).cap_ore(), 327800);
  EXPECT_EQ(out.schemes(0).counted_total_ore(), 400000);
  EXPECT_EQ(out.schemes(0).cap_reached_on(), "2026-04-01");
  EXPECT_EQ(out.schemes(0).refunded_ore(), 1000);
  EXPECT_EQ(out.schemes(0).outstanding_ore(), 71200);
  ASSERT_TRUE(out.schemes(0).has_card());
  EXPECT_EQ(out.schemes(0).card().valid_from(), "2026-04-01");
  EXPECT_EQ(out.schemes(0).card().valid_to(), "2026-12-31");
  EXPECT_EQ(out.schemes(0).card().issued_on(), "2026-04-20");
  EXPECT_EQ(out.schemes(0).card().basis_total_ore(), 400000);
  EXPECT_TRUE(out.schemes(0).card().under_review());
  ASSERT_EQ(out.entries_size(), 1);
  const v1::LedgerEntry& le = out.entries(0);
  EXPECT_EQ(le.report_id(), "r-1");
  EXPECT_EQ(le.provider_id(), "1234567");
  EXPECT_EQ(le.service_time().seconds(), 1775000000);
  EXPECT_EQ(le.category(), v1::RADIOLOGY);
  EXPECT_EQ(le.scheme(), v1::TAK);
  EXPECT_EQ(le.amount_ore(), 400000);
  EXPECT_EQ(le.payment(), v1::INVOICED);
  EXPECT_TRUE(le.counted());
  EXPECT_TRUE(le.cancelled());
  EXPECT_EQ(le.received_time().seconds(), 1775000100);
  EXPECT_TRUE(le.late());
  EXPECT_TRUE(le.performed_abroad());

  // No card, no crossing: absent and empty.
  view.schemes[0].card.reset();
  view.schemes[0].cap_reached_on.reset();
  out.Clear();
  ToProto(view, &out);
  EXPECT_FALSE(out.schemes(0).has_card());
  EXPECT_EQ(out.schemes(0).cap_reached_on(), "");

  jobs::RunSummary run;
  run.run_id = "run-000007";
  run.as_of = absl::CivilDay(2026, 6, 15);
  run.dry_run = true;
  run.ledgers_examined = 4;
  run.cards_issued = 3;
  run.payouts = 2;
  run.payout_total = 500;
  run.carried_forward = 70;
  run.cards_past_deadline = 1;
  v1::IssuanceRun ir;
  ToProto(run, &ir);
  EXPECT_EQ(ir.run_id(), "run-000007");
  EXPECT_EQ(ir.as_of(), "2026-06-15");
  EXPECT_TRUE(ir.dry_run());
  EXPECT_EQ(ir.ledgers_examined(), 4);
  EXPECT_EQ(ir.cards_issued(), 3);
  EXPECT_EQ(ir.payouts(), 2);
  EXPECT_EQ(ir.payout_total_ore(), 500);
  EXPECT_EQ(ir.carried_forward_ore(), 70);
  EXPECT_EQ(ir.cards_past_deadline(), 1);

  storage::SchemeExemption ex;
  ex.scheme = core::Scheme::kTak1;
  ex.status = core::ExemptionStatus::kNotExempt;
  v1::SchemeExemption pex;
  ToProto(ex, &pex);
  EXPECT_EQ(pex.scheme(), v1::TAK1);
  EXPECT_EQ(pex.status(), v1::NOT_EXEMPT);
  EXPECT_EQ(pex.valid_from(), "");
  EXPECT_EQ(pex.valid_to(), "");

  storage::Payout p{"01016012345", 2021,         core::Scheme::kTak,
                    25000,         "run-000002", absl::CivilDay(2021, 8, 1)};
  v1::Payout pp;
  ToProto(p, &pp);
  EXPECT_EQ(pp.person_id(), "01016012345");
  EXPECT_EQ(pp.year(), 2021);
  EXPECT_EQ(pp.amount_ore(), 25000);
  EXPECT_EQ(pp.run_id(), "run-000002");
  EXPECT_EQ(pp.created_on(), "2021-08-01");
}

}  // namespace
}  // namespace frikort::server
