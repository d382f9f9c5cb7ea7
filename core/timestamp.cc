#include "core/timestamp.h"

namespace frikort::core {
namespace {

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the Timestamp range.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;
constexpr int32_t kMaxNanos = 999999999;

}  // namespace

std::optional<absl::Time> TimeFromUnixParts(int64_t seconds, int64_t nanos) {
  if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds) return std::nullopt;
  if (nanos < 0 || nanos > kMaxNanos) return std::nullopt;
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

UnixParts ToUnixParts(absl::Time t) {
  const absl::Time min_time = absl::FromUnixSeconds(kMinTimestampSeconds);
  const absl::Time max_time =
      absl::FromUnixSeconds(kMaxTimestampSeconds) + absl::Nanoseconds(kMaxNanos);
  if (t < min_time) t = min_time;
  if (t > max_time) t = max_time;
  // ToUnixSeconds rounds toward negative infinity, so nanos is in [0, 1e9).
  const int64_t seconds = absl::ToUnixSeconds(t);
  const int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds));
  return UnixParts{seconds, static_cast<int32_t>(nanos)};
}

}  // namespace frikort::core
