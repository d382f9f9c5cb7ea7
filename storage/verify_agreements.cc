#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/register_impl.h"

namespace frikort::storage::internal {
namespace {

// Whether `id`'s record exists, and whether it holds an agreement on `day`.
absl::StatusOr<std::pair<bool, bool>> Holds(StoreReader& snap, absl::string_view id,
                                            absl::CivilDay day) {
  if (id.empty()) return std::make_pair(false, false);
  absl::StatusOr<std::optional<std::string>> v =
      snap.Get(Table::kProviders, keys::ProviderRecord(id));
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::make_pair(false, false);
  rec::Provider p;
  if (!p.ParseFromString(**v)) return absl::DataLossError("damaged record in providers");
  return std::make_pair(true, core::InForce(FromProviderRecord(p).agreements, day));
}

}  // namespace

absl::StatusOr<std::string> VerifyAgreement(StoreReader& snap, const core::RulesTable& rules,
                                            absl::string_view entry_key, const rec::Entry& e) {
  for (const std::string& id : {e.provider_id(), e.practice_id()}) {
    if (id.empty()) continue;
    absl::StatusOr<std::optional<std::string>> index =
        snap.Get(Table::kProviders, keys::ProviderEntry(id, e.year(), entry_key));
    if (!index.ok()) return index.status();
    if (!index->has_value()) {
      return absl::StrCat("entry ", e.provider_id(), "/(report) is missing from the index of ", id);
    }
  }
  if (!rules.RequiresDirectSettlement(e.year())) {
    return e.lacks_agreement() ? "entry lacks an agreement in a year that requires none" : "";
  }
  const absl::CivilDay day = core::OsloDate(absl::FromUnixMicros(e.service_time_us()));
  absl::StatusOr<std::pair<bool, bool>> provider = Holds(snap, e.provider_id(), day);
  if (!provider.ok()) return provider.status();
  absl::StatusOr<std::pair<bool, bool>> practice = Holds(snap, e.practice_id(), day);
  if (!practice.ok()) return practice.status();
  // Stored before the registry existed and never decided by it.
  if (!provider->first && !practice->first && !e.lacks_agreement()) return "";
  const bool lacks = !provider->second && !practice->second;
  if (lacks == e.lacks_agreement()) return "";
  return absl::StrCat("entry of provider ", e.provider_id(),
                      lacks ? " counts without an agreement in force"
                            : " does not count although an agreement is in force");
}

}  // namespace frikort::storage::internal
