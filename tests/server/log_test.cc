// frikortd's log lines: text and JSON, escaping, and national ids never in clear.
#include "server/log.h"

#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/audit.h"
#include "tests/testing/id_scan.h"

namespace frikort::server::log {
namespace {

const absl::Time kTime =
    absl::FromCivil(absl::CivilSecond(2025, 3, 1, 7, 30, 5), absl::UTCTimeZone()) +
    absl::Milliseconds(42);

TEST(LogTest, JsonLineIsOneObjectWithTheFields) {
  const std::string line =
      FormatLine(Format::kJson, kTime, Level::kWarning, "issuance_run",
                 "a \"quoted\"\nmessage\t\x01", {{"run_id", "run-000001"}, {"path", "C:\\x"}});
  EXPECT_EQ(line,
            "{\"time\":\"2025-03-01T07:30:05.042Z\",\"level\":\"warning\",\"event\":"
            "\"issuance_run\",\"msg\":\"a \\\"quoted\\\"\\nmessage\\t\\u0001\",\"run_id\":"
            "\"run-000001\",\"path\":\"C:\\\\x\"}");
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &parsed).ok());
  EXPECT_EQ(parsed.fields().at("msg").string_value(), "a \"quoted\"\nmessage\t\x01");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(LogTest, TextLineIsNamedAndOnOneLine) {
  EXPECT_EQ(FormatLine(Format::kText, kTime, Level::kError, "startup_failed", "bad\nthing", {}),
            "frikortd: bad thing");
  EXPECT_EQ(FormatLine(Format::kText, kTime, Level::kInfo, "listening",
                       "frikortd listening on 127.0.0.1:1", {{"address", "127.0.0.1:1"}}),
            "frikortd listening on 127.0.0.1:1");
}

TEST(LogTest, NationalIdsAreNeverWritten) {
  EXPECT_EQ(RedactIds("person 01016012345 and 02016010181."), "person <id> and <id>.");
  // Other numbers stay: 10 or 12 digits, ports, amounts.
  EXPECT_EQ(RedactIds("0101601234 010160123456 127.0.0.1:50051 400000"),
            "0101601234 010160123456 127.0.0.1:50051 400000");
  const std::string json = FormatLine(Format::kJson, kTime, Level::kInfo, "e", "id 01016012345",
                                      {{"person", "01016012345"}});
  EXPECT_EQ(json.find("01016012345"), std::string::npos) << json;
  EXPECT_EQ(FormatLine(Format::kText, kTime, Level::kInfo, "e", "id 01016012345", {}),
            "frikortd: id <id>");
}

// Audit lines carry client text too (a refusal's reason repeats what the
// caller sent; a certificate CN is whatever the CA signed): they are
// redacted like every other line.
TEST(LogTest, AuditLinesHoldNoNationalId) {
  const std::string line = FormatAuditLine({.time = kTime,
                                            .event = "denied",
                                            .caller = "clinic-01016012345",
                                            .rpc = "frikort.v1.Reporting/UpdatePayment",
                                            .person = "",
                                            .reason = "provider_id: '01016012345' is foreign",
                                            .dest = ""});
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(line)) << line;
  EXPECT_THAT(line, ::testing::HasSubstr("\"caller\":\"clinic-<id>\""));
  EXPECT_THAT(line, ::testing::HasSubstr("\"reason\":\"provider_id: '<id>' is foreign\""));
}

TEST(LogTest, Formats) {
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(*ParseFormat("text"), Format::kText);
  EXPECT_FALSE(ParseFormat("xml").ok());
}

}  // namespace
}  // namespace frikort::server::log
