// frikortd's log: one line per event on stderr, as text for a terminal
// ("frikortd: <message>") or as one JSON object per line for a log collector
// (--log_format=json):
//   {"time":"2025-03-01T08:00:00.123Z","level":"info","event":"listening",
//    "msg":"frikortd listening on 127.0.0.1:50051","address":"127.0.0.1:50051"}
// No national id is written in clear: every run of exactly 11 digits in a
// message or field is replaced by "<id>" before it is written, whatever the
// caller passed.
//
// Thread safety: Log may be called from any thread; lines never interleave.
#ifndef FRIKORT_SERVER_LOG_H_
#define FRIKORT_SERVER_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace frikort::server::log {

enum class Level { kDebug, kInfo, kWarning, kError };
enum class Format { kText, kJson };

// "text" or "json"; InvalidArgument naming --log_format otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view text);
// Before the first Log; the default is text.
void SetFormat(Format format);

using Fields = std::vector<std::pair<std::string, std::string>>;

// `event` is a short snake_case name for machines, `message` the sentence
// for people.
void Log(Level level, absl::string_view event, absl::string_view message,
         const Fields& fields = {});

// A record that is already one JSON object, redacted by its maker (the
// operator audit trail: FormatAuditLine).
// JSON mode: a line with the usual time, level and event and the object as
// "record"; text mode: "frikortd: <event>: <json_object>". Never interleaves
// with Log.
void WriteRecord(absl::string_view event, absl::string_view json_object);

// The line Log writes (without the newline), for tests.
std::string FormatLine(Format format, absl::Time time, Level level, absl::string_view event,
                       absl::string_view message, const Fields& fields);
// `text` as a JSON string literal (quotes included; control characters
// escaped). No redaction.
std::string JsonQuote(absl::string_view text);
// `text` with every run of exactly 11 digits replaced by "<id>".
std::string RedactIds(absl::string_view text);

}  // namespace frikort::server::log

#endif  // FRIKORT_SERVER_LOG_H_
