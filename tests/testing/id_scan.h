// What a scanner for national ids looks for in logs, status messages and
// metrics: a run of 11 or more digits. Tests assert that client input never
// reaches those places in a form such a scanner would flag.
#ifndef FRIKORT_TESTS_TESTING_ID_SCAN_H_
#define FRIKORT_TESTS_TESTING_ID_SCAN_H_

#include <algorithm>
#include <cstddef>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace frikort::testing {

// The length of the longest run of ASCII digits in `text`.
inline size_t LongestDigitRun(absl::string_view text) {
  size_t longest = 0, run = 0;
  for (char c : text) {
    run = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

// True when `text` holds nothing a scanner would take for a national id.
inline bool HasNoIdLikeRun(absl::string_view text) { return LongestDigitRun(text) < 11; }

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_ID_SCAN_H_
