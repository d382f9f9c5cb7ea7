// Reads a rules file for tests and the benchmark (frikortd reads its own in
// server/startup_files; core/ only parses text).
#ifndef FRIKORT_TESTS_TESTING_RULES_FILE_H_
#define FRIKORT_TESTS_TESTING_RULES_FILE_H_

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/rules.h"

namespace frikort::testing {

inline absl::StatusOr<core::RulesTable> ReadRulesFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the rules file"));
  std::stringstream text;
  text << in.rdbuf();
  return core::RulesTable::Parse(text.str());
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_RULES_FILE_H_
