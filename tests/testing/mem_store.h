// A Store in memory, for tests of what runs over the Store seam (the group
// overlay, the records) without a database. Commits apply at once; the
// lookup log is a table like the others; Snapshot copies everything, a
// scan its range (small data only).
// Thread safety: one mutex over all of it.
#ifndef FRIKORT_TESTS_TESTING_MEM_STORE_H_
#define FRIKORT_TESTS_TESTING_MEM_STORE_H_

#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "storage/store.h"

namespace frikort::testing {

class MemStore : public storage::Store {
 public:
  using Tables = std::array<std::map<std::string, std::string, std::less<>>, storage::kNumTables>;
  MemStore() = default;
  explicit MemStore(Tables tables) : tables_(std::move(tables)) {}

  // Reads counted per call, so tests can see what was batched or cached.
  int gets() const { return gets_; }
  int multi_gets() const { return multi_gets_; }
  int commits() const { return commits_; }
  // A copy of every table (to reopen a register on what another left).
  Tables tables() {
    absl::MutexLock l(&mu_);
    return tables_;
  }
  // Every later commit fails with `s` and writes nothing (ok: commits work).
  void FailCommits(absl::Status s) {
    absl::MutexLock l(&mu_);
    commit_failure_ = std::move(s);
  }

  absl::StatusOr<std::optional<std::string>> Get(storage::Table t, absl::string_view key) override {
    absl::MutexLock l(&mu_);
    ++gets_;
    const auto& m = tables_[static_cast<int>(t)];
    auto it = m.find(key);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
  absl::Status MultiGet(
      storage::Table t, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    absl::MutexLock l(&mu_);
    ++multi_gets_;
    const auto& m = tables_[static_cast<int>(t)];
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = m.find(keys[i]);
      if (it == m.end()) {
        found(i, nullptr);
      } else {
        const absl::string_view v = it->second;
        found(i, &v);
      }
    }
    return absl::OkStatus();
  }
  absl::Status Scan(
      storage::Table t, const storage::ScanRange& range,
      const std::function<bool(absl::string_view, absl::string_view)>& visit) override {
    // Visited without the lock: a visitor may read the store again.
    std::vector<std::pair<std::string, std::string>> found;
    {
      absl::MutexLock l(&mu_);
      const auto& m = tables_[static_cast<int>(t)];
      for (auto it = m.lower_bound(range.start.empty() ? range.prefix : range.start);
           it != m.end() && absl::StartsWith(it->first, range.prefix); ++it) {
        found.emplace_back(it->first, it->second);
      }
    }
    for (const auto& [k, v] : found) {
      if (!visit(k, v)) break;
    }
    return absl::OkStatus();
  }
  absl::Status Commit(const storage::WriteSet& writes) override {
    absl::MutexLock l(&mu_);
    if (!commit_failure_.ok()) return commit_failure_;
    ++commits_;
    for (int t = 0; t < storage::kNumTables; ++t) {
      for (const auto& w : writes.tables[t]) {
        if (w.value != nullptr) {
          tables_[t][std::string(w.key)] = *w.value;
        } else {
          tables_[t].erase(std::string(w.key));
        }
      }
    }
    return absl::OkStatus();
  }
  std::unique_ptr<storage::StoreReader> Snapshot() override {
    absl::MutexLock l(&mu_);
    return std::make_unique<MemStore>(tables_);
  }
  absl::Status AppendLookups(
      absl::Span<const std::pair<std::string, std::string>> records) override {
    absl::MutexLock l(&mu_);
    for (const auto& [k, v] : records) {
      tables_[static_cast<int>(storage::Table::kLookups)][k] = v;
    }
    return absl::OkStatus();
  }
  absl::Status SyncLookups() override { return absl::OkStatus(); }
  uint64_t ApproximateSizeBytes() override { return 0; }
  uint64_t PendingCompactionBytes() override { return 0; }
  absl::StatusOr<storage::BackupInfo> Backup(const std::string&, absl::string_view) override {
    return absl::FailedPreconditionError("backup: not kept by the in-memory store");
  }

 private:
  absl::Mutex mu_;
  Tables tables_;
  absl::Status commit_failure_;
  int gets_ = 0, multi_gets_ = 0, commits_ = 0;
};

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_MEM_STORE_H_
