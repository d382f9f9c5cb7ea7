// The lookup log's write path: every exemption lookup leaves a record before
// it is answered.
//
// Records of concurrent lookups are appended to the store together by one
// thread (so no caller, a gRPC thread, waits in the store's write queue);
// appended means a crash of the process keeps them. A second thread syncs the
// log every kSyncInterval, so a power loss loses at most that much of it. The
// first failed append or sync closes the log: every later lookup is refused
// (an answer is never given without its record) until restart.
//
// Thread safety: all methods may be called from any thread. `done` runs on
// the log's writer thread (or the caller's of AppendAsync, when refused at
// once) and must not block on the log.
#ifndef FRIKORT_STORAGE_LOOKUP_LOG_H_
#define FRIKORT_STORAGE_LOOKUP_LOG_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/store.h"

namespace frikort::storage {

class LookupLog {
 public:
  static constexpr absl::Duration kSyncInterval = absl::Milliseconds(200);
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // `store` is not owned and must outlive the log. `register_status` says
  // whether the register still serves (a failed register answers no lookup).
  LookupLog(Store* store, std::function<absl::Status()> register_status);
  // Writes what is queued, answers it, then stops both threads.
  ~LookupLog();
  LookupLog(const LookupLog&) = delete;
  LookupLog& operator=(const LookupLog&) = delete;

  void Start();
  // Appends one record now, on the caller's thread.
  absl::Status Append(std::string key, std::string value);
  // Queues one record; `done` gets the outcome once it is appended.
  void AppendAsync(std::string key, std::string value, Done done);
  // Ok, or the failure that closed the log.
  absl::Status failure() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending {
    std::pair<std::string, std::string> record;
    Done done;
  };
  void WriteLoop();
  void SyncLoop();
  // Records `s` as the log's failure if it is the first; returns the failure.
  absl::Status Failed(absl::Status s) ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); }

  Store* const store_;
  const std::function<absl::Status()> register_status_;
  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> failed_{false};  // failure_ is set (read without the lock)
  std::thread writer_;
  std::thread syncer_;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_LOOKUP_LOG_H_
