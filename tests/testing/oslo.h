// Tests load the Oslo zone from tzdata the way the binaries' edges do, and
// hand it to core.
#ifndef FRIKORT_TESTS_TESTING_OSLO_H_
#define FRIKORT_TESTS_TESTING_OSLO_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/calendar.h"

namespace frikort::testing {

inline absl::Status LoadOsloTimeZone() {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone("Europe/Oslo", &zone)) {
    return absl::FailedPreconditionError("cannot load time zone Europe/Oslo (tzdata)");
  }
  return core::SetOsloTimeZone(zone);
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_OSLO_H_
