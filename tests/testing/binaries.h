// Where the tests find the project's binaries (frikortd, frikortctl, the
// descriptor set): an environment variable, or else the build folder, where
// every binary and test is built side by side.
#ifndef FRIKORT_TESTS_TESTING_BINARIES_H_
#define FRIKORT_TESTS_TESTING_BINARIES_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace frikort::testutil {

// $<env>, or else the binary `name` next to this test binary; "" if neither.
inline std::string BinaryPath(const char* env_name, const char* name) {
  const char* env = std::getenv(env_name);
  if (env != nullptr && env[0] != '\0') return env;
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  std::filesystem::path sibling = self.parent_path() / name;
  return std::filesystem::exists(sibling, ec) ? sibling.string() : "";
}

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_TESTING_BINARIES_H_
