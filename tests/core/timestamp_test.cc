// google.protobuf.Timestamp <-> absl::Time (core/timestamp.h, over the generated
// type itself): the protobuf range rules and
// round trips, including before the epoch.
#include "core/timestamp.h"

#include <cstdint>
#include <limits>
#include <optional>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"

namespace frikort::core {
namespace {

TEST(TimestampTest, TimestampValidation) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(1781517600);
  ts.set_nanos(5);
  std::optional<absl::Time> t = FromProtoTimestamp(ts);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, absl::FromUnixSeconds(1781517600) + absl::Nanoseconds(5));

  ts.set_nanos(999999999);
  EXPECT_TRUE(FromProtoTimestamp(ts).has_value());
  ts.set_nanos(1000000000);
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());
  ts.set_nanos(-1);
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());

  ts.set_nanos(0);
  ts.set_seconds(-62135596800);  // 0001-01-01T00:00:00Z
  EXPECT_TRUE(FromProtoTimestamp(ts).has_value());
  ts.set_seconds(-62135596801);
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());
  ts.set_seconds(253402300799);  // 9999-12-31T23:59:59Z
  EXPECT_TRUE(FromProtoTimestamp(ts).has_value());
  ts.set_seconds(253402300800);
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());
  ts.set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());
  ts.set_seconds(std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(FromProtoTimestamp(ts).has_value());
}

TEST(TimestampTest, TimestampRoundTripIncludingBeforeTheEpoch) {
  for (absl::Time t :
       {absl::FromUnixSeconds(1781517600) + absl::Nanoseconds(123), absl::FromUnixSeconds(0),
        absl::FromUnixSeconds(-1) + absl::Nanoseconds(1), absl::FromUnixNanos(-1500000000)}) {
    google::protobuf::Timestamp ts;
    ToProtoTimestamp(t, &ts);
    EXPECT_GE(ts.nanos(), 0);
    EXPECT_LT(ts.nanos(), 1000000000);
    std::optional<absl::Time> back = FromProtoTimestamp(ts);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, t);
  }
  google::protobuf::Timestamp ts;
  ToProtoTimestamp(absl::InfiniteFuture(), &ts);
  EXPECT_EQ(ts.seconds(), 253402300799);
  ToProtoTimestamp(absl::InfinitePast(), &ts);
  EXPECT_EQ(ts.seconds(), -62135596800);
}

}  // namespace
}  // namespace frikort::core
