// Test helpers that make valid Norwegian identifiers by computing their check
// digits, so tests never depend on real people's numbers.
#ifndef FRIKORT_TESTS_TESTING_IDS_H_
#define FRIKORT_TESTS_TESTING_IDS_H_

#include <string>

#include "absl/strings/str_format.h"

namespace frikort::testing {

// Classic mod-11 check digit over `digits` with `weights`; -1 when it would be 10.
inline int Mod11(const std::string& digits, const int* weights) {
  int sum = 0;
  for (size_t i = 0; i < digits.size(); ++i) sum += (digits[i] - '0') * weights[i];
  int k = 11 - sum % 11;
  if (k == 11) k = 0;
  return k == 10 ? -1 : k;
}

// A valid fødselsnummer (or D-number when `d_number`) born on day/month/yy,
// the n-th valid one for that date (n = 0, 1, ...). Individual numbers count
// down from 499 (1900-1999 births) or from 999 when `born_2000s`.
inline std::string MakePersonId(int day, int month, int yy, int n, bool d_number = false,
                                bool born_2000s = false) {
  static const int kW1[] = {3, 7, 6, 1, 8, 9, 4, 5, 2};
  static const int kW2[] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
  int found = 0;
  for (int individual = born_2000s ? 999 : 499; individual >= (born_2000s ? 500 : 0);
       --individual) {
    std::string base =
        absl::StrFormat("%02d%02d%02d%03d", day + (d_number ? 40 : 0), month, yy, individual);
    int k1 = Mod11(base, kW1);
    if (k1 < 0) continue;
    base += static_cast<char>('0' + k1);
    int k2 = Mod11(base, kW2);
    if (k2 < 0) continue;
    if (found++ == n) return base + static_cast<char>('0' + k2);
  }
  return "";
}

// The n-th person of a test population: distinct valid ids.
inline std::string PersonN(int n) {
  return MakePersonId(1 + n % 28, 1 + (n / 28) % 12, 50 + (n / 336) % 40, n / 13440);
}

// A valid 9-digit organisation number built from an 8-digit base.
inline std::string MakeOrgNumber(int base8) {
  static const int kW[] = {3, 2, 7, 6, 5, 4, 3, 2};
  for (int b = base8;; ++b) {
    std::string s = absl::StrFormat("%08d", b % 100000000);
    int k = Mod11(s, kW);
    if (k >= 0) return s + static_cast<char>('0' + k);
  }
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_IDS_H_
