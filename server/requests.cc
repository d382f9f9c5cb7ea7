#include "server/requests.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/calendar.h"
#include "server/convert.h"

namespace frikort::server {
namespace {

absl::Status CheckBatchSize(int n, absl::string_view field) {
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": empty; send 1 to ", kMaxBatchItems, " co-payments"));
  }
  if (n > kMaxBatchItems) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", n, " co-payments; at most ", kMaxBatchItems, " per message"));
  }
  return absl::OkStatus();
}

// The person id check the register also does, done at the edge so a bad id is
// refused before anything (e.g. the lookup audit log) is touched.
absl::Status CheckPersonId(absl::string_view person_id, const core::PersonIdOptions& options) {
  absl::StatusOr<core::PersonId> id = core::ParsePersonId(person_id, options);
  if (id.ok()) return absl::OkStatus();
  if (absl::StartsWith(id.status().message(), "person_id")) return id.status();
  return absl::InvalidArgumentError(absl::StrCat("person_id: ", id.status().message()));
}

absl::Status CheckYearHasRules(int year, const core::RulesTable& rules) {
  if (year == 0) return absl::InvalidArgumentError("year: required");
  if (rules.ForYear(year) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("year: no rules for ", year,
                                                   " (the rules table covers ", rules.first_year(),
                                                   "-", rules.last_year(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", page_size, " is negative; use 0 for the default"));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- Reporting ----

absl::Status CheckRequest(const v1::SubmitCoPaymentsRequest& request) {
  return CheckBatchSize(request.co_payments_size(), "co_payments");
}

std::vector<core::CoPaymentInput> ToInputs(const v1::SubmitCoPaymentsRequest& request) {
  std::vector<core::CoPaymentInput> items;
  items.reserve(request.co_payments_size());
  for (const v1::CoPayment& c : request.co_payments()) items.push_back(FromProto(c));
  return items;
}

absl::StatusOr<core::Payment> CheckRequest(const v1::UpdatePaymentRequest& request) {
  return PaymentFromProto(static_cast<int>(request.payment()), "payment");
}

absl::Status CheckRequest(const v1::CancelCoPaymentRequest& request,
                          const core::PersonIdOptions& id_options) {
  if (request.reason().size() > kMaxCancelReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reason: ", request.reason().size(),
                                                   " bytes; at most ", kMaxCancelReasonBytes));
  }
  return core::ValidateCancelReason(request.reason(), id_options);
}

// ---- Lookup ----

absl::StatusOr<ExemptionQuery> CheckRequest(const v1::CheckExemptionRequest& request,
                                            const core::PersonIdOptions& id_options,
                                            absl::CivilDay today, int lookup_years_back) {
  if (absl::Status s = CheckPersonId(request.person_id(), id_options); !s.ok()) return s;
  absl::CivilDay date = today;
  if (!request.date().empty()) {
    absl::StatusOr<absl::CivilDay> parsed = core::ParseDate(request.date(), "date");
    if (!parsed.ok()) return parsed.status();
    date = *parsed;
  }
  const int first_year = static_cast<int>(today.year()) - lookup_years_back;
  if (date.year() < first_year) {
    return absl::InvalidArgumentError(absl::StrCat("date: ", core::FormatDate(date),
                                                   " is too far back; lookups cover ", first_year,
                                                   "-01-01 to ", today.year(), "-12-31"));
  }
  if (date.year() > today.year()) {
    return absl::InvalidArgumentError(absl::StrCat("date: ", core::FormatDate(date),
                                                   " is in a later year than today (",
                                                   core::FormatDate(today), ")"));
  }
  absl::StatusOr<core::Category> category =
      CategoryFromProto(static_cast<int>(request.category()), "category");
  if (!category.ok()) return category.status();
  return ExemptionQuery{date, *category};
}

// ---- Registry ----

absl::Status CheckRequest(const v1::GetLedgerRequest& request,
                          const core::PersonIdOptions& id_options, const core::RulesTable& rules) {
  absl::Status status = CheckPersonId(request.person_id(), id_options);
  if (status.ok()) status = CheckYearHasRules(request.year(), rules);
  if (status.ok()) status = CheckPageSize(request.page_size());
  return status;
}

absl::Status CheckRequest(const v1::SetReservationRequest& request,
                          const core::PersonIdOptions& id_options) {
  return CheckPersonId(request.person_id(), id_options);
}

absl::Status CheckRequest(const v1::ListLookupsRequest& request,
                          const core::PersonIdOptions& id_options) {
  absl::Status status = CheckPersonId(request.person_id(), id_options);
  if (status.ok()) status = CheckPageSize(request.page_size());
  return status;
}

// ---- Issuance ----

absl::StatusOr<std::optional<absl::CivilDay>> CheckRequest(const v1::RunIssuanceRequest& request,
                                                           absl::CivilDay today) {
  absl::StatusOr<std::optional<absl::CivilDay>> as_of = ParseOptionalDate(request.as_of(), "as_of");
  if (!as_of.ok()) return as_of.status();
  if (as_of->has_value() && **as_of > today) {
    // Cards and payouts carry the decision date: one in the future would be
    // a card "issued" on a day that has not come.
    return absl::InvalidArgumentError(absl::StrCat("as_of: ", core::FormatDate(**as_of),
                                                   " is after today (", core::FormatDate(today),
                                                   "); a run decides on today or an earlier day"));
  }
  return as_of;
}

absl::StatusOr<std::optional<absl::CivilDay>> CheckRequest(const v1::ListFreeCardsRequest& request,
                                                           const core::RulesTable& rules) {
  absl::Status status = CheckYearHasRules(request.year(), rules);
  if (status.ok()) status = CheckPageSize(request.page_size());
  if (!status.ok()) return status;
  return ParseOptionalDate(request.issued_on(), "issued_on");
}

absl::Status CheckRequest(const v1::ListPayoutsRequest& request, const core::RulesTable& rules) {
  absl::Status status;
  if (request.run_id().empty() && request.year() == 0) {
    status = absl::InvalidArgumentError("run_id, year: give a run_id, a year, or both");
  } else if (request.year() != 0) {
    status = CheckYearHasRules(request.year(), rules);
  }
  if (status.ok()) status = CheckPageSize(request.page_size());
  return status;
}

}  // namespace frikort::server
