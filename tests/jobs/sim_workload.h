// The seeded workload of the simulation test (simulation_test.cc): from one
// seed, a small population and a start date, how far the clock moves, which
// operation comes next and everything each operation is made of (new reports
// timely, late, for a past year, around midnight on 31 December Oslo time,
// just ahead of the clock, abroad, medicine attributed to the next year,
// invalid ones; batches, exact duplicates, conflicting re-sends, payment
// updates, cancellations, opt-outs, lookups, issuance runs, changes to the
// providers' agreements on direct settlement). It reads the
// reference model (sim_model.h) to aim at the edges of the ledgers, and
// draws every random number of a seed, in a fixed order, so a seed replays
// the same history on any toolchain.
#ifndef FRIKORT_TESTS_JOBS_SIM_WORKLOAD_H_
#define FRIKORT_TESTS_JOBS_SIM_WORKLOAD_H_

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/copayment.h"
#include "core/types.h"
#include "gtest/gtest.h"
#include "storage/crypto.h"
#include "tests/jobs/sim_model.h"
#include "tests/testing/ids.h"

namespace frikort::jobs::sim {

// Randomness that replays on any toolchain: mt19937_64's sequence is fixed by
// the standard, the library's distributions are not.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  int64_t Uniform(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(gen_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(int percent) { return Uniform(0, 99) < percent; }
  // An index drawn with the given weights.
  int Weighted(std::initializer_list<int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int64_t x = Uniform(0, total - 1);
    int i = 0;
    for (int w : weights) {
      if (x < w) return i;
      x -= w;
      ++i;
    }
    return i - 1;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(0, static_cast<int64_t>(v.size()) - 1)];
  }
  absl::Duration Seconds(int64_t lo, int64_t hi) { return absl::Seconds(Uniform(lo, hi)); }

 private:
  std::mt19937_64 gen_;
};

// The operations of a step, in the order of their weights in NextOp.
enum class Op {
  kNewReport,
  kBatch,
  kResend,
  kConflicting,
  kUpdate,
  kCancel,
  kOptOut,
  kLookup,
  kRun,
  kRunWithChangesBetweenChunks,
  kRunKilled,
  kBurst,
  kRestart,
  kAgreement
};
// The changes sent without waiting in a burst or between a run's chunks.
enum class SmallOp { kReport, kBatch, kUpdate, kCancel, kOptOut };

// A stored report (or an unknown one) that an update or a cancellation names.
struct ReportRef {
  std::string provider;
  std::string report_id;
  std::string person;  // "" for a report the model does not hold
};

struct Lookup {
  std::string person;
  absl::CivilDay date;
  Category category = Category::kUnspecified;
};

// One issuance run: its date, chunk size and, for a run killed between
// chunks, the call of the chunk it dies at, before or after that chunk's write.
struct RunPlan {
  absl::CivilDay as_of;
  bool dry_run = false;
  size_t chunk = 1;
  int fault_call = -1;  // -1: not killed
  bool before_write = false;
};

class Workload {
 public:
  // Due markers sort by year, pseudonym, scheme: the order the job walks.
  using DueOrder = std::tuple<int, std::string, int>;

  // A few people, so their ledgers fill up and cross their caps (few: deep
  // ledgers; more: many due markers and chunks); one of them a D-number.
  Workload(uint64_t seed, const Model* model, const core::Clock* clock, const std::string& secret)
      : rng_(seed), model_(model), clock_(clock) {
    const int people = static_cast<int>(rng_.Uniform(1, 9));
    for (int i = 0; i < people; ++i) {
      persons_.push_back(::frikort::testing::PersonN(static_cast<int>(seed % 1000) * 8 + i));
    }
    persons_.push_back(::frikort::testing::MakePersonId(17, 5, 71, static_cast<int>(seed % 50),
                                                        /*d_number=*/true));
    const auto crypto = storage::Crypto::Create(secret);
    EXPECT_TRUE(crypto.ok());
    if (crypto.ok()) {
      for (const std::string& p : persons_) pseudonyms_[p] = crypto->Pseudonym(p);
    }
    // An HPR number, a short one and an organisation number; the short one
    // treats patients at a municipal practice, which reports under the
    // municipality's agreement.
    providers_ = {"1234567", "4711", ::frikort::testing::MakeOrgNumber(91234560)};
    practice_ = ::frikort::testing::MakeOrgNumber(97654320);
  }

  bool ok() const { return pseudonyms_.size() == persons_.size(); }
  Rng& rng() { return rng_; }
  const std::vector<std::string>& persons() const { return persons_; }
  const std::map<std::string, std::string>& pseudonyms() const { return pseudonyms_; }
  const std::vector<std::string>& providers() const { return providers_; }

  // The registry a seed starts with: each provider and the practice either
  // holds an agreement from the rules' first day on, or none (reported on
  // all the same; in a year that requires one, it does not count).
  std::vector<std::pair<std::string, std::vector<Period>>> InitialRegistry() {
    std::vector<std::pair<std::string, std::vector<Period>>> out;
    std::vector<std::string> ids = providers_;
    ids.push_back(practice_);
    for (const std::string& id : ids) {
      std::vector<Period> periods;
      if (rng_.Chance(60)) periods.push_back({absl::CivilDay(model_->FirstYear(), 1, 1), {}});
      out.emplace_back(id, std::move(periods));
    }
    return out;
  }
  // A change to the agreements of a provider or of the practice: an open
  // agreement ended back to a day already reported on, all agreements taken
  // away, or one added from a day in the past (after the fact), now and then
  // with an end.
  std::pair<std::string, std::vector<Period>> AgreementChange() {
    std::vector<std::string> ids = providers_;
    ids.push_back(practice_);
    const std::string id = rng_.Pick(ids);
    std::vector<Period> periods = model_->agreements().Of(id);
    const absl::CivilDay today = clock_->Today();
    const absl::CivilDay first(model_->FirstYear(), 1, 1);
    const absl::CivilDay last(model_->LastYear(), 12, 31);
    auto within = [&](absl::CivilDay d) { return std::clamp(d, first, last); };
    if (!periods.empty() && !periods.back().to) {
      Period& p = periods.back();
      p.to = within(p.from + rng_.Uniform(0, std::max<int64_t>(0, today - p.from)));
    } else if (!periods.empty() && rng_.Chance(30)) {
      periods.clear();
    } else {
      absl::CivilDay from = within(today - rng_.Uniform(0, 500));
      if (!periods.empty() && from <= *periods.back().to) {
        if (*periods.back().to >= last) periods.clear();
        if (!periods.empty()) from = *periods.back().to + 1;
      }
      std::optional<absl::CivilDay> to;
      if (rng_.Chance(25)) to = within(from + rng_.Uniform(0, 200));
      periods.push_back({from, to});
    }
    return {id, std::move(periods)};
  }

  // Mostly a few weeks before a New Year, else anywhere the rules cover.
  absl::Time Start() {
    if (rng_.Chance(70)) {
      const int year = static_cast<int>(rng_.Uniform(2011, 2026));
      return OsloMidnight(absl::CivilDay(year, 1, 1)) - rng_.Seconds(3 * 86400, 40 * 86400);
    }
    return OsloMidnight(absl::CivilDay(2010, 2, 1)) + rng_.Seconds(0, 16 * 365 * 86400);
  }

  absl::Duration ClockStep() {
    switch (rng_.Weighted({70, 25, 4, 1, 2})) {
      case 0:
        return rng_.Seconds(1, 20 * 60);
      case 1:
        return rng_.Seconds(20 * 60, 6 * 3600);
      case 2:
        return rng_.Seconds(6 * 3600, 2 * 86400);
      case 3:
        return rng_.Seconds(2 * 86400, 10 * 86400);
      default: {
        // To a few minutes before the next Oslo midnight, so that reports just
        // ahead of the clock (and runs and lookups) fall on the next day or year.
        const absl::Time midnight = OsloMidnight(clock_->Today() + 1);
        return std::max(absl::Seconds(1), midnight - clock_->Now() - rng_.Seconds(1, 600));
      }
    }
  }

  // Reports dominate; runs come often enough that cards are issued and
  // refunds paid while reports, corrections and late reports keep coming.
  // Restarts are rarer: reopening RocksDB is most of a seed's time.
  Op NextOp() {
    return static_cast<Op>(rng_.Weighted(
        {/*new report*/ 72, /*batch*/ 12, /*re-send*/ 12, /*conflicting*/ 8, /*update*/ 18,
         /*cancel*/ 12, /*opt-out*/ 4, /*lookup*/ 10, /*run*/ 18,
         /*run, changes between chunks*/ 6, /*run killed*/ 3, /*burst*/ 8, /*restart*/ 1,
         /*agreement*/ 3}));
  }
  SmallOp NextSmallOp() { return static_cast<SmallOp>(rng_.Weighted({50, 10, 15, 15, 10})); }

  // Several items in one call: a group reads its own writes, so a duplicate
  // or a conflicting re-send inside the batch is answered as if sent alone.
  std::vector<core::CoPaymentInput> Batch() {
    std::vector<core::CoPaymentInput> batch;
    const int n = static_cast<int>(rng_.Uniform(2, 6));
    for (int i = 0; i < n; ++i) {
      if (!batch.empty() && rng_.Chance(25)) {
        const core::CoPaymentInput& earlier = rng_.Pick(batch);
        batch.push_back(rng_.Chance(50) ? earlier : Mutated(earlier));
      } else {
        batch.push_back(NewInput());
      }
    }
    return batch;
  }
  // A stored report as it was sent, or now and then any report sent before;
  // nullopt before anything was sent.
  std::optional<core::CoPaymentInput> Resend() {
    const Model::Stored* s = AnyStored();
    if (s == nullptr || (!sent_.empty() && rng_.Chance(25))) {
      if (sent_.empty()) return std::nullopt;
      return rng_.Pick(sent_);
    }
    return s->sent;
  }
  // A stored report with one field changed; nullopt while nothing is stored.
  std::optional<core::CoPaymentInput> Conflicting() {
    const Model::Stored* s = AnyStored();
    if (s == nullptr) return std::nullopt;
    return Mutated(s->sent);
  }
  // A new report; `due_person`: half of the time for a person with a due ledger.
  core::CoPaymentInput NewReport(bool due_person) {
    core::CoPaymentInput in = NewInput();
    if (!due_person) return in;
    const std::vector<LedgerKey> due = model_->DueLedgers();
    if (!due.empty() && rng_.Chance(50)) {
      in.person_id = rng_.Pick(due).person;
      in.amount = Amount(in);
    }
    return in;
  }
  void Sent(const core::CoPaymentInput& in) { sent_.push_back(in); }

  // Mostly a stored report, preferring those an update can change.
  ReportRef UpdateTarget() { return Target(/*prefer_unpaid=*/true); }
  // Only INVOICED_UNPAID -> PAID is allowed; the others are refused.
  int NewPayment() {
    return rng_.Chance(80) ? static_cast<int>(Payment::kPaid)
                           : rng_.Pick(std::vector<int>{0, 2, 3, 4, 9});
  }
  ReportRef CancelTarget() { return Target(/*prefer_unpaid=*/false); }

  // Opt-outs are rare and mostly withdrawn soon, so most reports are stored.
  std::pair<std::string, bool> Reservation() {
    std::string person = rng_.Pick(persons_);
    for (const std::string& p : persons_) {
      if (model_->Reserved(p) && rng_.Chance(50)) person = p;
    }
    const bool reserved = rng_.Chance(90) ? !model_->Reserved(person) : model_->Reserved(person);
    return {person, reserved};
  }

  // Often right at a card's or a crossing's first day, or the day before.
  // nullopt when no year has rules yet.
  std::optional<Lookup> NewLookup() {
    Lookup q;
    q.person = rng_.Pick(persons_);
    std::vector<int> years;
    for (int y : Years()) years.push_back(y);
    const int today_year = static_cast<int>(clock_->Today().year());
    if (model_->HasRules(today_year)) years.push_back(today_year);
    if (years.empty()) return std::nullopt;
    const int year = rng_.Pick(years);
    q.date = absl::CivilDay(year, 1, 1) + rng_.Uniform(0, 364);
    if (q.date.year() != year) q.date = absl::CivilDay(year, 12, 31);
    std::vector<absl::CivilDay> edges;
    for (Scheme scheme : model_->Schemes(year)) {
      const LedgerKey k{q.person, year, scheme};
      if (const storage::Card* c = model_->CardOf(k)) edges.push_back(c->valid_from);
      if (auto reached = model_->CapReachedOn(k)) edges.push_back(*reached);
    }
    if (!edges.empty() && rng_.Chance(60)) {
      q.date = rng_.Pick(edges) - rng_.Uniform(0, 1);
      if (q.date.year() != year) q.date = absl::CivilDay(year, 1, 1);
    }
    q.category = rng_.Chance(30) ? Category::kUnspecified
                                 : static_cast<Category>(rng_.Uniform(1, core::kMaxCategory));
    return q;
  }

  RunPlan Run(bool interrupted) {
    RunPlan plan;
    plan.as_of = AsOf();
    plan.dry_run = !interrupted && rng_.Chance(25);
    plan.chunk = static_cast<size_t>(interrupted ? rng_.Uniform(1, 2)
                                                 : rng_.Pick(std::vector<int64_t>{1, 2, 3, 1000}));
    // Killed at one of the chunks the due ledgers make now.
    const int64_t chunks = (static_cast<int64_t>(SortedDue().size()) + plan.chunk - 1) / plan.chunk;
    plan.fault_call =
        interrupted ? static_cast<int>(rng_.Uniform(0, std::max<int64_t>(0, chunks - 1))) : -1;
    plan.before_write = rng_.Chance(50);
    if (!plan.dry_run) last_as_of_ = plan.as_of;
    return plan;
  }
  // How many changes arrive before a chunk of a run with changes between
  // chunks (0: none this time), and whether they share the chunk's group.
  std::pair<int, bool> ChangesBeforeChunk() {
    if (!rng_.Chance(60)) return {0, false};
    const bool same_group = rng_.Chance(50);
    return {static_cast<int>(rng_.Uniform(1, 2)), same_group};
  }
  int BurstSize() { return static_cast<int>(rng_.Uniform(2, 5)); }

  // Years with rules that hold anything, and today's.
  std::set<int> Years() const {
    std::set<int> years;
    for (const LedgerKey& k : model_->AllLedgers()) years.insert(k.year);
    const int today = static_cast<int>(clock_->Today().year());
    if (model_->HasRules(today)) years.insert(today);
    return years;
  }
  DueOrder OrderOf(const LedgerKey& k) const {
    return {k.year, pseudonyms_.at(k.person), static_cast<int>(k.scheme)};
  }
  std::vector<LedgerKey> SortedDue() const {
    std::vector<LedgerKey> due = model_->DueLedgers();
    std::sort(due.begin(), due.end(),
              [&](const LedgerKey& a, const LedgerKey& b) { return OrderOf(a) < OrderOf(b); });
    return due;
  }

 private:
  core::CoPaymentInput NewInput();
  core::CoPaymentInput Mutated(const core::CoPaymentInput& in);
  absl::Time ServiceTime(const std::string& person);
  Ore Amount(const core::CoPaymentInput& in);
  std::string NewReportId(const std::string& provider);
  const Model::Stored* AnyStored();
  absl::CivilDay AsOf();
  ReportRef Target(bool prefer_unpaid);

  Rng rng_;
  const Model* const model_;
  const core::Clock* const clock_;
  std::vector<std::string> persons_;
  std::map<std::string, std::string> pseudonyms_;
  std::vector<std::string> providers_;
  std::string practice_;
  std::vector<core::CoPaymentInput> sent_;
  std::optional<absl::CivilDay> last_as_of_;
  int next_report_ = 0;
};

inline core::CoPaymentInput Workload::NewInput() {
  core::CoPaymentInput in;
  in.provider_id = rng_.Pick(providers_);
  in.report_id = NewReportId(in.provider_id);
  if (in.provider_id == providers_[1] && rng_.Chance(60)) in.practice_id = practice_;
  in.person_id = rng_.Pick(persons_);
  in.category = static_cast<int>(rng_.Uniform(1, core::kMaxCategory));
  if (rng_.Chance(2)) in.category = rng_.Chance(50) ? 0 : core::kMaxCategory + 1;
  in.service_time = ServiceTime(in.person_id);
  const auto category = static_cast<Category>(in.category);
  in.performed_abroad = rng_.Chance(category == Category::kClimateTravel ? 60 : 8);
  const int service_year = static_cast<int>(OsloDay(*in.service_time).year());
  if (category == Category::kPrescription && rng_.Chance(20)) {
    in.attributed_year = service_year + 1;  // medicine for a stay abroad next year
  } else if (rng_.Chance(2)) {
    in.attributed_year = rng_.Pick(
        std::vector<int>{service_year, service_year + 1, service_year + 2, service_year - 1});
  }
  in.payment = 1 + rng_.Weighted({55, 20, 20, 5});
  if (rng_.Chance(1)) in.payment = rng_.Chance(50) ? 0 : core::kMaxPayment + 1;
  in.amount = Amount(in);
  return in;
}

// One field changed: a re-send that conflicts with what was stored (unless
// the change makes it invalid, which is answered first).
inline core::CoPaymentInput Workload::Mutated(const core::CoPaymentInput& in) {
  core::CoPaymentInput out = in;
  switch (rng_.Weighted({25, 15, 15, 15, 10, 10, 10})) {
    case 0:
      out.amount = in.amount > 1 && rng_.Chance(50) ? in.amount - 1 : in.amount + 1;
      break;
    case 1:
      out.service_time =
          *in.service_time - (rng_.Chance(50) ? absl::Microseconds(1) : absl::Hours(24));
      break;
    case 2:
      out.category = in.category % core::kMaxCategory + 1;
      break;
    case 3:
      out.payment = in.payment == static_cast<int>(Payment::kPaid)
                        ? static_cast<int>(Payment::kInvoiced)
                        : static_cast<int>(Payment::kPaid);
      break;
    case 4:
      out.performed_abroad = !in.performed_abroad;
      break;
    case 5:
      out.person_id = rng_.Pick(persons_);
      if (out.person_id == in.person_id) out.amount += 100;
      break;
    default:
      out.attributed_year =
          in.attributed_year != 0 ? 0 : static_cast<int>(OsloDay(*in.service_time).year()) + 1;
      break;
  }
  return out;
}

inline absl::Time Workload::ServiceTime(const std::string& person) {
  const absl::Time now = clock_->Now();
  switch (rng_.Weighted({52, 14, 8, 14, 5, 7})) {
    case 0:  // timely
      return now - rng_.Seconds(0, 14 * 86400);
    case 1:  // late
      return now - rng_.Seconds(14 * 86400, 60 * 86400);
    case 2:  // late, often for a past year
      return now - rng_.Seconds(60 * 86400, 500 * 86400);
    case 3: {  // around midnight on 31 December, Oslo time
      absl::CivilDay new_year(OsloDay(now).year(), 1, 1);
      if (OsloMidnight(new_year) > now - absl::Hours(3))
        new_year = absl::CivilDay(new_year.year() - 1, 1, 1);
      const absl::Time midnight = OsloMidnight(new_year);
      switch (rng_.Weighted({1, 1, 1, 3})) {
        case 0:
          return midnight;
        case 1:
          return midnight - absl::Microseconds(1);
        case 2:
          return midnight - absl::Hours(1);  // 23:00 Oslo is 22:00 UTC
        default:
          return midnight + rng_.Seconds(-3 * 3600, 3 * 3600);
      }
    }
    case 4:  // just ahead of the register's clock: allowed up to 5 minutes
      switch (rng_.Weighted({2, 1, 1})) {
        case 0:
          return now + rng_.Seconds(1, 299);
        case 1:
          return now + core::kClockSkewAllowance;
        default:
          return now + core::kClockSkewAllowance + absl::Microseconds(1);
      }
    default: {  // the same instant as another of the person's co-payments
      std::vector<absl::Time> times;
      for (const auto& [id, s] : model_->reports()) {
        if (s.sent.person_id == person) times.push_back(s.service_time);
      }
      if (times.empty()) return now - rng_.Seconds(0, 86400);
      return rng_.Pick(times);
    }
  }
}

// Ordinary amounts, tiny ones, and amounts aimed at the edges of the ledger
// the report lands in: the cap exactly, one øre either side, and an excess
// at the refund minimum, one øre either side.
inline Ore Workload::Amount(const core::CoPaymentInput& in) {
  const Ore typical = rng_.Uniform(5000, 40000);
  if (rng_.Chance(1)) {
    return rng_.Pick(std::vector<Ore>{0, core::kMaxAmountOre, core::kMaxAmountOre + 1});
  }
  const int year = Model::YearOf(in);
  const auto category = static_cast<Category>(in.category);
  if (in.category < 1 || in.category > core::kMaxCategory || !model_->HasRules(year)) {
    return typical;
  }
  const LedgerKey k{in.person_id, year, model_->SchemeOf(year, category)};
  const Ore cap = model_->Cap(k.year, k.scheme);
  const Ore total = model_->Total(k);
  Ore amount = 0;
  switch (rng_.Weighted({30, 22, 8, 20, 20})) {
    case 0:
      return typical;
    case 1:
      return rng_.Uniform(40000, 150000);
    case 2:
      return rng_.Uniform(1, 100);
    case 3:
      amount = cap - total + rng_.Uniform(-1, 1);
      break;
    default: {
      const Ore minimum = model_->Minimum(year);
      const Ore excess = minimum > 0 ? minimum + rng_.Uniform(-1, 1) : rng_.Uniform(1, 2);
      amount = cap + model_->Refunded(k) + excess - total;
      break;
    }
  }
  return amount > 0 ? amount : typical;
}

inline std::string Workload::NewReportId(const std::string& provider) {
  // Now and then another provider's id: (provider, report id) is the key.
  if (rng_.Chance(5)) {
    const Model::Stored* s = AnyStored();
    if (s != nullptr && s->sent.provider_id != provider &&
        model_->Find(provider, s->sent.report_id) == nullptr) {
      return s->sent.report_id;
    }
  }
  return absl::StrCat("r", ++next_report_, rng_.Chance(10) ? ".x:1-A" : "");
}

inline const Model::Stored* Workload::AnyStored() {
  const auto& reports = model_->reports();
  if (reports.empty()) return nullptr;
  auto it = reports.begin();
  std::advance(it, rng_.Uniform(0, static_cast<int64_t>(reports.size()) - 1));
  return &it->second;
}

// Mostly today; else the last run's date again, a date in the past, or the
// last days around the New Year. Never after today (the contract refuses it).
inline absl::CivilDay Workload::AsOf() {
  const absl::CivilDay today = clock_->Today();
  switch (rng_.Weighted({55, 15, 15, 15})) {
    case 0:
      return today;
    case 1:
      return last_as_of_ && *last_as_of_ <= today ? *last_as_of_ : today;
    case 2:
      return today - rng_.Uniform(1, 40);
    default:
      return rng_.Chance(50) ? absl::CivilDay(today.year(), 1, 1)
                             : absl::CivilDay(today.year() - 1, 12, 31);
  }
}

// A stored report (mostly) or an unknown id at one of the providers.
inline ReportRef Workload::Target(bool prefer_unpaid) {
  ReportRef ref;
  ref.provider = rng_.Pick(providers_);
  ref.report_id = absl::StrCat("unknown", rng_.Uniform(0, 9));
  if (const Model::Stored* s = AnyStored(); s != nullptr && !rng_.Chance(8)) {
    for (int tries = 0; prefer_unpaid && tries < 4 && s->payment != Payment::kInvoicedUnpaid;
         ++tries) {
      s = AnyStored();
    }
    ref.provider = s->sent.provider_id;
    ref.report_id = s->sent.report_id;
    ref.person = s->sent.person_id;
  }
  return ref;
}

}  // namespace frikort::jobs::sim

#endif  // FRIKORT_TESTS_JOBS_SIM_WORKLOAD_H_
