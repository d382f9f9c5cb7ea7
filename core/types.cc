#include "core/types.h"

#include <array>
#include <cstddef>

namespace frikort::core {
namespace {

// Indexed by the enum's numeric value, which equals the proto enum number; the
// zero entries are the contract's "<ENUM>_UNSPECIFIED" names.
constexpr std::array<absl::string_view, kMaxCategory + 1> kCategoryNames = {
    "SERVICE_CATEGORY_UNSPECIFIED",
    "PHYSICIAN",
    "PSYCHOLOGIST",
    "LABORATORY",
    "RADIOLOGY",
    "PRESCRIPTION",
    "PATIENT_TRAVEL",
    "OUTPATIENT",
    "DENTAL",
    "PHYSIOTHERAPY",
    "REHABILITATION",
    "CLIMATE_TRAVEL",
};

constexpr std::array<absl::string_view, 4> kSchemeNames = {"SCHEME_UNSPECIFIED", "TAK1", "TAK2",
                                                           "TAK"};

constexpr std::array<absl::string_view, kMaxPayment + 1> kPaymentNames = {
    "PAYMENT_STATUS_UNSPECIFIED", "PAID", "INVOICED", "INVOICED_UNPAID", "EXEMPT_FRIKORT"};

constexpr std::array<absl::string_view, 15> kRejectReasonNames = {
    "REJECT_REASON_UNSPECIFIED",
    "INVALID_PERSON_ID",
    "INVALID_PROVIDER_ID",
    "INVALID_REPORT_ID",
    "INVALID_AMOUNT",
    "INVALID_CATEGORY",
    "INVALID_SERVICE_TIME",
    "INVALID_PAYMENT_STATUS",
    "INVALID_ATTRIBUTED_YEAR",
    "NO_RULES_FOR_YEAR",
    "CONFLICTING_DUPLICATE",
    "PERSON_RESERVED",
    "UNKNOWN_REPORT",
    "ALREADY_CANCELLED",
    "PERSON_YEAR_FULL",
};

// Enums arriving from the edge are cast from raw ints, so any value may show up
// here; look up by range check instead of a switch.
template <size_t N>
absl::string_view NameAt(const std::array<absl::string_view, N>& names, int value) {
  if (value < 0 || static_cast<size_t>(value) >= N) return "UNKNOWN";
  return names[static_cast<size_t>(value)];
}

}  // namespace

absl::string_view CategoryName(Category c) { return NameAt(kCategoryNames, static_cast<int>(c)); }
absl::string_view SchemeName(Scheme s) { return NameAt(kSchemeNames, static_cast<int>(s)); }
absl::string_view PaymentName(Payment p) { return NameAt(kPaymentNames, static_cast<int>(p)); }
absl::string_view RejectReasonName(RejectReason r) {
  return NameAt(kRejectReasonNames, static_cast<int>(r));
}

Category CategoryFromName(absl::string_view name) {
  // Start at 1: the unspecified name is "not a category" for every caller.
  for (int i = 1; i <= kMaxCategory; ++i) {
    if (kCategoryNames[static_cast<size_t>(i)] == name) return static_cast<Category>(i);
  }
  return Category::kUnspecified;
}

}  // namespace frikort::core
