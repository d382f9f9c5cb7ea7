// The rules table: caps per year and scheme, the refund minimum per year, and
// which categories count in tak 2 in the two-cap years. Loaded from a text file
// (deploy/rules.txt) so next year's cap is a data change, not a code change.
//
// File format, one statement per line, '#' starts a comment:
//   year 2019 tak1=2369 tak2=2085 minimum=200      (two-cap year, NOK)
//   year 2024 tak=3165 minimum=0                   (one-cap year, NOK)
//   tak2 DENTAL PHYSIOTHERAPY REHABILITATION CLIMATE_TRAVEL
//   year 2024 tak=3165 minimum=0 direct_settlement=yes
// direct_settlement=yes says that in that year a co-payment counts only when
// its provider or practice holds an agreement on direct settlement in force
// on the service date; a year line without it (files written before the
// setting existed) does not require one.
// Amounts are whole kroner or kroner with two decimals ("2369.50"). A year has
// either tak1 and tak2, or tak; every year needs minimum=. Categories not named
// on the tak2 line count in tak 1 in two-cap years; every category counts in
// tak from the one-cap years on.
#ifndef FRIKORT_CORE_RULES_H_
#define FRIKORT_CORE_RULES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace frikort::core {

struct YearRules {
  int year = 0;
  bool two_caps = false;  // tak1 + tak2 (up to 2020) vs one tak (from 2021)
  Ore cap_tak1 = 0;
  Ore cap_tak2 = 0;
  Ore cap_tak = 0;
  Ore refund_minimum = 0;
  bool direct_settlement_required = false;
};

// Immutable after construction; safe to share between threads.
class RulesTable {
 public:
  // Errors are InvalidArgument naming the line number and what is wrong
  // (unknown keyword, duplicate year, missing cap, bad amount, unknown category).
  static absl::StatusOr<RulesTable> Parse(absl::string_view text);

  // nullptr if the year has no rules.
  const YearRules* ForYear(int year) const;
  // {kTak1, kTak2} or {kTak}; empty if the year has no rules.
  std::vector<Scheme> SchemesOf(int year) const;
  // The scheme a category counts toward in a year; NotFound if no rules for the
  // year, InvalidArgument for kUnspecified.
  absl::StatusOr<Scheme> SchemeFor(int year, Category category) const;
  // The cap of (year, scheme); NotFound if the year has no such scheme.
  absl::StatusOr<Ore> Cap(int year, Scheme scheme) const;
  // Whether the year's co-payments count only under an agreement on direct
  // settlement; false for a year without rules.
  bool RequiresDirectSettlement(int year) const;
  int first_year() const;
  int last_year() const;

 private:
  std::map<int, YearRules> years_;
  bool tak2_[kMaxCategory + 1] = {};
};

}  // namespace frikort::core

#endif  // FRIKORT_CORE_RULES_H_
