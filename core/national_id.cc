#include "core/national_id.h"

#include <array>
#include <optional>

#include "absl/strings/str_cat.h"

namespace frikort::core {
namespace {

constexpr std::array<int, 9> kK1Weights = {3, 7, 6, 1, 8, 9, 4, 5, 2};
constexpr std::array<int, 10> kK2Weights = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
constexpr std::array<int, 8> kOrgWeights = {3, 2, 7, 6, 5, 4, 3, 2};

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(absl::string_view s) {
  for (char c : s) {
    if (!IsAsciiDigit(c)) return false;
  }
  return true;
}

int Digit(absl::string_view s, size_t i) { return s[i] - '0'; }
int TwoDigits(absl::string_view s, size_t i) { return Digit(s, i) * 10 + Digit(s, i + 1); }

template <size_t N>
int WeightedSum(absl::string_view digits, const std::array<int, N>& weights) {
  int sum = 0;
  for (size_t i = 0; i < N; ++i) sum += Digit(digits, i) * weights[i];
  return sum;
}

// The classic mod-11 control digit: 11 - (sum mod 11), where 11 becomes 0 and
// 10 has no digit (nullopt: no number with this prefix is valid).
std::optional<int> Mod11CheckDigit(int weighted_sum) {
  const int k = 11 - weighted_sum % 11;
  if (k == 11) return 0;
  if (k == 10) return std::nullopt;
  return k;
}

bool IsRealDate(int64_t year, int month, int day) {
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  // CivilDay normalises out-of-range fields (31 April -> 1 May); a round trip
  // that changes the fields means the date does not exist.
  const absl::CivilDay d(year, month, day);
  return d.year() == year && d.month() == month && d.day() == day;
}

// The birth year from YY and the individual number (digits 7-9), by the
// allocation ranges of the population register. Ranges that were never
// allocated give nullopt; the caller then accepts the date if it exists in
// either 19YY or 20YY, since synthetic and future allocations use them.
std::optional<int> CenturyYear(int yy, int individual) {
  if (individual <= 499) return 1900 + yy;
  if (individual <= 749 && yy >= 54) return 1800 + yy;
  if (yy <= 39) return 2000 + yy;  // individual is 500-999 here
  if (individual >= 900) return 1900 + yy;
  return std::nullopt;
}

// 19YY or 20YY, the first in which the date is real; nullopt in neither.
std::optional<int> NineteenOrTwenty(int yy, int month, int day) {
  if (IsRealDate(1900 + yy, month, day)) return 1900 + yy;
  if (IsRealDate(2000 + yy, month, day)) return 2000 + yy;
  return std::nullopt;
}

// The birth year of an id with the classic k1: the century the individual
// number gives, or, for never-allocated ranges, 19YY or 20YY. nullopt when the
// date is not real there.
std::optional<int> ClassicBirthYear(int yy, int individual, int month, int day) {
  const std::optional<int> year = CenturyYear(yy, individual);
  if (!year.has_value()) return NineteenOrTwenty(yy, month, day);
  if (IsRealDate(*year, month, day)) return year;
  return std::nullopt;
}

// The birth year of an id with a 2032-rule k1. Such a number was assigned from
// 2032, when the individual number stopped telling the century, so it may
// belong to anyone alive then: born 19YY or 20YY (not 18YY). The date is
// accepted if it is real in either; the individual number's reading is kept
// when it is one of them and real, so only dates it would refuse (29.02.00
// with 000-499, read as 1900) move to the other century.
std::optional<int> Rule2032BirthYear(int yy, int individual, int month, int day) {
  const std::optional<int> year = CenturyYear(yy, individual);
  if (year.has_value() && *year >= 1900 && IsRealDate(*year, month, day)) return year;
  return NineteenOrTwenty(yy, month, day);
}

absl::Status PersonIdError(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("person_id: ", why));
}

}  // namespace

absl::StatusOr<PersonId> ParsePersonId(absl::string_view s, const PersonIdOptions& options) {
  // Messages never echo the input: it is a national id, and logs must not carry one.
  if (s.empty()) return PersonIdError("not given");
  if (s.size() != 11) {
    return PersonIdError(absl::StrCat("must be 11 digits, got ", s.size(), " characters"));
  }
  if (!AllDigits(s)) return PersonIdError("must contain only the digits 0-9");

  const int first = Digit(s, 0);
  if (first >= 8) {
    return PersonIdError(
        "FH-numbers (first digit 8 or 9) are local to one institution and cannot be registered");
  }

  PersonId id;
  int day = TwoDigits(s, 0);
  if (first >= 4) {
    id.kind = PersonIdKind::kDNumber;
    day -= 40;
  }

  int month = TwoDigits(s, 2);
  if (month >= 41 && month <= 52) {
    if (!options.allow_synthetic) {
      return PersonIdError(
          "H-numbers (month + 40) are local to one institution and cannot be registered");
    }
    id.synthetic = true;
    month -= 40;
  } else if (month >= 81 && month <= 92) {
    if (!options.allow_synthetic) {
      return PersonIdError("synthetic test ids (month + 80) are not accepted here");
    }
    id.synthetic = true;
    month -= 80;
  }

  // k1: the classic digit is the one that makes (sum + k1) ≡ 0 (mod 11); numbers
  // assigned from 2032 may also make it 1, 2 or 3. Since the classic rule is the
  // c = 0 case, checking the residue accepts both generations.
  const int k1 = Digit(s, 9);
  const int k1_residue = (WeightedSum(s, kK1Weights) + k1) % 11;
  if (k1_residue > 3) {
    return PersonIdError("check digit k1 does not match");
  }
  const std::optional<int> k2 = Mod11CheckDigit(WeightedSum(s, kK2Weights));
  if (!k2.has_value() || *k2 != Digit(s, 10)) {
    return PersonIdError("check digit k2 does not match");
  }

  const int yy = TwoDigits(s, 4);
  const int individual = Digit(s, 6) * 100 + TwoDigits(s, 7);
  const std::optional<int> birth_year = k1_residue == 0
                                            ? ClassicBirthYear(yy, individual, month, day)
                                            : Rule2032BirthYear(yy, individual, month, day);
  if (!birth_year.has_value()) {
    return PersonIdError("birth date part is not a real date");
  }

  id.digits = std::string(s);
  id.birth_date = absl::CivilDay(*birth_year, month, day);
  return id;
}

absl::Status ValidateProviderId(absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError("provider_id: not given");
  if (!AllDigits(s)) {
    return absl::InvalidArgumentError("provider_id: must contain only the digits 0-9");
  }
  if (s.size() <= 8) return absl::OkStatus();  // HPR number
  if (s.size() != 9) {
    return absl::InvalidArgumentError(absl::StrCat(
        "provider_id: must be an HPR number (1-8 digits) or an organisation number (9 digits), "
        "got ",
        s.size(), " digits"));
  }
  const std::optional<int> check = Mod11CheckDigit(WeightedSum(s, kOrgWeights));
  if (!check.has_value() || *check != Digit(s, 8)) {
    return absl::InvalidArgumentError(
        "provider_id: organisation number check digit does not match");
  }
  return absl::OkStatus();
}

bool HoldsPersonId(absl::string_view text, const PersonIdOptions& options) {
  size_t i = 0;
  while (i < text.size()) {
    if (!IsAsciiDigit(text[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && IsAsciiDigit(text[end])) ++end;
    if (end - i == 11 && ParsePersonId(text.substr(i, 11), options).ok()) return true;
    i = end;
  }
  return false;
}

absl::Status ValidateReportId(absl::string_view s, const PersonIdOptions& options) {
  if (s.empty()) return absl::InvalidArgumentError("report_id: not given");
  if (s.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("report_id: at most 64 characters, got ", s.size()));
  }
  for (char c : s) {
    const bool ok = IsAsciiDigit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          "report_id: only letters A-Z a-z, digits and . _ : - are allowed");
    }
  }
  // A report id is stored in clear, logged and echoed in answers; a national id
  // typed into it would leak there.
  if (HoldsPersonId(s, options)) {
    return absl::InvalidArgumentError(
        "report_id: holds a national id (an 11-digit number that validates); use an id of the "
        "practitioner system's own");
  }
  return absl::OkStatus();
}

}  // namespace frikort::core
