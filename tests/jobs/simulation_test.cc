// A seeded simulation of the register's life against the reference model of
// sim_model.h. Each seed draws a small population and a start date (mostly a
// few weeks before a New Year, so the year boundary, the change from two caps
// to one and the end of the refund minimum are crossed) and then a random
// history on a FakeClock: new reports (timely, late, for a past year, around
// midnight on 31 December Oslo time, just ahead of the clock, abroad,
// medicine attributed to the next year, from a municipal practice, invalid
// ones), batches, exact
// duplicates, conflicting re-sends, payment updates, cancellations, opt-outs,
// lookups, issuance runs (dry, repeated on one date, on past dates, with
// reports arriving between the job's chunks, killed between chunks) and
// restarts from the same folder, all under the rules file as shipped (from
// 2021 a co-payment counts only under an agreement on direct settlement):
// each seed starts with a provider registry and changes it mid-run (an
// agreement added after the fact, ended back, taken away). The real storage::Register and the real
// jobs::IssuanceJob answer; the model predicts. After every step the touched
// ledgers and the due markers are compared; every kFullCheckEvery steps and at
// the end, everything: every ledger, card, payout and lookup log, and
// Register::Verify.
//
//   FRIKORT_SIM_SEED=S    run seed S only (to replay a failure)
//   FRIKORT_SIM_SEEDS=N   run seeds 1..N (default kDefaultSeeds)
//   FRIKORT_SIM_STEPS=K   steps per seed (default kDefaultSimSteps)
//
// A mismatch stops its seed and prints the seed, the step, what differs, the
// history of the person concerned and the command line that replays it.
//
// The seed's workload is sim_workload.h, the model sim_model.h, the
// comparisons sim_checks.h and the operations sim_driver.h.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/jobs/job_fixture.h"
#include "tests/jobs/sim_driver.h"
#include "tests/jobs/sim_model.h"
#include "tests/jobs/sim_workload.h"
#include "tests/testing/rules_file.h"

namespace frikort::jobs::testing {
namespace {

constexpr int kDefaultSeeds = 12;
constexpr int kFullCheckEvery = 25;

// Where the rules file is: FRIKORT_SOURCE_DIR (ctest sets it), else the
// folder the test is started from, else the parent of the build folder, so
// `FRIKORT_SIM_SEED=7 build/simulation_test` works from the source folder.
void FindSourceDir() {
  if (std::getenv("FRIKORT_SOURCE_DIR") != nullptr) return;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const std::filesystem::path& dir :
       {std::filesystem::current_path(ec), exe.parent_path().parent_path()}) {
    if (std::filesystem::exists(dir / "deploy" / "rules.txt", ec)) {
      setenv("FRIKORT_SOURCE_DIR", dir.c_str(), 0);
      return;
    }
  }
}

// A positive whole number from the environment; nullopt when unset. A value
// that is set but not a positive number fails the test.
std::optional<int64_t> EnvInt(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n <= 0) {
    ADD_FAILURE() << name << "=" << v << ": expected a positive whole number";
    return std::nullopt;
  }
  return n;
}

class SimulationTest : public SimDriver {
 protected:
  void SetUp() override {
    FindSourceDir();
    JobTest::SetUp();
    // The other job tests leave the agreement requirement out; the
    // simulation runs the rules as shipped.
    job_.reset();
    reg_.reset();
    auto rules = frikort::testing::ReadRulesFile(
        absl::StrCat(std::getenv("FRIKORT_SOURCE_DIR"), "/deploy/rules.txt"));
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
  }

  // One seed from a fresh folder. Returns false on a mismatch (reported).
  bool RunSeed(uint64_t seed, int steps);
};

bool SimulationTest::RunSeed(uint64_t seed, int steps) {
  seed_ = seed;
  steps_ = steps;
  job_.reset();
  reg_.reset();
  std::filesystem::remove_all(dir_);
  model_ = std::make_unique<sim::Model>(&rules_);
  work_ = std::make_unique<sim::Workload>(seed, model_.get(), &clock_, kSecret);
  lookups_.clear();
  history_.clear();
  recent_.clear();
  diffs_.clear();
  diff_persons_.clear();
  pending_.clear();
  if (!work_->ok()) return false;
  clock_.Set(work_->Start());
  Open();
  if (reg_ == nullptr) return false;
  step_ = 0;
  op_ = "the seed's first provider registry";
  LoadRegistry();
  if (!diffs_.empty()) {
    ReportMismatch();
    return false;
  }

  for (step_ = 1; step_ <= steps_; ++step_) {
    clock_.Advance(work_->ClockStep());
    touched_.clear();
    Step();
    AwaitPending();
    if (diffs_.empty()) CheckPersons(touched_);
    if (diffs_.empty()) CheckDue();
    if (diffs_.empty() && step_ % kFullCheckEvery == 0) FullCheck();
    if (!diffs_.empty()) {
      ReportMismatch();
      return false;
    }
  }
  // The end: a restart, and everything once more.
  op_ = "final restart and full comparison";
  Restart();
  FullCheck();
  if (!diffs_.empty()) {
    ReportMismatch();
    return false;
  }
  return true;
}

TEST_F(SimulationTest, RandomHistoriesMatchTheModel) {
  const std::optional<int64_t> one = EnvInt("FRIKORT_SIM_SEED");
  const int64_t seeds = EnvInt("FRIKORT_SIM_SEEDS").value_or(kDefaultSeeds);
  const int64_t steps = EnvInt("FRIKORT_SIM_STEPS").value_or(kDefaultSimSteps);
  if (HasFailure()) return;
  std::vector<uint64_t> run;
  if (one) {
    run.push_back(static_cast<uint64_t>(*one));
  } else {
    for (int64_t s = 1; s <= seeds; ++s) run.push_back(static_cast<uint64_t>(s));
  }
  const absl::Time started = absl::Now();
  int failed = 0;
  for (uint64_t seed : run) {
    if (!RunSeed(seed, static_cast<int>(steps)) && ++failed == 3) {
      ADD_FAILURE() << "stopped after 3 failing seeds";
      break;
    }
  }
  std::printf("[ SIM      ] %zu seed(s) x %lld steps in %s: %s\n", run.size(),
              static_cast<long long>(steps), absl::FormatDuration(absl::Now() - started).c_str(),
              coverage_.Line().c_str());
}

}  // namespace
}  // namespace frikort::jobs::testing
