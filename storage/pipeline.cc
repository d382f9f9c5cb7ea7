#include "storage/pipeline.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace frikort::storage {

WritePipeline::WritePipeline(Store* store, const core::Clock* clock, size_t max_group_weight)
    : store_(store), clock_(clock), max_group_weight_(max_group_weight) {}

WritePipeline::~WritePipeline() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (committer_.joinable()) committer_.join();
}

void WritePipeline::Start() {
  // Named, so `top -H` and a profile tell the register's threads apart.
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-writer");
    WriterLoop();
  });
  committer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-commit");
    CommitLoop();
  });
}

void WritePipeline::Enqueue(Op op) {
  absl::Status refused;
  {
    absl::MutexLock l(&mu_);
    if (failure_.ok() && !stop_) {
      queue_.push_back(std::move(op));
      return;
    }
    refused = failure_.ok() ? absl::UnavailableError("register is shutting down") : failure_;
  }
  std::move(op.complete)(refused);
}

absl::Status WritePipeline::status() {
  absl::MutexLock l(&mu_);
  return failure_;
}

std::vector<Op> WritePipeline::TakeOps() {
  std::vector<Op> ops;
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(this, &WritePipeline::HasWork));
  size_t weight = 0;
  while (!queue_.empty() && (ops.empty() || weight + queue_.front().weight <= max_group_weight_)) {
    weight += queue_.front().weight;
    ops.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return ops;
}

void WritePipeline::WriterLoop() {
  for (;;) {
    std::vector<Op> ops = TakeOps();
    if (ops.empty()) break;  // stop requested and nothing left to do
    if (absl::Status s = status(); !s.ok()) {
      for (auto& op : ops) std::move(op.complete)(s);
      continue;
    }
    // Build this group on top of the one being committed (if any), so the
    // next sync's wait and this group's work overlap.
    std::shared_ptr<const Overlay> parent;
    {
      absl::MutexLock l(&commit_mu_);
      if (committing_ != nullptr) parent = committing_->overlay;
    }
    auto group = std::make_shared<Group>();
    group->overlay = std::make_shared<Overlay>(store_, clock_->Now(), std::move(parent));
    for (auto& op : ops) op.apply(*group->overlay);
    group->overlay->ReleaseParent();
    group->ops = std::move(ops);
    absl::MutexLock l(&commit_mu_);
    commit_mu_.Await(absl::Condition(this, &WritePipeline::CommitterIdle));
    committing_ = std::move(group);
  }
  absl::MutexLock l(&commit_mu_);
  commit_stop_ = true;
}

absl::Status WritePipeline::Commit(const Group& group) {
  // A group built on one whose commit failed holds what never reached disk:
  // it fails with it.
  if (absl::Status s = status(); !s.ok()) return s;
  absl::Status s = group.overlay->status();
  if (s.ok() && group.overlay->writes() > 0) s = store_->Commit(group.overlay->Writes());
  if (s.ok()) return s;
  // The cause's code is kept (UNAVAILABLE for I/O and a lost connection,
  // DATA_LOSS for damage). A connection lost while committing leaves the
  // outcome unknown: the resend tells, never a guess here.
  const bool unknown = s.code() == absl::StatusCode::kUnavailable;
  s = absl::Status(
      s.code(),
      absl::StrCat("the register stopped accepting changes after a storage error (", s.message(),
                   unknown ? "); send the call again once frikortd serves again (restarted, or "
                             "reconnected by itself on PostgreSQL): what was stored answers "
                             "DUPLICATE"
                           : "); nothing of this call was stored; restart frikortd once the cause "
                             "is fixed"));
  absl::MutexLock l(&mu_);
  if (failure_.ok()) failure_ = s;
  return s;
}

void WritePipeline::CommitLoop() {
  for (;;) {
    std::shared_ptr<Group> group;
    {
      absl::MutexLock l(&commit_mu_);
      commit_mu_.Await(absl::Condition(this, &WritePipeline::CommitterHasWork));
      if (committing_ == nullptr) return;  // the writer has stopped and all is written
      group = committing_;
    }
    const absl::Status s = Commit(*group);
    {
      absl::MutexLock l(&commit_mu_);
      committing_ = nullptr;
    }
    for (auto& op : group->ops) std::move(op.complete)(s);
  }
}

}  // namespace frikort::storage
