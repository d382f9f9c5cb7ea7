#include "storage/register.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "storage/migrate_day_sums.h"
#include "storage/migrate_payouts_by_person.h"
#include "storage/migrate_provider_index.h"
#include "storage/register_impl.h"
#include "storage/rocks_store.h"

namespace frikort::storage {
namespace internal {

absl::StatusOr<uint64_t> ParseRunId(absl::string_view run_id) {
  const size_t length = run_id.size();
  uint64_t seq = 0;
  if (!absl::ConsumePrefix(&run_id, "run-") || run_id.empty() || !absl::SimpleAtoi(run_id, &seq) ||
      seq == 0) {
    // Described, not repeated: the text is the client's and could hold a
    // national id.
    return absl::InvalidArgumentError(
        absl::StrCat("run_id: not a run id (", length, " characters; expected run-NNNNNN)"));
  }
  return seq;
}

std::string PseudonymText(absl::string_view pseudonym) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  constexpr int kGroup = 8;
  std::string out;
  int written = 0;
  auto put = [&](uint32_t value) {
    if (written > 0 && written % kGroup == 0) out += '-';
    out += kAlphabet[value & 31];
    ++written;
  };
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char byte : pseudonym) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      put(buffer >> bits);
    }
  }
  if (bits > 0) put(buffer << (5 - bits));
  return out;
}

std::string FormatRunId(uint64_t seq) { return absl::StrFormat("run-%06d", seq); }

namespace {

// Lookup readers for a remote store, and the most lookups one reads at once.
// Four: while one waits on the database the others take what arrives, so a
// lookup waits for at most a batch in flight, not for the ones before it.
constexpr int kExemptionReaders = 4;
constexpr size_t kMaxExemptionBatch = 256;

// Completion of an operation that answers through a shared result.
template <typename T, typename Done>
absl::AnyInvocable<void(absl::Status) &&> Completion(std::shared_ptr<T> result, Done done) {
  return [result = std::move(result), done = std::move(done)](absl::Status s) mutable {
    if (!s.ok()) {
      std::move(done)(std::move(s));
    } else {
      std::move(done)(std::move(*result));
    }
  };
}

}  // namespace

RegisterImpl::RegisterImpl(const RegisterOptions& options, Crypto crypto,
                           std::unique_ptr<Store> store)
    : options_(options),
      rules_(*options.rules),
      clock_(*options.clock),
      crypto_(std::move(crypto)),
      machine_(options.rules, &crypto_, &options_.id_options, options.max_entries_per_person_year),
      store_(std::move(store)),
      pipeline_(std::make_unique<WritePipeline>(
          store_.get(), options.clock,
          static_cast<size_t>(std::max(1, options.max_group_reports)))),
      lookup_log_(
          std::make_unique<LookupLog>(store_.get(), [this] { return pipeline_->status(); })),
      exemption_readers_(store_->remote()
                             ? std::make_unique<Batcher<ExemptionQuery>>(
                                   "frikort-lookups", kExemptionReaders, kMaxExemptionBatch,
                                   [this](std::vector<ExemptionQuery> batch) {
                                     AnswerExemptions(std::move(batch));
                                   },
                                   [](std::vector<ExemptionQuery> refused) {
                                     for (ExemptionQuery& q : refused) {
                                       std::move(q.done)(
                                           absl::UnavailableError("register is shutting down"));
                                     }
                                   })
                             : nullptr) {}

RegisterImpl::~RegisterImpl() {
  // First: lookups not yet read are refused (a register dropped because its
  // store was lost would otherwise try each queued batch against it), those
  // being read finish while the log and the store still work.
  if (exemption_readers_ != nullptr) exemption_readers_->Stop();
}

absl::Status RegisterImpl::Start() {
  // The secret check: a register opened with another key would compute other
  // pseudonyms and silently split every person in two.
  absl::StatusOr<std::optional<std::string>> check = store_->Get(Table::kMeta, "secret_check");
  if (!check.ok()) return check.status();
  if (!check->has_value()) {
    // A new register (nothing is written before the check is).
    const std::string value = crypto_.SecretCheck();
    WriteSet w;
    w.tables[static_cast<int>(Table::kMeta)].push_back({"secret_check", &value});
    if (absl::Status s = store_->Commit(w); !s.ok()) return s;
  } else if (**check != crypto_.SecretCheck()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the pseudonym key does not match the one the register in ", options_.data_dir,
                     " was created with; refusing to open it with another key"));
  }
  if (absl::StatusOr<uint64_t> m = MigratePayoutsByPerson(*store_); !m.ok()) return m.status();
  if (absl::Status s = MigrateDaySums(*store_); !s.ok()) return s;
  if (absl::Status s = MigrateProviderIndex(*store_); !s.ok()) return s;
  pipeline_->Start();
  lookup_log_->Start();
  if (exemption_readers_ != nullptr) exemption_readers_->Start();
  return ResumeReevaluations();
}

void RegisterImpl::SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) {
  auto results = std::make_shared<std::vector<ReportResult>>();
  results->reserve(items.size());
  std::vector<PreparedReport> prepared;
  prepared.reserve(items.size());
  const absl::Time now = clock_.Now();
  for (auto& in : items) prepared.push_back(machine_.Prepare(std::move(in), now));
  Op op;
  op.weight = std::max<size_t>(1, prepared.size());
  op.apply = [this, prepared = std::move(prepared), results](Overlay& o) {
    Records r(o);
    machine_.PrefetchReports(r, prepared);
    for (const auto& p : prepared) results->push_back(machine_.ApplyReport(r, p));
  };
  op.complete = Completion(results, std::move(done));
  pipeline_->Enqueue(std::move(op));
}

void RegisterImpl::UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                                      ResultDone done) {
  auto result = std::make_shared<ReportResult>();
  Op op;
  op.apply = [this, provider_id = std::move(provider_id), report_id = std::move(report_id), payment,
              result](Overlay& o) {
    Records r(o);
    *result = machine_.ApplyUpdatePayment(r, provider_id, report_id, payment);
  };
  op.complete = Completion(result, std::move(done));
  pipeline_->Enqueue(std::move(op));
}

void RegisterImpl::CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                               ResultDone done) {
  auto result = std::make_shared<ReportResult>();
  Op op;
  op.apply = [this, provider_id = std::move(provider_id), report_id = std::move(report_id),
              reason = std::move(reason), result](Overlay& o) {
    Records r(o);
    *result = machine_.ApplyCancel(r, provider_id, report_id, reason);
  };
  op.complete = Completion(result, std::move(done));
  pipeline_->Enqueue(std::move(op));
}

void RegisterImpl::SetReservationAsync(std::string person_id, bool reserved,
                                       absl::AnyInvocable<void(absl::Status) &&> done) {
  auto id = core::ParsePersonId(person_id, options_.id_options);
  if (!id.ok()) {
    std::move(done)(id.status());
    return;
  }
  Op op;
  op.apply = [this, digits = id->digits, reserved](Overlay& o) {
    Records r(o);
    machine_.ApplyReservation(r, digits, reserved);
  };
  op.complete = std::move(done);
  pipeline_->Enqueue(std::move(op));
}

void RegisterImpl::DecideNextAsync(RunInfo run, std::shared_ptr<DueCursor> cursor, size_t limit,
                                   DecideFn decide, DecideDone done) {
  uint64_t run_seq = 0;
  if (!run.dry_run) {
    auto seq = ParseRunId(run.run_id);
    if (!seq.ok()) {
      std::move(done)(seq.status());
      return;
    }
    run_seq = *seq;
  }
  if (cursor == nullptr || limit == 0) {
    std::move(done)(absl::InvalidArgumentError("issuance: a chunk needs a cursor and a limit > 0"));
    return;
  }
  auto outcomes = std::make_shared<std::vector<LedgerOutcome>>();
  Op op;
  op.weight = limit;
  op.apply = [this, run = std::move(run), run_seq, cursor = std::move(cursor), limit,
              decide = std::move(decide), outcomes](Overlay& o) {
    Records r(o);
    *outcomes = machine_.ApplyDecideNext(r, run, run_seq, cursor.get(), limit, decide);
  };
  op.complete = Completion(outcomes, std::move(done));
  pipeline_->Enqueue(std::move(op));
}

absl::StatusOr<std::string> RegisterImpl::AllocateRunId() {
  auto seq = std::make_shared<uint64_t>(0);
  absl::Notification n;
  absl::Status status;
  Op op;
  op.apply = [this, seq](Overlay& o) {
    Records r(o);
    *seq = machine_.ApplyAllocateRun(r);
  };
  op.complete = [&](absl::Status s) {
    status = std::move(s);
    n.Notify();
  };
  pipeline_->Enqueue(std::move(op));
  n.WaitForNotification();
  if (!status.ok()) return status;
  return FormatRunId(*seq);
}

absl::StatusOr<BackupInfo> RegisterImpl::Backup(const std::string& dest_dir) {
  if (absl::Status s = pipeline_->status(); !s.ok()) return s;
  if (!backup_mu_.TryLock()) {
    return absl::AbortedError("a backup is already running; try again when it has finished");
  }
  absl::StatusOr<BackupInfo> info = store_->Backup(dest_dir, crypto_.SecretCheck());
  backup_mu_.Unlock();
  return info;
}

std::string RegisterImpl::AuditPseudonym(absl::string_view person_id) const {
  auto id = core::ParsePersonId(person_id, options_.id_options);
  return id.ok() ? PseudonymText(crypto_.Pseudonym(id->digits)) : "";
}

}  // namespace internal

// ---------------------------------------------------------------------------
// Register: factory and blocking forms

absl::StatusOr<std::unique_ptr<Register>> Register::Open(const RegisterOptions& options) {
  if (options.rules == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("register options: rules and clock are required");
  }
  if (options.data_dir.empty() && !options.open_store) {
    return absl::InvalidArgumentError("data_dir: must not be empty");
  }
  auto crypto = Crypto::Create(options.secret);
  if (!crypto.ok()) return crypto.status();
  absl::StatusOr<std::unique_ptr<Store>> store;
  if (options.open_store) {
    store = options.open_store(options);
  } else {
    store = OpenRocksStore(RocksStoreOptionsFrom(options));
  }
  if (!store.ok()) return store.status();
  auto reg =
      std::make_unique<internal::RegisterImpl>(options, *std::move(crypto), *std::move(store));
  if (auto s = reg->Start(); !s.ok()) return s;
  return reg;
}

namespace {
template <typename T>
struct Waiter {
  absl::Notification done;
  std::optional<T> value;
  auto Callback() {
    return [this](T v) {
      value.emplace(std::move(v));
      done.Notify();
    };
  }
  T Wait() {
    done.WaitForNotification();
    return *std::move(value);
  }
};
}  // namespace

absl::StatusOr<std::vector<ReportResult>> Register::Submit(
    std::vector<core::CoPaymentInput> items) {
  Waiter<absl::StatusOr<std::vector<ReportResult>>> w;
  SubmitAsync(std::move(items), w.Callback());
  return w.Wait();
}

absl::StatusOr<ReportResult> Register::UpdatePayment(std::string provider_id, std::string report_id,
                                                     int payment) {
  Waiter<absl::StatusOr<ReportResult>> w;
  UpdatePaymentAsync(std::move(provider_id), std::move(report_id), payment, w.Callback());
  return w.Wait();
}

absl::StatusOr<ReportResult> Register::Cancel(std::string provider_id, std::string report_id,
                                              std::string reason) {
  Waiter<absl::StatusOr<ReportResult>> w;
  CancelAsync(std::move(provider_id), std::move(report_id), std::move(reason), w.Callback());
  return w.Wait();
}

absl::Status Register::SetReservation(std::string person_id, bool reserved) {
  Waiter<absl::Status> w;
  SetReservationAsync(std::move(person_id), reserved, w.Callback());
  return w.Wait();
}

absl::StatusOr<std::vector<LedgerOutcome>> Register::DecideNext(RunInfo run,
                                                                std::shared_ptr<DueCursor> cursor,
                                                                size_t limit, DecideFn decide) {
  Waiter<absl::StatusOr<std::vector<LedgerOutcome>>> w;
  DecideNextAsync(std::move(run), std::move(cursor), limit, std::move(decide), w.Callback());
  return w.Wait();
}

}  // namespace frikort::storage
