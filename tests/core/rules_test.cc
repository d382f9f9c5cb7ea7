#include "core/rules.h"

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rules_file.h"

namespace frikort::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr Ore Nok(int64_t kroner) { return kroner * kOrePerKrone; }

std::string RulesPath() {
  // CTest sets FRIKORT_SOURCE_DIR; running the binary by hand falls back to this
  // file's location in the source tree.
  if (const char* dir = std::getenv("FRIKORT_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/deploy/rules.txt");
  }
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/tests/core/")) + "/deploy/rules.txt";
}

const RulesTable& Deployed() {
  static const RulesTable* const table = [] {
    absl::StatusOr<RulesTable> t = frikort::testing::ReadRulesFile(RulesPath());
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return new RulesTable(*RulesTable::Parse("year 2000 tak=1 minimum=0"));
    }
    return new RulesTable(*std::move(t));
  }();
  return *table;
}

TEST(DeployedRulesTest, LoadsEveryYear2010To2026) {
  const RulesTable& rules = Deployed();
  EXPECT_EQ(rules.first_year(), 2010);
  EXPECT_EQ(rules.last_year(), 2026);
  EXPECT_EQ(rules.ForYear(2009), nullptr);
  EXPECT_EQ(rules.ForYear(2027), nullptr);
  for (int y = 2010; y <= 2026; ++y) EXPECT_NE(rules.ForYear(y), nullptr) << y;
}

TEST(DeployedRulesTest, CapsAndMinimumPerYear) {
  // The caps table in README.md ("The rules"), in NOK.
  const struct {
    int year;
    int64_t tak1, tak2, tak, minimum;
  } expected[] = {
      {2010, 1840, 2560, 0, 50},  {2011, 1880, 2560, 0, 50},  {2012, 1980, 2560, 0, 50},
      {2013, 2040, 2620, 0, 50},  {2014, 2105, 2670, 0, 200}, {2015, 2185, 2670, 0, 200},
      {2016, 2185, 2670, 0, 200}, {2017, 2205, 1990, 0, 200}, {2018, 2258, 2025, 0, 200},
      {2019, 2369, 2085, 0, 200}, {2020, 2460, 2176, 0, 200}, {2021, 0, 0, 2460, 200},
      {2022, 0, 0, 2921, 0},      {2023, 0, 0, 3040, 0},      {2024, 0, 0, 3165, 0},
      {2025, 0, 0, 3278, 0},      {2026, 0, 0, 3278, 0},
  };
  const RulesTable& rules = Deployed();
  for (const auto& e : expected) {
    SCOPED_TRACE(e.year);
    const YearRules* y = rules.ForYear(e.year);
    ASSERT_NE(y, nullptr);
    EXPECT_EQ(y->year, e.year);
    EXPECT_EQ(y->refund_minimum, Nok(e.minimum));
    const bool two_caps = e.tak == 0;
    EXPECT_EQ(y->two_caps, two_caps);
    EXPECT_EQ(y->cap_tak1, Nok(e.tak1));
    EXPECT_EQ(y->cap_tak2, Nok(e.tak2));
    EXPECT_EQ(y->cap_tak, Nok(e.tak));
    if (two_caps) {
      EXPECT_THAT(rules.SchemesOf(e.year), ElementsAre(Scheme::kTak1, Scheme::kTak2));
      EXPECT_EQ(*rules.Cap(e.year, Scheme::kTak1), Nok(e.tak1));
      EXPECT_EQ(*rules.Cap(e.year, Scheme::kTak2), Nok(e.tak2));
      EXPECT_EQ(rules.Cap(e.year, Scheme::kTak).status().code(), absl::StatusCode::kNotFound);
    } else {
      EXPECT_THAT(rules.SchemesOf(e.year), ElementsAre(Scheme::kTak));
      EXPECT_EQ(*rules.Cap(e.year, Scheme::kTak), Nok(e.tak));
      EXPECT_EQ(rules.Cap(e.year, Scheme::kTak1).status().code(), absl::StatusCode::kNotFound);
      EXPECT_EQ(rules.Cap(e.year, Scheme::kTak2).status().code(), absl::StatusCode::kNotFound);
    }
  }
  EXPECT_TRUE(rules.SchemesOf(2009).empty());
  EXPECT_EQ(rules.Cap(2009, Scheme::kTak1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(rules.Cap(2024, Scheme::kUnspecified).status().code(), absl::StatusCode::kNotFound);
}

TEST(DeployedRulesTest, SchemeOfEachCategory) {
  const RulesTable& rules = Deployed();
  const struct {
    Category category;
    Scheme in_2019;
  } expected[] = {
      {Category::kPhysician, Scheme::kTak1},     {Category::kPsychologist, Scheme::kTak1},
      {Category::kLaboratory, Scheme::kTak1},    {Category::kRadiology, Scheme::kTak1},
      {Category::kPrescription, Scheme::kTak1},  {Category::kPatientTravel, Scheme::kTak1},
      {Category::kOutpatient, Scheme::kTak1},    {Category::kDental, Scheme::kTak2},
      {Category::kPhysiotherapy, Scheme::kTak2}, {Category::kRehabilitation, Scheme::kTak2},
      {Category::kClimateTravel, Scheme::kTak2},
  };
  static_assert(std::size(expected) == kMaxCategory);
  for (const auto& e : expected) {
    SCOPED_TRACE(CategoryName(e.category));
    EXPECT_EQ(*rules.SchemeFor(2019, e.category), e.in_2019);
    EXPECT_EQ(*rules.SchemeFor(2020, e.category), e.in_2019);
    EXPECT_EQ(*rules.SchemeFor(2024, e.category), Scheme::kTak);
    EXPECT_EQ(*rules.SchemeFor(2021, e.category), Scheme::kTak);
  }
  EXPECT_EQ(rules.SchemeFor(2009, Category::kPhysician).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(rules.SchemeFor(2019, Category::kUnspecified).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rules.SchemeFor(2019, static_cast<Category>(99)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RulesParseTest, AmountsWithDecimalsCommentsAndBlankLines) {
  auto t = RulesTable::Parse(
      "# header\n"
      "\n"
      "year 2019 tak1=2369.50 tak2=2085 minimum=200   # trailing comment\n"
      "   \t\n"
      "tak2 DENTAL\r\n"
      "year 2024 minimum=0.00 tak=3165.05\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t->Cap(2019, Scheme::kTak1), 236950);
  EXPECT_EQ(*t->Cap(2019, Scheme::kTak2), 208500);
  EXPECT_EQ(*t->Cap(2024, Scheme::kTak), 316505);
  EXPECT_EQ(t->ForYear(2024)->refund_minimum, 0);
  EXPECT_EQ(*t->SchemeFor(2019, Category::kDental), Scheme::kTak2);
  // Only DENTAL is named, so physiotherapy stays in tak 1 here.
  EXPECT_EQ(*t->SchemeFor(2019, Category::kPhysiotherapy), Scheme::kTak1);
  EXPECT_EQ(t->first_year(), 2019);
  EXPECT_EQ(t->last_year(), 2024);
}

TEST(RulesParseTest, OneCapFileNeedsNoTak2Line) {
  auto t = RulesTable::Parse("year 2024 tak=3165 minimum=0\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t->SchemeFor(2024, Category::kDental), Scheme::kTak);
}

TEST(RulesParseTest, MalformedFilesNameTheLine) {
  const std::string ok2019 = "year 2019 tak1=2369 tak2=2085 minimum=200\n";
  const std::string tak2 = "tak2 DENTAL PHYSIOTHERAPY\n";
  const struct {
    std::string text;
    std::string line;   // "line N: "
    std::string about;  // part of the reason
  } cases[] = {
      {"# c\nyaer 2019 tak=1 minimum=0\n", "line 2: ", "unknown keyword"},
      {ok2019 + tak2 + "year 2019 tak1=1 tak2=1 minimum=0\n", "line 3: ", "duplicate year"},
      {tak2 + "\nyear 2019 tak1=2369 minimum=200\n", "line 3: ", "no tak2"},
      {tak2 + "year 2019 tak2=2085 minimum=200\n", "line 2: ", "no tak1"},
      {tak2 + "year 2019 tak=2460 tak1=2369 tak2=2085 minimum=200\n", "line 2: ", "mixes"},
      {tak2 + "year 2019 tak1=2369 tak=2460 minimum=200\n", "line 2: ", "mixes"},
      {"year 2021 tak=24x0 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=-2460 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=2460.5 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=2460,00 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak= minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=1e3 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=99999999999999999999 minimum=200\n", "line 1: ", "bad amount"},
      {"year 2021 tak=2460 minimum=2OO\n", "line 1: ", "bad amount"},
      {"year 2021 tak=0 minimum=0\n", "line 1: ", "above 0"},
      {ok2019 + "tak2 DENTAL TANNLEGE\n", "line 2: ", "unknown category"},
      {ok2019 + "tak2 DENTAL SERVICE_CATEGORY_UNSPECIFIED\n", "line 2: ", "unknown category"},
      {ok2019 + "tak2 dental\n", "line 2: ", "unknown category"},
      {ok2019 + "tak2\n", "line 2: ", "names no category"},
      {ok2019 + tak2 + tak2, "line 3: ", "second tak2"},
      {"year 2021 tak=2460\n", "line 1: ", "minimum"},
      {"\n\nyear 2024 tak=3165\n", "line 3: ", "minimum"},
      {"year 2021 tak=2460 minimum=200 minimum=0\n", "line 1: ", "twice"},
      {"year 2021 tak=2460 minimum=200 cap=1\n", "line 1: ", "unknown key"},
      {"year 2021 tak 2460 minimum=200\n", "line 1: ", "key=amount"},
      {"year 2021 minimum=200\n", "line 1: ", "no cap"},
      {"year twenty tak=1 minimum=0\n", "line 1: ", "year"},
      {"year 21 tak=1 minimum=0\n", "line 1: ", "year"},
      {"year\n", "line 1: ", "year"},
      {ok2019, "line 1: ", "no tak2 line"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto t = RulesTable::Parse(c.text);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), StartsWith(c.line));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.about));
  }
}

TEST(RulesParseTest, EmptyFileIsRejected) {
  for (const char* text : {"", "# only a comment\n\n", "tak2 DENTAL\n"}) {
    auto t = RulesTable::Parse(text);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(RulesParseTest, GarbageNeverCrashes) {
  std::mt19937 rng(2019);
  const std::string alphabet = "year tak1= tak2= tak= minimum= DENTAL 2019 0123456789.#\n\r\t\xff";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), length(0, 200);
  for (int i = 0; i < 5000; ++i) {
    std::string text(length(rng), ' ');
    for (char& c : text) c = alphabet[pick(rng)];
    auto t = RulesTable::Parse(text);
    if (t.ok()) {
      EXPECT_LE(t->first_year(), t->last_year());
    } else {
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace frikort::core
