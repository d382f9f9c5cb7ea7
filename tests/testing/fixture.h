// What storage and job tests set up the same way: the deployed rules table and
// a fresh folder per test.
#ifndef FRIKORT_TESTS_TESTING_FIXTURE_H_
#define FRIKORT_TESTS_TESTING_FIXTURE_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "core/copayment.h"
#include "core/rules.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::testing {

// deploy/rules.txt of the source tree named by $FRIKORT_SOURCE_DIR.
inline absl::StatusOr<core::RulesTable> DeployedRules() {
  const char* src = std::getenv("FRIKORT_SOURCE_DIR");
  if (src == nullptr) return absl::FailedPreconditionError("FRIKORT_SOURCE_DIR is not set");
  return frikort::testing::ReadRulesFile(absl::StrCat(src, "/deploy/rules.txt"));
}

// The same without the direct-settlement requirement (rules_file.h says why).
inline absl::StatusOr<core::RulesTable> DeployedRulesWithoutAgreementRequirement() {
  const char* src = std::getenv("FRIKORT_SOURCE_DIR");
  if (src == nullptr) return absl::FailedPreconditionError("FRIKORT_SOURCE_DIR is not set");
  return frikort::testing::ReadRulesFileWithoutAgreementRequirement(
      absl::StrCat(src, "/deploy/rules.txt"));
}

// A test's SetUp for a register: the Oslo zone loaded and *rules set to
// DeployedRulesWithoutAgreementRequirement (call in ASSERT_NO_FATAL_FAILURE).
inline void LoadZoneAndRules(core::RulesTable* rules) {
  ASSERT_TRUE(LoadOsloTimeZone().ok());
  auto loaded = DeployedRulesWithoutAgreementRequirement();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  *rules = *std::move(loaded);
}

// An empty folder under the temp dir, named after `prefix`, this process and
// the running test; whatever was there before is removed.
// A paid physician's co-payment at noon (Oslo) on `day`, reported by HPR
// 1234567: the plain report tests and the benchmark vary only these fields.
inline core::CoPaymentInput PaidPhysicianReport(const std::string& report_id,
                                                const std::string& person_id, absl::CivilDay day,
                                                core::Ore amount) {
  core::CoPaymentInput in;
  in.report_id = report_id;
  in.provider_id = "1234567";
  in.person_id = person_id;
  in.service_time = core::OsloStartOfDay(day) + absl::Hours(12);
  in.category = static_cast<int>(core::Category::kPhysician);
  in.amount = amount;
  in.payment = static_cast<int>(core::Payment::kPaid);
  return in;
}

inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat(prefix, getpid(), "_",
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_FIXTURE_H_
