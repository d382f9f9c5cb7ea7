#include "server/audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/log.h"

namespace frikort::server {

std::string FormatAuditLine(const AuditRecord& r) {
  std::string line = absl::StrCat(
      "{\"time\":",
      log::JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone())),
      ",\"audit\":", log::JsonQuote(r.event), ",\"caller\":", log::JsonQuote(r.caller),
      ",\"rpc\":", log::JsonQuote(r.rpc));
  if (!r.person.empty()) absl::StrAppend(&line, ",\"person\":", log::JsonQuote(r.person));
  if (!r.reason.empty()) absl::StrAppend(&line, ",\"reason\":", log::JsonQuote(r.reason));
  return line + "}";
}

void WriteAuditToStderr(const std::string& line) { log::WriteRecord("audit", line); }

}  // namespace frikort::server
