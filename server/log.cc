#include "server/log.h"

#include <cstdio>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace frikort::server::log {
namespace {

constexpr size_t kIdDigits = 11;

absl::Mutex mu;
Format format ABSL_GUARDED_BY(mu) = Format::kText;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

// A JSON string literal of `text` (which is redacted first).
std::string Quoted(absl::string_view text) { return JsonQuote(RedactIds(text)); }

}  // namespace

absl::StatusOr<Format> ParseFormat(absl::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format: '", text, "' is not one of text, json"));
}

void SetFormat(Format f) {
  absl::MutexLock l(&mu);
  format = f;
}

std::string RedactIds(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i) {
      out += text[i++];
      continue;
    }
    if (j - i == kIdDigits) {
      out += "<id>";
    } else {
      out.append(text.data() + i, j - i);
    }
    i = j;
  }
  return out;
}

std::string FormatLine(Format f, absl::Time time, Level level, absl::string_view event,
                       absl::string_view message, const Fields& fields) {
  if (f == Format::kText) {
    // A message that names frikortd itself ("frikortd listening on ...") is
    // written as it is; any other gets the program's name in front.
    std::string line = absl::StartsWith(message, "frikortd ")
                           ? RedactIds(message)
                           : absl::StrCat("frikortd: ", RedactIds(message));
    for (char& c : line) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return line;
  }
  std::string line = absl::StrCat(
      "{\"time\":", Quoted(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone())),
      ",\"level\":", Quoted(LevelName(level)), ",\"event\":", Quoted(event),
      ",\"msg\":", Quoted(message));
  for (const auto& [key, value] : fields)
    absl::StrAppend(&line, ",", Quoted(key), ":", Quoted(value));
  return line + "}";
}

void Log(Level level, absl::string_view event, absl::string_view message, const Fields& fields) {
  absl::MutexLock l(&mu);
  const std::string line = FormatLine(format, absl::Now(), level, event, message, fields) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void WriteRecord(absl::string_view event, absl::string_view json_object) {
  absl::MutexLock l(&mu);
  std::string line;
  if (format == Format::kJson) {
    // The usual fields, then the record as its maker redacted it.
    line = FormatLine(format, absl::Now(), Level::kInfo, event, event, {});
    line.pop_back();  // the closing brace
    absl::StrAppend(&line, ",\"record\":", json_object, "}\n");
  } else {
    line = absl::StrCat("frikortd: ", event, ": ", json_object, "\n");
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace frikort::server::log
