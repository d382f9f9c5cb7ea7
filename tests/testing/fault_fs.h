// A RocksDB file system for fault tests. It passes every call through to the
// real one and, on request:
//  - fails every write, sync and file creation with "no space left on device"
//    (a full or broken disk), and
//  - after the database is closed, cuts every file it wrote back to what was
//    last synced, as a power loss would (the page cache is gone; only synced
//    bytes are on the platter);
//  - holds every sync until released (a slow disk), so a test can act while
//    a write is on its way.
// Usage: FaultFs fs; options.open_store = RocksStoreOn(fs.env()); ... fs.FailWrites(true);
// close the register; fs.DropUnsyncedData(); reopen with the default env.
#ifndef FRIKORT_TESTS_TESTING_FAULT_FS_H_
#define FRIKORT_TESTS_TESTING_FAULT_FS_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "storage/register.h"
#include "storage/rocks_store.h"

namespace frikort::testing {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  FaultFs() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  // The Env to open the register's store with (RocksStoreOn); valid while
  // this object lives.
  // (Built on first use: the Env holds a shared_ptr to this file system.)
  rocksdb::Env* env() {
    if (env_ == nullptr) {
      env_ = rocksdb::NewCompositeEnv(std::shared_ptr<rocksdb::FileSystem>(
          std::shared_ptr<rocksdb::FileSystem>(), this));  // aliasing: not owned
    }
    return env_.get();
  }

  const char* Name() const override { return "FrikortFaultFs"; }

  void FailWrites(bool fail) { failing_ = fail; }
  bool failing() const { return failing_; }
  // Only syncs fail (a disk that takes writes into its cache but cannot
  // flush it).
  void FailSyncs(bool fail) { failing_syncs_ = fail; }

  // While held, every Sync/Fsync waits (before it syncs or fails) until
  // ReleaseSyncs(). WaitForHeldSync() returns once a sync is waiting.
  void HoldSyncs() {
    std::lock_guard<std::mutex> l(hold_mu_);
    holding_ = true;
  }
  void ReleaseSyncs() {
    std::lock_guard<std::mutex> l(hold_mu_);
    holding_ = false;
    hold_cv_.notify_all();
  }
  void WaitForHeldSync() {
    std::unique_lock<std::mutex> l(hold_mu_);
    hold_cv_.wait(l, [this] { return held_ > 0; });
  }

  // Bytes written but not yet synced, over the files whose path contains
  // `part`.
  uint64_t UnsyncedBytes(const std::string& part) {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t total = 0;
    for (const auto& [name, state] : files_) {
      if (name.find(part) != std::string::npos) total += state.size - state.synced;
    }
    return total;
  }

  // Cuts every file written through this file system back to its last synced
  // length. Only when no database is open on it.
  void DropUnsyncedData() {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [name, state] : files_) {
      std::error_code ec;
      if (!std::filesystem::exists(name, ec)) continue;
      if (std::filesystem::file_size(name, ec) > state.synced) {
        std::filesystem::resize_file(name, state.synced, ec);
      }
    }
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (failing_) return NoSpace();
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
    if (s.ok()) Wrap(f, 0, r);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (failing_) return NoSpace();
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, r, dbg);
    std::error_code ec;
    if (s.ok()) Wrap(f, std::filesystem::file_size(f, ec), r);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    if (failing_) return NoSpace();
    rocksdb::IOStatus s = target()->ReuseWritableFile(f, old, o, r, dbg);
    if (s.ok()) Wrap(f, 0, r);
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (failing_) return NoSpace();
    rocksdb::IOStatus s = target()->RenameFile(src, dst, o, dbg);
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      if (auto it = files_.find(src); it != files_.end()) {
        files_[dst] = it->second;
        files_.erase(src);
      } else {
        files_.erase(dst);
      }
    }
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->DeleteFile(f, o, dbg);
    std::lock_guard<std::mutex> l(mu_);
    files_.erase(f);
    return s;
  }

 private:
  struct FileState {
    uint64_t size = 0;    // bytes appended
    uint64_t synced = 0;  // bytes known durable
  };

  static rocksdb::IOStatus NoSpace() {
    return rocksdb::IOStatus::NoSpace("injected fault: no space left on device");
  }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(FaultFs* fs, std::string name, std::unique_ptr<rocksdb::FSWritableFile> target)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      rocksdb::IOStatus s = target()->Append(data, o, dbg);
      if (s.ok()) fs_->Grew(name_, data.size(), std::nullopt);
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      rocksdb::IOStatus s = target()->Append(data, o, v, dbg);
      if (s.ok()) fs_->Grew(name_, data.size(), std::nullopt);
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
      if (s.ok()) fs_->Grew(name_, 0, offset + data.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       const rocksdb::DataVerificationInfo& v,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, v, dbg);
      if (s.ok()) fs_->Grew(name_, 0, offset + data.size());
      return s;
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      rocksdb::IOStatus s = target()->Truncate(size, o, dbg);
      if (s.ok()) fs_->Truncated(name_, size);
      return s;
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->failing_) return NoSpace();
      return target()->Flush(o, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      fs_->WaitWhileHeld();
      if (fs_->failing_ || fs_->failing_syncs_) return NoSpace();
      rocksdb::IOStatus s = target()->Sync(o, dbg);
      if (s.ok()) fs_->Synced(name_);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      fs_->WaitWhileHeld();
      if (fs_->failing_ || fs_->failing_syncs_) return NoSpace();
      rocksdb::IOStatus s = target()->Fsync(o, dbg);
      if (s.ok()) fs_->Synced(name_);
      return s;
    }
    // RangeSync is a hint to write back early, not a durability point: it
    // passes through and is not counted as a sync.

   private:
    FaultFs* const fs_;
    const std::string name_;
  };

  void Wrap(const std::string& name, uint64_t size, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    {
      std::lock_guard<std::mutex> l(mu_);
      files_[name] = FileState{size, size};
    }
    *r = std::make_unique<File>(this, name, std::move(*r));
  }
  void Grew(const std::string& name, uint64_t appended, std::optional<uint64_t> end) {
    std::lock_guard<std::mutex> l(mu_);
    FileState& f = files_[name];
    f.size = end.has_value() ? std::max(f.size, *end) : f.size + appended;
  }
  void Truncated(const std::string& name, uint64_t size) {
    std::lock_guard<std::mutex> l(mu_);
    FileState& f = files_[name];
    f.size = size;
    f.synced = std::min(f.synced, size);
  }
  void Synced(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    FileState& f = files_[name];
    f.synced = f.size;
  }

  void WaitWhileHeld() {
    std::unique_lock<std::mutex> l(hold_mu_);
    if (!holding_) return;
    ++held_;
    hold_cv_.notify_all();
    hold_cv_.wait(l, [this] { return !holding_; });
    --held_;
  }

  std::atomic<bool> failing_{false};
  std::atomic<bool> failing_syncs_{false};
  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool holding_ = false;  // guarded by hold_mu_
  int held_ = 0;          // syncs waiting; guarded by hold_mu_
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_
  std::unique_ptr<rocksdb::Env> env_;
};

// RegisterOptions::open_store for the RocksDB store over `env` (nullptr =
// the default), with the register's options otherwise.
inline std::function<
    absl::StatusOr<std::unique_ptr<storage::Store>>(const storage::RegisterOptions&)>
RocksStoreOn(rocksdb::Env* env) {
  return [env](const storage::RegisterOptions& options) {
    storage::RocksStoreOptions rocks = storage::RocksStoreOptionsFrom(options);
    rocks.env = env;
    return storage::OpenRocksStore(rocks);
  };
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_FAULT_FS_H_
