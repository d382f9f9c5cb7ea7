#include "storage/lookup_log.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace frikort::storage {

LookupLog::LookupLog(Store* store, std::function<absl::Status()> register_status)
    : store_(store), register_status_(std::move(register_status)) {}

LookupLog::~LookupLog() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (syncer_.joinable()) syncer_.join();
  // The store syncs the log once more when it closes.
}

void LookupLog::Start() {
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-audit");
    WriteLoop();
  });
  syncer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-logsync");
    SyncLoop();
  });
}

absl::Status LookupLog::failure() {
  if (!failed_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  return failure_;
}

absl::Status LookupLog::Failed(absl::Status s) {
  absl::MutexLock l(&mu_);
  if (failure_.ok()) {
    failure_ = absl::Status(
        s.code(),
        absl::StrCat("cannot write the lookup log; lookups are refused (", s.message(), ")"));
    failed_.store(true, std::memory_order_release);
  }
  return failure_;
}

absl::Status LookupLog::Append(std::string key, std::string value) {
  if (absl::Status failed = failure(); !failed.ok()) return failed;
  const std::pair<std::string, std::string> record(std::move(key), std::move(value));
  if (absl::Status s = store_->AppendLookups({&record, 1}); !s.ok()) return Failed(std::move(s));
  return absl::OkStatus();
}

void LookupLog::AppendAsync(std::string key, std::string value, Done done) {
  {
    absl::MutexLock l(&mu_);
    if (!stop_) {
      queue_.push_back({{std::move(key), std::move(value)}, std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("register is shutting down"));
}

void LookupLog::WriteLoop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &LookupLog::HasWork));
      if (queue_.empty()) return;  // stopping, and every lookup answered
      batch.swap(queue_);
    }
    absl::Status status = failure();
    if (status.ok()) status = register_status_();
    if (status.ok()) {
      std::vector<std::pair<std::string, std::string>> records;
      records.reserve(batch.size());
      for (Pending& p : batch) records.push_back(std::move(p.record));
      if (absl::Status s = store_->AppendLookups(records); !s.ok()) status = Failed(std::move(s));
    }
    for (Pending& p : batch) std::move(p.done)(status);
  }
}

void LookupLog::SyncLoop() {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), kSyncInterval)) return;
    }
    if (absl::Status s = store_->SyncLookups(); !s.ok()) {
      Failed(std::move(s)).IgnoreError();
      return;
    }
  }
}

}  // namespace frikort::storage
