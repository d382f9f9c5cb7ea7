#include "core/rules.h"

#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace frikort::core {
namespace {

// Caps are tens of thousands of kroner at most; the bound keeps the øre
// arithmetic far from overflow whatever the file says.
constexpr Ore kMaxRuleAmountOre = 100'000'000 * kOrePerKrone;

absl::Status LineError(int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", why));
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// "2369" or "2369.50" (exactly two decimals) in kroner -> øre. Decimal text is
// parsed by hand: a cap must never pass through floating point.
std::optional<Ore> ParseAmount(absl::string_view s) {
  absl::string_view whole = s;
  absl::string_view fraction;
  if (const size_t dot = s.find('.'); dot != absl::string_view::npos) {
    whole = s.substr(0, dot);
    fraction = s.substr(dot + 1);
    if (fraction.size() != 2 || !AllDigits(fraction)) return std::nullopt;
  }
  if (!AllDigits(whole) || whole.size() > 12) return std::nullopt;
  Ore kroner = 0;
  for (char c : whole) kroner = kroner * 10 + (c - '0');
  Ore ore = kroner * kOrePerKrone;
  if (!fraction.empty()) ore += (fraction[0] - '0') * 10 + (fraction[1] - '0');
  if (ore > kMaxRuleAmountOre) return std::nullopt;
  return ore;
}

struct YearLine {
  std::optional<Ore> tak1, tak2, tak, minimum;
  std::optional<bool> direct_settlement;
};

absl::Status ParseYearLine(int line, const std::vector<absl::string_view>& tokens, YearRules* out) {
  if (tokens.size() < 2 || !AllDigits(tokens[1]) || tokens[1].size() != 4) {
    return LineError(line, "expected \"year YYYY ...\" with a four-digit year");
  }
  int year = 0;
  if (!absl::SimpleAtoi(tokens[1], &year) || year < 1900) {
    return LineError(line, absl::StrCat("year ", tokens[1], " is before 1900"));
  }
  YearLine values;
  for (size_t i = 2; i < tokens.size(); ++i) {
    const absl::string_view token = tokens[i];
    const size_t eq = token.find('=');
    if (eq == absl::string_view::npos) {
      return LineError(line, absl::StrCat("expected key=amount, got \"", token, "\""));
    }
    const absl::string_view key = token.substr(0, eq);
    const absl::string_view value = token.substr(eq + 1);
    if (key == "direct_settlement") {
      if (values.direct_settlement.has_value()) {
        return LineError(line, "direct_settlement given twice");
      }
      if (value != "yes" && value != "no") {
        return LineError(line, absl::StrCat("bad value \"", value,
                                            "\" for direct_settlement (expected yes or no)"));
      }
      values.direct_settlement = value == "yes";
      continue;
    }
    std::optional<Ore>* slot = nullptr;
    if (key == "tak1") {
      slot = &values.tak1;
    } else if (key == "tak2") {
      slot = &values.tak2;
    } else if (key == "tak") {
      slot = &values.tak;
    } else if (key == "minimum") {
      slot = &values.minimum;
    } else {
      return LineError(line, absl::StrCat("unknown key \"", key,
                                          "\" (expected tak1, tak2, "
                                          "tak, minimum or direct_settlement)"));
    }
    if (slot->has_value()) return LineError(line, absl::StrCat(key, " given twice"));
    const std::optional<Ore> amount = ParseAmount(value);
    if (!amount.has_value()) {
      return LineError(line, absl::StrCat("bad amount \"", value, "\" for ", key,
                                          " (whole kroner or kroner with two decimals)"));
    }
    if (key != "minimum" && *amount == 0) {
      return LineError(line, absl::StrCat(key, " must be above 0"));
    }
    *slot = amount;
  }

  const bool has_split = values.tak1.has_value() || values.tak2.has_value();
  if (has_split && values.tak.has_value()) {
    return LineError(line, absl::StrCat("year ", year,
                                        " mixes tak with tak1/tak2; give either tak1 and tak2, "
                                        "or tak"));
  }
  if (has_split && !values.tak1.has_value()) {
    return LineError(line, absl::StrCat("year ", year, " has tak2 but no tak1"));
  }
  if (has_split && !values.tak2.has_value()) {
    return LineError(line, absl::StrCat("year ", year, " has tak1 but no tak2"));
  }
  if (!has_split && !values.tak.has_value()) {
    return LineError(line, absl::StrCat("year ", year, " has no cap (tak, or tak1 and tak2)"));
  }
  if (!values.minimum.has_value()) {
    return LineError(line, absl::StrCat("year ", year, " has no minimum="));
  }

  out->year = year;
  out->two_caps = has_split;
  out->cap_tak1 = values.tak1.value_or(0);
  out->cap_tak2 = values.tak2.value_or(0);
  out->cap_tak = values.tak.value_or(0);
  out->refund_minimum = *values.minimum;
  out->direct_settlement_required = values.direct_settlement.value_or(false);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RulesTable> RulesTable::Parse(absl::string_view text) {
  RulesTable table;
  int tak2_line = 0;
  int first_two_cap_line = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<absl::string_view> tokens =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r\v\f"), absl::SkipEmpty());
    if (tokens.empty()) continue;

    if (tokens[0] == "year") {
      YearRules rules;
      if (absl::Status s = ParseYearLine(line_number, tokens, &rules); !s.ok()) return s;
      if (table.years_.contains(rules.year)) {
        return LineError(line_number, absl::StrCat("duplicate year ", rules.year));
      }
      if (rules.two_caps && first_two_cap_line == 0) first_two_cap_line = line_number;
      table.years_.emplace(rules.year, rules);
    } else if (tokens[0] == "tak2") {
      if (tak2_line != 0) {
        return LineError(line_number,
                         absl::StrCat("second tak2 line (the first is line ", tak2_line, ")"));
      }
      if (tokens.size() < 2) return LineError(line_number, "tak2 line names no category");
      tak2_line = line_number;
      for (size_t i = 1; i < tokens.size(); ++i) {
        const Category c = CategoryFromName(tokens[i]);
        if (c == Category::kUnspecified) {
          return LineError(line_number, absl::StrCat("unknown category \"", tokens[i], "\""));
        }
        table.tak2_[static_cast<int>(c)] = true;
      }
    } else {
      return LineError(line_number,
                       absl::StrCat("unknown keyword \"", tokens[0], "\" (expected year or tak2)"));
    }
  }
  if (table.years_.empty()) return absl::InvalidArgumentError("rules: no year lines");
  // Without a tak2 line every category of a two-cap year would silently count in
  // tak 1; a file that forgot the line is wrong, not a rule change.
  if (first_two_cap_line != 0 && tak2_line == 0) {
    return LineError(first_two_cap_line, "two-cap year (tak1/tak2) but the file has no tak2 line");
  }
  return table;
}

const YearRules* RulesTable::ForYear(int year) const {
  const auto it = years_.find(year);
  return it == years_.end() ? nullptr : &it->second;
}

std::vector<Scheme> RulesTable::SchemesOf(int year) const {
  const YearRules* rules = ForYear(year);
  if (rules == nullptr) return {};
  if (rules->two_caps) return {Scheme::kTak1, Scheme::kTak2};
  return {Scheme::kTak};
}

absl::StatusOr<Scheme> RulesTable::SchemeFor(int year, Category category) const {
  const int c = static_cast<int>(category);
  if (c < 1 || c > kMaxCategory) {
    return absl::InvalidArgumentError(
        absl::StrCat("category: ", c == 0 ? "not given" : absl::StrCat("unknown value ", c)));
  }
  const YearRules* rules = ForYear(year);
  if (rules == nullptr) return absl::NotFoundError(absl::StrCat("no rules for year ", year));
  if (!rules->two_caps) return Scheme::kTak;
  return tak2_[c] ? Scheme::kTak2 : Scheme::kTak1;
}

absl::StatusOr<Ore> RulesTable::Cap(int year, Scheme scheme) const {
  const YearRules* rules = ForYear(year);
  if (rules == nullptr) return absl::NotFoundError(absl::StrCat("no rules for year ", year));
  if (rules->two_caps) {
    if (scheme == Scheme::kTak1) return rules->cap_tak1;
    if (scheme == Scheme::kTak2) return rules->cap_tak2;
  } else if (scheme == Scheme::kTak) {
    return rules->cap_tak;
  }
  return absl::NotFoundError(absl::StrCat("year ", year, " has no scheme ", SchemeName(scheme)));
}

bool RulesTable::RequiresDirectSettlement(int year) const {
  const YearRules* rules = ForYear(year);
  return rules != nullptr && rules->direct_settlement_required;
}

int RulesTable::first_year() const { return years_.empty() ? 0 : years_.begin()->first; }
int RulesTable::last_year() const { return years_.empty() ? 0 : years_.rbegin()->first; }

}  // namespace frikort::core
