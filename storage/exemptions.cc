// Exemption lookups (CheckExemption): each answer comes from the person's
// ledgers of the date's year, and is logged before it is given.
//
// A lookup is checked on the caller's thread (PrepareExemption), then read
// and decided (EvaluateExemptions) and its record handed to the lookup log,
// whose writer answers it. With a store whose reads are round trips to
// another process (Store::remote(), PostgreSQL) lookups queue for the
// register's lookup readers, which read each batch of them together: one
// statement for all their ledgers, one for the persons a ledger would grant
// something, so no gRPC thread waits on the database. Otherwise a lookup is
// read at once on the caller's thread (a RocksDB read takes microseconds).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "storage/keys.h"
#include "storage/register_impl.h"

namespace frikort::storage::internal {

absl::StatusOr<RegisterImpl::ExemptionQuery> RegisterImpl::PrepareExemption(
    absl::string_view person_id, absl::CivilDay date, core::Category category,
    absl::string_view caller) {
  if (auto s = pipeline_->status(); !s.ok()) return s;
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) return id.status();
  ExemptionQuery q;
  q.date = date;
  q.category = category;
  q.caller = std::string(caller);
  const int year = static_cast<int>(date.year());
  if (category == core::Category::kUnspecified) {
    q.schemes = rules_.SchemesOf(year);
    if (q.schemes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("date: the register has no rules for ", year));
    }
  } else {
    auto scheme = rules_.SchemeFor(year, category);
    if (!scheme.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::IsNotFound(scheme.status()) ? "date: " : "category: ", scheme.status().message()));
    }
    q.schemes.push_back(*scheme);
  }
  q.pseudonym = crypto_.Pseudonym(id->digits);
  return q;
}

std::vector<absl::StatusOr<RegisterImpl::Evaluated>> RegisterImpl::EvaluateExemptions(
    absl::Span<const ExemptionQuery> queries) {
  const size_t n = queries.size();
  // The ledgers of every query in one read: query i's are keys
  // [first[i], first[i + 1]), in the order of its schemes.
  std::vector<std::string> keys;
  std::vector<size_t> first(n + 1), owner;
  for (size_t i = 0; i < n; ++i) {
    first[i] = keys.size();
    const int year = static_cast<int>(queries[i].date.year());
    for (core::Scheme scheme : queries[i].schemes) {
      keys.push_back(keys::Ledger(queries[i].pseudonym, year, scheme));
      owner.push_back(i);
    }
  }
  first[n] = keys.size();
  const std::vector<absl::string_view> wanted(keys.begin(), keys.end());
  std::vector<SchemeExemption> answers(keys.size());
  std::vector<char> damaged(n, 0), reserved(n, 0);
  const absl::Status ledgers_read = store_->MultiGet(
      Table::kLedgers, wanted, /*sorted=*/false, [&](size_t k, const absl::string_view* value) {
        const size_t i = owner[k];
        const ExemptionQuery& q = queries[i];
        SchemeExemption& x = answers[k];
        x.scheme = q.schemes[k - first[i]];
        if (value == nullptr) return;
        rec::Ledger l;
        if (!l.ParseFromArray(value->data(), static_cast<int>(value->size()))) {
          damaged[i] = 1;
          return;
        }
        const int64_t day = core::DayNumber(q.date);
        if (l.card_issued() && l.card().valid_from() <= day && day <= l.card().valid_to()) {
          x.status = core::ExemptionStatus::kExempt;
          x.valid_from = core::DayFromNumber(l.card().valid_from());
          x.valid_to = core::DayFromNumber(l.card().valid_to());
        } else if (l.crossed() && l.cap_reached_on() <= day) {
          x.status = core::ExemptionStatus::kCapReached;
          x.valid_from = core::DayFromNumber(l.cap_reached_on());
          x.valid_to = absl::CivilDay(q.date.year(), 12, 31);
        }
      });
  // A failed read of several lookups may concern only one of them (a
  // damaged page, say): each is read again alone, so a failure reaches the
  // lookups it concerns and no others. A lost connection concerns them all.
  if (!ledgers_read.ok() && n > 1 && !absl::IsUnavailable(ledgers_read)) return EachAlone(queries);
  // The person records matter (an opt-out turns any answer into NOT_EXEMPT)
  // only where a ledger would grant something, so most lookups of people
  // below the cap make one read.
  std::vector<size_t> granting;
  for (size_t i = 0; ledgers_read.ok() && i < n; ++i) {
    if (!damaged[i] && std::any_of(answers.begin() + first[i], answers.begin() + first[i + 1],
                                   [](const SchemeExemption& x) {
                                     return x.status != core::ExemptionStatus::kNotExempt;
                                   })) {
      granting.push_back(i);
    }
  }
  absl::Status persons_read;
  if (!granting.empty()) {
    std::vector<absl::string_view> persons;
    for (size_t i : granting) persons.push_back(queries[i].pseudonym);
    persons_read = store_->MultiGet(
        Table::kPersons, persons, /*sorted=*/false, [&](size_t j, const absl::string_view* value) {
          if (value == nullptr) return;
          rec::Person p;
          if (!p.ParseFromArray(value->data(), static_cast<int>(value->size()))) {
            damaged[granting[j]] = 2;
          } else {
            reserved[granting[j]] = p.reserved();
          }
        });
  }
  if (!persons_read.ok() && granting.size() > 1 && !absl::IsUnavailable(persons_read)) {
    return EachAlone(queries);
  }
  std::vector<char> needs_person(n, 0);
  for (size_t i : granting) needs_person[i] = 1;
  std::vector<absl::StatusOr<Evaluated>> out;
  out.reserve(n);
  const absl::Time now = clock_.Now();
  for (size_t i = 0; i < n; ++i) {
    if (!ledgers_read.ok()) {
      out.push_back(ledgers_read);
      continue;
    }
    if (needs_person[i] && !persons_read.ok()) {
      out.push_back(persons_read);
      continue;
    }
    if (damaged[i] != 0) {
      out.push_back(absl::DataLossError(
          absl::StrCat("damaged record in ", damaged[i] == 1 ? "ledgers" : "persons")));
      continue;
    }
    const ExemptionQuery& q = queries[i];
    Evaluated e;
    e.answer.assign(answers.begin() + first[i], answers.begin() + first[i + 1]);
    // A reserved person gets NOT_EXEMPT whatever the ledger says, so the
    // answer does not reveal the opt-out.
    if (reserved[i]) {
      for (SchemeExemption& x : e.answer) {
        x.status = core::ExemptionStatus::kNotExempt;
        x.valid_from.reset();
        x.valid_to.reset();
      }
    }
    rec::Lookup record;
    record.set_time_us(absl::ToUnixMicros(now));
    record.set_caller(q.caller);
    record.set_date(core::DayNumber(q.date));
    record.set_category(static_cast<int>(q.category));
    e.log_key = keys::Audit(q.pseudonym, absl::ToUnixMicros(now), lookup_seq_.fetch_add(1));
    e.log_value = record.SerializeAsString();
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<absl::StatusOr<RegisterImpl::Evaluated>> RegisterImpl::EachAlone(
    absl::Span<const ExemptionQuery> queries) {
  std::vector<absl::StatusOr<Evaluated>> out;
  out.reserve(queries.size());
  for (size_t i = 0; i < queries.size(); ++i) {
    out.push_back(std::move(EvaluateExemptions(queries.subspan(i, 1))[0]));
  }
  return out;
}

absl::StatusOr<std::vector<SchemeExemption>> RegisterImpl::CheckExemption(
    absl::string_view person_id, absl::CivilDay date, core::Category category,
    absl::string_view caller) {
  absl::StatusOr<ExemptionQuery> q = PrepareExemption(person_id, date, category, caller);
  if (!q.ok()) return q.status();
  absl::StatusOr<Evaluated> e = std::move(EvaluateExemptions({&*q, 1})[0]);
  if (!e.ok()) return e.status();
  if (absl::Status s = lookup_log_->Append(std::move(e->log_key), std::move(e->log_value));
      !s.ok()) {
    return s;
  }
  return std::move(e->answer);
}

void RegisterImpl::CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                                       core::Category category, absl::string_view caller,
                                       ExemptionDone done) {
  absl::StatusOr<ExemptionQuery> q = PrepareExemption(person_id, date, category, caller);
  if (!q.ok()) return std::move(done)(q.status());
  q->done = std::move(done);
  if (exemption_readers_ != nullptr) return exemption_readers_->Add(*std::move(q));
  std::vector<ExemptionQuery> one;
  one.push_back(*std::move(q));
  AnswerExemptions(std::move(one));
}

void RegisterImpl::AnswerExemptions(std::vector<ExemptionQuery> queries) {
  std::vector<absl::StatusOr<Evaluated>> evaluated = EvaluateExemptions(queries);
  for (size_t i = 0; i < queries.size(); ++i) {
    ExemptionDone done = std::move(queries[i].done);
    if (!evaluated[i].ok()) {
      std::move(done)(evaluated[i].status());
      continue;
    }
    Evaluated& e = *evaluated[i];
    lookup_log_->AppendAsync(
        std::move(e.log_key), std::move(e.log_value),
        [answer = std::move(e.answer), done = std::move(done)](absl::Status s) mutable {
          if (s.ok()) {
            std::move(done)(std::move(answer));
          } else {
            std::move(done)(std::move(s));
          }
        });
  }
}

}  // namespace frikort::storage::internal
