// Validation of one reported co-payment against the rules: the first failing
// check gives the reject reason and a message naming the field. Pure: the
// caller passes "now" and the rules table.
#ifndef FRIKORT_CORE_COPAYMENT_H_
#define FRIKORT_CORE_COPAYMENT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "core/types.h"

namespace frikort::core {

// A co-payment as received, enums still raw ints so unknown numbers can be
// rejected with the right reason.
struct CoPaymentInput {
  std::string report_id;
  std::string provider_id;
  std::string practice_id;  // optional: "" = not given
  std::string person_id;
  std::optional<absl::Time> service_time;  // nullopt when missing or malformed
  // A service time was given but lies outside the timestamps' range (year 1
  // to 9999, nanos within a second): service_time is then nullopt.
  bool service_time_out_of_range = false;
  int category = 0;
  Ore amount = 0;
  int payment = 0;
  bool performed_abroad = false;
  int attributed_year = 0;
};

// A single co-payment above this is refused as INVALID_AMOUNT (no approved
// co-payment comes near it; it also keeps sums far from overflow).
inline constexpr Ore kMaxAmountOre = 10'000'000;  // 100 000 NOK
// Service times may be at most this far ahead of the register's clock.
inline constexpr absl::Duration kClockSkewAllowance = absl::Minutes(5);
// Reports later than this after the service are accepted but noted as late.
inline constexpr int kLateAfterDays = 14;

struct ValidatedCoPayment {
  PersonId person;
  absl::Time service_time;
  absl::CivilDay service_date;  // Oslo
  int year = 0;                 // attributed year (service year unless attributed)
  Scheme scheme = Scheme::kUnspecified;
  Category category = Category::kUnspecified;
  Payment payment = Payment::kUnspecified;
  Ore amount = 0;
  bool performed_abroad = false;
  bool late = false;
  std::string practice_id;  // "" when not given
};

struct Validation {
  RejectReason reason = RejectReason::kNone;  // kNone = valid
  std::string message;                        // names the field and why
  ValidatedCoPayment value;                   // meaningful only when valid
  bool ok() const { return reason == RejectReason::kNone; }
};

// Check order: report_id, provider_id, practice_id (when given), person_id, service_time, category,
// amount, payment, attributed_year, rules for the year.
Validation ValidateCoPayment(const CoPaymentInput& in, const RulesTable& rules,
                             const PersonIdOptions& id_options, absl::Time now);

// The free-text reason of a cancellation: refused (InvalidArgument, "reason:
// ...") when it holds a national id (HoldsPersonId with `id_options`).
absl::Status ValidateCancelReason(absl::string_view reason, const PersonIdOptions& id_options);

// Whether a co-payment counts toward the cap: paid or invoiced (not
// INVOICED_UNPAID, not EXEMPT_FRIKORT), in Norway or climate travel, and not
// cancelled.
bool Counts(Payment payment, Category category, bool performed_abroad, bool cancelled);

// Why an accepted co-payment does not count (the contract's numbers), kNone
// when it counts.
enum class NotCountedReason : int {
  kNone = 0,
  kUnpaid = 1,
  kExemptByFreeCard = 2,
  kPerformedAbroad = 3,
  kCancelled = 4,
  kNoDirectSettlement = 5,
};

// The reason of the first rule that stops the co-payment from counting, in
// the order of Counts, then the direct-settlement rule (`lacks_agreement`: its
// year requires an agreement and neither its provider nor its practice held
// one in force on the service date).
NotCountedReason WhyNotCounted(Payment payment, Category category, bool performed_abroad,
                               bool cancelled, bool lacks_agreement);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_COPAYMENT_H_
