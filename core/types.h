// Domain vocabulary shared by every layer. The numeric values equal the public
// contract's enum numbers (proto/frikort/v1/frikort.proto) so the edge converts
// with a range check and a cast; core/ itself never sees generated code.
#ifndef FRIKORT_CORE_TYPES_H_
#define FRIKORT_CORE_TYPES_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace frikort::core {

// Money is always integer øre (1 NOK = 100 øre).
using Ore = int64_t;
inline constexpr Ore kOrePerKrone = 100;

enum class Category : int {
  kUnspecified = 0,
  kPhysician = 1,
  kPsychologist = 2,
  kLaboratory = 3,
  kRadiology = 4,
  kPrescription = 5,
  kPatientTravel = 6,
  kOutpatient = 7,
  kDental = 8,
  kPhysiotherapy = 9,
  kRehabilitation = 10,
  kClimateTravel = 11,
};
inline constexpr int kMaxCategory = 11;

enum class Scheme : int { kUnspecified = 0, kTak1 = 1, kTak2 = 2, kTak = 3 };

enum class Payment : int {
  kUnspecified = 0,
  kPaid = 1,
  kInvoiced = 2,
  kInvoicedUnpaid = 3,
  kExemptFrikort = 4,
};
inline constexpr int kMaxPayment = 4;

enum class Outcome : int { kUnspecified = 0, kAccepted = 1, kDuplicate = 2, kRejected = 3 };

enum class RejectReason : int {
  kNone = 0,
  kInvalidPersonId = 1,
  kInvalidProviderId = 2,
  kInvalidReportId = 3,
  kInvalidAmount = 4,
  kInvalidCategory = 5,
  kInvalidServiceTime = 6,
  kInvalidPaymentStatus = 7,
  kInvalidAttributedYear = 8,
  kNoRulesForYear = 9,
  kConflictingDuplicate = 10,
  kPersonReserved = 11,
  kUnknownReport = 12,
  kAlreadyCancelled = 13,
  kPersonYearFull = 14,
};

enum class ExemptionStatus : int { kUnspecified = 0, kNotExempt = 1, kExempt = 2, kCapReached = 3 };

// Upper-case contract names ("PHYSICIAN", "TAK1", "INVALID_AMOUNT", ...), used in
// messages and the rules file. Unknown values give "UNKNOWN".
absl::string_view CategoryName(Category c);
absl::string_view SchemeName(Scheme s);
absl::string_view PaymentName(Payment p);
absl::string_view RejectReasonName(RejectReason r);
// Parses a contract category name; returns kUnspecified when unknown.
Category CategoryFromName(absl::string_view name);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_TYPES_H_
