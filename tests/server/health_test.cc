// The server fails closed with the register: after a write error every call
// answers UNAVAILABLE and the health check turns NOT_SERVING by itself, so
// probes take the instance out; nothing is answered from a state the register
// cannot vouch for.
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/fault_fs.h"

namespace frikort::testutil {
namespace {

constexpr int kServing = 1;
constexpr int kNotServing = 2;

class HealthTest : public ServerTest {
 protected:
  rocksdb::Env* RegisterEnv() override { return fs_.env(); }

  frikort::testing::FaultFs fs_;
};

TEST_F(HealthTest, WriteErrorTurnsHealthNotServingAndEveryCallUnavailable) {
  ASSERT_EQ(Report("before", PersonId(1), 400000, OsloTime(2026, 6, 1)).outcome(), v1::ACCEPTED);
  EXPECT_EQ(HealthCheck(channel_, "").serving_status, kServing);

  fs_.FailWrites(true);
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit(
      {MakeCoPayment(
          {.report_id = "during", .person_id = PersonId(2), .service_time = OsloTime(2026, 6, 1)})},
      &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  fs_.FailWrites(false);  // the disk comes back; the register stays closed

  int status = kServing;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline && status != kNotServing) {
    absl::SleepFor(absl::Milliseconds(50));
    status = HealthCheck(channel_, "").serving_status;
  }
  EXPECT_EQ(status, kNotServing);
  EXPECT_EQ(HealthCheck(channel_, "frikort.v1.Lookup").serving_status, kNotServing);

  v1::CheckExemptionResponse lookup;
  EXPECT_EQ(
      Check(PersonId(1), "2026-06-15", v1::SERVICE_CATEGORY_UNSPECIFIED, &lookup).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  v1::Ledger ledger;
  EXPECT_EQ(GetLedger(PersonId(1), 2026, &ledger).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace frikort::testutil
