// The provider registry as the simulation's model (sim_model.h) holds it:
// each provider's or practice's agreement periods on direct settlement, and
// whether one is in force on a day (domain rule 13, README "The provider
// registry"), restated as plain maps and never read from core/provider.
#ifndef FRIKORT_TESTS_JOBS_SIM_AGREEMENTS_H_
#define FRIKORT_TESTS_JOBS_SIM_AGREEMENTS_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"

namespace frikort::jobs::sim {

// One agreement: in force from `from` through `to` (both included), or from
// `from` on when `to` is open.
struct Period {
  absl::CivilDay from;
  std::optional<absl::CivilDay> to;
};

class Agreements {
 public:
  // A provider's periods (none for one the registry does not hold).
  const std::vector<Period>& Of(const std::string& id) const {
    static const std::vector<Period> kNone;
    auto it = periods_.find(id);
    return it == periods_.end() ? kNone : it->second;
  }
  // Whether `id` ("" = none given) holds an agreement in force on `day`.
  bool InForce(const std::string& id, absl::CivilDay day) const {
    if (id.empty()) return false;
    for (const Period& p : Of(id)) {
      if (p.from <= day && (!p.to || day <= *p.to)) return true;
    }
    return false;
  }
  // The whole record replaced, as PutProvider does.
  void Put(const std::string& id, std::vector<Period> periods) {
    periods_[id] = std::move(periods);
  }

 private:
  std::map<std::string, std::vector<Period>> periods_;
};

}  // namespace frikort::jobs::sim

#endif  // FRIKORT_TESTS_JOBS_SIM_AGREEMENTS_H_
