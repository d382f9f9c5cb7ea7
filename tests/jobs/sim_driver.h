// One seed of the simulation test (simulation_test.cc): the workload's
// operations (sim_workload.h) applied to the real storage::Register and the
// real jobs::IssuanceJob on a FakeClock, and to the reference model
// (sim_model.h), which predicts every answer; the answers and, after every
// step, the touched ledgers and the due markers are compared (sim_checks.h).
// Issuance runs go through a mock register over the real one, so the model
// follows the job chunk by chunk, changes arrive between chunks and a run is
// killed before or after a chunk's write; restarts reopen the same folder.
// Changes to the provider registry are answered after their re-evaluation:
// what PutProvider says it changed is compared with the model's count.
#ifndef FRIKORT_TESTS_JOBS_SIM_DRIVER_H_
#define FRIKORT_TESTS_JOBS_SIM_DRIVER_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "jobs/issuance.h"
#include "storage/register.h"
#include "tests/jobs/job_fixture.h"
#include "tests/jobs/sim_checks.h"
#include "tests/jobs/sim_model.h"
#include "tests/jobs/sim_workload.h"

namespace frikort::jobs::testing {

// What the seeds did, summed over seeds and printed at the end, so a run
// shows what it covered.
struct Coverage {
  std::map<std::string, int64_t> counts;
  void Add(const std::string& what, int64_t n = 1) { counts[what] += n; }
  std::string Line() const {
    return absl::StrJoin(counts, ", ", [](std::string* out, const auto& kv) {
      absl::StrAppend(out, kv.first, " ", kv.second);
    });
  }
};

// The simulation's fixture: one seed's register, opened and restarted, and
// the operations of a step, each sent to the register and to the model.
class SimDriver : public SimChecks {
 protected:
  using CoPaymentInput = core::CoPaymentInput;

  // ---- one seed's world ----
  void Open();
  void Restart();
  // One operation drawn by the workload; its answers are checked by the next
  // AwaitPending.
  void Step();

  // ---- operations ----
  // A change sent and not yet answered, with the model's answers.
  struct Pending {
    struct Item {
      std::string person;
      std::string what;
      storage::ReportResult want;
      bool reservation = false;  // answered with a status only
    };
    std::vector<Item> items;
    absl::Notification done;
    absl::Status status;
    std::vector<storage::ReportResult> got;
  };
  void Send(std::vector<CoPaymentInput> batch, absl::string_view what);
  Register::ResultDone Expect(const std::string& person, std::string what,
                              storage::ReportResult want);
  void AwaitPending();
  void SubmitNew();
  void SubmitBatch();
  void Resend();
  void ResendConflicting();
  void UpdatePayment();
  void Cancel();
  void Reserve();
  void Lookup();
  void RunIssuance(bool interrupted, bool reports_between_chunks);
  void SmallOp();
  std::shared_ptr<absl::Notification> HoldWriter();
  void Burst();
  // The seed's first registry, and one change to it.
  void LoadRegistry();
  void ChangeAgreement();
  void PutProvider(const std::string& id, std::vector<sim::Period> periods);

  std::vector<std::shared_ptr<Pending>> pending_;
  std::set<std::string> touched_;  // persons the step's operations concern
  Coverage coverage_;
  int agreement_version_ = 0;
};

// ---------------------------------------------------------------------------
// The world

inline void SimDriver::Open() {
  storage::RegisterOptions o;
  o.data_dir = dir_.string();
  o.secret = kSecret;
  o.rules = &rules_;
  o.clock = &clock_;
  // The simulation checks logic, not durability (the e2e kill test does):
  // restarts close the register cleanly, and unsynced commits keep a step fast.
  o.sync_writes = false;
  auto r = Register::Open(o);
  ASSERT_TRUE(r.ok()) << r.status();
  reg_ = *std::move(r);
}

inline void SimDriver::Restart() {
  job_.reset();
  reg_.reset();
  Open();
}

inline void SimDriver::Step() {
  switch (work_->NextOp()) {
    case sim::Op::kNewReport:
      return SubmitNew();
    case sim::Op::kBatch:
      return SubmitBatch();
    case sim::Op::kResend:
      return Resend();
    case sim::Op::kConflicting:
      return ResendConflicting();
    case sim::Op::kUpdate:
      return UpdatePayment();
    case sim::Op::kCancel:
      return Cancel();
    case sim::Op::kOptOut:
      return Reserve();
    case sim::Op::kLookup:
      return Lookup();
    case sim::Op::kRun:
      return RunIssuance(/*interrupted=*/false, /*reports_between_chunks=*/false);
    case sim::Op::kRunWithChangesBetweenChunks:
      return RunIssuance(/*interrupted=*/false, /*reports_between_chunks=*/true);
    case sim::Op::kRunKilled:
      return RunIssuance(/*interrupted=*/true, /*reports_between_chunks=*/work_->rng().Chance(30));
    case sim::Op::kBurst:
      return Burst();
    case sim::Op::kRestart:
      op_ = "restart";
      recent_.push_back(absl::StrCat("step ", step_, ": restart"));
      coverage_.Add("restarts");
      Restart();
      return FullCheck();
    case sim::Op::kAgreement:
      return ChangeAgreement();
  }
}

// ---------------------------------------------------------------------------
// Operations

// Every change is sent without waiting (SubmitAsync and its kin) and checked
// in AwaitPending, so several changes sent back to back can share one group
// commit, as concurrent callers' do. The model applies them in sending order,
// which is the writer's order.
inline void SimDriver::Send(std::vector<CoPaymentInput> batch, absl::string_view what) {
  const absl::Time now = clock_.Now();
  auto p = std::make_shared<Pending>();
  for (const CoPaymentInput& in : batch) {
    const storage::ReportResult want = model_->Submit(in, now);
    work_->Sent(in);
    touched_.insert(in.person_id);
    Note(in.person_id, absl::StrCat(what, " ", Describe(in), " -> ", ShowResult(want)));
    coverage_.Add(absl::StrCat("report ", Show(want.outcome)));
    if (want.outcome == Outcome::kRejected) {
      coverage_.Add(absl::StrCat("reject ", Show(want.reason)));
    }
    p->items.push_back(
        {in.person_id, absl::StrCat(what, " ", in.provider_id, "/", in.report_id), want});
  }
  pending_.push_back(p);
  reg_->SubmitAsync(std::move(batch),
                    [p](absl::StatusOr<std::vector<storage::ReportResult>> r) mutable {
                      if (r.ok()) {
                        p->got = *std::move(r);
                      } else {
                        p->status = r.status();
                      }
                      p->done.Notify();
                    });
}

inline Register::ResultDone SimDriver::Expect(const std::string& person, std::string what,
                                              storage::ReportResult want) {
  auto p = std::make_shared<Pending>();
  p->items.push_back({person, std::move(what), std::move(want)});
  pending_.push_back(p);
  return [p](absl::StatusOr<storage::ReportResult> r) mutable {
    if (r.ok()) {
      p->got.push_back(*std::move(r));
    } else {
      p->status = r.status();
    }
    p->done.Notify();
  };
}

inline void SimDriver::AwaitPending() {
  for (const std::shared_ptr<Pending>& p : pending_) {
    p->done.WaitForNotification();
    for (size_t i = 0; i < p->items.size(); ++i) {
      const Pending::Item& item = p->items[i];
      if (!p->status.ok()) {
        Diff(item.person, absl::StrCat(item.what, ": failed: ", p->status.ToString()));
      } else if (p->got.size() != p->items.size()) {
        Diff(item.person, absl::StrCat(item.what, ": ", p->got.size(), " results for ",
                                       p->items.size(), " items"));
      } else if (item.reservation) {
        continue;
      } else {
        CheckResult(item.person, item.what, item.want, p->got[i]);
      }
    }
  }
  pending_.clear();
}

inline void SimDriver::SubmitNew() {
  op_ = "new report";
  Send({work_->NewReport(/*due_person=*/false)}, "report");
}

inline void SimDriver::SubmitBatch() {
  op_ = "batch of reports";
  Send(work_->Batch(), "batch item");
}

inline void SimDriver::Resend() {
  op_ = "exact re-send";
  std::optional<CoPaymentInput> in = work_->Resend();
  if (!in) return SubmitNew();
  Send({*std::move(in)}, "re-send");
}

inline void SimDriver::ResendConflicting() {
  op_ = "conflicting re-send";
  std::optional<CoPaymentInput> in = work_->Conflicting();
  if (!in) return SubmitNew();
  Send({*std::move(in)}, "conflicting re-send");
}

inline void SimDriver::UpdatePayment() {
  op_ = "payment update";
  const auto [provider, report_id, person] = work_->UpdateTarget();
  const int payment = work_->NewPayment();
  const storage::ReportResult want = model_->UpdatePayment(provider, report_id, payment);
  const std::string what =
      absl::StrCat("update ", provider, "/", report_id, " to ", Show(static_cast<Payment>(payment)),
                   " -> ", ShowResult(want));
  coverage_.Add(absl::StrCat("update ", Show(want.outcome)));
  recent_.push_back(absl::StrCat("step ", step_, ": ", what));
  if (!person.empty()) {
    Note(person, what);
    touched_.insert(person);
  }
  reg_->UpdatePaymentAsync(provider, report_id, payment, Expect(person, what, want));
}

inline void SimDriver::Cancel() {
  op_ = "cancellation";
  const auto [provider, report_id, person] = work_->CancelTarget();
  const storage::ReportResult want = model_->Cancel(provider, report_id);
  const std::string what =
      absl::StrCat("cancel ", provider, "/", report_id, " -> ", ShowResult(want));
  coverage_.Add(absl::StrCat("cancel ", Show(want.outcome)));
  recent_.push_back(absl::StrCat("step ", step_, ": ", what));
  if (!person.empty()) {
    Note(person, what);
    touched_.insert(person);
  }
  reg_->CancelAsync(provider, report_id, absl::StrCat("credit note ", step_),
                    Expect(person, what, want));
}

inline void SimDriver::Reserve() {
  op_ = "reservation";
  const auto [person, reserved] = work_->Reservation();
  model_->SetReservation(person, reserved);
  const std::string what = reserved ? "opts out (reserved)" : "withdraws the opt-out";
  coverage_.Add(reserved ? "reservations on" : "reservations off");
  recent_.push_back(absl::StrCat("step ", step_, ": ", Alias(person), " ", what));
  Note(person, what);
  touched_.insert(person);
  auto p = std::make_shared<Pending>();
  p->items.push_back({person, what, {}, /*reservation=*/true});
  pending_.push_back(p);
  reg_->SetReservationAsync(person, reserved, [p](absl::Status s) mutable {
    p->status = std::move(s);
    p->got.resize(1);
    p->done.Notify();
  });
}

// Holds the writer thread in the callback of a change that writes nothing
// (an update of a report that is not there) until the returned gate is
// opened: what is queued meanwhile is applied as one group commit.
inline std::shared_ptr<absl::Notification> SimDriver::HoldWriter() {
  auto gate = std::make_shared<absl::Notification>();
  reg_->UpdatePaymentAsync(
      work_->providers()[0], "gate", static_cast<int>(Payment::kPaid),
      [gate](absl::StatusOr<storage::ReportResult>) { gate->WaitForNotification(); });
  return gate;
}

// Changes sent back to back into one group commit, each reading the group's
// earlier writes.
inline void SimDriver::Burst() {
  const std::shared_ptr<absl::Notification> gate = HoldWriter();
  const int n = work_->BurstSize();
  for (int i = 0; i < n; ++i) SmallOp();
  gate->Notify();
  op_ = absl::StrCat("burst of ", n, " changes sent without waiting");
  recent_.push_back(absl::StrCat("step ", step_, ": ", op_));
  coverage_.Add("bursts");
}

inline void SimDriver::Lookup() {
  op_ = "lookup";
  const std::optional<sim::Lookup> query = work_->NewLookup();
  if (!query) return;
  const auto& [person, date, category] = *query;
  const auto want = model_->Exemption(person, date, category);
  auto got = reg_->CheckExemption(person, date, category, "sim");
  lookups_[person].push_back({clock_.Now(), "sim", date, category});
  std::vector<std::string> answers;
  for (const auto& x : want) answers.push_back(absl::StrCat(Show(x.scheme), " ", Show(x.status)));
  const std::string what = absl::StrCat("lookup on ", Show(date), " for ", Show(category), " -> ",
                                        absl::StrJoin(answers, ", "));
  coverage_.Add("lookups");
  Note(person, what);
  if (!got.ok()) {
    return Diff(person, absl::StrCat("CheckExemption failed: ", got.status().ToString()));
  }
  CheckExemption(person, what, want, *got);
}

// One issuance run through the real job, over a mock register that lets the
// model follow the job chunk by chunk: the model predicts each chunk (the
// next due ledgers after the job's cursor, in marker order), decides it, and
// may send changes between chunks or have the run killed before or after a
// chunk's write (then, half the time, the register restarts as after a crash).
inline void SimDriver::RunIssuance(bool interrupted, bool reports_between_chunks) {
  const sim::RunPlan plan = work_->Run(interrupted);
  const Day as_of = plan.as_of;
  const bool dry_run = plan.dry_run;
  const size_t chunk = plan.chunk;
  const int fault_call = plan.fault_call;
  const bool before_write = plan.before_write;
  op_ =
      absl::StrCat(dry_run ? "dry " : "", "issuance run as of ", Show(as_of), ", chunks of ", chunk,
                   interrupted ? absl::StrCat(", killed ", before_write ? "before" : "after",
                                              " the write of chunk ", fault_call)
                               : "",
                   reports_between_chunks ? ", reports between chunks" : "");
  recent_.push_back(absl::StrCat("step ", step_, ": ", op_));
  coverage_.Add(dry_run ? "runs dry" : "runs");

  RunSummary want;
  want.as_of = as_of;
  want.dry_run = dry_run;
  want.run_id = dry_run ? "dry-run" : model_->AllocateRunId();
  std::optional<sim::Workload::DueOrder> cursor;
  bool faulted = false;
  std::set<std::string> decided;
  std::vector<std::thread> release;
  // What the model expects each call to take, by call, and what it took
  // (recorded on the register's thread), compared once the run is over.
  std::map<int, std::vector<LedgerKey>> predicted;
  absl::Mutex taken_mu;
  std::map<int, std::vector<storage::DueLedger>> taken;
  const auto took = [&](int call, const std::vector<storage::LedgerOutcome>& outcomes) {
    absl::MutexLock l(&taken_mu);
    for (const storage::LedgerOutcome& o : outcomes) taken[call].push_back(o.ledger);
  };
  const auto before_chunk = [&](int call) {
    if (reports_between_chunks) {
      // What arrives now is in this run if its ledger sorts after the cursor,
      // else in the next one: the chunk queued next takes its markers only
      // after these changes. Changes not waited for share the chunk's group.
      if (const auto [n, same_group] = work_->ChangesBeforeChunk(); n > 0) {
        const std::string saved = op_;
        std::shared_ptr<absl::Notification> gate;
        if (same_group) gate = HoldWriter();
        for (int i = 0; i < n; ++i) SmallOp();
        op_ = saved;
        if (same_group) {
          // Opened once the job has queued this chunk's decision behind them
          // (a moment after this returns); the answers are checked after the run.
          release.emplace_back([gate] {
            absl::SleepFor(absl::Milliseconds(2));
            gate->Notify();
          });
        } else {
          AwaitPending();
        }
        coverage_.Add("changes between chunks", n);
      }
    }
    if (call == fault_call && before_write) return;
    std::vector<LedgerKey> chunk_keys;
    for (const LedgerKey& k : work_->SortedDue()) {
      if ((!cursor || work_->OrderOf(k) > *cursor) && chunk_keys.size() < chunk) {
        chunk_keys.push_back(k);
      }
    }
    predicted[call] = chunk_keys;
    if (!chunk_keys.empty()) cursor = work_->OrderOf(chunk_keys.back());
    want.ledgers_examined += static_cast<int64_t>(chunk_keys.size());
    for (const LedgerKey& k : chunk_keys) {
      const sim::ModelDecision d = model_->Decide(k, as_of, clock_.Today(), want.run_id, dry_run);
      if (d.skipped) continue;
      decided.insert(k.person);
      touched_.insert(k.person);
      std::string text =
          absl::StrCat(want.run_id, " as of ", Show(as_of), ": ", k.year, " ", Show(k.scheme));
      if (d.issue_card) {
        ++want.cards_issued;
        absl::StrAppend(&text, " card", d.past_deadline ? " (past deadline)" : "");
        if (d.past_deadline) ++want.cards_past_deadline;
      }
      if (d.payout > 0) {
        ++want.payouts;
        want.payout_total += d.payout;
        absl::StrAppend(&text, " payout ", Nok(d.payout));
      }
      if (d.carried > 0) absl::StrAppend(&text, " carried ", Nok(d.carried));
      if (!d.issue_card && d.payout == 0 && d.carried == 0) absl::StrAppend(&text, " waits");
      want.carried_forward += d.carried;
      Note(k.person, text);
    }
  };
  // Every chunk the job queues: the model follows it, then the real register
  // decides it, unless the run dies at it. A killed run queues no more.
  DelegatingRegister hooked(reg_.get());
  int calls = 0;
  EXPECT_CALL(hooked, DecideNextAsync)
      .WillRepeatedly([&](storage::RunInfo run, std::shared_ptr<storage::DueCursor> due_cursor,
                          size_t limit, Register::DecideFn decide, Register::DecideDone done) {
        const int call = calls++;
        if (faulted) {
          Diff("", absl::StrCat("the run queued chunk ", call, " after it was killed"));
          return std::move(done)(absl::UnavailableError("test: the run was killed"));
        }
        before_chunk(call);
        if (call == fault_call) {
          faulted = true;
          if (before_write) {
            return KilledBeforeWrite()(std::move(run), std::move(due_cursor), limit,
                                       std::move(decide), std::move(done));
          }
          return KilledAfterWrite(reg_.get(), [&took, call](const auto& r) { took(call, r); })(
              std::move(run), std::move(due_cursor), limit, std::move(decide), std::move(done));
        }
        reg_->DecideNextAsync(std::move(run), std::move(due_cursor), limit, std::move(decide),
                              [&took, call, done = std::move(done)](
                                  absl::StatusOr<std::vector<storage::LedgerOutcome>> r) mutable {
                                if (r.ok()) took(call, *r);
                                std::move(done)(std::move(r));
                              });
      });
  IssuanceJob job(&hooked, &clock_);
  job.set_chunk_size(chunk);
  absl::StatusOr<RunSummary> got = job.Run(as_of, dry_run);
  for (std::thread& t : release) t.join();
  AwaitPending();
  {
    absl::MutexLock l(&taken_mu);
    CheckChunks(predicted, taken);
  }

  if (faulted) {
    coverage_.Add("runs killed between chunks");
    if (got.ok() || got.status().code() != absl::StatusCode::kUnavailable) {
      Diff("", absl::StrCat("a run killed at a chunk answered ", got.status().ToString()));
    }
    // Either the process died (only what was written survives a restart) or
    // the storage failed for a moment; the next run finishes the work.
    if (work_->rng().Chance(50)) {
      op_ += ", restarted";
      Restart();
    }
    CheckPersons(decided);
    return FullCheck();
  }
  if (!got.ok()) return Diff("", absl::StrCat("the run failed: ", got.status().ToString()));
  for (const LedgerKey& k : work_->SortedDue()) {
    if (!cursor || work_->OrderOf(k) > *cursor) {
      Diff(k.person, absl::StrCat("the run ended while ", Alias(k.person), " ", k.year, " ",
                                  Show(k.scheme), " was due after its cursor"));
    }
  }
  coverage_.Add("cards issued", got->cards_issued);
  coverage_.Add("cards past deadline", got->cards_past_deadline);
  coverage_.Add("payouts", got->payouts);
  coverage_.Add("runs with excess carried", got->carried_forward > 0 ? 1 : 0);
  CheckRun(want, *got, decided);
}

// A report, a batch, an update, a cancellation or an opt-out, sent without
// waiting; half of the reports for a person with a due ledger.
inline void SimDriver::SmallOp() {
  switch (work_->NextSmallOp()) {
    case sim::SmallOp::kReport:
      return Send({work_->NewReport(/*due_person=*/true)}, "report");
    case sim::SmallOp::kBatch:
      return SubmitBatch();
    case sim::SmallOp::kUpdate:
      return UpdatePayment();
    case sim::SmallOp::kCancel:
      return Cancel();
    case sim::SmallOp::kOptOut:
      return Reserve();
  }
}

// ---------------------------------------------------------------------------
// The provider registry

inline void SimDriver::LoadRegistry() {
  for (auto& [id, periods] : work_->InitialRegistry()) PutProvider(id, std::move(periods));
}

inline void SimDriver::ChangeAgreement() {
  auto [id, periods] = work_->AgreementChange();
  coverage_.Add("agreement changes");
  PutProvider(id, std::move(periods));
}

// PutProvider waits for its re-evaluation, so nothing else is in flight.
inline void SimDriver::PutProvider(const std::string& id, std::vector<sim::Period> periods) {
  core::ProviderInput in;
  in.id = id;
  in.name = "Sim provider";
  std::vector<std::string> shown;
  for (const sim::Period& p : periods) {
    const std::string to = p.to ? absl::FormatCivilTime(*p.to) : "";
    in.agreements.push_back(
        {absl::FormatCivilTime(p.from), to, absl::StrCat(++agreement_version_)});
    shown.push_back(absl::StrCat(absl::FormatCivilTime(p.from), "..", to));
  }
  op_ = absl::StrCat("provider ", id, " agreements [", absl::StrJoin(shown, ", "), "]");
  recent_.push_back(absl::StrCat("step ", step_, ": ", op_));
  std::set<std::string> concerned;
  for (const auto& [key, s] : model_->reports()) {
    if (s.sent.provider_id == id || s.sent.practice_id == id) concerned.insert(s.sent.person_id);
  }
  for (const std::string& person : concerned) Note(person, op_);
  touched_.insert(concerned.begin(), concerned.end());
  const sim::Model::AgreementEffect want = model_->PutProvider(id, std::move(periods));
  coverage_.Add("entries flipped by agreements", want.entries_changed);
  coverage_.Add("cards put under review by agreements", want.cards_under_review);
  const absl::StatusOr<storage::ProviderChange> got = reg_->PutProvider(in);
  if (!got.ok()) return Diff("", absl::StrCat(op_, ": ", got.status().ToString()));
  Check("", absl::StrCat(op_, ": entries changed"), want.entries_changed, got->entries_changed);
  Check("", absl::StrCat(op_, ": ledgers changed"), want.ledgers_changed, got->ledgers_changed);
  Check("", absl::StrCat(op_, ": cards under review"), want.cards_under_review,
        got->cards_under_review);
}

}  // namespace frikort::jobs::testing

#endif  // FRIKORT_TESTS_JOBS_SIM_DRIVER_H_
