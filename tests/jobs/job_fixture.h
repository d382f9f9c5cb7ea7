// Shared fixture of the issuance job tests: a real Register in a temp folder
// with a FakeClock, the real IssuanceJob on it, and helpers to report
// co-payments and read cards, payouts and due markers back. Also a mock
// register over the real one (DelegatingRegister) through which a test acts
// between the job's chunks or makes a chunk's write fail, to simulate a run
// killed halfway.
#ifndef FRIKORT_TESTS_JOBS_JOB_FIXTURE_H_
#define FRIKORT_TESTS_JOBS_JOB_FIXTURE_H_

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/ledger.h"
#include "core/rules.h"
#include "core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jobs/issuance.h"
#include "storage/register.h"
#include "tests/testing/ids.h"
#include "tests/testing/mock_register.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::jobs::testing {

using core::Category;
using core::ExemptionStatus;
using core::Ore;
using core::Payment;
using core::Scheme;
using storage::Card;
using storage::Payout;
using storage::Register;

inline const std::string kSecret(32, 'k');
inline constexpr char kProvider[] = "1234567";

// A register that hands every call to a real one unless a test steers it
// with EXPECT_CALL/ON_CALL, mostly DecideNextAsync: to act between the job's
// chunks (an action that runs on the job's thread before the real call, and
// may call the real register's blocking methods) or to end a run at a chunk
// as a killed process would (KilledBeforeWrite, KilledAfterWrite).
using DelegatingRegister = ::testing::NiceMock<::frikort::testing::MockRegister>;

// A DecideNextAsync action: the chunk fails without writing, as in a process
// that died before the chunk's write.
inline auto KilledBeforeWrite() {
  return [](storage::RunInfo, std::shared_ptr<storage::DueCursor>, size_t, Register::DecideFn,
            Register::DecideDone done) {
    std::move(done)(absl::UnavailableError("test: killed before this chunk's write"));
  };
}

// A DecideNextAsync action: `real` decides and writes the chunk, then the call
// fails, as in a process that died after the write landed. `took` (if set) is
// told which ledgers the chunk took.
inline auto KilledAfterWrite(
    Register* real,
    std::function<void(const std::vector<storage::LedgerOutcome>&)> took = nullptr) {
  return [real, took = std::move(took)](storage::RunInfo run,
                                        std::shared_ptr<storage::DueCursor> cursor, size_t limit,
                                        Register::DecideFn decide, Register::DecideDone done) {
    auto r = real->DecideNext(std::move(run), std::move(cursor), limit, std::move(decide));
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok() && took) took(*r);
    std::move(done)(absl::UnavailableError("test: killed after this chunk's write"));
  };
}

class JobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    const char* src = std::getenv("FRIKORT_SOURCE_DIR");
    ASSERT_NE(src, nullptr) << "run through ctest (FRIKORT_SOURCE_DIR)";
    auto rules = frikort::testing::ReadRulesFileWithoutAgreementRequirement(
        absl::StrCat(src, "/deploy/rules.txt"));
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("frikort_jobs_", getpid(), "_", info->test_suite_name(), "_", info->name());
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    job_.reset();
    reg_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Closes the register (and the job on it) and opens it again from disk.
  void Reopen() {
    job_.reset();
    reg_.reset();
    storage::RegisterOptions o;
    o.data_dir = dir_.string();
    o.secret = kSecret;
    o.rules = &rules_;
    o.clock = &clock_;
    auto r = Register::Open(o);
    ASSERT_TRUE(r.ok()) << r.status();
    reg_ = *std::move(r);
    job_ = std::make_unique<IssuanceJob>(reg_.get(), &clock_);
  }

  static std::string Person(int n) { return ::frikort::testing::PersonN(n); }

  // One paid co-payment at noon Oslo time; fails the test unless it was
  // accepted and counted (the tests build ledgers only from reports that count).
  void Pay(const std::string& person, absl::CivilDay day, Ore amount,
           Category category = Category::kPhysician, std::string report_id = "") {
    if (report_id.empty()) report_id = absl::StrCat("r", next_report_++);
    auto r = reg_->Submit({Input(report_id, person, day, amount, category)});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ((*r)[0].outcome, core::Outcome::kAccepted) << (*r)[0].message;
    ASSERT_TRUE((*r)[0].counted);
  }
  core::CoPaymentInput Input(const std::string& report_id, const std::string& person,
                             absl::CivilDay day, Ore amount,
                             Category category = Category::kPhysician) {
    core::CoPaymentInput in;
    in.report_id = report_id;
    in.provider_id = kProvider;
    in.person_id = person;
    in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
    in.category = static_cast<int>(category);
    in.amount = amount;
    in.payment = static_cast<int>(Payment::kPaid);
    return in;
  }

  // A DecideNextAsync action: the real register's DecideNextAsync.
  auto RealDecide() { return ::testing::Invoke(reg_.get(), &Register::DecideNextAsync); }
  // `hooked`'s DecideNextAsync call number `call` (0-based) first runs `act`
  // on the job's thread; every call goes on to the real register.
  void BeforeChunk(DelegatingRegister& hooked, int call, std::function<void()> act) {
    ::testing::InSequence chunks;
    EXPECT_CALL(hooked, DecideNextAsync).Times(call);
    EXPECT_CALL(hooked, DecideNextAsync)
        .WillOnce(::testing::DoAll(::testing::InvokeWithoutArgs(std::move(act)), RealDecide()));
    EXPECT_CALL(hooked, DecideNextAsync).Times(::testing::AnyNumber());
  }
  // Every DecideNextAsync call of `hooked` from now on first runs `act`.
  void BeforeEveryChunk(DelegatingRegister& hooked, std::function<void()> act) {
    EXPECT_CALL(hooked, DecideNextAsync)
        .WillRepeatedly(
            ::testing::DoAll(::testing::InvokeWithoutArgs(std::move(act)), RealDecide()));
  }

  // A run on its decision date (as the scheduler runs), not backdated: the
  // clock shows noon of `as_of` while it runs. Backdated runs call
  // job_->Run themselves.
  RunSummary RunJob(absl::CivilDay as_of, bool dry_run = false) {
    const absl::Time now = clock_.Now();
    clock_.Set(core::OsloStartOfDay(as_of) + absl::Hours(12));
    auto s = job_->Run(as_of, dry_run);
    clock_.Set(now);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : RunSummary{};
  }

  // Every item of a paged listing, following page tokens to the end.
  template <typename T, typename Fetch>
  std::vector<T> AllPages(Fetch fetch) {
    std::vector<T> out;
    std::string token;
    for (int pages = 0; pages < 100000; ++pages) {
      absl::StatusOr<storage::Page<T>> p = fetch(token);
      EXPECT_TRUE(p.ok()) << p.status();
      if (!p.ok()) break;
      out.insert(out.end(), p->items.begin(), p->items.end());
      token = p->next_page_token;
      if (token.empty()) break;
    }
    return out;
  }
  std::vector<Card> Cards(int year, std::optional<absl::CivilDay> issued_on = std::nullopt,
                          int page_size = 0) {
    return AllPages<Card>([&](const std::string& token) {
      return reg_->ListFreeCards(year, issued_on, page_size, token);
    });
  }
  std::vector<Payout> Payouts(const std::string& run_id, int year, int page_size = 0) {
    return AllPages<Payout>([&](const std::string& token) {
      return reg_->ListPayouts(run_id, year, page_size, token);
    });
  }
  size_t DueCount() {
    auto d = reg_->ScanDue(std::nullopt, 1000000);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? d->size() : 0;
  }
  storage::SchemeLedger Ledger(const std::string& person, int year, Scheme scheme) {
    auto v = reg_->GetLedger(person, year);
    EXPECT_TRUE(v.ok()) << v.status();
    if (v.ok()) {
      for (const auto& s : v->schemes) {
        if (s.scheme == scheme) return s;
      }
    }
    ADD_FAILURE() << "no ledger for scheme " << static_cast<int>(scheme);
    return {};
  }
  storage::SchemeExemption Status(const std::string& person, absl::CivilDay day,
                                  Category category = Category::kPhysician) {
    auto x = reg_->CheckExemption(person, day, category, "test");
    EXPECT_TRUE(x.ok()) << x.status();
    if (!x.ok() || x->size() != 1) {
      ADD_FAILURE() << "expected one scheme's answer";
      return {};
    }
    return (*x)[0];
  }

  // The register's own invariant walk (totals, crossing dates, cards, refunds
  // never above the excess, due markers exactly where work is due).
  void ExpectConsistent() {
    auto v = reg_->Verify();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_THAT(v->violations, ::testing::IsEmpty());
  }

  core::RulesTable rules_;
  // Well after every service date the tests use, so no report is "in the future".
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2025, 3, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::filesystem::path dir_;
  std::unique_ptr<Register> reg_;
  std::unique_ptr<IssuanceJob> job_;
  int next_report_ = 1;
};

// Equality of everything a run's summary reports except its identity.
inline void ExpectSameCounts(const RunSummary& a, const RunSummary& b) {
  EXPECT_EQ(a.as_of, b.as_of);
  EXPECT_EQ(a.ledgers_examined, b.ledgers_examined);
  EXPECT_EQ(a.cards_issued, b.cards_issued);
  EXPECT_EQ(a.payouts, b.payouts);
  EXPECT_EQ(a.payout_total, b.payout_total);
  EXPECT_EQ(a.carried_forward, b.carried_forward);
  EXPECT_EQ(a.cards_past_deadline, b.cards_past_deadline);
}

}  // namespace frikort::jobs::testing

#endif  // FRIKORT_TESTS_JOBS_JOB_FIXTURE_H_
