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

TEST_F(CtlTest, ProvidersInTheImportsColumnsAndWhyAnEntryDoesNotCount) {
  v1::Provider p;
  p.set_provider_id("974760673");
  p.set_name("Oslo kommune, legevakt");
  v1::Agreement* a = p.add_agreements();
  a->set_valid_from("2021-01-01");
  a->set_valid_to("2022-12-31");
  a->set_version("v1");
  p.add_agreements()->set_valid_from("2023-01-01");
  v1::Provider none;
  none.set_provider_id("1234567");
  none.set_name("Lege");
  EXPECT_EQ(FormatProviders({p, none}, Format::kCsv),
            "provider_id,name,valid_from,valid_to,version\n"
            "974760673,\"Oslo kommune, legevakt\",2021-01-01,2022-12-31,v1\n"
            "974760673,\"Oslo kommune, legevakt\",2023-01-01,,\n"
            "1234567,Lege,,,\n");
  EXPECT_THAT(FormatProviders({p}, Format::kTable), HasSubstr("1 providers"));
  EXPECT_EQ(NotCountedNote(v1::NO_DIRECT_SETTLEMENT),
            "not counted: no direct-settlement agreement");
  EXPECT_EQ(NotCountedNote(v1::UNPAID), "not counted: unpaid");
  v1::Ledger ledger;
  v1::LedgerEntry* e = ledger.add_entries();
  e->set_counted(false);
  e->set_not_counted_reason(v1::NO_DIRECT_SETTLEMENT);
  EXPECT_THAT(FormatLedger(ledger), HasSubstr("no direct-settlement agreement"));
}

TEST_F(CtlTest, ProvidersUsage) {
  Options o;
  EXPECT_TRUE(CheckUsage({"providers", "import", "p.csv"}, o).ok());
  EXPECT_THAT(CheckUsage({"providers", "import"}, o).message(), HasSubstr("missing FILE"));
  EXPECT_TRUE(CheckUsage({"providers", "list"}, o).ok());
  EXPECT_TRUE(CheckUsage({"provider", "1234567"}, o).ok());
  o.in_force_on = "2025-02-30";
  o.given = {"in_force_on"};
  EXPECT_THAT(CheckUsage({"providers", "list"}, o).message(), HasSubstr("--in-force-on"));
  EXPECT_THAT(CheckUsage({"provider", "1"}, o).message(), HasSubstr("does not apply"));
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
