#include "core/copayment.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "core/provider.h"

namespace frikort::core {
namespace {

Validation Reject(RejectReason reason, std::string message) {
  Validation v;
  v.reason = reason;
  v.message = std::move(message);
  return v;
}

}  // namespace

Validation ValidateCoPayment(const CoPaymentInput& in, const RulesTable& rules,
                             const PersonIdOptions& id_options, absl::Time now) {
  if (absl::Status s = ValidateReportId(in.report_id, id_options); !s.ok()) {
    return Reject(RejectReason::kInvalidReportId, std::string(s.message()));
  }
  if (absl::Status s = ValidateProviderId(in.provider_id); !s.ok()) {
    return Reject(RejectReason::kInvalidProviderId, std::string(s.message()));
  }
  if (!in.practice_id.empty()) {
    if (absl::Status s = ValidatePracticeId(in.practice_id); !s.ok()) {
      return Reject(RejectReason::kInvalidProviderId, std::string(s.message()));
    }
  }
  absl::StatusOr<PersonId> person = ParsePersonId(in.person_id, id_options);
  if (!person.ok()) {
    return Reject(RejectReason::kInvalidPersonId, std::string(person.status().message()));
  }

  if (in.service_time_out_of_range) {
    return Reject(RejectReason::kInvalidServiceTime,
                  "service_time: out of range (a timestamp from year 1 to 9999, nanos 0 to "
                  "999999999)");
  }
  if (!in.service_time.has_value()) {
    return Reject(RejectReason::kInvalidServiceTime, "service_time: not given");
  }
  const absl::Time service_time = *in.service_time;
  if (service_time > now + kClockSkewAllowance) {
    return Reject(RejectReason::kInvalidServiceTime, "service_time: is in the future");
  }

  if (in.category == 0) return Reject(RejectReason::kInvalidCategory, "category: not given");
  if (in.category < 0 || in.category > kMaxCategory) {
    return Reject(RejectReason::kInvalidCategory,
                  absl::StrCat("category: unknown value ", in.category));
  }
  const Category category = static_cast<Category>(in.category);

  if (in.amount <= 0) {
    return Reject(RejectReason::kInvalidAmount,
                  absl::StrCat("amount: must be above 0 øre, got ", in.amount));
  }
  if (in.amount > kMaxAmountOre) {
    return Reject(RejectReason::kInvalidAmount,
                  absl::StrCat("amount: ", in.amount, " øre is above the maximum of ",
                               kMaxAmountOre, " øre for one co-payment"));
  }

  if (in.payment == 0) return Reject(RejectReason::kInvalidPaymentStatus, "payment: not given");
  if (in.payment < 0 || in.payment > kMaxPayment) {
    return Reject(RejectReason::kInvalidPaymentStatus,
                  absl::StrCat("payment: unknown value ", in.payment));
  }

  const absl::CivilDay service_date = OsloDate(service_time);
  const int service_year = OsloYear(service_time);
  int year = service_year;
  if (in.attributed_year != 0) {
    // Only medicine handed out for a long stay abroad may count toward next year
    // (rule 3); anything else would let a report pick its cap.
    if (category != Category::kPrescription) {
      return Reject(RejectReason::kInvalidAttributedYear,
                    absl::StrCat("attributed_year: only PRESCRIPTION may be attributed to "
                                 "another year, not ",
                                 CategoryName(category)));
    }
    if (service_year == std::numeric_limits<int>::max() || in.attributed_year != service_year + 1) {
      return Reject(RejectReason::kInvalidAttributedYear,
                    absl::StrCat("attributed_year: must be the year after the service year ",
                                 service_year, ", got ", in.attributed_year));
    }
    year = in.attributed_year;
  }

  if (rules.ForYear(year) == nullptr) {
    return Reject(RejectReason::kNoRulesForYear,
                  absl::StrCat(in.attributed_year != 0 ? "attributed_year" : "service_time",
                               ": the register has no caps for the year ", year));
  }
  absl::StatusOr<Scheme> scheme = rules.SchemeFor(year, category);
  if (!scheme.ok()) {
    // Unreachable after the checks above; keep the reason honest if it ever happens.
    return Reject(RejectReason::kNoRulesForYear, std::string(scheme.status().message()));
  }

  Validation v;
  ValidatedCoPayment& out = v.value;
  out.person = *std::move(person);
  out.service_time = service_time;
  out.service_date = service_date;
  out.year = year;
  out.scheme = *scheme;
  out.category = category;
  out.payment = static_cast<Payment>(in.payment);
  out.amount = in.amount;
  out.performed_abroad = in.performed_abroad;
  out.late = OsloDate(now) > service_date + kLateAfterDays;
  out.practice_id = in.practice_id;
  return v;
}

absl::Status ValidateCancelReason(absl::string_view reason, const PersonIdOptions& id_options) {
  // The reason is stored in clear with the cancelled report; a national id
  // typed into it would leak there. The message never echoes it.
  if (HoldsPersonId(reason, id_options)) {
    return absl::InvalidArgumentError(
        "reason: holds a national id (an 11-digit number that validates); describe the "
        "cancellation without it");
  }
  return absl::OkStatus();
}

bool Counts(Payment payment, Category category, bool performed_abroad, bool cancelled) {
  if (cancelled) return false;
  if (payment != Payment::kPaid && payment != Payment::kInvoiced) return false;
  // Services abroad do not count; climate travel is abroad by nature and does.
  return !performed_abroad || category == Category::kClimateTravel;
}

NotCountedReason WhyNotCounted(Payment payment, Category category, bool performed_abroad,
                               bool cancelled, bool lacks_agreement) {
  if (cancelled) return NotCountedReason::kCancelled;
  if (payment == Payment::kExemptFrikort) return NotCountedReason::kExemptByFreeCard;
  if (payment != Payment::kPaid && payment != Payment::kInvoiced) return NotCountedReason::kUnpaid;
  if (performed_abroad && category != Category::kClimateTravel) {
    return NotCountedReason::kPerformedAbroad;
  }
  if (lacks_agreement) return NotCountedReason::kNoDirectSettlement;
  return NotCountedReason::kNone;
}

}  // namespace frikort::core
