// A gmock mock of storage::Register for the tests that watch or steer the
// calls a job or a server makes to its register. Built on a real register
// (MockRegister(real) or DelegateTo(real)), every call goes to that register
// unless the test sets another action with ON_CALL or EXPECT_CALL (gmock's
// "delegating calls to a real object"); built without one, it is a plain mock.
#ifndef FRIKORT_TESTS_TESTING_MOCK_REGISTER_H_
#define FRIKORT_TESTS_TESTING_MOCK_REGISTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "core/copayment.h"
#include "core/types.h"
#include "gmock/gmock.h"
#include "storage/register.h"

namespace frikort::testing {

class MockRegister : public storage::Register {
 public:
  MockRegister() = default;
  // Delegates every call to `real` (not owned; must outlive the mock).
  explicit MockRegister(storage::Register* real) { DelegateTo(real); }

  MOCK_METHOD(void, SubmitAsync, (std::vector<core::CoPaymentInput> items, SubmitDone done),
              (override));
  MOCK_METHOD(void, UpdatePaymentAsync,
              (std::string provider_id, std::string report_id, int payment, ResultDone done),
              (override));
  MOCK_METHOD(void, CancelAsync,
              (std::string provider_id, std::string report_id, std::string reason, ResultDone done),
              (override));
  MOCK_METHOD(void, SetReservationAsync,
              (std::string person_id, bool reserved,
               absl::AnyInvocable<void(absl::Status) &&> done),
              (override));
  MOCK_METHOD(absl::StatusOr<storage::LedgerView>, GetLedger,
              (absl::string_view person_id, int year), (override));
  MOCK_METHOD(absl::StatusOr<storage::LedgerView>, GetLedgerPage,
              (absl::string_view person_id, int year, int page_size, absl::string_view page_token),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<storage::SchemeExemption>>, CheckExemption,
              (absl::string_view person_id, absl::CivilDay date, core::Category category,
               absl::string_view caller),
              (override));
  MOCK_METHOD(void, CheckExemptionAsync,
              (absl::string_view person_id, absl::CivilDay date, core::Category category,
               absl::string_view caller, ExemptionDone done),
              (override));
  MOCK_METHOD(absl::StatusOr<storage::Page<storage::LookupRecord>>, ListLookups,
              (absl::string_view person_id, int page_size, absl::string_view page_token),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<storage::Payout>>, ListPersonPayouts,
              (absl::string_view person_id, int year), (override));
  MOCK_METHOD(absl::StatusOr<storage::Page<storage::Card>>, ListFreeCards,
              (int year, std::optional<absl::CivilDay> issued_on, int page_size,
               absl::string_view page_token),
              (override));
  MOCK_METHOD(absl::StatusOr<storage::Page<storage::Payout>>, ListPayouts,
              (absl::string_view run_id, int year, int page_size, absl::string_view page_token),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<storage::DueLedger>>, ScanDue,
              (const std::optional<storage::DueLedger>& after, size_t limit), (override));
  MOCK_METHOD(absl::StatusOr<std::string>, AllocateRunId, (), (override));
  MOCK_METHOD(void, DecideNextAsync,
              (storage::RunInfo run, std::shared_ptr<storage::DueCursor> cursor, size_t limit,
               DecideFn decide, DecideDone done),
              (override));
  MOCK_METHOD(absl::StatusOr<VerifyReport>, Verify, (), (override));
  MOCK_METHOD(absl::StatusOr<storage::BackupInfo>, Backup, (const std::string& dest_dir),
              (override));
  MOCK_METHOD(uint64_t, ApproximateSizeBytes, (), (override));
  MOCK_METHOD(uint64_t, PendingCompactionBytes, (), (override));
  MOCK_METHOD(absl::Status, Health, (), (override));
  MOCK_METHOD(std::string, AuditPseudonym, (absl::string_view person_id), (const, override));

  // Makes `real`'s method the default action of every method.
  void DelegateTo(storage::Register* real) {
    using storage::Register;
    using ::testing::Invoke;
    ON_CALL(*this, SubmitAsync).WillByDefault(Invoke(real, &Register::SubmitAsync));
    ON_CALL(*this, UpdatePaymentAsync).WillByDefault(Invoke(real, &Register::UpdatePaymentAsync));
    ON_CALL(*this, CancelAsync).WillByDefault(Invoke(real, &Register::CancelAsync));
    ON_CALL(*this, SetReservationAsync).WillByDefault(Invoke(real, &Register::SetReservationAsync));
    ON_CALL(*this, GetLedger).WillByDefault(Invoke(real, &Register::GetLedger));
    ON_CALL(*this, GetLedgerPage).WillByDefault(Invoke(real, &Register::GetLedgerPage));
    ON_CALL(*this, CheckExemption).WillByDefault(Invoke(real, &Register::CheckExemption));
    ON_CALL(*this, CheckExemptionAsync).WillByDefault(Invoke(real, &Register::CheckExemptionAsync));
    ON_CALL(*this, ListLookups).WillByDefault(Invoke(real, &Register::ListLookups));
    ON_CALL(*this, ListPersonPayouts).WillByDefault(Invoke(real, &Register::ListPersonPayouts));
    ON_CALL(*this, ListFreeCards).WillByDefault(Invoke(real, &Register::ListFreeCards));
    ON_CALL(*this, ListPayouts).WillByDefault(Invoke(real, &Register::ListPayouts));
    ON_CALL(*this, ScanDue).WillByDefault(Invoke(real, &Register::ScanDue));
    ON_CALL(*this, AllocateRunId).WillByDefault(Invoke(real, &Register::AllocateRunId));
    ON_CALL(*this, DecideNextAsync).WillByDefault(Invoke(real, &Register::DecideNextAsync));
    ON_CALL(*this, Verify).WillByDefault(Invoke(real, &Register::Verify));
    ON_CALL(*this, Backup).WillByDefault(Invoke(real, &Register::Backup));
    ON_CALL(*this, ApproximateSizeBytes)
        .WillByDefault(Invoke(real, &Register::ApproximateSizeBytes));
    ON_CALL(*this, PendingCompactionBytes)
        .WillByDefault(Invoke(real, &Register::PendingCompactionBytes));
    ON_CALL(*this, Health).WillByDefault(Invoke(real, &Register::Health));
    ON_CALL(*this, AuditPseudonym).WillByDefault(Invoke(real, &Register::AuditPseudonym));
  }
};

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_MOCK_REGISTER_H_
