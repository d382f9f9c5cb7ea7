// The issuance & refund job: reads the due markers (never the whole
// population), and for each due ledger issues the free card and pays out the
// excess above the cap, following the refund minimum of the ledger's year.
// The arithmetic is core::DecideIssuance; each ledger's decision is one atomic
// write (storage::Register::DecideNextAsync), so a killed run resumes by running
// again and a repeated run issues and pays nothing new.
//
// Thread safety: Run may be called from any thread; runs never overlap: a Run
// while another is in progress returns Aborted at once.
#ifndef FRIKORT_JOBS_ISSUANCE_H_
#define FRIKORT_JOBS_ISSUANCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "core/types.h"
#include "storage/register.h"

namespace frikort::jobs {

struct RunSummary {
  std::string run_id;
  absl::CivilDay as_of;  // the decision date written on cards and payouts
  // The real date of the run (today, Oslo). A run with as_of before it is
  // backdated: the deadline is measured against decided_on, never as_of.
  absl::CivilDay decided_on;
  bool backdated() const { return as_of < decided_on; }
  bool dry_run = false;
  int64_t ledgers_examined = 0;
  int64_t cards_issued = 0;
  int64_t payouts = 0;
  core::Ore payout_total = 0;
  core::Ore carried_forward = 0;
  int64_t cards_past_deadline = 0;  // cards decided_on more than 21 days after the crossing
};

class IssuanceJob {
 public:
  // Neither pointer is owned; both must outlive the job.
  IssuanceJob(storage::Register* reg, const core::Clock* clock);

  // One run with decision date `as_of` (nullopt = today in Europe/Oslo).
  // Each card records the real date besides (records::Card decided_on).
  // Aborted if a run is in progress; Unavailable on storage failure (the run
  // can simply be started again: decided ledgers stay decided).
  absl::StatusOr<RunSummary> Run(std::optional<absl::CivilDay> as_of, bool dry_run);

  // Called after every finished (not dry) run, e.g. to log and export metrics.
  void set_observer(std::function<void(const RunSummary&)> observer) {
    observer_ = std::move(observer);
  }

  // Ledgers handed to the storage per chunk (each chunk's decisions are
  // written together); tests lower it to kill a run between chunks.
  void set_chunk_size(size_t n) { chunk_size_ = n; }

  // Chunks queued to the storage at once: the writer builds the next while
  // the one before it is synced.
  static constexpr size_t kChunksInFlight = 2;

 private:
  storage::Register* const reg_;
  const core::Clock* const clock_;
  std::atomic<bool> running_{false};
  std::function<void(const RunSummary&)> observer_;
  size_t chunk_size_ = 1000;
};

// Runs the job at Start() and then every `interval` with as_of = today (Oslo)
// on its own thread. interval 0 = never. Stop() (or the destructor) waits for a run in progress.
// `on_error` (optional) hears of runs that failed (not of runs refused because
// an operator's run was in progress).
class Scheduler {
 public:
  Scheduler(IssuanceJob* job, absl::Duration interval,
            std::function<void(const absl::Status&)> on_error = nullptr);
  ~Scheduler();
  void Start();
  void Stop();

 private:
  void Loop();
  IssuanceJob* const job_;
  const absl::Duration interval_;
  const std::function<void(const absl::Status&)> on_error_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace frikort::jobs

#endif  // FRIKORT_JOBS_ISSUANCE_H_
