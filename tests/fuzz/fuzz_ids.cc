// Fuzz target: the identifier validators of core/national_id.h. Each input is
// tried as a person id (with and without synthetic ids), a provider id and a
// report id. Beyond "no crash, no undefined behaviour", it checks:
// - a valid person id re-formats to itself: its digits are the input, and its
//   birth date with the D-number and synthetic offsets put back is the DDMMYY;
// - allowing synthetic ids only widens what is accepted, by synthetic ids;
// - changing any one digit of a valid person id or organisation number makes
//   it invalid (the guarantee of a mod-11 check digit);
// - provider ids accepted are exactly the 1-8 digit HPR numbers and 9-digit
//   numbers; report ids exactly 1-64 characters of [A-Za-z0-9._:-];
// - errors are InvalidArgument, start with the field name, never echo an id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/national_id.h"
#include "tests/fuzz/fuzz_check.h"

namespace frikort::fuzz {
namespace {

using core::PersonId;
using core::PersonIdKind;
using core::PersonIdOptions;

constexpr PersonIdOptions kProduction = {.allow_synthetic = false};
constexpr PersonIdOptions kSynthetic = {.allow_synthetic = true};

void CheckError(const absl::Status& status, absl::string_view field, absl::string_view input) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_CHECK(absl::StartsWith(status.message(), absl::StrCat(field, ": ")));
  CheckNoIdEcho(status, input);
}

// Whether `accepts` holds for any string that differs from `s` in one digit.
template <typename Accepts>
bool AnyOneDigitChangeAccepted(absl::string_view s, Accepts accepts) {
  std::string changed(s);
  for (size_t i = 0; i < changed.size(); ++i) {
    const char original = changed[i];
    for (char d = '0'; d <= '9'; ++d) {
      if (d == original) continue;
      changed[i] = d;
      if (accepts(changed)) return true;
    }
    changed[i] = original;
  }
  return false;
}

// DDMMYY of a parsed id, with the D-number offset and `month_offset` applied.
std::string DatePart(const PersonId& id, int month_offset) {
  const int day_offset = id.kind == PersonIdKind::kDNumber ? 40 : 0;
  return absl::StrFormat("%02d%02d%02d", id.birth_date.day() + day_offset,
                         id.birth_date.month() + month_offset, id.birth_date.year() % 100);
}

void CheckValidPersonId(absl::string_view s, const PersonId& id) {
  FUZZ_CHECK(id.digits == s);
  FUZZ_CHECK((id.kind == PersonIdKind::kDNumber) == (s[0] >= '4'));
  const absl::string_view date_part = s.substr(0, 6);
  if (id.synthetic) {
    FUZZ_CHECK(DatePart(id, 40) == date_part || DatePart(id, 80) == date_part);
  } else {
    FUZZ_CHECK(DatePart(id, 0) == date_part);
  }
}

void CheckPersonId(absl::string_view s) {
  const absl::StatusOr<PersonId> production = core::ParsePersonId(s, kProduction);
  const absl::StatusOr<PersonId> synthetic = core::ParsePersonId(s, kSynthetic);
  if (!production.ok()) CheckError(production.status(), "person_id", s);
  if (!synthetic.ok()) {
    CheckError(synthetic.status(), "person_id", s);
    FUZZ_CHECK(!production.ok());
    return;
  }
  CheckValidPersonId(s, *synthetic);
  // Production accepts exactly the accepted ids that are not synthetic, and
  // reads them the same way.
  FUZZ_CHECK(production.ok() == !synthetic->synthetic);
  if (production.ok()) {
    CheckValidPersonId(s, *production);
    FUZZ_CHECK(production->kind == synthetic->kind);
    FUZZ_CHECK(production->birth_date == synthetic->birth_date);
  }
  FUZZ_CHECK(!AnyOneDigitChangeAccepted(
      s, [](const std::string& id) { return core::ParsePersonId(id, kSynthetic).ok(); }));
}

void CheckProviderId(absl::string_view s) {
  const absl::Status status = core::ValidateProviderId(s);
  const bool digits = !s.empty() && IsDigits(s);
  if (digits && s.size() <= 8) FUZZ_CHECK(status.ok());  // any HPR number
  if (!digits || s.size() > 9) FUZZ_CHECK(!status.ok());
  if (!status.ok()) {
    CheckError(status, "provider_id", s);
  } else if (s.size() == 9) {
    FUZZ_CHECK(!AnyOneDigitChangeAccepted(
        s, [](const std::string& id) { return core::ValidateProviderId(id).ok(); }));
  }
}

void CheckReportId(absl::string_view s) {
  static constexpr absl::string_view kAllowed =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
  const absl::Status status = core::ValidateReportId(s, kProduction);
  const bool well_formed =
      !s.empty() && s.size() <= 64 && s.find_first_not_of(kAllowed) == absl::string_view::npos;
  FUZZ_CHECK(status.ok() == (well_formed && !core::HoldsPersonId(s, kProduction)));
  // Whatever refuses it in production also refuses it where synthetic ids count.
  if (!status.ok()) FUZZ_CHECK(!core::ValidateReportId(s, kSynthetic).ok());
  if (!status.ok()) CheckError(status, "report_id", s);
}

}  // namespace
}  // namespace frikort::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  frikort::fuzz::CheckPersonId(input);
  frikort::fuzz::CheckProviderId(input);
  frikort::fuzz::CheckReportId(input);
  return 0;
}
