// frikortctl's logic without a server: output formats, usage checks and
// channel credentials. (The CSV reader: csv_test.cc.)
#include <string>
#include <vector>

#include "core/calendar.h"
#include "ctl/commands.h"
#include "ctl/connect.h"
#include "ctl/format.h"
#include "ctl/options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"

namespace frikort::ctl {
namespace {

using ::testing::HasSubstr;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok()); }
};

TEST_F(CtlTest, Formats) {
  EXPECT_EQ(*ParseFormat("csv"), Format::kCsv);
  EXPECT_EQ(*ParseFormat("table"), Format::kTable);
  EXPECT_THAT(ParseFormat("json").status().message(), HasSubstr("--format: 'json'"));
  EXPECT_EQ(Table({"a", "long header"}, {{"wide cell", "x"}, {"b", ""}}),
            "a          long header\n"
            "wide cell  x\n"
            "b\n");
}

TEST_F(CtlTest, PayoutsAndCardsAsCsvAndTable) {
  v1::Payout p;
  p.set_person_id("01016012345");
  p.set_year(2025);
  p.set_scheme(v1::TAK);
  p.set_amount_ore(72200);
  p.set_run_id("run-000001");
  p.set_created_on("2025-06-01");
  EXPECT_EQ(FormatPayouts({p, p}, Format::kCsv),
            "person_id,year,scheme,amount_ore,run_id,created_on\n"
            "01016012345,2025,TAK,72200,run-000001,2025-06-01\n"
            "01016012345,2025,TAK,72200,run-000001,2025-06-01\n");
  EXPECT_THAT(FormatPayouts({p, p}, Format::kTable), HasSubstr("2 payouts, 144400 øre"));
  EXPECT_EQ(FormatPayouts({}, Format::kCsv),
            "person_id,year,scheme,amount_ore,run_id,created_on\n");
  v1::FreeCard c;
  c.set_person_id("01016012345");
  c.set_year(2025);
  c.set_scheme(v1::TAK);
  c.set_valid_from("2025-03-01");
  c.set_valid_to("2025-12-31");
  c.set_issued_on("2025-03-05");
  c.set_basis_total_ore(400000);
  c.set_under_review(true);
  EXPECT_EQ(FormatCards({c}, Format::kCsv),
            "person_id,year,scheme,valid_from,valid_to,issued_on,basis_total_ore,under_review\n"
            "01016012345,2025,TAK,2025-03-01,2025-12-31,2025-03-05,400000,true\n");
}

TEST_F(CtlTest, UsageChecks) {
  Options o;
  EXPECT_TRUE(CheckUsage({"issue"}, o).ok());
  EXPECT_THAT(CheckUsage({}, o).message(), HasSubstr("no command"));
  EXPECT_THAT(CheckUsage({"lookup"}, o).message(), HasSubstr("missing PERSON"));
  EXPECT_THAT(CheckUsage({"lookup", ""}, o).message(), HasSubstr("PERSON is empty"));
  EXPECT_THAT(CheckUsage({"cards"}, o).message(), HasSubstr("--year=Y is required"));
  o.given = {"as_of"};
  EXPECT_THAT(CheckUsage({"lookup", "1"}, o).message(), HasSubstr("--as-of does not apply"));
  o = Options();
  o.year = 2025;
  o.format = "xml";
  EXPECT_THAT(CheckUsage({"cards"}, o).message(), HasSubstr("--format: 'xml'"));
  o = Options();
  o.batch_size = 0;
  EXPECT_THAT(CheckUsage({"import", "f.csv"}, o).message(), HasSubstr("--batch_size"));
}

TEST_F(CtlTest, Credentials) {
  EXPECT_TRUE(MakeChannelCredentials({}, "127.0.0.1:50051").ok());
  EXPECT_TRUE(MakeChannelCredentials({}, "[::1]:50051").ok());
  EXPECT_THAT(MakeChannelCredentials({}, "frikort.example:443").status().message(),
              HasSubstr("not a loopback address"));
  EXPECT_THAT(MakeChannelCredentials({}, "no-port").status().message(), HasSubstr("--server"));
  TlsFiles half;
  half.cert = "/c.pem";
  EXPECT_THAT(MakeChannelCredentials(half, "127.0.0.1:1").status().message(),
              HasSubstr("--tls_cert and --tls_key go together"));
  TlsFiles missing;
  missing.ca = "/no/such/ca.pem";
  EXPECT_THAT(MakeChannelCredentials(missing, "frikort.example:443").status().message(),
              HasSubstr("--tls_ca /no/such/ca.pem: cannot read"));
}

}  // namespace
}  // namespace frikort::ctl
