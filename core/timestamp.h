// The contract's timestamps (google.protobuf.Timestamp) <-> absl::Time, for
// both ends of the contract: frikortd's services and frikortctl. Written over
// the two fields every such message has, so core/ needs no protobuf:
// FromProtoTimestamp(ts) and ToProtoTimestamp(t, &ts) take the generated type.
// Pure; nothing here trusts the input: an out-of-range timestamp becomes
// nullopt, never a crash.
#ifndef FRIKORT_CORE_TIMESTAMP_H_
#define FRIKORT_CORE_TIMESTAMP_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"

namespace frikort::core {

// Valid when seconds lie in 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z and
// nanos in [0, 999999999] (the protobuf rules); nullopt otherwise.
std::optional<absl::Time> TimeFromUnixParts(int64_t seconds, int64_t nanos);

struct UnixParts {
  int64_t seconds = 0;
  int32_t nanos = 0;  // [0, 1e9), also before the epoch
};
// Instants outside the representable range are clamped to it.
UnixParts ToUnixParts(absl::Time t);

template <typename Timestamp>
std::optional<absl::Time> FromProtoTimestamp(const Timestamp& ts) {
  return TimeFromUnixParts(ts.seconds(), ts.nanos());
}
template <typename Timestamp>
void ToProtoTimestamp(absl::Time t, Timestamp* out) {
  const UnixParts p = ToUnixParts(t);
  out->set_seconds(p.seconds);
  out->set_nanos(p.nanos);
}

}  // namespace frikort::core

#endif  // FRIKORT_CORE_TIMESTAMP_H_
