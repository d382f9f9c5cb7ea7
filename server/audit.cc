#include "server/audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace frikort::server {
namespace {

// A JSON string literal (quotes included).
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string FormatAuditLine(const AuditRecord& r) {
  std::string line = absl::StrCat(
      "{\"time\":",
      JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone())),
      ",\"audit\":", JsonString(r.event), ",\"caller\":", JsonString(r.caller),
      ",\"rpc\":", JsonString(r.rpc));
  if (!r.person.empty()) absl::StrAppend(&line, ",\"person\":", JsonString(r.person));
  if (!r.reason.empty()) absl::StrAppend(&line, ",\"reason\":", JsonString(r.reason));
  return line + "}";
}

void WriteAuditToStderr(const std::string& line) {
  std::fprintf(stderr, "frikortd: audit: %s\n", line.c_str());
}

}  // namespace frikort::server
