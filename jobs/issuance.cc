#include "jobs/issuance.h"

#include <deque>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "core/ledger.h"

namespace frikort::jobs {

IssuanceJob::IssuanceJob(storage::Register* reg, const core::Clock* clock)
    : reg_(reg), clock_(clock) {}

absl::StatusOr<RunSummary> IssuanceJob::Run(std::optional<absl::CivilDay> as_of, bool dry_run) {
  if (running_.exchange(true)) {
    return absl::AbortedError(
        "issuance: a run is already in progress; runs never overlap, try again when it ends");
  }
  struct Reset {
    std::atomic<bool>* flag;
    ~Reset() { flag->store(false); }
  } reset{&running_};

  RunSummary summary;
  summary.decided_on = clock_->Today();
  summary.as_of = as_of.value_or(summary.decided_on);
  summary.dry_run = dry_run;
  if (dry_run) {
    summary.run_id = "dry-run";
  } else {
    auto id = reg_->AllocateRunId();
    if (!id.ok()) return id.status();
    summary.run_id = *std::move(id);
  }
  const storage::RunInfo info{summary.run_id, summary.as_of, dry_run, summary.decided_on};
  const absl::CivilDay decision_date = summary.as_of;
  const absl::CivilDay decided_on = summary.decided_on;
  auto decide = [decision_date, decided_on](const core::LedgerState& state) {
    core::IssuanceDecision d = core::DecideIssuance(state, decision_date);
    // A backdated run must not make a late card look on time.
    if (d.issue_card) d.past_deadline = core::PastDeadline(d.valid_from, decided_on);
    return d;
  };

  // Walk the due markers in key order, chunk by chunk. The register's writer
  // takes each chunk's markers when it reaches the chunk, after everything
  // queued before it: a marker set behind the cursor by a report arriving
  // during the run is the next run's work, one ahead of it is this run's.
  // Up to kChunksInFlight chunks are queued at once, so the writer builds
  // one while the one before it is being synced. The run ends when the
  // newest chunk found no marker after the cursor.
  struct Chunk {
    absl::Notification done;
    absl::StatusOr<std::vector<storage::LedgerOutcome>> outcomes;
  };
  auto cursor = std::make_shared<storage::DueCursor>();
  std::deque<std::unique_ptr<Chunk>> in_flight;
  absl::Status failure;
  bool exhausted = false;
  auto failed_early = [&in_flight] {
    for (const auto& c : in_flight) {
      if (c->done.HasBeenNotified() && !c->outcomes.ok()) return true;
    }
    return false;
  };
  for (;;) {
    while (failure.ok() && !exhausted && in_flight.size() < kChunksInFlight && !failed_early()) {
      auto chunk = std::make_unique<Chunk>();
      Chunk* c = chunk.get();
      in_flight.push_back(std::move(chunk));
      reg_->DecideNextAsync(info, cursor, chunk_size_, decide,
                            [c](absl::StatusOr<std::vector<storage::LedgerOutcome>> r) {
                              c->outcomes = std::move(r);
                              c->done.Notify();
                            });
    }
    if (in_flight.empty()) break;
    std::unique_ptr<Chunk> c = std::move(in_flight.front());
    in_flight.pop_front();
    c->done.WaitForNotification();
    if (!c->outcomes.ok()) {
      // Stop queueing; wait for what is queued (its callbacks point here).
      if (failure.ok()) failure = c->outcomes.status();
      continue;
    }
    if (!failure.ok()) continue;
    exhausted = c->outcomes->empty();
    summary.ledgers_examined += static_cast<int64_t>(c->outcomes->size());
    for (const storage::LedgerOutcome& o : *c->outcomes) {
      if (o.skipped) continue;
      const core::IssuanceDecision& d = o.decision;
      if (d.issue_card) {
        ++summary.cards_issued;
        if (d.past_deadline) ++summary.cards_past_deadline;
      }
      if (d.refund.payout > 0) {
        ++summary.payouts;
        summary.payout_total += d.refund.payout;
      }
      summary.carried_forward += d.refund.carried;
    }
  }
  if (!failure.ok()) return failure;
  if (!dry_run && observer_) observer_(summary);
  return summary;
}

Scheduler::Scheduler(IssuanceJob* job, absl::Duration interval,
                     std::function<void(const absl::Status&)> on_error)
    : job_(job), interval_(interval), on_error_(std::move(on_error)) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  if (interval_ <= absl::ZeroDuration() || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Loop() {
  // The first run comes at start: a frikortd restarted more often than its
  // interval must still issue cards by itself.
  for (;;) {
    auto run = job_->Run(std::nullopt, /*dry_run=*/false);
    // An operator's run in progress is not a failure: the work is being done.
    if (!run.ok() && !absl::IsAborted(run.status()) && on_error_) on_error_(run.status());
    absl::MutexLock l(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopped), interval_)) return;
  }
}

}  // namespace frikort::jobs
