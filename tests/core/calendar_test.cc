#include "core/calendar.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/oslo.h"

namespace frikort::core {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

class CalendarTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok()); }
};

TEST_F(CalendarTest, YearBoundaryIsOsloNotUtc) {
  // 23:30 UTC on New Year's Eve is 00:30 on 1 January in Oslo (UTC+1 in winter).
  const absl::Time t = Utc(2023, 12, 31, 23, 30);
  EXPECT_EQ(OsloDate(t), absl::CivilDay(2024, 1, 1));
  EXPECT_EQ(OsloYear(t), 2024);
  // 22:59:59 UTC is still 31 December in Oslo.
  EXPECT_EQ(OsloDate(Utc(2023, 12, 31, 22, 59, 59)), absl::CivilDay(2023, 12, 31));
  EXPECT_EQ(OsloYear(Utc(2023, 12, 31, 22, 59, 59)), 2023);
  EXPECT_EQ(OsloDate(Utc(2023, 12, 31, 23, 0, 0)), absl::CivilDay(2024, 1, 1));
}

TEST_F(CalendarTest, SummerTimeOffset) {
  // 22:30 UTC in July is 00:30 the next day in Oslo (UTC+2).
  EXPECT_EQ(OsloDate(Utc(2024, 7, 1, 22, 30)), absl::CivilDay(2024, 7, 2));
  EXPECT_EQ(OsloDate(Utc(2024, 7, 1, 21, 59)), absl::CivilDay(2024, 7, 1));
}

TEST_F(CalendarTest, StartOfDayAroundDaylightSavingChanges) {
  // The day summer time starts (clocks go 02:00 -> 03:00) still begins at local
  // midnight, which is 23:00 UTC the day before (winter offset); it lasts 23 hours.
  EXPECT_EQ(OsloStartOfDay(absl::CivilDay(2024, 3, 31)), Utc(2024, 3, 30, 23, 0));
  EXPECT_EQ(OsloStartOfDay(absl::CivilDay(2024, 4, 1)), Utc(2024, 3, 31, 22, 0));
  EXPECT_EQ(
      OsloStartOfDay(absl::CivilDay(2024, 4, 1)) - OsloStartOfDay(absl::CivilDay(2024, 3, 31)),
      absl::Hours(23));
  // The day it ends (03:00 -> 02:00) begins at 22:00 UTC (summer offset) and lasts 25 hours.
  EXPECT_EQ(OsloStartOfDay(absl::CivilDay(2024, 10, 27)), Utc(2024, 10, 26, 22, 0));
  EXPECT_EQ(OsloStartOfDay(absl::CivilDay(2024, 10, 28)), Utc(2024, 10, 27, 23, 0));
  EXPECT_EQ(
      OsloStartOfDay(absl::CivilDay(2024, 10, 28)) - OsloStartOfDay(absl::CivilDay(2024, 10, 27)),
      absl::Hours(25));
  // Start of day round-trips through OsloDate, and one nanosecond before is the day before.
  for (absl::CivilDay d :
       {absl::CivilDay(2024, 3, 31), absl::CivilDay(2024, 10, 27), absl::CivilDay(2024, 1, 1)}) {
    EXPECT_EQ(OsloDate(OsloStartOfDay(d)), d);
    EXPECT_EQ(OsloDate(OsloStartOfDay(d) - absl::Nanoseconds(1)), d - 1);
  }
}

TEST_F(CalendarTest, ParseDateAcceptsRealDates) {
  const struct {
    const char* text;
    absl::CivilDay day;
  } cases[] = {
      {"2024-02-29", absl::CivilDay(2024, 2, 29)},  {"2000-02-29", absl::CivilDay(2000, 2, 29)},
      {"1900-01-01", absl::CivilDay(1900, 1, 1)},   {"9999-12-31", absl::CivilDay(9999, 12, 31)},
      {"2023-12-31", absl::CivilDay(2023, 12, 31)},
  };
  for (const auto& c : cases) {
    auto d = ParseDate(c.text, "date");
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(*d, c.day);
  }
}

TEST_F(CalendarTest, ParseDateIsStrict) {
  const std::string with_nul("2024-01-0\0", 10);
  for (const std::string& s : {std::string("2024-02-30"),
                               std::string("2023-02-29"),
                               std::string("1900-02-29"),
                               std::string("2024-04-31"),
                               std::string("2024-13-01"),
                               std::string("2024-00-10"),
                               std::string("2024-01-00"),
                               std::string("2024-01-32"),
                               std::string("2024-2-01"),
                               std::string("2024-02-1"),
                               std::string("24-02-01"),
                               std::string(""),
                               std::string("abcd-ef-gh"),
                               std::string("2024-01-01x"),
                               std::string("2024-01-01 "),
                               std::string(" 2024-01-01"),
                               std::string("2024-01-01T00:00:00Z"),
                               std::string("2024/01/01"),
                               std::string("20240101"),
                               std::string("+024-01-01"),
                               std::string("2024-+1-01"),
                               std::string("1899-12-31"),
                               std::string("0000-01-01"),
                               std::string("2024-0\xC3\xB8-01"),
                               with_nul,
                               std::string(1 << 16, '9')}) {
    auto d = ParseDate(s, "valid_from");
    EXPECT_FALSE(d.ok()) << s.substr(0, 40);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()), StartsWith("valid_from: ")) << s.substr(0, 40);
    EXPECT_LT(d.status().message().size(), 200u);
  }
  EXPECT_THAT(std::string(ParseDate("2024-02-30", "date").status().message()),
              HasSubstr("not a real date"));
}

// Found by tests/fuzz/fuzz_requests: a national id sent in a date field (two
// string fields swapped by a client) came back in clear in the error message.
TEST_F(CalendarTest, ParseDateEchoesOnlyDateShapedValues) {
  for (const char* id : {"15017010007", "x15017010007", "150170-10007"}) {
    const absl::Status status = ParseDate(id, "date").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("10007"))) << id;
    EXPECT_THAT(std::string(status.message()), HasSubstr("YYYY-MM-DD")) << id;
  }
  EXPECT_EQ(ParseDate("2024-1-015", "as_of").status().message(),
            "as_of: not a date in the form YYYY-MM-DD (got 10 characters)");
  EXPECT_EQ(ParseDate("2024-02-30", "date").status().message(),
            "date: \"2024-02-30\" is not a real date");
}

TEST_F(CalendarTest, FormatDate) {
  EXPECT_EQ(FormatDate(absl::CivilDay(2024, 3, 5)), "2024-03-05");
  EXPECT_EQ(FormatDate(absl::CivilDay(1905, 12, 31)), "1905-12-31");
  for (const char* s : {"2024-02-29", "2019-10-01", "1999-01-09"}) {
    auto d = ParseDate(s, "date");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(FormatDate(*d), s);
  }
}

TEST_F(CalendarTest, DayNumbers) {
  EXPECT_EQ(DayNumber(absl::CivilDay(1970, 1, 1)), 0);
  EXPECT_EQ(DayNumber(absl::CivilDay(1970, 1, 2)), 1);
  EXPECT_EQ(DayNumber(absl::CivilDay(1969, 12, 31)), -1);
  EXPECT_EQ(DayNumber(absl::CivilDay(2000, 1, 1)), 10957);
  EXPECT_EQ(DayNumber(absl::CivilDay(2024, 3, 1)) - DayNumber(absl::CivilDay(2024, 2, 28)), 2);
  for (absl::CivilDay d = absl::CivilDay(1899, 12, 25); d < absl::CivilDay(1900, 1, 10); ++d) {
    EXPECT_EQ(DayFromNumber(DayNumber(d)), d);
  }
  EXPECT_EQ(DayFromNumber(19723), absl::CivilDay(2024, 1, 1));
}

TEST_F(CalendarTest, Clocks) {
  FakeClock clock(Utc(2023, 12, 31, 22, 30));
  EXPECT_EQ(clock.Today(), absl::CivilDay(2023, 12, 31));
  clock.Advance(absl::Hours(1));
  EXPECT_EQ(clock.Today(), absl::CivilDay(2024, 1, 1));
  clock.Set(Utc(2024, 6, 1, 12, 0));
  EXPECT_EQ(clock.Now(), Utc(2024, 6, 1, 12, 0));
}

TEST_F(CalendarTest, ZoneIsSetOnceByTheEdge) {
  // The fixture set Europe/Oslo; the same zone again is fine, another is not
  // (dates must not change meaning while the process runs).
  absl::TimeZone oslo;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Oslo", &oslo));
  EXPECT_TRUE(SetOsloTimeZone(oslo).ok());
  absl::Status other = SetOsloTimeZone(absl::UTCTimeZone());
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.message()), ::testing::HasSubstr("already set"));
  EXPECT_EQ(OsloTimeZone().name(), "Europe/Oslo");
}

TEST_F(CalendarTest, ZoneIsOslo) {
  // Winter offset +1h, summer +2h.
  EXPECT_EQ(OsloTimeZone().At(Utc(2024, 1, 15, 12, 0)).offset, 3600);
  EXPECT_EQ(OsloTimeZone().At(Utc(2024, 7, 15, 12, 0)).offset, 7200);
}

}  // namespace
}  // namespace frikort::core
