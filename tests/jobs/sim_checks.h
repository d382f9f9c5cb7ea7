// The comparisons of the simulation test (simulation_test.cc): after a step,
// the touched ledgers and the due markers of the real register against the
// reference model (sim_model.h); every so often and at the end, everything:
// every ledger, card, payout and lookup log, and Register::Verify. Also the
// history each person's operations leave, and the mismatch report: the seed,
// the step, what differs, the history of the people concerned and the command
// line that replays it.
#ifndef FRIKORT_TESTS_JOBS_SIM_CHECKS_H_
#define FRIKORT_TESTS_JOBS_SIM_CHECKS_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "core/types.h"
#include "jobs/issuance.h"
#include "storage/register.h"
#include "tests/jobs/job_fixture.h"
#include "tests/jobs/sim_model.h"
#include "tests/jobs/sim_workload.h"

namespace frikort::jobs::sim {

// ---- how values are shown in histories and mismatch reports ----
inline std::string Show(int64_t v) { return absl::StrCat(v); }
inline std::string Show(bool v) { return v ? "true" : "false"; }
inline std::string Show(const std::string& v) { return absl::StrCat("\"", v, "\""); }
inline std::string Show(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S %z", t, Oslo());
}
inline std::string Show(absl::CivilDay d) { return absl::FormatCivilTime(d); }
inline std::string Show(const std::optional<absl::CivilDay>& d) { return d ? Show(*d) : "none"; }
inline std::string Show(Scheme s) { return std::string(core::SchemeName(s)); }
inline std::string Show(Category c) { return std::string(core::CategoryName(c)); }
inline std::string Show(Payment p) { return std::string(core::PaymentName(p)); }
inline std::string Show(RejectReason r) { return std::string(core::RejectReasonName(r)); }
inline std::string Show(Outcome o) {
  static const char* const kNames[] = {"UNSPECIFIED", "ACCEPTED", "DUPLICATE", "REJECTED"};
  const int i = static_cast<int>(o);
  return i >= 0 && i < 4 ? kNames[i] : "UNKNOWN";
}
inline std::string Show(core::ExemptionStatus s) {
  static const char* const kNames[] = {"UNSPECIFIED", "NOT_EXEMPT", "EXEMPT", "CAP_REACHED"};
  const int i = static_cast<int>(s);
  return i >= 0 && i < 4 ? kNames[i] : "UNKNOWN";
}
// "ACCEPTED counted 2024 TAK", "REJECTED PERSON_RESERVED".
inline std::string ShowResult(const storage::ReportResult& r) {
  if (r.outcome == Outcome::kRejected) return absl::StrCat("REJECTED ", Show(r.reason));
  return absl::StrCat(Show(r.outcome), r.counted ? " counted " : " not counted ", r.year, " ",
                      Show(r.scheme));
}
inline std::string Nok(Ore ore) {
  return absl::StrFormat("%s%d.%02d NOK", ore < 0 ? "-" : "", std::abs(ore) / 100,
                         std::abs(ore) % 100);
}

}  // namespace frikort::jobs::sim

namespace frikort::jobs::testing {

using core::Outcome;
using sim::Nok;
using sim::Show;
using sim::ShowResult;

// Steps per seed unless FRIKORT_SIM_STEPS says otherwise.
inline constexpr int kDefaultSimSteps = 300;

// The simulation's fixture, less the operations: one seed's model, workload
// and history, and the comparisons of the register with the model. A
// mismatch is collected with Diff (the first kMaxDiffsShown are shown) and
// reported once per step by ReportMismatch.
class SimChecks : public JobTest {
 protected:
  using Day = absl::CivilDay;
  using LedgerKey = sim::LedgerKey;
  static constexpr size_t kMaxDiffsShown = 40;

  // ---- comparison ----
  void Diff(const std::string& person, std::string text);
  template <typename T>
  void Check(const std::string& person, absl::string_view what, const T& want, const T& got) {
    if (!(want == got)) {
      Diff(person, absl::StrCat(what, ": model ", Show(want), ", register ", Show(got)));
    }
  }
  void CheckResult(const std::string& person, absl::string_view what,
                   const storage::ReportResult& want, const storage::ReportResult& got);
  // A lookup's answer, scheme by scheme.
  void CheckExemption(const std::string& person, absl::string_view what,
                      const std::vector<storage::SchemeExemption>& want,
                      const std::vector<storage::SchemeExemption>& got);
  void CheckLedger(const std::string& person, int year);
  void CheckPersons(const std::set<std::string>& persons);
  void CheckDue();
  void CheckPayouts(const std::string& run_id, int year);
  void CheckCards(int year);
  void CheckLookups(const std::string& person);
  // What each DecideNextAsync call of a run took (by call) against what the
  // model predicted it would take.
  void CheckChunks(const std::map<int, std::vector<LedgerKey>>& predicted,
                   const std::map<int, std::vector<storage::DueLedger>>& taken);
  // A run's summary, and the cards and payouts it left.
  void CheckRun(const RunSummary& want, const RunSummary& got,
                const std::set<std::string>& decided);
  void FullCheck();
  std::string Replay() const;
  void ReportMismatch();

  // ---- history ----
  void Note(const std::string& person, const std::string& text);
  std::string Alias(const std::string& person) const;
  std::string Describe(const core::CoPaymentInput& in) const;

  uint64_t seed_ = 0;
  int steps_ = 0;
  int step_ = 0;
  std::string op_;  // the current step's operation
  std::unique_ptr<sim::Model> model_;
  std::unique_ptr<sim::Workload> work_;
  std::map<std::string, std::vector<storage::LookupRecord>> lookups_;  // oldest first
  std::map<std::string, std::vector<std::string>> history_;
  std::vector<std::string> recent_;
  std::vector<std::string> diffs_;
  std::set<std::string> diff_persons_;
};

inline void SimChecks::Diff(const std::string& person, std::string text) {
  if (!person.empty()) diff_persons_.insert(person);
  if (diffs_.size() < kMaxDiffsShown) {
    diffs_.push_back(person.empty() ? std::move(text)
                                    : absl::StrCat(Alias(person), ": ", std::move(text)));
  }
}

inline void SimChecks::CheckResult(const std::string& person, absl::string_view what,
                                   const storage::ReportResult& want,
                                   const storage::ReportResult& got) {
  Check(person, absl::StrCat(what, " report_id"), want.report_id, got.report_id);
  Check(person, absl::StrCat(what, " outcome"), want.outcome, got.outcome);
  Check(person, absl::StrCat(what, " reason"), want.reason, got.reason);
  Check(person, absl::StrCat(what, " counted"), want.counted, got.counted);
  if (want.outcome != Outcome::kRejected) {
    Check(person, absl::StrCat(what, " year"), int64_t{want.year}, int64_t{got.year});
    Check(person, absl::StrCat(what, " scheme"), want.scheme, got.scheme);
  }
}

inline void SimChecks::CheckExemption(const std::string& person, absl::string_view what,
                                      const std::vector<storage::SchemeExemption>& want,
                                      const std::vector<storage::SchemeExemption>& got) {
  if (got.size() != want.size()) {
    return Diff(person, absl::StrCat(what, ": the register answered ", got.size(), " schemes"));
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string where = absl::StrCat(what, ": ", Show(want[i].scheme));
    Check(person, absl::StrCat(where, " scheme"), want[i].scheme, got[i].scheme);
    Check(person, absl::StrCat(where, " status"), want[i].status, got[i].status);
    Check(person, absl::StrCat(where, " valid_from"), want[i].valid_from, got[i].valid_from);
    Check(person, absl::StrCat(where, " valid_to"), want[i].valid_to, got[i].valid_to);
  }
}

inline void SimChecks::CheckLedger(const std::string& person, int year) {
  const storage::LedgerView want = model_->Ledger(person, year);
  auto got = reg_->GetLedger(person, year);
  const std::string at = absl::StrCat("ledger ", year);
  if (!got.ok()) {
    return Diff(person, absl::StrCat(at, ": GetLedger failed: ", got.status().ToString()));
  }
  Check(person, absl::StrCat(at, " person_id"), want.person_id, got->person_id);
  Check(person, absl::StrCat(at, " reserved"), want.reserved, got->reserved);
  if (got->schemes.size() != want.schemes.size()) {
    return Diff(person, absl::StrCat(at, ": ", got->schemes.size(), " schemes"));
  }
  for (size_t i = 0; i < want.schemes.size(); ++i) {
    const storage::SchemeLedger& w = want.schemes[i];
    const storage::SchemeLedger& g = got->schemes[i];
    const std::string s = absl::StrCat(at, " ", Show(w.scheme));
    Check(person, absl::StrCat(s, " scheme"), w.scheme, g.scheme);
    Check(person, absl::StrCat(s, " cap"), w.cap, g.cap);
    Check(person, absl::StrCat(s, " counted_total"), w.counted_total, g.counted_total);
    Check(person, absl::StrCat(s, " cap_reached_on"), w.cap_reached_on, g.cap_reached_on);
    Check(person, absl::StrCat(s, " refunded"), w.refunded, g.refunded);
    Check(person, absl::StrCat(s, " outstanding"), w.outstanding, g.outstanding);
    Check(person, absl::StrCat(s, " has card"), w.card.has_value(), g.card.has_value());
    if (w.card && g.card) {
      Check(person, absl::StrCat(s, " card person_id"), w.card->person_id, g.card->person_id);
      Check(person, absl::StrCat(s, " card valid_from"), w.card->valid_from, g.card->valid_from);
      Check(person, absl::StrCat(s, " card valid_to"), w.card->valid_to, g.card->valid_to);
      Check(person, absl::StrCat(s, " card issued_on"), w.card->issued_on, g.card->issued_on);
      Check(person, absl::StrCat(s, " card basis_total"), w.card->basis_total, g.card->basis_total);
      Check(person, absl::StrCat(s, " card under_review"), w.card->under_review,
            g.card->under_review);
    }
  }
  // Entries: in service-time order; ties compared in (provider, report id) order.
  std::vector<storage::Entry> entries = got->entries;
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].service_time < entries[i - 1].service_time) {
      Diff(person, absl::StrCat(at, ": entries not in service-time order at ", i));
    }
  }
  const auto by_key = [](const storage::Entry& a, const storage::Entry& b) {
    return std::tie(a.service_time, a.provider_id, a.report_id) <
           std::tie(b.service_time, b.provider_id, b.report_id);
  };
  std::vector<storage::Entry> expected = want.entries;
  std::sort(entries.begin(), entries.end(), by_key);
  std::sort(expected.begin(), expected.end(), by_key);
  if (entries.size() != expected.size()) {
    return Diff(person, absl::StrCat(at, ": model has ", expected.size(), " entries, register ",
                                     entries.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const storage::Entry& w = expected[i];
    const storage::Entry& g = entries[i];
    const std::string e = absl::StrCat(at, " entry ", w.provider_id, "/", w.report_id);
    Check(person, absl::StrCat(e, " provider_id"), w.provider_id, g.provider_id);
    Check(person, absl::StrCat(e, " report_id"), w.report_id, g.report_id);
    Check(person, absl::StrCat(e, " service_time"), w.service_time, g.service_time);
    Check(person, absl::StrCat(e, " category"), w.category, g.category);
    Check(person, absl::StrCat(e, " scheme"), w.scheme, g.scheme);
    Check(person, absl::StrCat(e, " amount"), w.amount, g.amount);
    Check(person, absl::StrCat(e, " payment"), w.payment, g.payment);
    Check(person, absl::StrCat(e, " counted"), w.counted, g.counted);
    Check(person, absl::StrCat(e, " practice_id"), w.practice_id, g.practice_id);
    Check(person, absl::StrCat(e, " not counted for lack of an agreement"),
          w.not_counted_reason == core::NotCountedReason::kNoDirectSettlement,
          g.not_counted_reason == core::NotCountedReason::kNoDirectSettlement);
    Check(person, absl::StrCat(e, " cancelled"), w.cancelled, g.cancelled);
    Check(person, absl::StrCat(e, " received_time"), w.received_time, g.received_time);
    Check(person, absl::StrCat(e, " late"), w.late, g.late);
    Check(person, absl::StrCat(e, " performed_abroad"), w.performed_abroad, g.performed_abroad);
  }
}

// Every year with rules the person has entries in, plus today's.
inline void SimChecks::CheckPersons(const std::set<std::string>& persons) {
  for (const std::string& p : persons) {
    std::set<int> years = model_->YearsOf(p);
    years.insert(static_cast<int>(clock_.Today().year()));
    for (int year : years) {
      if (model_->HasRules(year)) CheckLedger(p, year);
    }
  }
}

// The due markers are exactly the ledgers the model says need the job.
inline void SimChecks::CheckDue() {
  auto got = reg_->ScanDue(std::nullopt, 1000000);
  if (!got.ok()) return Diff("", absl::StrCat("ScanDue failed: ", got.status().ToString()));
  std::set<sim::Workload::DueOrder> markers;
  for (const storage::DueLedger& d : *got) {
    markers.insert({d.year, d.pseudonym, static_cast<int>(d.scheme)});
  }
  for (const LedgerKey& k : work_->SortedDue()) {
    if (markers.erase(work_->OrderOf(k)) == 0) {
      Diff(k.person, absl::StrCat(k.year, " ", Show(k.scheme),
                                  ": the model has work due, the register no due marker"));
    }
  }
  for (const auto& [year, pseudonym, scheme] : markers) {
    std::string person;
    for (const auto& [p, ps] : work_->pseudonyms()) {
      if (ps == pseudonym) person = p;
    }
    Diff(person, absl::StrCat(year, " ", Show(static_cast<Scheme>(scheme)),
                              ": due marker where the model has no work due"));
  }
}

inline void SimChecks::CheckPayouts(const std::string& run_id, int year) {
  const auto key = [](const Payout& p) {
    return std::make_tuple(p.run_id, p.year, p.person_id, p.scheme, p.amount, p.created_on);
  };
  std::vector<Payout> want = model_->Payouts(run_id, year);
  std::vector<Payout> got = Payouts(run_id, year, static_cast<int>(work_->rng().Uniform(1, 7)));
  std::sort(want.begin(), want.end(),
            [&](const Payout& a, const Payout& b) { return key(a) < key(b); });
  std::sort(got.begin(), got.end(),
            [&](const Payout& a, const Payout& b) { return key(a) < key(b); });
  const auto show = [](const std::vector<Payout>& v) {
    return absl::StrJoin(v, "; ", [](std::string* out, const Payout& p) {
      absl::StrAppend(out, p.person_id, " ", p.year, " ", Show(p.scheme), " ", Nok(p.amount), " ",
                      p.run_id, " ", Show(p.created_on));
    });
  };
  if (want.size() != got.size() ||
      !std::equal(want.begin(), want.end(), got.begin(),
                  [&](const Payout& a, const Payout& b) { return key(a) == key(b); })) {
    Diff(want.empty() ? (got.empty() ? "" : got[0].person_id) : want[0].person_id,
         absl::StrCat("payouts of run ", run_id.empty() ? "(any)" : run_id, ", year ", year,
                      ": model [", show(want), "], register [", show(got), "]"));
  }
}

inline void SimChecks::CheckCards(int year) {
  const auto key = [](const Card& c) {
    return std::make_tuple(c.person_id, c.scheme, c.year, c.valid_from, c.valid_to, c.issued_on,
                           c.basis_total, c.under_review);
  };
  const auto by_key = [&](const Card& a, const Card& b) { return key(a) < key(b); };
  std::vector<Card> want = model_->Cards(year);
  std::vector<Card> got = Cards(year, std::nullopt, static_cast<int>(work_->rng().Uniform(1, 7)));
  for (size_t i = 1; i < got.size(); ++i) {
    if (got[i].issued_on < got[i - 1].issued_on) {
      Diff(got[i].person_id, absl::StrCat("cards of ", year, " not listed by issue date"));
    }
  }
  std::set<Day> issue_dates;
  for (const Card& c : want) issue_dates.insert(c.issued_on);
  std::sort(want.begin(), want.end(), by_key);
  std::sort(got.begin(), got.end(), by_key);
  const auto show = [](const std::vector<Card>& v) {
    return absl::StrJoin(v, "; ", [](std::string* out, const Card& c) {
      absl::StrAppend(out, c.person_id, " ", Show(c.scheme), " ", Show(c.valid_from), "..",
                      Show(c.valid_to), " issued ", Show(c.issued_on), " basis ",
                      Nok(c.basis_total), c.under_review ? " under review" : "");
    });
  };
  if (want.size() != got.size() ||
      !std::equal(want.begin(), want.end(), got.begin(),
                  [&](const Card& a, const Card& b) { return key(a) == key(b); })) {
    Diff(want.empty() ? (got.empty() ? "" : got[0].person_id) : want[0].person_id,
         absl::StrCat("cards of ", year, ": model [", show(want), "], register [", show(got), "]"));
  }
  // The issue-date filter lists exactly that day's cards.
  for (Day day : issue_dates) {
    const size_t expected =
        std::count_if(want.begin(), want.end(), [&](const Card& c) { return c.issued_on == day; });
    const size_t listed = Cards(year, day, static_cast<int>(work_->rng().Uniform(1, 4))).size();
    if (listed != expected) {
      Diff("", absl::StrCat("cards of ", year, " issued on ", Show(day), ": model ", expected,
                            ", register lists ", listed));
    }
  }
}

inline void SimChecks::CheckLookups(const std::string& person) {
  std::vector<storage::LookupRecord> want = lookups_[person];
  std::reverse(want.begin(), want.end());  // newest first
  const std::vector<storage::LookupRecord> got =
      AllPages<storage::LookupRecord>([&](const std::string& token) {
        return reg_->ListLookups(person, static_cast<int>(work_->rng().Uniform(1, 5)), token);
      });
  if (got.size() != want.size()) {
    return Diff(person,
                absl::StrCat("lookup log: model ", want.size(), " lookups, register ", got.size()));
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const std::string at = absl::StrCat("lookup log [", i, "]");
    Check(person, absl::StrCat(at, " time"), want[i].time, got[i].time);
    Check(person, absl::StrCat(at, " caller"), want[i].caller, got[i].caller);
    Check(person, absl::StrCat(at, " date"), want[i].date, got[i].date);
    Check(person, absl::StrCat(at, " category"), want[i].category, got[i].category);
  }
}

inline void SimChecks::CheckChunks(const std::map<int, std::vector<LedgerKey>>& predicted,
                                   const std::map<int, std::vector<storage::DueLedger>>& taken) {
  for (const auto& [call, chunk_keys] : predicted) {
    static const std::vector<storage::DueLedger> kNothing;
    auto it = taken.find(call);
    const std::vector<storage::DueLedger>& took = it == taken.end() ? kNothing : it->second;
    std::vector<std::string> want_names, got_names;
    bool same = took.size() == chunk_keys.size();
    for (size_t i = 0; i < chunk_keys.size(); ++i) {
      const LedgerKey& k = chunk_keys[i];
      want_names.push_back(absl::StrCat(Alias(k.person), " ", k.year, " ", Show(k.scheme)));
      same = same && i < took.size() && took[i].year == k.year &&
             took[i].pseudonym == work_->pseudonyms().at(k.person) && took[i].scheme == k.scheme;
    }
    for (const storage::DueLedger& d : took) {
      std::string who = "unknown person";
      for (const auto& [p, pseudonym] : work_->pseudonyms()) {
        if (pseudonym == d.pseudonym) who = Alias(p);
      }
      got_names.push_back(absl::StrCat(who, " ", d.year, " ", Show(d.scheme)));
    }
    if (!same) {
      Diff(chunk_keys.empty() ? "" : chunk_keys[0].person,
           absl::StrCat("chunk ", call, " of the run: model expects [",
                        absl::StrJoin(want_names, "; "), "], the job took [",
                        absl::StrJoin(got_names, "; "), "]"));
    }
  }
}

inline void SimChecks::CheckRun(const RunSummary& want, const RunSummary& got,
                                const std::set<std::string>& decided) {
  Check("", "run_id", want.run_id, got.run_id);
  Check("", "as_of", want.as_of, got.as_of);
  Check("", "dry_run", want.dry_run, got.dry_run);
  Check("", "ledgers_examined", want.ledgers_examined, got.ledgers_examined);
  Check("", "cards_issued", want.cards_issued, got.cards_issued);
  Check("", "payouts", want.payouts, got.payouts);
  Check("", "payout_total", want.payout_total, got.payout_total);
  Check("", "carried_forward", want.carried_forward, got.carried_forward);
  Check("", "cards_past_deadline", want.cards_past_deadline, got.cards_past_deadline);
  // A summary that differs: the histories of the people the run decided for.
  if (!diffs_.empty()) diff_persons_.insert(decided.begin(), decided.end());
  for (int year : work_->Years()) {
    if (!want.dry_run) CheckPayouts(want.run_id, year);
    CheckCards(year);
  }
  if (!want.dry_run) CheckPayouts(want.run_id, 0);
}

inline void SimChecks::FullCheck() {
  const std::set<int> years = work_->Years();
  for (const std::string& p : work_->persons()) {
    for (int year : years) CheckLedger(p, year);
    CheckLookups(p);
  }
  for (int year : years) {
    CheckCards(year);
    CheckPayouts("", year);
  }
  CheckDue();
  auto v = reg_->Verify();
  if (!v.ok()) return Diff("", absl::StrCat("Verify failed: ", v.status().ToString()));
  for (const std::string& violation : v->violations) Diff("", absl::StrCat("Verify: ", violation));
}

inline std::string SimChecks::Replay() const {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) exe = "build/simulation_test";
  return absl::StrCat("FRIKORT_SIM_SEED=", seed_,
                      steps_ != kDefaultSimSteps ? absl::StrCat(" FRIKORT_SIM_STEPS=", steps_) : "",
                      " FRIKORT_SOURCE_DIR=", std::getenv("FRIKORT_SOURCE_DIR"), " ", exe.string());
}

inline void SimChecks::ReportMismatch() {
  std::string m = absl::StrCat("simulation seed ", seed_, ", step ", step_, " of ", steps_, " (",
                               Show(clock_.Now()), "): the register and the model disagree\n",
                               "  operation: ", op_, "\n");
  for (const std::string& d : diffs_) absl::StrAppend(&m, "  - ", d, "\n");
  for (const std::string& p : diff_persons_) {
    absl::StrAppend(&m, "history of ", Alias(p), " (", p, "):\n");
    for (const std::string& line : history_[p]) absl::StrAppend(&m, "  ", line, "\n");
  }
  absl::StrAppend(&m, "last runs, restarts and updates:\n");
  const size_t from = recent_.size() > 15 ? recent_.size() - 15 : 0;
  for (size_t i = from; i < recent_.size(); ++i) absl::StrAppend(&m, "  ", recent_[i], "\n");
  absl::StrAppend(&m, "replay: ", Replay());
  ADD_FAILURE() << m;
}

inline void SimChecks::Note(const std::string& person, const std::string& text) {
  history_[person].push_back(
      absl::StrCat("step ", step_, " [", Show(clock_.Now()).substr(0, 19), "] ", text));
}

inline std::string SimChecks::Alias(const std::string& person) const {
  for (size_t i = 0; i < work_->persons().size(); ++i) {
    if (work_->persons()[i] == person) return absl::StrCat("P", i);
  }
  return person;
}

inline std::string SimChecks::Describe(const core::CoPaymentInput& in) const {
  return absl::StrCat(in.provider_id, "/", in.report_id, " ", Alias(in.person_id), " ",
                      Show(static_cast<Category>(in.category)), " ", Nok(in.amount), " ",
                      Show(static_cast<Payment>(in.payment)), " at ",
                      in.service_time ? Show(*in.service_time) : "(no time)",
                      in.performed_abroad ? " abroad" : "",
                      in.attributed_year != 0 ? absl::StrCat(" for ", in.attributed_year) : "");
}

}  // namespace frikort::jobs::testing

#endif  // FRIKORT_TESTS_JOBS_SIM_CHECKS_H_
