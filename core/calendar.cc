#include "core/calendar.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace frikort::core {
namespace {

// Written once under the mutex, then published by `set` (release); readers
// check `set` (acquire) and never lock.
struct ZoneState {
  absl::Mutex mu;
  absl::TimeZone zone;
  std::atomic<bool> set{false};
};

ZoneState& Zone() {
  static ZoneState* const state = new ZoneState;
  return *state;
}

constexpr absl::CivilDay kEpochDay(1970, 1, 1);

}  // namespace

absl::Status SetOsloTimeZone(const absl::TimeZone& zone) {
  ZoneState& z = Zone();
  absl::MutexLock l(&z.mu);
  if (z.set.load(std::memory_order_relaxed)) {
    if (z.zone.name() == zone.name()) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("the Oslo time zone is already set (",
                                                      z.zone.name(), "); cannot change it to ",
                                                      zone.name()));
  }
  z.zone = zone;
  z.set.store(true, std::memory_order_release);
  return absl::OkStatus();
}

const absl::TimeZone& OsloTimeZone() {
  const ZoneState& z = Zone();
  if (!z.set.load(std::memory_order_acquire)) {
    // Silently falling back to UTC would move every late-evening service into
    // the wrong day (and sometimes the wrong year); stop instead.
    std::fputs("frikort: the Oslo time zone was not set before use\n", stderr);
    std::abort();
  }
  return z.zone;
}

absl::CivilDay OsloDate(absl::Time t) { return absl::ToCivilDay(t, OsloTimeZone()); }

int OsloYear(absl::Time t) {
  // Infinite or absurd instants have years far outside int; clamp so callers see
  // a year no rules table has, rather than a wrapped value that might.
  const absl::civil_year_t y = OsloDate(t).year();
  if (y > std::numeric_limits<int>::max()) return std::numeric_limits<int>::max();
  if (y < std::numeric_limits<int>::min()) return std::numeric_limits<int>::min();
  return static_cast<int>(y);
}

absl::Time OsloStartOfDay(absl::CivilDay day) {
  // Oslo's transitions are at 01:00 UTC (02:00/03:00 local), never at midnight,
  // so local midnight always exists; FromCivil still picks the earlier instant
  // for a repeated time and the transition instant for a skipped one.
  return absl::FromCivil(absl::CivilSecond(day), OsloTimeZone());
}

absl::StatusOr<absl::CivilDay> ParseDate(absl::string_view s, absl::string_view field) {
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": not given"));
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') {
    // Not echoed: a value of another shape may be whatever a client put in the
    // wrong field, a national id included, and messages reach logs.
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a date in the form YYYY-MM-DD (got ", s.size(), " characters)"));
  }
  const auto bad = [&](absl::string_view why) {
    // Date-shaped, so at most four digits in a row: no id can hide in it.
    // Escaped, since the other bytes may be anything.
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", absl::CHexEscape(s), "\" ", why));
  };
  int parts[3] = {0, 0, 0};
  const size_t starts[3] = {0, 5, 8};
  const size_t lengths[3] = {4, 2, 2};
  for (int p = 0; p < 3; ++p) {
    for (size_t i = starts[p]; i < starts[p] + lengths[p]; ++i) {
      if (s[i] < '0' || s[i] > '9') return bad("is not a date in the form YYYY-MM-DD");
      parts[p] = parts[p] * 10 + (s[i] - '0');
    }
  }
  const int year = parts[0], month = parts[1], day = parts[2];
  if (year < 1900) return bad("is before the year 1900");
  if (month < 1 || month > 12 || day < 1 || day > 31) return bad("is not a real date");
  const absl::CivilDay d(year, month, day);
  if (d.month() != month || d.day() != day) return bad("is not a real date");
  return d;
}

std::string FormatDate(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

int64_t DayNumber(absl::CivilDay day) { return day - kEpochDay; }

absl::CivilDay DayFromNumber(int64_t n) { return kEpochDay + n; }

}  // namespace frikort::core
