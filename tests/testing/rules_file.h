// Reads a rules file for tests and the benchmark (frikortd reads its own in
// server/startup_files; core/ only parses text).
#ifndef FRIKORT_TESTS_TESTING_RULES_FILE_H_
#define FRIKORT_TESTS_TESTING_RULES_FILE_H_

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/rules.h"

namespace frikort::testing {

inline absl::StatusOr<std::string> ReadRulesText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the rules file"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline absl::StatusOr<core::RulesTable> ReadRulesFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadRulesText(path);
  if (!text.ok()) return text.status();
  return core::RulesTable::Parse(*text);
}

// A rules file's text without the direct-settlement requirement (domain rule
// 13). For the tests of the other rules, whose reports come from providers
// the registry does not know; rule 13 has tests of its own
// (tests/storage/providers_test.cc and the Providers service's).
inline std::string WithoutAgreementRequirement(std::string text) {
  absl::StrReplaceAll({{"direct_settlement=yes", ""}}, &text);
  return text;
}

inline absl::StatusOr<core::RulesTable> ReadRulesFileWithoutAgreementRequirement(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadRulesText(path);
  if (!text.ok()) return text.status();
  return core::RulesTable::Parse(WithoutAgreementRequirement(*text));
}

// WithoutAgreementRequirement of the file `path`, written to `dest` (for tests
// that start frikortd with --rules_file); returns `dest`.
inline absl::StatusOr<std::string> WriteRulesFileWithoutAgreementRequirement(
    const std::string& path, const std::string& dest) {
  absl::StatusOr<std::string> text = ReadRulesText(path);
  if (!text.ok()) return text.status();
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  out << WithoutAgreementRequirement(*text);
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(dest, ": cannot write the rules file"));
  return dest;
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_RULES_FILE_H_
