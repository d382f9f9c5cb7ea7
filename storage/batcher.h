// Work taken in batches by a few threads of its own: callers Add items, and
// each thread takes everything queued (up to `max_batch`) and hands it to
// `handle` as one batch. Under load a batch holds what arrived while the
// threads were busy with the batches before it, so N concurrent items cost a
// handful of handler calls instead of N; idle, an item is handled at once.
//
// The register reads lookups this way from a store whose reads are round
// trips to another process (PostgreSQL): one statement reads the ledgers of a
// whole batch, and no gRPC thread waits on the database.
//
// Thread safety: Add may be called from any thread until the destructor
// starts. The destructor lets the threads hand over what is queued (every
// item is handled exactly once; on its own thread when never started), then
// stops them.
#ifndef FRIKORT_STORAGE_BATCHER_H_
#define FRIKORT_STORAGE_BATCHER_H_

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace frikort::storage {

template <typename Item>
class Batcher {
 public:
  using Handler = std::function<void(std::vector<Item> batch)>;

  // `thread_name`: at most 15 characters (the kernel's limit).
  Batcher(std::string thread_name, int threads, size_t max_batch, Handler handle)
      : name_(std::move(thread_name)),
        threads_(std::max(1, threads)),
        max_batch_(std::max<size_t>(1, max_batch)),
        handle_(std::move(handle)) {}
  ~Batcher() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    for (std::thread& t : workers_) t.join();
    // Never started (or added as the threads stopped): handled here.
    std::vector<Item> rest;
    {
      absl::MutexLock l(&mu_);
      rest.swap(queue_);
    }
    if (!rest.empty()) handle_(std::move(rest));
  }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void Start() {
    for (int i = 0; i < threads_; ++i) {
      workers_.emplace_back([this] {
        pthread_setname_np(pthread_self(), name_.c_str());
        Work();
      });
    }
  }

  void Add(Item item) {
    absl::MutexLock l(&mu_);
    queue_.push_back(std::move(item));
  }

 private:
  void Work() {
    for (;;) {
      std::vector<Item> batch;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](Batcher* b)
                 ABSL_NO_THREAD_SAFETY_ANALYSIS { return b->stop_ || !b->queue_.empty(); },
            this));
        if (queue_.empty()) return;  // stopping, nothing left
        if (queue_.size() <= max_batch_) {
          batch.swap(queue_);
        } else {
          batch.assign(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.begin() + max_batch_));
          queue_.erase(queue_.begin(), queue_.begin() + max_batch_);
        }
      }
      handle_(std::move(batch));
    }
  }

  const std::string name_;
  const int threads_;
  const size_t max_batch_;
  const Handler handle_;
  absl::Mutex mu_;
  std::vector<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;  // set by Start, before any Add
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_BATCHER_H_
