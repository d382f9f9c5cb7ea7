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
// Stopping (the destructor) hands what is still queued to `refuse` at once,
// lets the threads finish the batches they hold, and joins them; an item
// added after that goes to `refuse` on the caller's thread. Every item is
// handled or refused exactly once.
//
// Thread safety: every method may be called from any thread.
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
  Batcher(std::string thread_name, int threads, size_t max_batch, Handler handle, Handler refuse)
      : name_(std::move(thread_name)),
        threads_(std::max(1, threads)),
        max_batch_(std::max<size_t>(1, max_batch)),
        handle_(std::move(handle)),
        refuse_(std::move(refuse)) {}
  ~Batcher() { Stop(); }
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void Start() {
    absl::MutexLock l(&mu_);
    if (stop_) return;
    for (int i = 0; i < threads_; ++i) {
      workers_.emplace_back([this] {
        pthread_setname_np(pthread_self(), name_.c_str());
        Work();
      });
    }
  }

  void Add(Item item) {
    {
      absl::MutexLock l(&mu_);
      if (!stop_) {
        queue_.push_back(std::move(item));
        return;
      }
    }
    std::vector<Item> one;
    one.push_back(std::move(item));
    refuse_(std::move(one));
  }

  // See the top of the file. Idempotent.
  void Stop() {
    std::vector<Item> queued;
    std::vector<std::thread> workers;
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
      queued.swap(queue_);
      workers.swap(workers_);
    }
    if (!queued.empty()) refuse_(std::move(queued));
    for (std::thread& t : workers) t.join();
  }

 private:
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); }

  void Work() {
    for (;;) {
      std::vector<Item> batch;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(this, &Batcher::HasWork));
        if (stop_) return;  // Stop refuses what is queued
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
  const Handler refuse_;
  absl::Mutex mu_;
  std::vector<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_BATCHER_H_
