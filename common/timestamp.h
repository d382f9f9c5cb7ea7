// google.protobuf.Timestamp <-> absl::Time, for both ends of the contract:
// frikortd's services (server/convert.h) and frikortctl (ctl/). Pure
// functions, no I/O; nothing here trusts the input: an out-of-range timestamp
// becomes nullopt, never a crash.
//
// Why here and not in core/ or server/: core/ knows no protobuf, and
// frikortctl must not link server code. common/ holds the few helpers both
// binaries share (CMake target frikort_common), and depends on nothing of
// ours.
#ifndef FRIKORT_COMMON_TIMESTAMP_H_
#define FRIKORT_COMMON_TIMESTAMP_H_

#include <optional>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace frikort::common {

// A Timestamp is valid when seconds lie in 0001-01-01T00:00:00Z ..
// 9999-12-31T23:59:59Z and nanos in [0, 999999999] (the protobuf rules).
// nullopt for an invalid one.
std::optional<absl::Time> FromProtoTimestamp(const google::protobuf::Timestamp& ts);
// Instants outside the representable range are clamped to it.
void ToProtoTimestamp(absl::Time t, google::protobuf::Timestamp* out);

}  // namespace frikort::common

#endif  // FRIKORT_COMMON_TIMESTAMP_H_
