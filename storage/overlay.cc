#include "storage/overlay.h"

#include <algorithm>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/base/optimization.h"
#include "absl/strings/match.h"

namespace frikort::storage {

void Overlay::CheckBuilder() const {
  if (ABSL_PREDICT_FALSE(std::this_thread::get_id() != builder_)) {
    ABSL_RAW_LOG(FATAL, "a group's overlay was used off the thread that builds it");
  }
}

std::optional<std::string> Overlay::Get(Table t, absl::string_view key) {
  CheckBuilder();
  if (const Slot* slot = Find(t, key)) return slot->value;
  if (parent_ != nullptr) {
    if (const Slot* slot = parent_->Find(t, key)) {
      views_[I(t)].try_emplace(key, Slot{slot->value, false});
      return slot->value;
    }
  }
  absl::StatusOr<std::optional<std::string>> value = store_->Get(t, key);
  if (!value.ok()) {
    Fail(value.status());
    return std::nullopt;
  }
  views_[I(t)].try_emplace(key, Slot{*value, false});
  return *std::move(value);
}

void Overlay::Prefetch(Table t, std::vector<std::string> keys) {
  CheckBuilder();
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<absl::string_view> wanted;
  for (const std::string& k : keys) {
    if (Newest(t, k) == nullptr) wanted.emplace_back(k);
  }
  if (wanted.empty()) return;
  absl::Status s =
      store_->MultiGet(t, wanted, /*sorted=*/true, [&](size_t i, const absl::string_view* value) {
        views_[I(t)].try_emplace(
            wanted[i],
            Slot{value ? std::optional<std::string>(std::string(*value)) : std::nullopt, false});
      });
  if (!s.ok()) Fail(std::move(s));
}

void Overlay::Scan(Table t, absl::string_view prefix,
                   const std::function<void(absl::string_view, absl::string_view)>& visit) {
  CheckBuilder();
  Merged merged;
  ScanRange range;
  range.prefix = std::string(prefix);
  absl::Status s = store_->Scan(t, range, [&](absl::string_view key, absl::string_view value) {
    merged.emplace(std::string(key), std::string(value));
    return true;
  });
  if (!s.ok()) return Fail(std::move(s));
  if (parent_ != nullptr) parent_->OverlayWrites(t, prefix, &merged);
  OverlayWrites(t, prefix, &merged);
  for (const auto& [key, value] : merged) {
    if (value) visit(key, *value);
  }
}

std::vector<std::string> Overlay::KeysAfter(Table t, absl::string_view after, size_t limit) {
  CheckBuilder();
  std::vector<std::string> out;
  if (limit == 0) return out;
  static const absl::btree_set<std::string, std::less<>> kNone;
  const auto& own = ordered_[I(t)];
  const auto& inherited = parent_ != nullptr ? parent_->ordered_[I(t)] : kNone;
  auto o = own.upper_bound(after);
  auto p = inherited.upper_bound(after);
  // Takes a key whatever its source: the newest word on it is this group's,
  // then the parent's, then the store's (where it came from if neither
  // holds it). False once `limit` keys are taken.
  auto take = [&](absl::string_view key) {
    const Slot* slot = Newest(t, key);
    if (slot == nullptr || slot->value) out.emplace_back(key);
    return out.size() < limit;
  };
  // Takes the written keys below `bound` (all when nullptr), in order; moves
  // past those equal to it.
  auto take_written = [&](const absl::string_view* bound) {
    for (;;) {
      std::optional<absl::string_view> next;
      if (o != own.end()) next = *o;
      if (p != inherited.end() && (!next || *p < *next)) next = *p;
      if (!next || (bound != nullptr && *next >= *bound)) break;
      const std::string key(*next);
      if (o != own.end() && *o == key) ++o;
      if (p != inherited.end() && *p == key) ++p;
      if (!take(key)) return false;
    }
    if (bound != nullptr) {
      if (o != own.end() && *o == *bound) ++o;
      if (p != inherited.end() && *p == *bound) ++p;
    }
    return true;
  };
  bool more = true;
  ScanRange range;
  range.start = std::string(after);
  absl::Status s = store_->Scan(t, range, [&](absl::string_view key, absl::string_view) {
    if (!after.empty() && key == after) return true;
    more = take_written(&key) && take(key);
    return more;
  });
  if (!s.ok()) {
    Fail(std::move(s));
    return out;
  }
  if (more) take_written(nullptr);
  return out;
}

WriteSet Overlay::Writes() const {
  WriteSet set;
  for (int t = 0; t < kNumTables; ++t) {
    std::vector<const std::pair<const std::string, Slot>*> sorted;
    for (const auto& kv : views_[t]) {
      if (kv.second.written) sorted.push_back(&kv);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    set.tables[t].reserve(sorted.size());
    for (const auto* kv : sorted) {
      const std::optional<std::string>& value = kv->second.value;
      set.tables[t].push_back({kv->first, value ? &*value : nullptr});
    }
  }
  return set;
}

void Overlay::Set(Table t, absl::string_view key, std::optional<std::string> value) {
  CheckBuilder();
  auto [it, inserted] = views_[I(t)].try_emplace(key);
  if (!it->second.written) {
    ++writes_;
    if (Ordered(t)) ordered_[I(t)].emplace(key);
  }
  it->second.value = std::move(value);
  it->second.written = true;
}

void Overlay::OverlayWrites(Table t, absl::string_view prefix, Merged* merged) const {
  const auto& keys = ordered_[I(t)];
  for (auto it = keys.lower_bound(prefix); it != keys.end() && absl::StartsWith(*it, prefix);
       ++it) {
    (*merged)[*it] = Find(t, *it)->value;
  }
}

}  // namespace frikort::storage
