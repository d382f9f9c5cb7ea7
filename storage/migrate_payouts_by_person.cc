#include "storage/migrate_payouts_by_person.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "storage/crypto.h"
#include "storage/keys.h"
#include "storage/records.pb.h"

namespace frikort::storage {
namespace {

// Writes per commit: bounds the memory of one step on a large register.
constexpr size_t kBatch = 10000;

// The batch's keys must be in order within the table (WriteSet).
absl::Status CommitSorted(Store& store, std::vector<std::pair<std::string, std::string>>& batch,
                          const std::string* done_marker) {
  std::sort(batch.begin(), batch.end());
  WriteSet w;
  for (const auto& [key, value] : batch) {
    w.tables[static_cast<int>(Table::kPayouts)].push_back({key, &value});
  }
  if (done_marker != nullptr) {
    w.tables[static_cast<int>(Table::kMeta)].push_back({kPayoutsByPersonMigration, done_marker});
  }
  absl::Status s = w.empty() ? absl::OkStatus() : store.Commit(w);
  batch.clear();
  return s;
}

}  // namespace

absl::StatusOr<uint64_t> MigratePayoutsByPerson(Store& store) {
  absl::StatusOr<std::optional<std::string>> done =
      store.Get(Table::kMeta, kPayoutsByPersonMigration);
  if (!done.ok()) return done.status();
  if (done->has_value()) return 0;
  // 'Y' year(2) run(8) pseudonym(32) scheme(1)
  constexpr size_t kYearKeySize = 1 + 2 + 8 + kPseudonymBytes + 1;
  std::vector<std::pair<std::string, std::string>> batch;
  uint64_t indexed = 0;
  ScanRange range;
  range.prefix = "Y";
  // A page of the by-year listing at a time, committed between scans (no
  // store is asked to write while it is being scanned).
  while (true) {
    std::string last;
    absl::Status failed;
    absl::Status s =
        store.Scan(Table::kPayouts, range, [&](absl::string_view key, absl::string_view value) {
          if (!range.start.empty() && key == range.start) return true;  // the page before's last
          if (key.size() != kYearKeySize) {
            failed = absl::DataLossError("migration payouts_by_person: damaged payout key");
            return false;
          }
          const int year = static_cast<int>(keys::GetU(key, 1, 2));
          const uint64_t run = keys::GetU(key, 3, 8);
          const absl::string_view pseudonym = key.substr(11, kPseudonymBytes);
          const auto scheme = static_cast<core::Scheme>(keys::GetU(key, 11 + kPseudonymBytes, 1));
          batch.emplace_back(keys::PayoutByPerson(pseudonym, year, run, scheme),
                             std::string(value));
          last.assign(key.data(), key.size());
          return batch.size() < kBatch;
        });
    if (!s.ok()) return s;
    if (!failed.ok()) return failed;
    indexed += batch.size();
    if (batch.size() < kBatch) break;
    if (absl::Status c = CommitSorted(store, batch, nullptr); !c.ok()) return c;
    range.start = std::move(last);
  }
  const std::string marker = "done";
  if (absl::Status c = CommitSorted(store, batch, &marker); !c.ok()) return c;
  return indexed;
}

}  // namespace frikort::storage
