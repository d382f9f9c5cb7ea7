#include "core/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace frikort::core {
namespace {

absl::Status BadAddress(absl::string_view field, absl::string_view address, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", address, "' is not HOST:PORT or [IPV6]:PORT: ", why));
}

}  // namespace

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address, absl::string_view field) {
  HostPort hp;
  absl::string_view rest;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) return BadAddress(field, address, "no closing ']'");
    hp.host = std::string(address.substr(1, close - 1));
    rest = address.substr(close + 1);
    if (!absl::StartsWith(rest, ":")) return BadAddress(field, address, "no ':PORT' after ']'");
    rest.remove_prefix(1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return BadAddress(field, address, "no ':PORT'");
    hp.host = std::string(address.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return BadAddress(field, address, "an IPv6 host must be in brackets");
    }
    rest = address.substr(colon + 1);
  }
  if (hp.host.empty()) return BadAddress(field, address, "empty host");
  int port = 0;
  if (rest.empty() || rest.size() > 5 ||
      !std::all_of(rest.begin(), rest.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(rest, &port) || port > 65535) {
    return BadAddress(field, address, "the port must be a number from 0 to 65535");
  }
  hp.port = std::string(rest);
  return hp;
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0) return true;
    // ::ffff:127.x.y.z, an IPv4 loopback address in IPv6 form.
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace frikort::core
