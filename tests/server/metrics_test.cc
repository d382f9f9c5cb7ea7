// The RPC metrics are labelled by the contract's methods only: any other path
// a client calls is counted in one "unknown" series, so /metrics neither grows
// with what clients send nor repeats it.
#include "server/metrics.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

class MetricsTest : public ServerTest {
 protected:
  void ConfigureServer(server::ServerOptions* options) override { options->metrics = &metrics_; }

  // A unary call of `path` with an empty request; its status code.
  grpc::StatusCode CallPath(const std::string& path) {
    return RawUnaryCall(channel_, path, "", absl::Seconds(10)).error_code();
  }

  // The lines of frikort_rpcs_total, one per series.
  std::vector<std::string> RpcSeries() const {
    std::vector<std::string> series;
    for (absl::string_view line : absl::StrSplit(metrics_.Render(), '\n')) {
      if (absl::StartsWith(line, "frikort_rpcs_total{")) series.emplace_back(line);
    }
    return series;
  }

  server::Metrics metrics_{nullptr};  // no register gauges: the fixture's closes first
};

TEST_F(MetricsTest, UnknownMethodsShareOneSeries) {
  const std::string id = PersonId(3);
  std::vector<std::string> paths;
  for (int i = 0; i < 48; ++i) paths.push_back(absl::StrCat("/frikort.v1.Nothing/Call", i));
  paths.push_back("/frikort.v1.Lookup/NoSuchMethod");
  paths.push_back(absl::StrCat("/frikort.v1.Lookup/", id));
  ASSERT_EQ(std::set<std::string>(paths.begin(), paths.end()).size(), 50u);
  for (const std::string& path : paths) {
    EXPECT_EQ(CallPath(path), grpc::StatusCode::UNIMPLEMENTED) << path;
  }
  // The contract's methods, health and reflection keep their own names.
  v1::CheckExemptionResponse response;
  EXPECT_EQ(Check("123", "2026-06-01", v1::SERVICE_CATEGORY_UNSPECIFIED, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HealthCheck(channel_, "").status.ok());

  const std::vector<std::string> series = RpcSeries();
  EXPECT_THAT(series, ::testing::UnorderedElementsAre(
                          "frikort_rpcs_total{code=\"UNIMPLEMENTED\",method=\"unknown\"} 50",
                          "frikort_rpcs_total{code=\"INVALID_ARGUMENT\",method=\"frikort.v1."
                          "Lookup/CheckExemption\"} 1",
                          "frikort_rpcs_total{code=\"OK\",method=\"grpc.health.v1.Health/"
                          "Check\"} 1"));
  const std::string text = metrics_.Render();
  // (Not the whole text on failure: it can be very long.)
  EXPECT_FALSE(absl::StrContains(text, id));
  EXPECT_FALSE(absl::StrContains(text, "Nothing"));
  EXPECT_LT(text.size(), 20000u);
}

class AgreementMetricsTest : public MetricsTest {
 protected:
  bool RequireAgreements() const override { return true; }
};

TEST_F(AgreementMetricsTest, CountsReportsNotCountedForLackOfAnAgreement) {
  const std::string person = PersonId(1);
  Report("a1", person, 10000, absl::FromUnixSeconds(1772359200));  // 2026-03-01
  Report("a2", person, 10000, absl::FromUnixSeconds(1772359200));
  Report("a3", person, 10000, absl::FromUnixSeconds(1577872800));  // 2020-01-01: not required
  EXPECT_THAT(metrics_.Render(), ::testing::HasSubstr("frikort_reports_without_agreement_total 2"));
}

}  // namespace
}  // namespace frikort::testutil
