// RegisterSlot: the register the server answers from, as a Register that
// forwards every call to the one in force, or answers UNAVAILABLE with why
// there is none (a standby waiting for the writer lease, a register dropped
// after it lost its store and not yet opened again). The owner (server/
// register_keeper.h) puts registers in and takes them out while calls run.
//
// A call holds the register it started on until it returns, so a register
// taken out is destroyed once its last call has returned (queued changes
// then complete with the store's failure). Callbacks of the async calls do
// not hold it.
//
// Thread safety: every method may be called from any thread.
#ifndef FRIKORT_SERVER_REGISTER_SLOT_H_
#define FRIKORT_SERVER_REGISTER_SLOT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/register.h"

namespace frikort::server {

class RegisterSlot final : public storage::Register {
 public:
  // Empty, answering `why` (Unavailable) until a register is put in.
  explicit RegisterSlot(absl::Status why);

  // Puts `reg` in force; nullptr empties the slot, which then answers `why`.
  // Returns the register that was in force (destroy it outside any call).
  std::shared_ptr<storage::Register> Swap(std::shared_ptr<storage::Register> reg,
                                          absl::Status why = absl::OkStatus());
  // The register in force, or nullptr.
  std::shared_ptr<storage::Register> Current() const;

  void SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) override;
  void UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                          ResultDone done) override;
  void CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                   ResultDone done) override;
  void SetReservationAsync(std::string person_id, bool reserved,
                           absl::AnyInvocable<void(absl::Status) &&> done) override;
  absl::StatusOr<storage::LedgerView> GetLedger(absl::string_view person_id, int year) override;
  absl::StatusOr<storage::LedgerView> GetLedgerPage(absl::string_view person_id, int year,
                                                    int page_size,
                                                    absl::string_view page_token) override;
  absl::StatusOr<std::vector<storage::SchemeExemption>> CheckExemption(
      absl::string_view person_id, absl::CivilDay date, core::Category category,
      absl::string_view caller) override;
  void CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                           core::Category category, absl::string_view caller,
                           ExemptionDone done) override;
  absl::StatusOr<storage::Page<storage::LookupRecord>> ListLookups(
      absl::string_view person_id, int page_size, absl::string_view page_token) override;
  absl::StatusOr<std::vector<storage::Payout>> ListPersonPayouts(absl::string_view person_id,
                                                                 int year) override;
  absl::StatusOr<storage::Page<storage::Card>> ListFreeCards(
      int year, std::optional<absl::CivilDay> issued_on, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<storage::Page<storage::Payout>> ListPayouts(absl::string_view run_id, int year,
                                                             int page_size,
                                                             absl::string_view page_token) override;
  absl::StatusOr<std::vector<storage::DueLedger>> ScanDue(
      const std::optional<storage::DueLedger>& after, size_t limit) override;
  absl::StatusOr<std::string> AllocateRunId() override;
  void DecideNextAsync(storage::RunInfo run, std::shared_ptr<storage::DueCursor> cursor,
                       size_t limit, DecideFn decide, DecideDone done) override;
  absl::StatusOr<storage::ProviderChange> PutProvider(const core::ProviderInput& in) override;
  absl::StatusOr<core::ProviderRecord> GetProvider(absl::string_view provider_id) override;
  absl::StatusOr<storage::Page<core::ProviderRecord>> ListProviders(
      std::optional<absl::CivilDay> in_force_on, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<VerifyReport> Verify() override;
  absl::StatusOr<storage::BackupInfo> Backup(const std::string& dest_dir) override;
  uint64_t ApproximateSizeBytes() override;
  uint64_t PendingCompactionBytes() override;
  // The register's own health, or why there is none.
  absl::Status Health() override;
  std::string AuditPseudonym(absl::string_view person_id) const override;

 private:
  // The register in force, or nullptr and `*why`.
  std::shared_ptr<storage::Register> Get(absl::Status* why) const;

  mutable absl::Mutex mu_;
  std::shared_ptr<storage::Register> reg_ ABSL_GUARDED_BY(mu_);
  absl::Status why_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_REGISTER_SLOT_H_
