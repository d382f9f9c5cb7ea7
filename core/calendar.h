// Dates and years in Europe/Oslo, and the clock abstraction: anything that asks
// "what is today" takes a Clock so tests control time. Core reads neither
// tzdata nor the system clock: the edge loads the zone and hands it over
// (SetOsloTimeZone), and owns the real clock.
#ifndef FRIKORT_CORE_CALENDAR_H_
#define FRIKORT_CORE_CALENDAR_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace frikort::core {

// Hands core the Europe/Oslo zone the edge loaded from tzdata. The first call
// sets it (before any date is computed); a later call with the same zone is a
// no-op, one with another zone is FailedPrecondition (dates must never change
// meaning while the process runs).
absl::Status SetOsloTimeZone(const absl::TimeZone& zone);
// The zone handed over. Aborts if SetOsloTimeZone() was not called first (a
// programming error, not an input error).
const absl::TimeZone& OsloTimeZone();

absl::CivilDay OsloDate(absl::Time t);
int OsloYear(absl::Time t);
// The instant at which the given Oslo calendar day starts (00:00 local).
absl::Time OsloStartOfDay(absl::CivilDay day);

// Strict "YYYY-MM-DD" (a real calendar date, years 1900-9999). InvalidArgument
// naming `field` otherwise; the message repeats the value only when it has the
// shape of a date, so a national id sent as a date is never echoed.
absl::StatusOr<absl::CivilDay> ParseDate(absl::string_view s, absl::string_view field);
std::string FormatDate(absl::CivilDay day);

// Days since 1970-01-01 and back; compact, order-preserving storage of dates.
int64_t DayNumber(absl::CivilDay day);
absl::CivilDay DayFromNumber(int64_t n);

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  absl::CivilDay Today() const { return OsloDate(Now()); }
};

// Thread-safe settable clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() const override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  void Set(absl::Time t) {
    absl::MutexLock l(&mu_);
    now_ = t;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::core

#endif  // FRIKORT_CORE_CALENDAR_H_
