// The rules file as frikortd reads it at startup: errors name the flag, the
// path and, for a malformed table, the line.
#include "server/startup_files.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace frikort::server {
namespace {

using ::testing::HasSubstr;

TEST(LoadRulesTest, ErrorsNameTheFlagThePathAndTheLine) {
  auto missing = LoadRules("/nonexistent/frikort/rules.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("rules_file /nonexistent/frikort/rules.txt"));

  const std::string path = absl::StrCat(::testing::TempDir(), "/bad_rules.txt");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("year 2024 tak=3165 minimum=0\nfoo\n", f);
  std::fclose(f);
  auto bad = LoadRules(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("line 2: unknown keyword"));
  std::remove(path.c_str());
}

TEST(LoadRulesTest, ReadsTheShippedTable) {
  const char* src = std::getenv("FRIKORT_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto rules = LoadRules(absl::StrCat(src, "/deploy/rules.txt"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->first_year(), 2010);
  EXPECT_NE((*rules)->ForYear(2024), nullptr);
}

}  // namespace
}  // namespace frikort::server
