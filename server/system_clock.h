// The real clock, owned by the edge: core and the layers below only see
// core::Clock, so tests decide what "now" is.
#ifndef FRIKORT_SERVER_SYSTEM_CLOCK_H_
#define FRIKORT_SERVER_SYSTEM_CLOCK_H_

#include "absl/time/clock.h"
#include "core/calendar.h"

namespace frikort::server {

class SystemClock final : public core::Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // One process-wide instance, never destroyed (threads may read it at exit).
  static const SystemClock* Get() {
    static const SystemClock* const clock = new SystemClock;
    return clock;
  }
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_SYSTEM_CLOCK_H_
