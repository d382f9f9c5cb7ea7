// The register's one write path (LevelDB's writer queue and group commit).
//
// Changes are operations queued to a single writer thread, which applies all
// queued operations in arrival order into one group (an Overlay that reads
// its own uncommitted writes). A commit thread writes each group with one
// atomic, durable Store::Commit and only then completes the group's
// operations, in order, while the writer builds the next group on top of the
// one being committed. So writes are serialized, each group lands whole, and
// many callers share one sync.
//
// Fails closed: after a failed commit every queued and later operation
// completes with the failure, and status() reports it, for the pipeline's
// life (until restart; on PostgreSQL the daemon replaces the register after
// an UNAVAILABLE one, server/register_keeper.h).
//
// Thread safety: Enqueue and status may be called from any thread. `apply`
// runs on the writer thread, `complete` on the commit thread (or on the
// caller's, when refused at once); neither may block on the pipeline.
#ifndef FRIKORT_STORAGE_PIPELINE_H_
#define FRIKORT_STORAGE_PIPELINE_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/calendar.h"
#include "storage/overlay.h"
#include "storage/store.h"

namespace frikort::storage {

// One queued change: `apply` runs on the writer thread inside a group's
// overlay, `complete` after the group's commit, with its status.
struct Op {
  size_t weight = 1;  // reports it carries, for the group size bound
  absl::AnyInvocable<void(Overlay&)> apply;
  absl::AnyInvocable<void(absl::Status) &&> complete;
};

class WritePipeline {
 public:
  // `store` and `clock` are not owned and must outlive the pipeline. A group
  // takes operations up to `max_group_weight` (at least one).
  WritePipeline(Store* store, const core::Clock* clock, size_t max_group_weight);
  // Finishes every queued operation, then stops both threads.
  ~WritePipeline();
  WritePipeline(const WritePipeline&) = delete;
  WritePipeline& operator=(const WritePipeline&) = delete;

  void Start();
  // Queues `op`; completes it at once (with the failure or "shutting down")
  // when the pipeline no longer accepts work.
  void Enqueue(Op op);
  // Ok, or the failure that closed the pipeline.
  absl::Status status() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A built group on its way to disk. At most one is in flight.
  struct Group {
    std::shared_ptr<Overlay> overlay;
    std::vector<Op> ops;
  };

  void WriterLoop();
  void CommitLoop();
  // The next group's operations; empty once stopped with nothing left.
  std::vector<Op> TakeOps() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); }
  bool CommitterIdle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return committing_ == nullptr;
  }
  bool CommitterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return committing_ != nullptr || commit_stop_;
  }
  absl::Status Commit(const Group& group);

  Store* const store_;
  const core::Clock* const clock_;
  const size_t max_group_weight_;

  absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);

  absl::Mutex commit_mu_;
  std::shared_ptr<Group> committing_ ABSL_GUARDED_BY(commit_mu_);
  bool commit_stop_ ABSL_GUARDED_BY(commit_mu_) = false;

  std::thread writer_;
  std::thread committer_;
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_PIPELINE_H_
