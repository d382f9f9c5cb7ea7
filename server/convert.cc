#include "server/convert.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "core/timestamp.h"

namespace frikort::server {
namespace {

template <typename Enum>
Enum CastIfInRange(int value, int max, Enum unspecified) {
  if (value < 0 || value > max) return unspecified;
  return static_cast<Enum>(value);
}

std::string OptionalDate(const std::optional<absl::CivilDay>& day) {
  return day.has_value() ? core::FormatDate(*day) : std::string();
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  grpc::StatusCode grpc_code = grpc::StatusCode::UNKNOWN;
  if (code >= 0 && code <= static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    grpc_code = static_cast<grpc::StatusCode>(code);
  }
  return grpc::Status(grpc_code, std::string(status.message()));
}

absl::StatusOr<std::optional<absl::CivilDay>> ParseOptionalDate(absl::string_view s,
                                                                absl::string_view field) {
  if (s.empty()) return std::optional<absl::CivilDay>();
  absl::StatusOr<absl::CivilDay> day = core::ParseDate(s, field);
  if (!day.ok()) return day.status();
  return std::optional<absl::CivilDay>(*day);
}

absl::StatusOr<core::Category> CategoryFromProto(int value, absl::string_view field) {
  if (value < 0 || value > core::kMaxCategory) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value, " is not a known ServiceCategory"));
  }
  return static_cast<core::Category>(value);
}

absl::StatusOr<core::Payment> PaymentFromProto(int value, absl::string_view field) {
  if (value < 0 || value > core::kMaxPayment) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value, " is not a known PaymentStatus"));
  }
  return static_cast<core::Payment>(value);
}

v1::ServiceCategory CategoryToProto(core::Category c) {
  return CastIfInRange(static_cast<int>(c), v1::ServiceCategory_MAX,
                       v1::SERVICE_CATEGORY_UNSPECIFIED);
}

v1::Scheme SchemeToProto(core::Scheme s) {
  return CastIfInRange(static_cast<int>(s), v1::Scheme_MAX, v1::SCHEME_UNSPECIFIED);
}

v1::PaymentStatus PaymentToProto(core::Payment p) {
  return CastIfInRange(static_cast<int>(p), v1::PaymentStatus_MAX, v1::PAYMENT_STATUS_UNSPECIFIED);
}

v1::Outcome OutcomeToProto(core::Outcome o) {
  return CastIfInRange(static_cast<int>(o), v1::Outcome_MAX, v1::OUTCOME_UNSPECIFIED);
}

v1::RejectReason RejectReasonToProto(core::RejectReason r) {
  return CastIfInRange(static_cast<int>(r), v1::RejectReason_MAX, v1::REJECT_REASON_UNSPECIFIED);
}

v1::ExemptionStatus ExemptionStatusToProto(core::ExemptionStatus s) {
  return CastIfInRange(static_cast<int>(s), v1::ExemptionStatus_MAX,
                       v1::EXEMPTION_STATUS_UNSPECIFIED);
}

core::CoPaymentInput FromProto(const v1::CoPayment& in) {
  core::CoPaymentInput out;
  out.report_id = in.report_id();
  out.provider_id = in.provider_id();
  out.person_id = in.person_id();
  if (in.has_service_time()) {
    out.service_time = core::FromProtoTimestamp(in.service_time());
    out.service_time_out_of_range = !out.service_time.has_value();
  }
  out.category = static_cast<int>(in.category());
  out.amount = in.amount_ore();
  out.payment = static_cast<int>(in.payment());
  out.performed_abroad = in.performed_abroad();
  out.attributed_year = in.attributed_year();
  out.practice_id = in.practice_id();
  return out;
}

v1::NotCountedReason NotCountedReasonToProto(core::NotCountedReason r) {
  const int n = static_cast<int>(r);
  return v1::NotCountedReason_IsValid(n) ? static_cast<v1::NotCountedReason>(n)
                                         : v1::NOT_COUNTED_REASON_UNSPECIFIED;
}

core::ProviderInput FromProto(const v1::Provider& in) {
  core::ProviderInput out;
  out.id = in.provider_id();
  out.name = in.name();
  for (const v1::Agreement& a : in.agreements()) {
    out.agreements.push_back({a.valid_from(), a.valid_to(), a.version()});
  }
  return out;
}

void ToProto(const core::ProviderRecord& in, v1::Provider* out) {
  out->set_provider_id(in.id);
  out->set_name(in.name);
  for (const core::AgreementPeriod& p : in.agreements) {
    v1::Agreement* a = out->add_agreements();
    a->set_valid_from(core::FormatDate(p.from));
    if (p.to.has_value()) a->set_valid_to(core::FormatDate(*p.to));
    a->set_version(p.version);
  }
}

void ToProto(const storage::ProviderChange& in, v1::PutProviderResponse* out) {
  ToProto(in.provider, out->mutable_provider());
  out->set_entries_reevaluated(in.entries_reevaluated);
  out->set_entries_changed(in.entries_changed);
  out->set_ledgers_changed(in.ledgers_changed);
  out->set_cards_under_review(in.cards_under_review);
}

void ToProto(const storage::ReportResult& in, v1::ReportResult* out) {
  // The answer repeats a report id only within the contract's bound, so that
  // its size is bounded whatever was sent (results are in request order).
  if (in.report_id.size() <= kMaxEchoedReportIdBytes) out->set_report_id(in.report_id);
  out->set_outcome(OutcomeToProto(in.outcome));
  out->set_reason(RejectReasonToProto(in.reason));
  out->set_message(in.message);
  out->set_counted(in.counted);
  out->set_year(in.year);
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_not_counted_reason(NotCountedReasonToProto(in.not_counted_reason));
}

void ToProto(const storage::Entry& in, v1::LedgerEntry* out) {
  out->set_report_id(in.report_id);
  out->set_provider_id(in.provider_id);
  core::ToProtoTimestamp(in.service_time, out->mutable_service_time());
  out->set_category(CategoryToProto(in.category));
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_amount_ore(in.amount);
  out->set_payment(PaymentToProto(in.payment));
  out->set_counted(in.counted);
  out->set_cancelled(in.cancelled);
  core::ToProtoTimestamp(in.received_time, out->mutable_received_time());
  out->set_late(in.late);
  out->set_performed_abroad(in.performed_abroad);
  out->set_practice_id(in.practice_id);
  out->set_not_counted_reason(NotCountedReasonToProto(in.not_counted_reason));
}

void ToProto(const storage::Card& in, v1::FreeCard* out) {
  out->set_person_id(in.person_id);
  out->set_year(in.year);
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_valid_from(core::FormatDate(in.valid_from));
  out->set_valid_to(core::FormatDate(in.valid_to));
  out->set_issued_on(core::FormatDate(in.issued_on));
  out->set_basis_total_ore(in.basis_total);
  out->set_under_review(in.under_review);
}

void ToProto(const storage::SchemeLedger& in, v1::SchemeLedger* out) {
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_cap_ore(in.cap);
  out->set_counted_total_ore(in.counted_total);
  out->set_cap_reached_on(OptionalDate(in.cap_reached_on));
  if (in.card.has_value()) ToProto(*in.card, out->mutable_card());
  out->set_refunded_ore(in.refunded);
  out->set_outstanding_ore(in.outstanding);
}

void ToProto(const storage::LedgerView& in, v1::Ledger* out) {
  out->set_person_id(in.person_id);
  out->set_year(in.year);
  out->set_reserved(in.reserved);
  for (const storage::SchemeLedger& s : in.schemes) ToProto(s, out->add_schemes());
  for (const storage::Entry& e : in.entries) ToProto(e, out->add_entries());
  out->set_next_page_token(in.next_page_token);
}

void ToProto(const storage::SchemeExemption& in, v1::SchemeExemption* out) {
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_status(ExemptionStatusToProto(in.status));
  out->set_valid_from(OptionalDate(in.valid_from));
  out->set_valid_to(OptionalDate(in.valid_to));
}

void ToProto(const storage::LookupRecord& in, v1::LookupRecord* out) {
  core::ToProtoTimestamp(in.time, out->mutable_time());
  out->set_caller(in.caller);
  out->set_date(core::FormatDate(in.date));
  out->set_category(CategoryToProto(in.category));
}

void ToProto(const storage::Payout& in, v1::Payout* out) {
  out->set_person_id(in.person_id);
  out->set_year(in.year);
  out->set_scheme(SchemeToProto(in.scheme));
  out->set_amount_ore(in.amount);
  out->set_run_id(in.run_id);
  out->set_created_on(core::FormatDate(in.created_on));
}

void ToProto(const jobs::RunSummary& in, v1::IssuanceRun* out) {
  out->set_run_id(in.run_id);
  out->set_as_of(core::FormatDate(in.as_of));
  out->set_dry_run(in.dry_run);
  out->set_ledgers_examined(in.ledgers_examined);
  out->set_cards_issued(in.cards_issued);
  out->set_payouts(in.payouts);
  out->set_payout_total_ore(in.payout_total);
  out->set_carried_forward_ore(in.carried_forward);
  out->set_cards_past_deadline(in.cards_past_deadline);
}

}  // namespace frikort::server
