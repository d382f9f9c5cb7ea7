// The view one group commit builds and then writes (LevelDB's write batch
// with reads of its own writes).
//
// Every key the group reads or writes sits in a hash map per table: a key read
// twice costs one store read, a key written twice is written once, and reads
// see the group's own uncommitted writes. Reads fall through to `parent`, the
// group before this one, which may still be on its way to disk (the commit
// thread writes it while the writer builds this one), and then to the store.
// Keys written in the tables the write path scans (entries, ledgers, due) are
// also kept in order, so a scan merges them over the store's. The first read
// or decode failure poisons the overlay; nothing of it is then written.
//
// Thread safety: one thread builds an overlay; once built (ReleaseParent) it
// is only read, by the commit thread and as the next group's parent.
#ifndef FRIKORT_STORAGE_OVERLAY_H_
#define FRIKORT_STORAGE_OVERLAY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "storage/store.h"

namespace frikort::storage {

class Overlay {
 public:
  // `store` is not owned and must outlive the overlay.
  // The calling thread builds the overlay: every read and write of it must
  // come from that thread (the writer's), and any other crashes the process
  // (a write from elsewhere would race the group it joins).
  Overlay(StoreReader* store, absl::Time now, std::shared_ptr<const Overlay> parent)
      : store_(store),
        now_(now),
        parent_(std::move(parent)),
        builder_(std::this_thread::get_id()) {}

  // The time the group was started: every record it writes is stamped with it.
  absl::Time now() const { return now_; }
  const absl::Status& status() const { return status_; }
  // Keys written (each counted once).
  uint32_t writes() const { return writes_; }

  std::optional<std::string> Get(Table t, absl::string_view key);
  // Reads the keys this group does not hold yet in one batch (sorted: the
  // store then walks each index once per batch instead of once per key), so
  // the Gets that follow are hash lookups.
  void Prefetch(Table t, std::vector<std::string> keys);
  // False when absent or damaged (damage also fails the overlay).
  template <typename Msg>
  bool GetMsg(Table t, absl::string_view key, Msg* msg) {
    auto v = Get(t, key);
    if (!v) return false;
    if (!msg->ParseFromString(*v)) {
      Fail(absl::DataLossError(absl::StrCat("damaged record in table ", TableName(t))));
      return false;
    }
    return true;
  }
  void Put(Table t, absl::string_view key, std::string value) { Set(t, key, std::move(value)); }
  void PutMsg(Table t, absl::string_view key, const google::protobuf::MessageLite& msg) {
    Set(t, key, msg.SerializeAsString());
  }
  void Delete(Table t, absl::string_view key) { Set(t, key, std::nullopt); }

  // Calls visit(key, value) for every key starting with `prefix` in this
  // group's view of `t` (an ordered table), in key order.
  void Scan(Table t, absl::string_view prefix,
            const std::function<void(absl::string_view, absl::string_view)>& visit);
  // Up to `limit` keys of `t` (an ordered table) strictly after `after` (""
  // = from the first) in this group's view: the store's keys merged with the
  // parent's and this group's writes, deleted ones left out.
  std::vector<std::string> KeysAfter(Table t, absl::string_view after, size_t limit);

  // The group's writes, each table's keys in order (the memtable's skip list
  // then inserts each key next to the one before); borrowed from the overlay,
  // so valid while it lives and is not written to.
  WriteSet Writes() const;

  void Fail(absl::Status s) {
    CheckBuilder();
    if (status_.ok()) status_ = std::move(s);
  }
  // Once the group is built it no longer reads through its parent (and must
  // not keep a chain of committed groups alive).
  void ReleaseParent() { parent_.reset(); }

 private:
  struct Slot {
    std::optional<std::string> value;  // nullopt: absent (or deleted)
    bool written = false;
  };
  using Merged = std::map<std::string, std::optional<std::string>, std::less<>>;
  static bool Ordered(Table t) {
    return t == Table::kEntries || t == Table::kLedgers || t == Table::kDue;
  }
  static int I(Table t) { return static_cast<int>(t); }
  void CheckBuilder() const;

  const Slot* Find(Table t, absl::string_view key) const {
    auto it = views_[I(t)].find(key);
    return it == views_[I(t)].end() ? nullptr : &it->second;
  }
  // This group's slot for the key, else the parent's.
  const Slot* Newest(Table t, absl::string_view key) const {
    const Slot* slot = Find(t, key);
    if (slot == nullptr && parent_ != nullptr) slot = parent_->Find(t, key);
    return slot;
  }
  void Set(Table t, absl::string_view key, std::optional<std::string> value);
  void OverlayWrites(Table t, absl::string_view prefix, Merged* merged) const;

  StoreReader* const store_;
  const absl::Time now_;
  std::shared_ptr<const Overlay> parent_;
  std::array<absl::flat_hash_map<std::string, Slot>, kNumTables> views_;
  std::array<absl::btree_set<std::string, std::less<>>, kNumTables> ordered_;
  const std::thread::id builder_;
  uint32_t writes_ = 0;
  absl::Status status_;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_OVERLAY_H_
