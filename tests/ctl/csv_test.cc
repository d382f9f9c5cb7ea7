// frikortctl's CSV without a server: records and rows, with a clear error
// per bad row.
#include "ctl/csv.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/calendar.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"

namespace frikort::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CtlCsvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok()); }

  // Every row of `csv` (after its header) as "line: report_id" or
  // "line: error".
  std::vector<std::string> Rows(const std::string& csv) {
    std::istringstream in(csv);
    absl::StatusOr<std::unique_ptr<CsvImportReader>> reader = CsvImportReader::Open(&in);
    EXPECT_TRUE(reader.ok()) << reader.status();
    std::vector<std::string> out;
    if (!reader.ok()) return out;
    CsvImportReader::Row row;
    while ((*reader)->Next(&row)) {
      out.push_back(absl::StrCat(row.line, ": ",
                                 row.payment.ok() ? row.payment->report_id()
                                                  : std::string(row.payment.status().message())));
    }
    return out;
  }
  absl::Status HeaderError(const std::string& csv) {
    std::istringstream in(csv);
    return CsvImportReader::Open(&in).status();
  }
};

constexpr char kHeader[] =
    "report_id,provider_id,person_id,service_time,category,amount_ore,payment\n";

TEST_F(CtlCsvTest, SplitsQuotedFields) {
  EXPECT_THAT(*SplitCsvRecord("a,b,,c"), ElementsAre("a", "b", "", "c"));
  EXPECT_THAT(*SplitCsvRecord("\"a,b\",\"say \"\"hi\"\"\",x"),
              ElementsAre("a,b", "say \"hi\"", "x"));
  EXPECT_THAT(*SplitCsvRecord("\"two\nlines\""), ElementsAre("two\nlines"));
  EXPECT_THAT(*SplitCsvRecord(""), ElementsAre(""));
  EXPECT_THAT(SplitCsvRecord("\"open").status().message(), HasSubstr("never closed"));
  EXPECT_THAT(SplitCsvRecord("\"a\"b,c").status().message(), HasSubstr("after the closing quote"));
}

TEST_F(CtlCsvTest, CsvFieldQuotesOnlyWhenNeeded) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_THAT(*SplitCsvRecord(CsvField("x,\"y\"\nz")), ElementsAre("x,\"y\"\nz"));
}

TEST_F(CtlCsvTest, ParsesAGoodRowCompletely) {
  std::istringstream in(
      "payment,amount_ore,category,service_time,person_id,provider_id,report_id,"
      "performed_abroad,attributed_year\r\n"
      "invoiced_unpaid, 12345 ,Dental,2025-03-01T08:30:00+01:00,01016012345,973000000,r-1,yes,"
      "2024\r\n");
  absl::StatusOr<std::unique_ptr<CsvImportReader>> reader = CsvImportReader::Open(&in);
  ASSERT_TRUE(reader.ok()) << reader.status();
  CsvImportReader::Row row;
  ASSERT_TRUE((*reader)->Next(&row));
  ASSERT_TRUE(row.payment.ok()) << row.payment.status();
  EXPECT_EQ(row.line, 2);
  const v1::CoPayment& p = *row.payment;
  EXPECT_EQ(p.report_id(), "r-1");
  EXPECT_EQ(p.provider_id(), "973000000");
  EXPECT_EQ(p.person_id(), "01016012345");
  EXPECT_EQ(p.service_time().seconds(),
            absl::ToUnixSeconds(
                absl::FromCivil(absl::CivilSecond(2025, 3, 1, 7, 30, 0), absl::UTCTimeZone())));
  EXPECT_EQ(p.category(), v1::DENTAL);
  EXPECT_EQ(p.amount_ore(), 12345);
  EXPECT_EQ(p.payment(), v1::INVOICED_UNPAID);
  EXPECT_TRUE(p.performed_abroad());
  EXPECT_EQ(p.attributed_year(), 2024);
  EXPECT_FALSE((*reader)->Next(&row));
  EXPECT_EQ((*reader)->bytes_read(), in.str().size());
}

TEST_F(CtlCsvTest, ServiceTimesInOsloOrWithAnOffset) {
  // 1 July: Oslo is UTC+2.
  const absl::Time expected =
      absl::FromCivil(absl::CivilSecond(2025, 7, 1, 6, 0, 0), absl::UTCTimeZone());
  for (const char* text :
       {"2025-07-01T08:00:00+02:00", "2025-07-01T06:00:00Z", "2025-07-01T08:00:00",
        "2025-07-01T08:00", "2025-07-01 08:00:00", "2025-07-01 08:00", " 2025-07-01 08:00 "}) {
    absl::StatusOr<absl::Time> t = ParseServiceTime(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.status();
    EXPECT_EQ(*t, expected) << text;
  }
  for (const char* text : {"", "2025-07-01", "01.07.2025 08:00", "2025-13-01 08:00", "soon"}) {
    EXPECT_THAT(ParseServiceTime(text).status().message(), HasSubstr("service_time")) << text;
  }
}

TEST_F(CtlCsvTest, EveryBadRowIsNamedWithItsReason) {
  const std::string csv = absl::StrCat(
      kHeader, "ok-1,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,100,PAID\n",
      "\n",  // blank lines are skipped, and counted as lines
      "t-1,1234567,01016012345,March,PHYSICIAN,100,PAID\n",
      "c-1,1234567,01016012345,2025-03-01 08:00,SURGEON,100,PAID\n",
      "c-2,1234567,01016012345,2025-03-01 08:00,SERVICE_CATEGORY_UNSPECIFIED,100,PAID\n",
      "a-1,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,1.50,PAID\n",
      "p-1,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,100,MAYBE\n",
      "n-1,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,100\n",
      "\"q-1,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,100,PAID\n",
      "ok-2,1234567,01016012345,2025-03-01 08:00,PHYSICIAN,100,PAID\n");
  std::vector<std::string> rows = Rows(csv);
  ASSERT_EQ(rows.size(), 8u);
  EXPECT_EQ(rows[0], "2: ok-1");
  EXPECT_THAT(rows[1], HasSubstr("4: service_time: 'March' is not a time"));
  EXPECT_THAT(rows[2], HasSubstr("5: category: 'SURGEON' is not one of PHYSICIAN, PSYCHOLOGIST"));
  EXPECT_THAT(rows[3], HasSubstr("6: category: 'SERVICE_CATEGORY_UNSPECIFIED' is not one of"));
  EXPECT_THAT(rows[4], HasSubstr("7: amount_ore: '1.50' is not a whole number"));
  EXPECT_THAT(rows[5], HasSubstr("8: payment: 'MAYBE' is not one of PAID, INVOICED"));
  EXPECT_THAT(rows[6], HasSubstr("9: has 6 fields; the header has 7"));
  // An unclosed quote swallows the rest of the file: one error, not a crash.
  EXPECT_THAT(rows[7], HasSubstr("10: field 1: a quote is never closed"));
}

TEST_F(CtlCsvTest, OptionalColumnsAreChecked) {
  const std::string header =
      "report_id,provider_id,person_id,service_time,category,amount_ore,payment,performed_abroad,"
      "attributed_year\n";
  std::vector<std::string> rows =
      Rows(absl::StrCat(header, "r1,1,2,2025-03-01 08:00,PHYSICIAN,1,PAID,perhaps,\n",
                        "r2,1,2,2025-03-01 08:00,PHYSICIAN,1,PAID,,last year\n",
                        "r3,1,2,2025-03-01 08:00,PHYSICIAN,1,PAID,no,\n"));
  EXPECT_THAT(rows,
              ElementsAre(HasSubstr("2: performed_abroad: 'perhaps'"),
                          HasSubstr("3: attributed_year: 'last year' is not a year"), "4: r3"));
}

TEST_F(CtlCsvTest, BadHeaders) {
  EXPECT_THAT(HeaderError("").message(), HasSubstr("the file is empty"));
  EXPECT_THAT(HeaderError("report_id,provider_id\n").message(),
              HasSubstr("column person_id is missing"));
  EXPECT_THAT(HeaderError(absl::StrCat("colour,", kHeader)).message(),
              HasSubstr("unknown column 'colour'"));
  EXPECT_THAT(HeaderError(absl::StrCat("payment,", kHeader)).message(),
              HasSubstr("column payment appears twice"));
  // A byte order mark and upper case are fine.
  EXPECT_TRUE(HeaderError(absl::StrCat("\xEF\xBB\xBFREPORT_ID,", kHeader + 10)).ok());
}

}  // namespace
}  // namespace frikort::ctl
