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
#include "core/rules.h"
#include "gtest/gtest.h"
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

// An empty folder under the temp dir, named after `prefix`, this process and
// the running test; whatever was there before is removed.
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
