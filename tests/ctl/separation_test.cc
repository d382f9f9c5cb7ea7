// frikortctl is a client of the contract and nothing more: the built binary
// ($FRIKORTCTL, or build/frikortctl) must carry no code of the server, the
// issuance job, the register or the metrics. Its symbols (nm -C) are read and
// none may name them: this fails as soon as anything in ctl/ (or what it
// links) calls into server/, jobs/ or storage/. And the link lines CMake has
// for it may not name their libraries either.
#include <array>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/binaries.h"
#include "tests/testing/symbols.h"

namespace frikort::testutil {
namespace {

// A symbol of the server side: the server, the job and the register by
// namespace, the server and the register by class name wherever in frikort
// they would be declared, and the libraries only the daemon needs.
constexpr char kServerSide[] =
    "frikort::(server|storage|jobs)::|FrikortServer|frikort::(\\w+::)*Register\\b|"
    "prometheus|rocksdb";

TEST(SeparationTest, FrikortctlCarriesNoServerCode) {
  const std::string binary = BinaryPath("FRIKORTCTL", "frikortctl");
  ASSERT_FALSE(binary.empty()) << "no frikortctl: set FRIKORTCTL or build it next to this test";
  const std::vector<std::string> symbols = Symbols(binary);

  // nm really read the tool's own symbols (a stripped binary would pass
  // anything below).
  auto has = [&](const std::string& needle) {
    for (const std::string& s : symbols) {
      if (s.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(has("frikort::ctl::Run(")) << symbols.size() << " symbols";
  ASSERT_TRUE(has("frikort::ctl::CsvImportReader::"));

  const std::regex forbidden(kServerSide);
  std::vector<std::string> found;
  for (const std::string& s : symbols) {
    if (std::regex_search(s, forbidden)) found.push_back(s);
  }
  if (found.size() > 20) found.resize(20);
  EXPECT_TRUE(found.empty()) << "symbols of the server side in " << binary << ", e.g.:\n"
                             << absl::StrJoin(found, "\n");
}

// What CMake links frikortctl and frikort_ctl with (set by
// CMakeLists.txt): a library of the server side named there but not yet used
// would not show in the symbols above.
TEST(SeparationTest, FrikortctlIsNotLinkedWithTheServerSide) {
  const std::vector<std::string> libraries =
      absl::StrSplit(FRIKORTCTL_LINK_LIBRARIES, '|', absl::SkipEmpty());
  EXPECT_THAT(libraries, ::testing::Contains("frikort_ctl"));
  EXPECT_THAT(libraries, ::testing::Contains("frikort_proto"));
  for (const std::string& library : libraries) {
    EXPECT_FALSE(std::regex_search(library, std::regex("frikort_(server|jobs|storage)|"
                                                       "prometheus|[Rr]ocks[Dd][Bb]|jemalloc")))
        << library << " in " << FRIKORTCTL_LINK_LIBRARIES;
  }
}

// The pattern above does find what it looks for (so the test above can fail).
TEST(SeparationTest, ThePatternFindsServerSymbols) {
  const std::regex forbidden(kServerSide);
  for (const char* s :
       {"0000000000401000 T frikort::server::ToGrpcStatus(absl::Status const&)",
        "0000000000401000 T frikort::storage::Register::Open(std::string const&)",
        "0000000000401000 W frikort::jobs::IssuanceJob::~IssuanceJob()",
        "                 U prometheus::Registry::Registry(prometheus::Registry::InsertBehavior)",
        "                 U rocksdb::DB::Open(rocksdb::Options const&)"}) {
    EXPECT_TRUE(std::regex_search(s, forbidden)) << s;
  }
  for (const char* s :
       {"0000000000401000 T frikort::ctl::Run(std::vector<std::string> const&)",
        "                 U absl::flags_internal::RegisterCommandLineFlag(absl::CommandLineFlag&)",
        "0000000000401000 W grpc::internal::InterceptedChannel::RegisterMethod(char const*)"}) {
    EXPECT_FALSE(std::regex_search(s, forbidden)) << s;
  }
}

}  // namespace
}  // namespace frikort::testutil
