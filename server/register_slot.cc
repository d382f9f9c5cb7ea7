#include "server/register_slot.h"

#include <utility>

namespace frikort::server {

using storage::Register;

RegisterSlot::RegisterSlot(absl::Status why) : why_(std::move(why)) {}

std::shared_ptr<Register> RegisterSlot::Swap(std::shared_ptr<Register> reg, absl::Status why) {
  absl::MutexLock l(&mu_);
  std::swap(reg_, reg);
  if (reg_ == nullptr) {
    why_ = why.ok() ? absl::UnavailableError("the register is not open") : std::move(why);
  }
  return reg;
}

std::shared_ptr<Register> RegisterSlot::Current() const {
  absl::ReaderMutexLock l(&mu_);
  return reg_;
}

std::shared_ptr<Register> RegisterSlot::Get(absl::Status* why) const {
  absl::ReaderMutexLock l(&mu_);
  if (reg_ == nullptr) *why = why_;
  return reg_;
}

void RegisterSlot::SubmitAsync(std::vector<core::CoPaymentInput> items, SubmitDone done) {
  absl::Status why;
  if (auto r = Get(&why)) return r->SubmitAsync(std::move(items), std::move(done));
  std::move(done)(why);
}

void RegisterSlot::UpdatePaymentAsync(std::string provider_id, std::string report_id, int payment,
                                      ResultDone done) {
  absl::Status why;
  if (auto r = Get(&why)) {
    return r->UpdatePaymentAsync(std::move(provider_id), std::move(report_id), payment,
                                 std::move(done));
  }
  std::move(done)(why);
}

void RegisterSlot::CancelAsync(std::string provider_id, std::string report_id, std::string reason,
                               ResultDone done) {
  absl::Status why;
  if (auto r = Get(&why)) {
    return r->CancelAsync(std::move(provider_id), std::move(report_id), std::move(reason),
                          std::move(done));
  }
  std::move(done)(why);
}

void RegisterSlot::SetReservationAsync(std::string person_id, bool reserved,
                                       absl::AnyInvocable<void(absl::Status) &&> done) {
  absl::Status why;
  if (auto r = Get(&why)) {
    return r->SetReservationAsync(std::move(person_id), reserved, std::move(done));
  }
  std::move(done)(why);
}

absl::StatusOr<storage::LedgerView> RegisterSlot::GetLedger(absl::string_view person_id, int year) {
  absl::Status why;
  if (auto r = Get(&why)) return r->GetLedger(person_id, year);
  return why;
}

absl::StatusOr<storage::LedgerView> RegisterSlot::GetLedgerPage(absl::string_view person_id,
                                                                int year, int page_size,
                                                                absl::string_view page_token) {
  absl::Status why;
  if (auto r = Get(&why)) return r->GetLedgerPage(person_id, year, page_size, page_token);
  return why;
}

absl::StatusOr<std::vector<storage::SchemeExemption>> RegisterSlot::CheckExemption(
    absl::string_view person_id, absl::CivilDay date, core::Category category,
    absl::string_view caller) {
  absl::Status why;
  if (auto r = Get(&why)) return r->CheckExemption(person_id, date, category, caller);
  return why;
}

void RegisterSlot::CheckExemptionAsync(absl::string_view person_id, absl::CivilDay date,
                                       core::Category category, absl::string_view caller,
                                       ExemptionDone done) {
  absl::Status why;
  if (auto r = Get(&why)) {
    return r->CheckExemptionAsync(person_id, date, category, caller, std::move(done));
  }
  std::move(done)(why);
}

absl::StatusOr<storage::Page<storage::LookupRecord>> RegisterSlot::ListLookups(
    absl::string_view person_id, int page_size, absl::string_view page_token) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ListLookups(person_id, page_size, page_token);
  return why;
}

absl::StatusOr<std::vector<storage::Payout>> RegisterSlot::ListPersonPayouts(
    absl::string_view person_id, int year) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ListPersonPayouts(person_id, year);
  return why;
}

absl::StatusOr<storage::Page<storage::Card>> RegisterSlot::ListFreeCards(
    int year, std::optional<absl::CivilDay> issued_on, int page_size,
    absl::string_view page_token) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ListFreeCards(year, issued_on, page_size, page_token);
  return why;
}

absl::StatusOr<storage::Page<storage::Payout>> RegisterSlot::ListPayouts(
    absl::string_view run_id, int year, int page_size, absl::string_view page_token) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ListPayouts(run_id, year, page_size, page_token);
  return why;
}

absl::StatusOr<std::vector<storage::DueLedger>> RegisterSlot::ScanDue(
    const std::optional<storage::DueLedger>& after, size_t limit) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ScanDue(after, limit);
  return why;
}

absl::StatusOr<std::string> RegisterSlot::AllocateRunId() {
  absl::Status why;
  if (auto r = Get(&why)) return r->AllocateRunId();
  return why;
}

void RegisterSlot::DecideNextAsync(storage::RunInfo run, std::shared_ptr<storage::DueCursor> cursor,
                                   size_t limit, DecideFn decide, DecideDone done) {
  absl::Status why;
  if (auto r = Get(&why)) {
    return r->DecideNextAsync(std::move(run), std::move(cursor), limit, std::move(decide),
                              std::move(done));
  }
  std::move(done)(why);
}

absl::StatusOr<storage::ProviderChange> RegisterSlot::PutProvider(const core::ProviderInput& in) {
  absl::Status why;
  if (auto r = Get(&why)) return r->PutProvider(in);
  return why;
}

absl::StatusOr<core::ProviderRecord> RegisterSlot::GetProvider(absl::string_view provider_id) {
  absl::Status why;
  if (auto r = Get(&why)) return r->GetProvider(provider_id);
  return why;
}

absl::StatusOr<storage::Page<core::ProviderRecord>> RegisterSlot::ListProviders(
    std::optional<absl::CivilDay> in_force_on, int page_size, absl::string_view page_token) {
  absl::Status why;
  if (auto r = Get(&why)) return r->ListProviders(in_force_on, page_size, page_token);
  return why;
}

absl::StatusOr<Register::VerifyReport> RegisterSlot::Verify() {
  absl::Status why;
  if (auto r = Get(&why)) return r->Verify();
  return why;
}

absl::StatusOr<storage::BackupInfo> RegisterSlot::Backup(const std::string& dest_dir) {
  absl::Status why;
  if (auto r = Get(&why)) return r->Backup(dest_dir);
  return why;
}

uint64_t RegisterSlot::ApproximateSizeBytes() {
  absl::Status why;
  if (auto r = Get(&why)) return r->ApproximateSizeBytes();
  return 0;
}

uint64_t RegisterSlot::PendingCompactionBytes() {
  absl::Status why;
  if (auto r = Get(&why)) return r->PendingCompactionBytes();
  return 0;
}

absl::Status RegisterSlot::Health() {
  absl::Status why;
  if (auto r = Get(&why)) return r->Health();
  return why;
}

std::string RegisterSlot::AuditPseudonym(absl::string_view person_id) const {
  absl::Status why;
  if (auto r = Get(&why)) return r->AuditPseudonym(person_id);
  return "";
}

}  // namespace frikort::server
