// The shape checks of the frikort.v1 requests, one function per RPC: what a
// handler verifies before it touches the register. Pure functions of the
// message and the server's settings (no I/O; "today" is passed in), so the
// handlers in services.cc and the fuzz targets in tests/fuzz run the same code.
//
// Every error is InvalidArgument with a message that starts with the name of
// the field at fault ("person_id: ...", "run_id, year: ..."). Messages never
// echo a national id.
#ifndef FRIKORT_SERVER_REQUESTS_H_
#define FRIKORT_SERVER_REQUESTS_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "core/copayment.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "core/types.h"
#include "frikort/v1/frikort.pb.h"

namespace frikort::server {

// A SubmitCoPayments call (or one stream message) carries 1 to this many items.
inline constexpr int kMaxBatchItems = 10000;
// Bound on the free-text reason of a cancellation (bytes).
inline constexpr size_t kMaxCancelReasonBytes = 4096;

// ---- Reporting ----

// SubmitCoPayments and each StreamCoPayments message: 1 to kMaxBatchItems
// co-payments. The items themselves are the register's to judge, one by one.
absl::Status CheckRequest(const v1::SubmitCoPaymentsRequest& request);
// The co-payments as the register takes them (FromProto of each, in order).
std::vector<core::CoPaymentInput> ToInputs(const v1::SubmitCoPaymentsRequest& request);

// The payment status asked for. An unknown enum number is a malformed request;
// a known but wrong status is left to the register's per-report answer.
absl::StatusOr<core::Payment> CheckRequest(const v1::UpdatePaymentRequest& request);

// A reason of at most kMaxCancelReasonBytes that holds no national id
// (core::ValidateCancelReason with the server's id options).
absl::Status CheckRequest(const v1::CancelCoPaymentRequest& request,
                          const core::PersonIdOptions& id_options);

// ---- Lookup ----

struct ExemptionQuery {
  absl::CivilDay date;  // the date asked about; today when the request gives none
  core::Category category = core::Category::kUnspecified;  // kUnspecified: every scheme
};

// A valid person id, a date from 1 January of (today's year -
// lookup_years_back) to 31 December of today's year, a known category.
absl::StatusOr<ExemptionQuery> CheckRequest(const v1::CheckExemptionRequest& request,
                                            const core::PersonIdOptions& id_options,
                                            absl::CivilDay today, int lookup_years_back);

// ---- Registry ----

// A valid person id, a year the rules table covers and a page size >= 0
// (the page token is the register's).
absl::Status CheckRequest(const v1::GetLedgerRequest& request,
                          const core::PersonIdOptions& id_options, const core::RulesTable& rules);
// A valid person id.
absl::Status CheckRequest(const v1::SetReservationRequest& request,
                          const core::PersonIdOptions& id_options);
// A valid person id and a page size >= 0 (the page token is the register's).
absl::Status CheckRequest(const v1::ListLookupsRequest& request,
                          const core::PersonIdOptions& id_options);

// ---- Issuance ----

// The decision date: nullopt (today) when as_of is empty; a date after today
// is refused, since cards and payouts carry it.
absl::StatusOr<std::optional<absl::CivilDay>> CheckRequest(const v1::RunIssuanceRequest& request,
                                                           absl::CivilDay today);
// A year the rules table covers, a page size >= 0; gives the optional
// issued_on filter.
absl::StatusOr<std::optional<absl::CivilDay>> CheckRequest(const v1::ListFreeCardsRequest& request,
                                                           const core::RulesTable& rules);
// A run id, a year or both; a given year must be one the rules table covers;
// a page size >= 0.
absl::Status CheckRequest(const v1::ListPayoutsRequest& request, const core::RulesTable& rules);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_REQUESTS_H_
