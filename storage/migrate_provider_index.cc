#include "storage/migrate_provider_index.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/keys.h"
#include "storage/records.h"

namespace frikort::storage {
namespace {

// Index keys written per commit: bounds memory whatever the register's size.
constexpr size_t kBatch = 50000;

absl::Status Commit(Store& store, std::vector<std::string>* index_keys, bool done) {
  static const std::string kEmpty;
  static const std::string kDone = "done";
  std::sort(index_keys->begin(), index_keys->end());
  WriteSet w;
  for (const std::string& k : *index_keys) {
    w.tables[static_cast<int>(Table::kProviders)].push_back({k, &kEmpty});
  }
  if (done) w.tables[static_cast<int>(Table::kMeta)].push_back({kProviderIndexMigration, &kDone});
  absl::Status s = w.empty() ? absl::OkStatus() : store.Commit(w);
  index_keys->clear();
  return s;
}

}  // namespace

absl::Status MigrateProviderIndex(Store& store) {
  absl::StatusOr<std::optional<std::string>> marker =
      store.Get(Table::kMeta, kProviderIndexMigration);
  if (!marker.ok()) return marker.status();
  if (marker->has_value()) return absl::OkStatus();
  std::vector<std::string> index_keys;
  ScanRange range;
  for (;;) {
    std::string resume;
    absl::Status failed;
    absl::Status s =
        store.Scan(Table::kEntries, range, [&](absl::string_view key, absl::string_view value) {
          if (index_keys.size() >= kBatch) {
            resume.assign(key.data(), key.size());
            return false;
          }
          rec::Entry e;
          if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            failed =
                absl::DataLossError(absl::StrCat("damaged record in ", TableName(Table::kEntries)));
            return false;
          }
          index_keys.push_back(keys::ProviderEntry(e.provider_id(), e.year(), key));
          if (!e.practice_id().empty() && e.practice_id() != e.provider_id()) {
            index_keys.push_back(keys::ProviderEntry(e.practice_id(), e.year(), key));
          }
          return true;
        });
    if (!s.ok()) return s;
    if (!failed.ok()) return failed;
    if (resume.empty()) return Commit(store, &index_keys, /*done=*/true);
    if (absl::Status c = Commit(store, &index_keys, /*done=*/false); !c.ok()) return c;
    range.start = std::move(resume);
  }
}

}  // namespace frikort::storage
