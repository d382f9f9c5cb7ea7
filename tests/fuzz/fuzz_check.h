// What the fuzz targets share: the property check and the privacy check of
// error messages. A violated property aborts, which libFuzzer reports as a
// crash and saves the input that caused it.
#ifndef FRIKORT_TESTS_FUZZ_FUZZ_CHECK_H_
#define FRIKORT_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

// Aborts with the failed condition when a property does not hold.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

namespace frikort::fuzz {

inline bool IsDigits(absl::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// An error about a value that may be a national id must not repeat it: error
// messages reach clients and logs. Six digits (a birth date) are already too
// much; shorter inputs may legitimately match a number in the message.
inline void CheckNoIdEcho(const absl::Status& status, absl::string_view id) {
  if (id.size() < 6 || !IsDigits(id)) return;
  FUZZ_CHECK(!absl::StrContains(status.message(), id));
}

}  // namespace frikort::fuzz

#endif  // FRIKORT_TESTS_FUZZ_FUZZ_CHECK_H_
