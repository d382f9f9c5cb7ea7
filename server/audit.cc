#include "server/audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/log.h"

namespace frikort::server {

namespace {

// A field as a JSON string, redacted as every log line is: the caller and a
// refusal's reason can carry text a client chose.
std::string Field(absl::string_view text) { return log::JsonQuote(log::RedactIds(text)); }

}  // namespace

std::string FormatAuditLine(const AuditRecord& r) {
  std::string line = absl::StrCat(
      "{\"time\":",
      log::JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone())),
      ",\"audit\":", Field(r.event), ",\"caller\":", Field(r.caller), ",\"rpc\":", Field(r.rpc));
  if (!r.person.empty()) absl::StrAppend(&line, ",\"person\":", Field(r.person));
  if (!r.reason.empty()) absl::StrAppend(&line, ",\"reason\":", Field(r.reason));
  if (!r.as_of.empty()) absl::StrAppend(&line, ",\"as_of\":", Field(r.as_of));
  if (!r.decided_on.empty()) absl::StrAppend(&line, ",\"decided_on\":", Field(r.decided_on));
  if (!r.dest.empty()) {
    const std::string dest =
        r.dest.size() <= kMaxAuditDestBytes
            ? std::string(r.dest)
            : absl::StrCat(r.dest.substr(0, kMaxAuditDestBytes), "... (", r.dest.size(), " bytes)");
    absl::StrAppend(&line, ",\"dest\":", Field(dest));
  }
  return line + "}";
}

void WriteAuditToStderr(const std::string& line) { log::WriteRecord("audit", line); }

}  // namespace frikort::server
