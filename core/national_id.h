// Norwegian person and provider identifiers: pure validation, no I/O.
//
// Person ids (fødselsnummer, D-number) are 11 digits: DDMMYY, three individual
// digits, two mod-11 check digits. Both the classic k1 rule and the rule for
// numbers assigned from 2032 (weighted sum incl. k1 ≡ 0..3 mod 11) are accepted.
// The century comes from the individual number only for the classic k1; a
// 2032-rule k1 means the number was assigned from 2032, so its date need only be
// real in 19YY or 20YY (29.02.00 with individual 000-499 is then 2000, not 1900).
// H-numbers (month + 40) and FH-numbers (first digit 8 or 9) are refused;
// synthetic test ids (month + 40 or + 80) are accepted only when allowed.
#ifndef FRIKORT_CORE_NATIONAL_ID_H_
#define FRIKORT_CORE_NATIONAL_ID_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"

namespace frikort::core {

enum class PersonIdKind { kFodselsnummer, kDNumber };

struct PersonIdOptions {
  // Accept synthetic test ids (month + 40 or month + 80). Off in production,
  // where month + 40 is an H-number and refused.
  bool allow_synthetic = false;
};

struct PersonId {
  std::string digits;  // exactly 11 ASCII digits
  PersonIdKind kind = PersonIdKind::kFodselsnummer;
  bool synthetic = false;
  absl::CivilDay birth_date;  // after removing the D/synthetic offsets
};

// Returns InvalidArgument with a message that says why ("person_id: ..."):
// wrong length, non-digit, FH-number, H-number, check digit, not a real date.
absl::StatusOr<PersonId> ParsePersonId(absl::string_view s, const PersonIdOptions& options);

// provider_id: an HPR number (1-8 digits) or a 9-digit organisation number with
// a valid mod-11 check digit (weights 3 2 7 6 5 4 3 2). InvalidArgument otherwise.
absl::Status ValidateProviderId(absl::string_view s);

// Whether `text` holds a national id: a run of exactly 11 ASCII digits (bounded
// by non-digits or the ends) that ParsePersonId accepts with `options`. Longer
// digit runs are not split: they are not a national id as typed.
bool HoldsPersonId(absl::string_view text, const PersonIdOptions& options);

// report_id: 1-64 chars of [A-Za-z0-9._:-] that do not hold a national id
// (HoldsPersonId with `options`, the register's setting). InvalidArgument
// otherwise; the message never echoes the id.
absl::Status ValidateReportId(absl::string_view s, const PersonIdOptions& options);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_NATIONAL_ID_H_
