// Network addresses as text, for the listen and server flags of frikortd and
// frikortctl: splitting "HOST:PORT" / "[IPV6]:PORT" and telling a loopback
// host. Pure string and number work (inet_pton parses, it does not resolve):
// no name lookup, no socket.
#ifndef FRIKORT_CORE_ADDRESS_H_
#define FRIKORT_CORE_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace frikort::core {

struct HostPort {
  std::string host;  // without brackets
  std::string port;  // digits, 0..65535
};

// Splits "host:port" / "[v6]:port". InvalidArgument otherwise, starting
// "`field`: '`address`' is not HOST:PORT or [IPV6]:PORT: " and the reason.
absl::StatusOr<HostPort> SplitHostPort(absl::string_view address, absl::string_view field);

// 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z) and "localhost", in any case.
bool IsLoopbackHost(absl::string_view host);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_ADDRESS_H_
