// Fuzz target: the rules-file parser (core::RulesTable::Parse). Each input is
// a rules file. Beyond "no crash, no undefined behaviour", it checks:
// - a refused file is InvalidArgument naming a line that exists ("line N: "),
//   or says that it has no year lines at all;
// - an accepted table is sane: years 1900-9999, every year has caps > 0 of
//   the kind it declares (tak1 and tak2, or tak), a minimum >= 0, amounts
//   within the parser's bound, and every category maps to one of the year's
//   schemes with the cap Cap() answers;
// - an accepted table written back as a rules file parses to the same table.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/rules.h"
#include "core/types.h"
#include "tests/fuzz/fuzz_check.h"

namespace frikort::fuzz {
namespace {

using core::Category;
using core::Ore;
using core::RulesTable;
using core::Scheme;
using core::YearRules;

// The parser's bound on any amount: 100 million kroner.
constexpr Ore kMaxAmountOre = Ore{100'000'000} * core::kOrePerKrone;

void CheckRefusal(const absl::Status& status, absl::string_view text) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  const absl::string_view message = status.message();
  if (message == "rules: no year lines") return;
  FUZZ_CHECK(absl::StartsWith(message, "line "));
  const size_t colon = message.find(':');
  FUZZ_CHECK(colon != absl::string_view::npos);
  int line = 0;
  FUZZ_CHECK(absl::SimpleAtoi(message.substr(5, colon - 5), &line));
  const int lines = static_cast<int>(absl::c_count(text, '\n')) + 1;
  FUZZ_CHECK(line >= 1 && line <= lines);
}

bool ValidAmount(Ore ore) { return ore >= 0 && ore <= kMaxAmountOre; }

void CheckYear(const RulesTable& table, const YearRules& rules) {
  const int year = rules.year;
  FUZZ_CHECK(year >= 1900 && year <= 9999);
  FUZZ_CHECK(ValidAmount(rules.cap_tak1) && ValidAmount(rules.cap_tak2) &&
             ValidAmount(rules.cap_tak) && ValidAmount(rules.refund_minimum));
  const std::vector<Scheme> schemes = table.SchemesOf(year);
  if (rules.two_caps) {
    FUZZ_CHECK(rules.cap_tak1 > 0 && rules.cap_tak2 > 0 && rules.cap_tak == 0);
    FUZZ_CHECK((schemes == std::vector<Scheme>{Scheme::kTak1, Scheme::kTak2}));
    FUZZ_CHECK(table.Cap(year, Scheme::kTak1).value_or(-1) == rules.cap_tak1);
    FUZZ_CHECK(table.Cap(year, Scheme::kTak2).value_or(-1) == rules.cap_tak2);
    FUZZ_CHECK(!table.Cap(year, Scheme::kTak).ok());
  } else {
    FUZZ_CHECK(rules.cap_tak > 0 && rules.cap_tak1 == 0 && rules.cap_tak2 == 0);
    FUZZ_CHECK(schemes == std::vector<Scheme>{Scheme::kTak});
    FUZZ_CHECK(table.Cap(year, Scheme::kTak).value_or(-1) == rules.cap_tak);
    FUZZ_CHECK(!table.Cap(year, Scheme::kTak1).ok() && !table.Cap(year, Scheme::kTak2).ok());
  }
  FUZZ_CHECK(!table.SchemeFor(year, Category::kUnspecified).ok());
  for (int c = 1; c <= core::kMaxCategory; ++c) {
    const absl::StatusOr<Scheme> scheme = table.SchemeFor(year, static_cast<Category>(c));
    FUZZ_CHECK(scheme.ok() && absl::c_linear_search(schemes, *scheme));
  }
}

void CheckTable(const RulesTable& table) {
  FUZZ_CHECK(table.first_year() >= 1900 && table.first_year() <= table.last_year());
  FUZZ_CHECK(table.last_year() <= 9999);
  FUZZ_CHECK(table.ForYear(table.first_year()) != nullptr);
  FUZZ_CHECK(table.ForYear(table.last_year()) != nullptr);
  FUZZ_CHECK(table.ForYear(table.first_year() - 1) == nullptr);
  FUZZ_CHECK(table.ForYear(table.last_year() + 1) == nullptr);
  FUZZ_CHECK(table.SchemesOf(table.last_year() + 1).empty());
  for (int year = table.first_year(); year <= table.last_year(); ++year) {
    const YearRules* rules = table.ForYear(year);
    if (rules == nullptr) continue;
    FUZZ_CHECK(rules->year == year);
    CheckYear(table, *rules);
  }
}

std::string Kroner(Ore ore) {
  return absl::StrFormat("%d.%02d", ore / core::kOrePerKrone, ore % core::kOrePerKrone);
}

// The table as a rules file, in the format of deploy/rules.txt.
std::string Render(const RulesTable& table) {
  std::string text;
  int two_cap_year = 0;
  for (int year = table.first_year(); year <= table.last_year(); ++year) {
    const YearRules* rules = table.ForYear(year);
    if (rules == nullptr) continue;
    if (rules->two_caps) {
      absl::StrAppend(&text, "year ", year, " tak1=", Kroner(rules->cap_tak1),
                      " tak2=", Kroner(rules->cap_tak2));
      if (two_cap_year == 0) two_cap_year = year;
    } else {
      absl::StrAppend(&text, "year ", year, " tak=", Kroner(rules->cap_tak));
    }
    absl::StrAppend(&text, " minimum=", Kroner(rules->refund_minimum),
                    rules->direct_settlement_required ? " direct_settlement=yes" : "", "\n");
  }
  // Which categories count in tak 2 can only be seen in a two-cap year.
  if (two_cap_year != 0) {
    absl::StrAppend(&text, "tak2");
    for (int c = 1; c <= core::kMaxCategory; ++c) {
      const Category category = static_cast<Category>(c);
      if (table.SchemeFor(two_cap_year, category).value_or(Scheme::kUnspecified) == Scheme::kTak2) {
        absl::StrAppend(&text, " ", core::CategoryName(category));
      }
    }
    absl::StrAppend(&text, "\n");
  }
  return text;
}

bool SameYear(const YearRules& a, const YearRules& b) {
  return a.year == b.year && a.two_caps == b.two_caps && a.cap_tak1 == b.cap_tak1 &&
         a.cap_tak2 == b.cap_tak2 && a.cap_tak == b.cap_tak &&
         a.refund_minimum == b.refund_minimum &&
         a.direct_settlement_required == b.direct_settlement_required;
}

void CheckSameTable(const RulesTable& a, const RulesTable& b) {
  FUZZ_CHECK(a.first_year() == b.first_year() && a.last_year() == b.last_year());
  for (int year = a.first_year(); year <= a.last_year(); ++year) {
    const YearRules* ra = a.ForYear(year);
    const YearRules* rb = b.ForYear(year);
    FUZZ_CHECK((ra == nullptr) == (rb == nullptr));
    if (ra == nullptr) continue;
    FUZZ_CHECK(SameYear(*ra, *rb));
    for (int c = 1; c <= core::kMaxCategory; ++c) {
      const Category category = static_cast<Category>(c);
      FUZZ_CHECK(*a.SchemeFor(year, category) == *b.SchemeFor(year, category));
    }
  }
}

}  // namespace
}  // namespace frikort::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using frikort::core::RulesTable;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<RulesTable> table = RulesTable::Parse(text);
  if (!table.ok()) {
    frikort::fuzz::CheckRefusal(table.status(), text);
    return 0;
  }
  frikort::fuzz::CheckTable(*table);
  const std::string rendered = frikort::fuzz::Render(*table);
  const absl::StatusOr<RulesTable> again = RulesTable::Parse(rendered);
  if (!again.ok()) {
    std::fprintf(stderr, "written back as:\n%s\nrefused: %s\n", rendered.c_str(),
                 std::string(again.status().message()).c_str());
  }
  FUZZ_CHECK(again.ok());
  frikort::fuzz::CheckSameTable(*table, *again);
  return 0;
}
