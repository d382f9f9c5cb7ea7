// The security audit log: operator calls (Registry, Issuance), refused calls
// and backdated issuance runs, one line each, with the caller and the time. National ids never
// appear in clear: a person is named by the register's pseudonym, and every
// field is redacted like a log line (server/log.h: runs of 11 digits become
// "<id>"), since the caller and a refusal's reason can carry client text.
//
// The line format lives in FormatAuditLine alone, so the log can move to
// another format or destination by changing that function or the sink.
#ifndef FRIKORT_SERVER_AUDIT_H_
#define FRIKORT_SERVER_AUDIT_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace frikort::server {

struct AuditRecord {
  absl::Time time;
  absl::string_view event;   // "operator_call" or "denied"
  absl::string_view caller;  // certificate CN, or "dev:<peer>" in development mode
  absl::string_view rpc;     // "frikort.v1.Registry/GetLedger"
  absl::string_view person;  // pseudonym (Register::AuditPseudonym) or ""
  absl::string_view reason;  // why a call was denied, or ""
  // A backdated issuance run ("backdated_run"): its decision date and the
  // real date it ran on (YYYY-MM-DD), else "".
  absl::string_view as_of = {};
  absl::string_view decided_on = {};
  // Backup's destination folder, or "". Operator input: a long one is cut to
  // its first kMaxAuditDestBytes bytes and its length.
  absl::string_view dest = {};
};
inline constexpr size_t kMaxAuditDestBytes = 256;

// One JSON object, no newline:
// {"time":"2026-06-15T10:00:00.123Z","audit":"operator_call","caller":"ops-1",
//  "rpc":"frikort.v1.Registry/GetLedger","person":"t5qxmvvb-..."}
// A backdated run adds "as_of" and "decided_on".
std::string FormatAuditLine(const AuditRecord& record);

// Receives each formatted line.
using AuditSink = std::function<void(const std::string& line)>;
// The default sink: "frikortd: audit: <line>" on stderr.
void WriteAuditToStderr(const std::string& line);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_AUDIT_H_
