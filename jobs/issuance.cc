#include "jobs/issuance.h"

#include <utility>

#include "absl/status/status.h"
#include "core/ledger.h"

namespace frikort::jobs {

IssuanceJob::IssuanceJob(storage::Register* reg, const core::RulesTable* rules,
                         const core::Clock* clock)
    : reg_(reg), rules_(rules), clock_(clock) {}

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
  summary.as_of = as_of.value_or(clock_->Today());
  summary.dry_run = dry_run;
  if (dry_run) {
    summary.run_id = "dry-run";
  } else {
    auto id = reg_->AllocateRunId();
    if (!id.ok()) return id.status();
    summary.run_id = *std::move(id);
  }
  const storage::RunInfo info{summary.run_id, summary.as_of, dry_run};
  const absl::CivilDay decision_date = summary.as_of;
  auto decide = [decision_date](const core::LedgerState& state) {
    return core::DecideIssuance(state, decision_date);
  };

  // Walk the due markers in key order. Markers are removed as ledgers are
  // decided; a marker set again behind the cursor by a report arriving during
  // the run is the next run's work, one ahead of it is this run's.
  std::optional<storage::DueLedger> cursor;
  for (;;) {
    auto chunk = reg_->ScanDue(cursor, chunk_size_);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) break;
    cursor = chunk->back();
    summary.ledgers_examined += static_cast<int64_t>(chunk->size());
    auto outcomes = reg_->Decide(info, *std::move(chunk), decide);
    if (!outcomes.ok()) return outcomes.status();
    for (const storage::LedgerOutcome& o : *outcomes) {
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
