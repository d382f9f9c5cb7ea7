#include "core/provider.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/calendar.h"
#include "core/national_id.h"

namespace frikort::core {
namespace {

// The days of `periods` inside [first, last], as sorted, merged intervals.
std::vector<std::pair<absl::CivilDay, absl::CivilDay>> Coverage(
    const std::vector<AgreementPeriod>& periods, absl::CivilDay first, absl::CivilDay last) {
  std::vector<std::pair<absl::CivilDay, absl::CivilDay>> spans;
  for (const AgreementPeriod& p : periods) {
    const absl::CivilDay from = std::max(p.from, first);
    const absl::CivilDay to = std::min(p.to.value_or(last), last);
    if (from <= to) spans.emplace_back(from, to);
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<absl::CivilDay, absl::CivilDay>> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, s.second);
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

}  // namespace

absl::Status ValidatePracticeId(absl::string_view s) {
  if (s.size() != 9) {
    return absl::InvalidArgumentError(absl::StrCat(
        "practice_id: must be an organisation number of 9 digits, got ", s.size(), " characters"));
  }
  absl::Status status = ValidateProviderId(s);
  if (status.ok()) return status;
  absl::string_view why = status.message();
  absl::ConsumePrefix(&why, "provider_id: ");
  return absl::InvalidArgumentError(absl::StrCat("practice_id: ", why));
}

absl::StatusOr<ProviderRecord> ValidateProvider(const ProviderInput& in, const RulesTable& rules) {
  if (absl::Status s = ValidateProviderId(in.id); !s.ok()) return s;
  if (in.name.empty()) return absl::InvalidArgumentError("name: not given");
  if (in.name.size() > kMaxProviderNameChars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: ", in.name.size(), " characters, more than the maximum of ", kMaxProviderNameChars));
  }
  ProviderRecord out;
  out.id = in.id;
  out.name = in.name;
  const absl::CivilDay first(rules.first_year(), 1, 1);
  const absl::CivilDay last(rules.last_year(), 12, 31);
  for (size_t i = 0; i < in.agreements.size(); ++i) {
    const ProviderInput::Agreement& a = in.agreements[i];
    const std::string field = absl::StrCat("agreements[", i, "]");
    auto in_rules = [&](absl::CivilDay day, absl::string_view name) -> absl::Status {
      if (day < first || day > last) {
        return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": ", FormatDate(day),
                                                       " is outside the years ", rules.first_year(),
                                                       "-", rules.last_year(), " the rules know"));
      }
      return absl::OkStatus();
    };
    AgreementPeriod p;
    auto from = ParseDate(a.valid_from, absl::StrCat(field, ".valid_from"));
    if (!from.ok()) return from.status();
    if (absl::Status s = in_rules(*from, "valid_from"); !s.ok()) return s;
    p.from = *from;
    if (!a.valid_to.empty()) {
      auto to = ParseDate(a.valid_to, absl::StrCat(field, ".valid_to"));
      if (!to.ok()) return to.status();
      if (absl::Status s = in_rules(*to, "valid_to"); !s.ok()) return s;
      if (*to < *from) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".valid_to: ", FormatDate(*to), " is before valid_from ", FormatDate(*from)));
      }
      p.to = *to;
    }
    if (a.version.size() > kMaxAgreementVersionChars) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".version: ", a.version.size(),
                                                     " characters, more than the maximum of ",
                                                     kMaxAgreementVersionChars));
    }
    p.version = a.version;
    out.agreements.push_back(std::move(p));
  }
  std::stable_sort(
      out.agreements.begin(), out.agreements.end(),
      [](const AgreementPeriod& a, const AgreementPeriod& b) { return a.from < b.from; });
  for (size_t i = 1; i < out.agreements.size(); ++i) {
    const AgreementPeriod& prev = out.agreements[i - 1];
    const AgreementPeriod& next = out.agreements[i];
    if (!prev.to.has_value() || *prev.to >= next.from) {
      return absl::InvalidArgumentError(
          absl::StrCat("agreements: the period from ", FormatDate(prev.from),
                       " overlaps the period from ", FormatDate(next.from)));
    }
  }
  return out;
}

bool InForce(const std::vector<AgreementPeriod>& agreements, absl::CivilDay day) {
  for (const AgreementPeriod& p : agreements) {
    if (p.from <= day && (!p.to.has_value() || day <= *p.to)) return true;
  }
  return false;
}

std::vector<int> AffectedYears(const std::vector<AgreementPeriod>& before,
                               const std::vector<AgreementPeriod>& after, const RulesTable& rules) {
  std::vector<int> years;
  for (int year = rules.first_year(); year <= rules.last_year() && year > 0; ++year) {
    if (!rules.RequiresDirectSettlement(year) && !rules.RequiresDirectSettlement(year + 1)) {
      continue;
    }
    const absl::CivilDay first(year, 1, 1);
    const absl::CivilDay last(year, 12, 31);
    if (Coverage(before, first, last) != Coverage(after, first, last)) years.push_back(year);
  }
  return years;
}

}  // namespace frikort::core
