// The provider registry's rules (domain rule 13): practitioners (HPR number,
// 1-8 digits) and practices (organisation number, 9 digits, mod 11) with
// their agreements on direct settlement with the state, and whether an
// agreement is in force on a day. Pure: no clock, no files.
#ifndef FRIKORT_CORE_PROVIDER_H_
#define FRIKORT_CORE_PROVIDER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "core/rules.h"

namespace frikort::core {

inline constexpr size_t kMaxProviderNameChars = 200;
inline constexpr size_t kMaxAgreementVersionChars = 64;

// One agreement period: from `from` to `to` inclusive (nullopt = open-ended).
struct AgreementPeriod {
  absl::CivilDay from;
  std::optional<absl::CivilDay> to;
  std::string version;
  bool operator==(const AgreementPeriod&) const = default;
};

// A validated provider: periods sorted by `from`, none overlapping.
struct ProviderRecord {
  std::string id;
  std::string name;
  std::vector<AgreementPeriod> agreements;
};

// A provider as asked for, dates still text.
struct ProviderInput {
  struct Agreement {
    std::string valid_from;
    std::string valid_to;  // "" = open-ended
    std::string version;
  };
  std::string id;
  std::string name;
  std::vector<Agreement> agreements;
};

// The 9-digit organisation number of a practice; errors name `practice_id`.
absl::Status ValidatePracticeId(absl::string_view s);

// Checks a whole record: the id (provider_id), the name (name: up to 200
// characters), and each agreement (agreements[i].valid_from / valid_to /
// version): dates YYYY-MM-DD inside the years `rules` knows, valid_to not
// before valid_from, no two periods overlapping. InvalidArgument naming the
// field; the id is echoed only when it validated (it is a public number).
absl::StatusOr<ProviderRecord> ValidateProvider(const ProviderInput& in, const RulesTable& rules);

// Whether one of the periods covers `day`.
bool InForce(const std::vector<AgreementPeriod>& agreements, absl::CivilDay day);

// The years in which the days covered by `before` and by `after` differ and
// whose rules, or the next year's (a prescription served now may count next
// year), require direct settlement: the service years a change of a
// provider's agreements can change the counting of.
std::vector<int> AffectedYears(const std::vector<AgreementPeriod>& before,
                               const std::vector<AgreementPeriod>& after, const RulesTable& rules);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_PROVIDER_H_
