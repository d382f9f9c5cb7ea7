// The Register over a Store (LevelDB's db_impl): it owns the store, the write
// pipeline, the lookup log and the state machine, and wires them together.
// Its methods live by job: register.cc (opening, the write path), reads.cc
// (ledgers, listings), exemptions.cc (lookups), verify.cc (the invariants). Internal to
// storage/.
#ifndef FRIKORT_STORAGE_REGISTER_IMPL_H_
#define FRIKORT_STORAGE_REGISTER_IMPL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "storage/batcher.h"
#include "storage/crypto.h"
#include "storage/lookup_log.h"
#include "storage/pipeline.h"
#include "storage/register.h"
#include "storage/state_machine.h"
#include "storage/store.h"

namespace frikort::storage::internal {

// One queued writer operation's outcome, waited for by the caller.
struct PendingApply {
  absl::Notification done;
  absl::Status status;
};

class RegisterImpl final : public Register {
 public:
  RegisterImpl(const RegisterOptions& options, Crypto crypto, std::unique_ptr<Store> store);
  // Refuses lookups not yet read, finishes the others and queued changes,
  // then closes the store.
  ~RegisterImpl() override;

  // Checks (or, for a new register, records) the pseudonym key, then starts
  // the threads.
  absl::Status Start();

  // ---- write path (register.cc) ----
  void SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) override;
  void UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                          ResultDone done) override;
  void CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                   ResultDone done) override;
  void SetReservationAsync(std::string person_id, bool reserved,
                           absl::AnyInvocable<void(absl::Status) &&> done) override;
  absl::StatusOr<std::string> AllocateRunId() override;
  void DecideNextAsync(RunInfo run, std::shared_ptr<DueCursor> cursor, size_t limit,
                       DecideFn decide, DecideDone done) override;

  // ---- reads (reads.cc) ----
  absl::StatusOr<LedgerView> GetLedger(absl::string_view person_id, int year) override;
  absl::StatusOr<LedgerView> GetLedgerPage(absl::string_view person_id, int year, int page_size,
                                           absl::string_view page_token) override;
  absl::StatusOr<std::vector<SchemeExemption>> CheckExemption(absl::string_view person_id,
                                                              absl::CivilDay date,
                                                              core::Category category,
                                                              absl::string_view caller) override;
  void CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                           core::Category category, absl::string_view caller,
                           ExemptionDone done) override;
  absl::StatusOr<Page<LookupRecord>> ListLookups(absl::string_view person_id, int page_size,
                                                 absl::string_view page_token) override;
  absl::StatusOr<std::vector<Payout>> ListPersonPayouts(absl::string_view person_id,
                                                        int year) override;
  absl::StatusOr<Page<Card>> ListFreeCards(int year, std::optional<absl::CivilDay> issued_on,
                                           int page_size, absl::string_view page_token) override;
  absl::StatusOr<Page<Payout>> ListPayouts(absl::string_view run_id, int year, int page_size,
                                           absl::string_view page_token) override;
  absl::StatusOr<std::vector<DueLedger>> ScanDue(const std::optional<DueLedger>& after,
                                                 size_t limit) override;

  // ---- the provider registry (providers.cc) ----
  absl::StatusOr<ProviderChange> PutProvider(const core::ProviderInput& in) override;
  absl::StatusOr<core::ProviderRecord> GetProvider(absl::string_view provider_id) override;
  absl::StatusOr<Page<core::ProviderRecord>> ListProviders(
      std::optional<absl::CivilDay> in_force_on, int page_size,
      absl::string_view page_token) override;

  // ---- operations ----
  absl::StatusOr<VerifyReport> Verify() override;  // verify.cc
  absl::StatusOr<BackupInfo> Backup(const std::string& dest_dir) override;
  uint64_t ApproximateSizeBytes() override { return store_->ApproximateSizeBytes(); }
  uint64_t PendingCompactionBytes() override { return store_->PendingCompactionBytes(); }
  // The register's failure, else the lookup log's: either way the register
  // no longer serves all it should, and the health check says so.
  absl::Status Health() override {
    if (absl::Status s = pipeline_->status(); !s.ok()) return s;
    return lookup_log_->failure();
  }
  std::string AuditPseudonym(absl::string_view person_id) const override;

 private:
  // A lookup's answer and its log record, read but not yet logged.
  struct Evaluated {
    std::vector<SchemeExemption> answer;
    std::string log_key, log_value;
  };
  // A lookup checked and ready to read (exemptions.cc).
  struct ExemptionQuery {
    absl::CivilDay date;
    core::Category category = core::Category::kUnspecified;
    std::string caller;
    std::string pseudonym;
    std::vector<core::Scheme> schemes;
    ExemptionDone done;  // CheckExemptionAsync's, else empty
  };
  // Checks a lookup's request: the register serves, the id, the date's rules.
  absl::StatusOr<ExemptionQuery> PrepareExemption(absl::string_view person_id, absl::CivilDay date,
                                                  core::Category category,
                                                  absl::string_view caller);
  // Reads and decides `queries` together (one read of all their ledgers, one
  // of the persons some ledger would grant); out[i] answers queries[i].
  std::vector<absl::StatusOr<Evaluated>> EvaluateExemptions(
      absl::Span<const ExemptionQuery> queries);
  // EvaluateExemptions of each query on its own.
  std::vector<absl::StatusOr<Evaluated>> EachAlone(absl::Span<const ExemptionQuery> queries);
  // EvaluateExemptions, then each record to the lookup log; each query's
  // `done` gets its answer once logged, or why not.
  void AnswerExemptions(std::vector<ExemptionQuery> queries);
  absl::StatusOr<std::string> PersonIdOf(absl::string_view pseudonym);
  // Queues `apply` to the writer; `done` gets its group's commit status.
  void EnqueueApply(size_t weight, absl::AnyInvocable<void(Records&)> apply,
                    absl::AnyInvocable<void(absl::Status) &&> done);
  // EnqueueApply whose outcome the caller waits for.
  std::shared_ptr<PendingApply> Enqueue(size_t weight, absl::AnyInvocable<void(Records&)> apply);
  // Decides again the stored entries of `provider_id` (as provider or
  // practice) in `years`, in chunks on the writer; adds to `change`.
  absl::Status ReevaluateYears(const std::string& provider_id, const std::vector<int>& years,
                               std::shared_ptr<ProviderChange> change);
  // Finishes the re-evaluations a stop interrupted (their markers in meta),
  // before the register serves: a provider's record and its entries' counted
  // flags never disagree for longer than one run of frikortd.
  absl::Status ResumeReevaluations();
  // A ledger's person, year and schemes (no entries); `pseudonym` is set.
  absl::StatusOr<LedgerView> LedgerHead(absl::string_view person_id, int year,
                                        std::string* pseudonym);
  // Walks `table` from the page token (or `prefix`) while keys start with
  // `prefix`; `visit` fails on a record it could not convert.
  absl::StatusOr<std::string> ScanPage(
      Table table, const std::string& prefix, absl::string_view page_token, int page_size,
      const std::function<absl::Status(absl::string_view key, absl::string_view value)>& visit);

  const RegisterOptions options_;
  const core::RulesTable& rules_;
  const core::Clock& clock_;
  const Crypto crypto_;
  StateMachine machine_;
  // Destroyed in reverse: the lookup log and the pipeline finish their work
  // before the store closes.
  const std::unique_ptr<Store> store_;
  const std::unique_ptr<WritePipeline> pipeline_;
  const std::unique_ptr<LookupLog> lookup_log_;
  std::atomic<uint64_t> lookup_seq_{0};
  std::atomic<uint64_t> reevaluation_seq_{0};  // tells markers of one process apart
  absl::Mutex backup_mu_;                      // held while a backup runs: one at a time
  // Lookups read in batches by threads of their own, when the store's reads
  // are round trips (Store::remote()); null otherwise. Stopped by the
  // destructor before any member goes.
  const std::unique_ptr<Batcher<ExemptionQuery>> exemption_readers_;
};

// Verify's check of one entry against the provider registry (verify_agreements.cc):
// its index keys exist, and its counted flag follows the registry (entries
// stored before the registry, of providers it does not know, keep theirs).
// "" when it holds, else what is wrong (no national id).
absl::StatusOr<std::string> VerifyAgreement(StoreReader& snap, const core::RulesTable& rules,
                                            absl::string_view entry_key, const rec::Entry& e);

// Run ids: "run-000001", ... (the number orders payouts by run).
absl::StatusOr<uint64_t> ParseRunId(absl::string_view run_id);
std::string FormatRunId(uint64_t seq);

// A pseudonym as the audit log names a person: RFC 4648 base32, lowercase,
// unpadded, in groups of eight joined by '-'. Its only digits are 2-7, at
// most eight in a row, so a scanner for national ids (runs of 11 digits)
// never flags it; hex could hold such a run.
std::string PseudonymText(absl::string_view pseudonym);

}  // namespace frikort::storage::internal

#endif  // FRIKORT_STORAGE_REGISTER_IMPL_H_
