// Conversions at the gRPC edge: generated frikort.v1 messages <-> the core and
// storage structs, and absl::Status -> grpc::Status. Pure functions, no I/O;
// nothing here trusts the input: every enum number and timestamp is range
// checked, and a bad value becomes an error or "missing", never a crash.
// Timestamps convert with core/timestamp.h, which frikortctl shares.
#ifndef FRIKORT_SERVER_CONVERT_H_
#define FRIKORT_SERVER_CONVERT_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "core/types.h"
#include "frikort/v1/frikort.pb.h"
#include "grpcpp/support/status.h"
#include "jobs/issuance.h"
#include "storage/register.h"

namespace frikort::server {

// ---- status ----

// absl and gRPC share the canonical code numbers 0..16; anything else becomes
// UNKNOWN. The message is kept as is.
grpc::Status ToGrpcStatus(const absl::Status& status);

// ---- dates ----

// Parses an optional "YYYY-MM-DD" field: empty gives nullopt; a malformed value
// gives InvalidArgument naming `field`.
absl::StatusOr<std::optional<absl::CivilDay>> ParseOptionalDate(absl::string_view s,
                                                                absl::string_view field);

// ---- enums ----

// Range-checked casts of request enum numbers. InvalidArgument naming `field`
// when the number is not one the contract defines. Zero (UNSPECIFIED) passes.
absl::StatusOr<core::Category> CategoryFromProto(int value, absl::string_view field);
absl::StatusOr<core::Payment> PaymentFromProto(int value, absl::string_view field);

// Core -> proto enums; a value the contract does not know becomes UNSPECIFIED.
v1::ServiceCategory CategoryToProto(core::Category c);
v1::Scheme SchemeToProto(core::Scheme s);
v1::PaymentStatus PaymentToProto(core::Payment p);
v1::Outcome OutcomeToProto(core::Outcome o);
v1::RejectReason RejectReasonToProto(core::RejectReason r);
v1::ExemptionStatus ExemptionStatusToProto(core::ExemptionStatus s);
v1::NotCountedReason NotCountedReasonToProto(core::NotCountedReason r);

// ---- messages ----

// Raw enum numbers are passed through (core rejects unknown ones with the right
// reason); a missing or malformed service_time becomes nullopt, which core
// rejects as INVALID_SERVICE_TIME.
core::CoPaymentInput FromProto(const v1::CoPayment& in);
// Dates stay text: core::ValidateProvider checks them, naming the field.
core::ProviderInput FromProto(const v1::Provider& in);

// A result names its report_id only when it is at most this long (the
// contract's bound); a longer one, refused as INVALID_REPORT_ID, is answered
// with an empty report_id.
inline constexpr size_t kMaxEchoedReportIdBytes = 64;
void ToProto(const storage::ReportResult& in, v1::ReportResult* out);
void ToProto(const storage::Entry& in, v1::LedgerEntry* out);
void ToProto(const storage::Card& in, v1::FreeCard* out);
void ToProto(const storage::SchemeLedger& in, v1::SchemeLedger* out);
void ToProto(const storage::LedgerView& in, v1::Ledger* out);
void ToProto(const storage::SchemeExemption& in, v1::SchemeExemption* out);
void ToProto(const storage::LookupRecord& in, v1::LookupRecord* out);
void ToProto(const storage::Payout& in, v1::Payout* out);
void ToProto(const jobs::RunSummary& in, v1::IssuanceRun* out);
void ToProto(const core::ProviderRecord& in, v1::Provider* out);
void ToProto(const storage::ProviderChange& in, v1::PutProviderResponse* out);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_CONVERT_H_
