// core/ is pure domain: it reads no files, no tzdata and no clock (the edge
// loads the zone and the rules text and hands core a Clock). The built core
// library's undefined symbols are what it calls outside itself; none may be
// the system clock, the time-zone loader, file or directory access, or the
// libraries only the edges use.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/testing/symbols.h"

namespace frikort::testutil {
namespace {

constexpr char kImpure[] =
    "absl::\\S*::(Now|GetCurrentTimeNanos|LoadTimeZone|LocalTimeZone)\\(|"
    "\\b(fopen|fopen64|open|open64|openat|opendir|stat|stat64|clock_gettime|gettimeofday|time|"
    "getenv)$|basic_[io]?fstream|std::filesystem|rocksdb|grpc|google::protobuf|OPENSSL|EVP_|"
    "prometheus";

TEST(CorePurityTest, CoreCallsNoClockNoFilesNoEdgeLibraries) {
  const std::vector<std::string> symbols = Symbols(FRIKORT_CORE_LIBRARY, "-C -u");
  // nm really listed core's calls (an empty list would pass anything).
  auto calls = [&](const std::string& needle) {
    for (const std::string& s : symbols) {
      if (s.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(calls("frikort::core::OsloDate(")) << symbols.size() << " symbols";

  const std::regex impure(kImpure);
  std::vector<std::string> found;
  for (const std::string& s : symbols) {
    if (std::regex_search(s, impure)) found.push_back(s);
  }
  EXPECT_TRUE(found.empty()) << "core calls out of the pure domain:\n"
                             << absl::StrJoin(found, "\n");
}

// The pattern finds what it looks for, so the test above can fail.
TEST(CorePurityTest, ThePatternFindsImpureCalls) {
  const std::regex impure(kImpure);
  for (const char* s :
       {"                 U absl::lts_2023::Now()",
        "                 U absl::debian3::time_internal::LoadTimeZone(std::string "
        "const&, absl::debian3::TimeZone*)",
        "                 U absl::debian3::LoadTimeZone(absl::debian3::string_view, "
        "absl::debian3::TimeZone*)",
        "                 U fopen", "                 U clock_gettime",
        "                 U std::basic_ifstream<char, std::char_traits<char> >::"
        "basic_ifstream()",
        "                 U rocksdb::DB::Open()"}) {
    EXPECT_TRUE(std::regex_search(s, impure)) << s;
  }
  for (const char* s : {"                 U absl::debian3::TimeZone::At(absl::debian3::Time) const",
                        "                 U fwrite", "                 U inet_pton",
                        "                 U frikort::core::OsloDate(absl::debian3::Time)"}) {
    EXPECT_FALSE(std::regex_search(s, impure)) << s;
  }
}

}  // namespace
}  // namespace frikort::testutil
