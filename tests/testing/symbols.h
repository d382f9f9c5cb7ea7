// The symbols of a built binary or library, as `nm` prints them: for tests
// that check what a piece of the build carries or calls.
#ifndef FRIKORT_TESTS_TESTING_SYMBOLS_H_
#define FRIKORT_TESTS_TESTING_SYMBOLS_H_

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace frikort::testutil {

// One line per symbol of `nm <flags> <path>`; fails the calling test when nm
// fails.
inline std::vector<std::string> Symbols(const std::string& path, const std::string& flags = "-C") {
  std::vector<std::string> symbols;
  FILE* pipe = popen(absl::StrCat("nm ", flags, " '", path, "' 2>&1").c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return symbols;
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output.substr(0, 2000);
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    symbols.emplace_back(line);
  }
  return symbols;
}

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_TESTING_SYMBOLS_H_
