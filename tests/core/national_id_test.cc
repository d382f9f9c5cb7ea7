#include "core/national_id.h"

#include <optional>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace frikort::core {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kW1[9] = {3, 7, 6, 1, 8, 9, 4, 5, 2};
constexpr int kW2[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};

const PersonIdOptions kProduction{.allow_synthetic = false};
const PersonIdOptions kTest{.allow_synthetic = true};

int Sum(const std::string& s, const int* w, int n) {
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += (s[i] - '0') * w[i];
  return sum;
}

// Classic mod-11 digit, written out independently of the implementation.
std::optional<int> Classic(int sum) {
  int k = 11 - sum % 11;
  if (k == 11) k = 0;
  if (k == 10) return std::nullopt;
  return k;
}

// Appends k2 (classic) to 10 digits; nullopt when k2 would be 10.
std::optional<std::string> AppendK2(const std::string& ten) {
  std::optional<int> k2 = Classic(Sum(ten, kW2, 10));
  if (!k2) return std::nullopt;
  return ten + static_cast<char>('0' + *k2);
}

// Appends classic k1 and k2 to 9 digits; nullopt when either would be 10.
std::optional<std::string> WithCheckDigits(const std::string& nine) {
  std::optional<int> k1 = Classic(Sum(nine, kW1, 9));
  if (!k1) return std::nullopt;
  return AppendK2(nine + static_cast<char>('0' + *k1));
}

// Appends the 2032-rule k1 = (c - s) mod 11 and a classic k2.
std::optional<std::string> With2032CheckDigits(const std::string& nine, int c) {
  const int k1 = ((c - Sum(nine, kW1, 9)) % 11 + 11) % 11;
  if (k1 == 10) return std::nullopt;
  return AppendK2(nine + static_cast<char>('0' + k1));
}

// The first complete number "DDMMYY" + individual (lo..hi) whose check digits exist.
std::string FirstValid(const std::string& ddmmyy, int lo, int hi) {
  for (int i = lo; i <= hi; ++i) {
    if (auto n = WithCheckDigits(ddmmyy + absl::StrFormat("%03d", i))) return *n;
  }
  ADD_FAILURE() << "no individual number in " << lo << ".." << hi << " for " << ddmmyy;
  return "";
}

TEST(PersonIdTest, KnownValidNumbersCheckedByHand) {
  // 15076500565: k1 sum 1*3+5*7+0*6+7*1+6*8+5*9+0*4+0*5+5*2 = 148, 148 mod 11 = 5,
  // k1 = 11-5 = 6; k2 sum 5+20+0+14+42+30+0+0+15+12 = 138, 138 mod 11 = 6, k2 = 5.
  auto id = ParsePersonId("15076500565", kProduction);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->digits, "15076500565");
  EXPECT_EQ(id->kind, PersonIdKind::kFodselsnummer);
  EXPECT_FALSE(id->synthetic);
  EXPECT_EQ(id->birth_date, absl::CivilDay(1965, 7, 15));  // individual 005 -> 1900s

  // D-number 41018036736: k1 sum 12+7+0+1+64+0+12+30+14 = 140, mod 11 = 8, k1 = 3;
  // k2 sum 20+4+0+2+56+0+15+24+21+6 = 148, mod 11 = 5, k2 = 6.
  id = ParsePersonId("41018036736", kProduction);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->kind, PersonIdKind::kDNumber);
  EXPECT_EQ(id->birth_date, absl::CivilDay(1980, 1, 1));

  // 29029600013: k1 sum 6+63+0+2+72+54+0+0+0 = 197, mod 11 = 10, k1 = 1;
  // k2 sum 10+36+0+4+63+36+0+0+0+2 = 151, mod 11 = 8, k2 = 3. 29 Feb 1996 exists.
  id = ParsePersonId("29029600013", kProduction);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->birth_date, absl::CivilDay(1996, 2, 29));
}

TEST(PersonIdTest, GeneratedNumbersAndCenturies) {
  // The century comes from the individual number (digits 7-9) and YY.
  const struct {
    std::string ddmmyy;
    int lo, hi;  // individual number range to draw from
    absl::CivilDay birth;
  } cases[] = {
      {"010190", 0, 499, absl::CivilDay(1990, 1, 1)},
      {"311299", 0, 499, absl::CivilDay(1999, 12, 31)},
      {"300405", 0, 499, absl::CivilDay(1905, 4, 30)},
      {"150660", 500, 749, absl::CivilDay(1860, 6, 15)},  // 500-749, YY 54-99
      {"150610", 500, 749, absl::CivilDay(2010, 6, 15)},  // 500-999, YY 00-39
      {"150610", 900, 999, absl::CivilDay(2010, 6, 15)},
      {"150645", 900, 999, absl::CivilDay(1945, 6, 15)},  // 900-999, YY 40-99
      {"150645", 500, 749, absl::CivilDay(1945, 6, 15)},  // no rule: 1900+YY is real
      {"150670", 750, 899, absl::CivilDay(1970, 6, 15)},  // no rule
  };
  for (const auto& c : cases) {
    const std::string n = FirstValid(c.ddmmyy, c.lo, c.hi);
    auto id = ParsePersonId(n, kProduction);
    ASSERT_TRUE(id.ok()) << n << ": " << id.status();
    EXPECT_EQ(id->birth_date, c.birth) << n;
    EXPECT_EQ(id->kind, PersonIdKind::kFodselsnummer) << n;
    EXPECT_FALSE(id->synthetic) << n;
  }
}

TEST(PersonIdTest, LeapDayUsesTheCenturyOfTheIndividualNumber) {
  const struct {
    std::string ddmmyy;
    int lo, hi;
    bool valid;
  } cases[] = {
      {"290200", 0, 499, false},    // 1900: not a leap year
      {"290200", 500, 749, true},   // 2000: leap year
      {"290200", 900, 999, true},   // YY 00-39 with 900-999 is also 2000
      {"290296", 0, 499, true},     // 1996
      {"290297", 0, 499, false},    // 1997
      {"290204", 500, 999, true},   // 2004
      {"290205", 500, 999, false},  // 2005
      {"290256", 500, 749, true},   // 1856
      {"290257", 500, 749, false},  // 1857
      {"290248", 900, 999, true},   // 1948
      {"290249", 900, 999, false},  // 1949
      {"290260", 750, 899, true},   // no rule; 1960 and 2060 are both leap years
      {"290261", 750, 899, false},  // no rule; neither 1961 nor 2061 has 29 Feb
      {"290244", 500, 749, true},   // no rule (500-749 with YY 40-53)
      {"300201", 0, 499, false},    // 30 Feb never exists
  };
  for (const auto& c : cases) {
    const std::string n = FirstValid(c.ddmmyy, c.lo, c.hi);
    auto id = ParsePersonId(n, kProduction);
    EXPECT_EQ(id.ok(), c.valid) << n << ": " << id.status();
    if (!c.valid) {
      EXPECT_THAT(std::string(id.status().message()), HasSubstr("not a real date")) << n;
    }
  }
}

TEST(PersonIdTest, InvalidDates) {
  for (const char* ddmmyy :
       {"000190", "320190", "310490", "010090", "011390", "013590", "015390", "017090", "019390"}) {
    const std::string n = FirstValid(ddmmyy, 0, 499);
    auto id = ParsePersonId(n, kTest);
    EXPECT_FALSE(id.ok()) << n;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: ")) << n;
  }
}

TEST(PersonIdTest, DNumbers) {
  const struct {
    std::string ddmmyy;
    absl::CivilDay birth;
  } cases[] = {
      {"410190", absl::CivilDay(1990, 1, 1)},
      {"710190", absl::CivilDay(1990, 1, 31)},
      {"690296", absl::CivilDay(1996, 2, 29)},
      {"550575", absl::CivilDay(1975, 5, 15)},
  };
  for (const auto& c : cases) {
    const std::string n = FirstValid(c.ddmmyy, 0, 499);
    auto id = ParsePersonId(n, kProduction);
    ASSERT_TRUE(id.ok()) << n << ": " << id.status();
    EXPECT_EQ(id->kind, PersonIdKind::kDNumber);
    EXPECT_EQ(id->birth_date, c.birth);
  }
  // Day 72 - 40 = 32, and 29 Feb 1997 (69 - 40 = 29) do not exist.
  for (const char* ddmmyy : {"720190", "690297", "400190"}) {
    const std::string n = FirstValid(ddmmyy, 0, 499);
    EXPECT_FALSE(ParsePersonId(n, kProduction).ok()) << n;
  }
}

TEST(PersonIdTest, FhNumbersAreRefused) {
  for (const char* nine : {"812345678", "900000000", "912345670", "850101123"}) {
    // FH-numbers are refused whatever their check digits; try every last two.
    for (int k = 0; k < 100; ++k) {
      const std::string n = std::string(nine) + absl::StrFormat("%02d", k);
      auto id = ParsePersonId(n, kTest);
      ASSERT_FALSE(id.ok()) << n;
      EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: FH-number")) << n;
    }
  }
}

TEST(PersonIdTest, HNumbersOnlyAsSyntheticIds) {
  const std::string n = FirstValid("154190", 0, 499);  // month 41 = January + 40
  auto id = ParsePersonId(n, kProduction);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: H-number"));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("institution"));

  id = ParsePersonId(n, kTest);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->synthetic);
  EXPECT_EQ(id->birth_date, absl::CivilDay(1990, 1, 15));

  const std::string december = FirstValid("155290", 0, 499);  // 52 = December + 40
  id = ParsePersonId(december, kTest);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->birth_date, absl::CivilDay(1990, 12, 15));
  EXPECT_FALSE(ParsePersonId(december, kProduction).ok());
}

TEST(PersonIdTest, MonthPlus80OnlyWhenSyntheticAllowed) {
  const std::string n = FirstValid("158590", 0, 499);  // 85 = May + 80
  auto id = ParsePersonId(n, kProduction);
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: "));
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("synthetic"));

  id = ParsePersonId(n, kTest);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->synthetic);
  EXPECT_EQ(id->kind, PersonIdKind::kFodselsnummer);
  EXPECT_EQ(id->birth_date, absl::CivilDay(1990, 5, 15));

  // Synthetic D-number: both offsets come off.
  const std::string d = FirstValid("558590", 0, 499);
  id = ParsePersonId(d, kTest);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(id->synthetic);
  EXPECT_EQ(id->kind, PersonIdKind::kDNumber);
  EXPECT_EQ(id->birth_date, absl::CivilDay(1990, 5, 15));

  // 31 April + 80 is still not a date, synthetic or not.
  EXPECT_FALSE(ParsePersonId(FirstValid("318490", 0, 499), kTest).ok());
}

// The 2032 rule: a number with a k1 residue of 1, 2 or 3 was assigned from 2032,
// when the individual number stopped telling the century. 29.02.00 with an
// individual number 000-499 reads as 1900 (no 29 February) by the classic
// ranges, but such a number may be anyone's born 2000, a leap year.
TEST(PersonIdTest, Rule2032LeapDayOf2000IsRealWhateverTheIndividualNumber) {
  int rule2032_checked = 0;
  int classic_checked = 0;
  for (const bool d_number : {false, true}) {
    const std::string ddmmyy = d_number ? "690200" : "290200";
    for (int individual = 0; individual <= 499; individual += 7) {
      const std::string nine = ddmmyy + absl::StrFormat("%03d", individual);
      if (auto n = WithCheckDigits(nine)) {
        auto id = ParsePersonId(*n, kProduction);
        ASSERT_FALSE(id.ok()) << *n << ": classic k1 and 000-499 is 1900";
        EXPECT_EQ(id.status().message(), "person_id: birth date part is not a real date") << *n;
        ++classic_checked;
      }
      for (int c = 1; c <= 3; ++c) {
        std::optional<std::string> n = With2032CheckDigits(nine, c);
        if (!n) continue;
        auto id = ParsePersonId(*n, kProduction);
        ASSERT_TRUE(id.ok()) << *n << " c=" << c << ": " << id.status();
        EXPECT_EQ(id->birth_date, absl::CivilDay(2000, 2, 29)) << *n;
        EXPECT_EQ(id->kind, d_number ? PersonIdKind::kDNumber : PersonIdKind::kFodselsnummer);
        ++rule2032_checked;
      }
    }
  }
  EXPECT_GT(classic_checked, 10);
  EXPECT_GT(rule2032_checked, 20);
}

// Whatever the k1 rule, a date must be real in some century the id allows.
TEST(PersonIdTest, Rule2032StillRefusesDatesThatAreNeverReal) {
  for (const char* ddmmyy : {"290201", "300200", "690201", "310400"}) {
    for (int individual = 0; individual < 1000; individual += 37) {
      const std::string nine = ddmmyy + absl::StrFormat("%03d", individual);
      for (int c = 1; c <= 3; ++c) {
        if (auto n = With2032CheckDigits(nine, c)) {
          auto id = ParsePersonId(*n, kProduction);
          ASSERT_FALSE(id.ok()) << *n;
          EXPECT_EQ(id.status().message(), "person_id: birth date part is not a real date");
        }
      }
    }
  }
}

TEST(PersonIdTest, Rule2032VariantsOfK1) {
  int variants_checked = 0;
  for (int individual = 0; individual < 200; ++individual) {
    const std::string nine = "010190" + absl::StrFormat("%03d", individual);
    const int s = Sum(nine, kW1, 9);
    bool allowed[10] = {};
    for (int c = 0; c <= 3; ++c) {
      const int k1 = ((c - s) % 11 + 11) % 11;
      if (k1 != 10) allowed[k1] = true;
    }
    for (int k1 = 0; k1 <= 9; ++k1) {
      std::optional<std::string> n = AppendK2(nine + static_cast<char>('0' + k1));
      if (!n) continue;  // no k2 exists for this prefix
      auto id = ParsePersonId(*n, kProduction);
      EXPECT_EQ(id.ok(), allowed[k1]) << *n << ": " << id.status();
      if (!allowed[k1]) {
        EXPECT_EQ(id.status().message(), "person_id: check digit k1 does not match") << *n;
      }
      ++variants_checked;
    }
    for (int c = 0; c <= 3; ++c) {
      if (auto n = With2032CheckDigits(nine, c)) {
        EXPECT_TRUE(ParsePersonId(*n, kProduction).ok()) << *n << " c=" << c;
      }
    }
  }
  EXPECT_GT(variants_checked, 1000);
}

TEST(PersonIdTest, ClassicK1Of10IsInvalidButLaterVariantsAreNot) {
  // Find a prefix whose classic k1 would be 10 (weighted sum ≡ 1 mod 11).
  std::string nine;
  for (int individual = 0; individual < 500 && nine.empty(); ++individual) {
    const std::string candidate = "010190" + absl::StrFormat("%03d", individual);
    if (Sum(candidate, kW1, 9) % 11 == 1 && !Classic(Sum(candidate, kW1, 9))) nine = candidate;
  }
  ASSERT_FALSE(nine.empty());
  EXPECT_FALSE(WithCheckDigits(nine).has_value());
  // c = 0 would need k1 = 10; c = 1, 2, 3 give k1 = 0, 1, 2.
  EXPECT_FALSE(With2032CheckDigits(nine, 0).has_value());
  int accepted = 0;
  for (int k1 = 0; k1 <= 9; ++k1) {
    std::optional<std::string> n = AppendK2(nine + static_cast<char>('0' + k1));
    if (!n) continue;
    const bool ok = ParsePersonId(*n, kProduction).ok();
    EXPECT_EQ(ok, k1 <= 2) << *n;
    accepted += ok;
  }
  EXPECT_GE(accepted, 1);
}

TEST(PersonIdTest, K2StaysClassic) {
  const std::string valid = "15076500565";
  for (char k2 = '0'; k2 <= '9'; ++k2) {
    std::string n = valid;
    n[10] = k2;
    auto id = ParsePersonId(n, kProduction);
    EXPECT_EQ(id.ok(), k2 == '5') << n;
    if (k2 != '5') {
      EXPECT_EQ(id.status().message(), "person_id: check digit k2 does not match");
    }
  }
  // A ten-digit prefix whose k2 would be 10 makes every eleventh digit wrong.
  std::string ten;
  for (int individual = 0; individual < 500 && ten.empty(); ++individual) {
    const std::string nine = "010190" + absl::StrFormat("%03d", individual);
    std::optional<int> k1 = Classic(Sum(nine, kW1, 9));
    if (!k1) continue;
    const std::string candidate = nine + static_cast<char>('0' + *k1);
    if (Sum(candidate, kW2, 10) % 11 == 1) ten = candidate;
  }
  ASSERT_FALSE(ten.empty());
  for (char k2 = '0'; k2 <= '9'; ++k2) {
    auto id = ParsePersonId(ten + k2, kProduction);
    ASSERT_FALSE(id.ok()) << ten + k2;
    EXPECT_EQ(id.status().message(), "person_id: check digit k2 does not match");
  }
}

TEST(PersonIdTest, SingleDigitErrorsAreCaught) {
  const std::string valid = "15076500565";
  ASSERT_TRUE(ParsePersonId(valid, kProduction).ok());
  // Mod 11 with these weights detects every single-digit change in the first
  // nine digits through k1 or k2 (or the date check).
  for (int pos = 0; pos < 11; ++pos) {
    for (char d = '0'; d <= '9'; ++d) {
      if (valid[pos] == d) continue;
      std::string n = valid;
      n[pos] = d;
      const int s1 = Sum(n, kW1, 9) + (n[9] - '0');
      std::optional<int> k2 = Classic(Sum(n, kW2, 10));
      const bool checks_hold = s1 % 11 <= 3 && k2 && *k2 == n[10] - '0';
      if (!checks_hold) {
        EXPECT_FALSE(ParsePersonId(n, kProduction).ok()) << n;
      }
    }
  }
}

TEST(PersonIdTest, MalformedInputNeverCrashes) {
  const std::string huge(1 << 20, '1');
  const std::string with_nul(
      "1507650\0"
      "565",
      11);
  const std::string cases[] = {
      "",
      "1",
      "1507650056",
      "150765005655",
      "1507650056a",
      " 5076500565",
      "15076500565 ",
      "+5076500565",
      "-5076500565",
      with_nul,
      "1507650056\xC3",
      "\xEF\xBC\x91\xEF\xBC\x95\x30",
      "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
      huge,
  };
  for (const std::string& s : cases) {
    auto id = ParsePersonId(s, kTest);
    ASSERT_FALSE(id.ok()) << absl::CHexEscape(s.substr(0, 20));
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: "));
    EXPECT_LT(id.status().message().size(), 200u);
  }
  EXPECT_EQ(ParsePersonId("", kTest).status().message(), "person_id: not given");
  EXPECT_THAT(ParsePersonId("1507650056", kTest).status().message(), HasSubstr("11 digits"));
  EXPECT_THAT(ParsePersonId("1507650056a", kTest).status().message(), HasSubstr("digits"));
}

TEST(PersonIdTest, RandomBytesNeverCrash) {
  std::mt19937 rng(20240615);
  std::uniform_int_distribution<int> length(0, 24), byte(0, 255), digit('0', '9');
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<size_t>(length(rng)), '\0');
    // Mostly digits so that the later checks are reached, with random bytes mixed in.
    for (char& c : s) c = static_cast<char>(byte(rng) < 230 ? digit(rng) : byte(rng));
    auto id = ParsePersonId(s, i % 2 == 0 ? kTest : kProduction);
    if (id.ok()) {
      EXPECT_EQ(id->digits, s);
      EXPECT_EQ(s.size(), 11u);
    } else {
      EXPECT_THAT(std::string(id.status().message()), StartsWith("person_id: "));
    }
    (void)ValidateProviderId(s);
    (void)ValidateReportId(s, kProduction);
  }
}

TEST(PersonIdTest, MessagesDoNotEchoTheNumber) {
  const std::string n = FirstValid("290200", 0, 499);  // fails on the date
  for (const std::string& bad : {n, std::string("15076500566"), FirstValid("154190", 0, 499)}) {
    auto id = ParsePersonId(bad, kProduction);
    ASSERT_FALSE(id.ok());
    EXPECT_FALSE(absl::StrContains(id.status().message(), bad)) << id.status();
  }
}

TEST(ProviderIdTest, HprNumbers) {
  for (const char* s : {"1", "9", "12345", "1234567", "12345678", "00000001"}) {
    EXPECT_TRUE(ValidateProviderId(s).ok()) << s;
  }
}

TEST(ProviderIdTest, OrganisationNumbers) {
  // 974760673: 9*3+7*2+4*7+7*6+6*5+0*4+6*3+7*2 = 173, 173 mod 11 = 8, 11-8 = 3.
  EXPECT_TRUE(ValidateProviderId("974760673").ok());
  for (char last = '0'; last <= '9'; ++last) {
    if (last == '3') continue;
    absl::Status s = ValidateProviderId(std::string("97476067") + last);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << last;
    EXPECT_THAT(std::string(s.message()), StartsWith("provider_id: "));
  }

  constexpr int kWeights[8] = {3, 2, 7, 6, 5, 4, 3, 2};
  bool saw_zero = false, saw_ten = false;
  for (int prefix = 90000000; prefix < 90000200; ++prefix) {
    const std::string eight = std::to_string(prefix);
    const int sum = Sum(eight, kWeights, 8);
    int accepted = -1, count = 0;
    for (char last = '0'; last <= '9'; ++last) {
      if (ValidateProviderId(eight + last).ok()) {
        accepted = last - '0';
        ++count;
      }
    }
    if (sum % 11 == 0) {  // check 11 becomes 0
      EXPECT_EQ(count, 1) << eight;
      EXPECT_EQ(accepted, 0) << eight;
      saw_zero = true;
    } else if (sum % 11 == 1) {  // check 10: no valid number with this prefix
      EXPECT_EQ(count, 0) << eight;
      saw_ten = true;
    } else {
      EXPECT_EQ(count, 1) << eight;
      EXPECT_EQ(accepted, 11 - sum % 11) << eight;
    }
  }
  EXPECT_TRUE(saw_zero);
  EXPECT_TRUE(saw_ten);
}

TEST(ProviderIdTest, Malformed) {
  for (const char* s :
       {"", "1234567890", "12345678901", "12a", " 123", "123 ", "-1", "1.5", "\xC3\xB8"}) {
    absl::Status st = ValidateProviderId(s);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(st.message()), StartsWith("provider_id: ")) << s;
  }
  EXPECT_FALSE(ValidateProviderId(std::string(1 << 20, '7')).ok());
}

TEST(ReportIdTest, Valid) {
  for (const std::string& s : {std::string("r"), std::string("r-1"), std::string("A.b_c:d-9"),
                               std::string("2024-01-05T10:00:00Z"), std::string(64, 'x')}) {
    EXPECT_TRUE(ValidateReportId(s, kProduction).ok()) << s;
  }
}

// Any valid id, classic or 2032 rule, fødselsnummer or D-number.
std::string AnyValid(const std::string& ddmmyy) { return FirstValid(ddmmyy, 100, 499); }

TEST(HoldsPersonIdTest, FindsAnElevenDigitRunThatValidates) {
  const std::string id = AnyValid("150765");
  const std::string d_number = AnyValid("550765");
  for (const std::string& text :
       {id, "r-" + id, id + "-1", "a:" + id + ":b", "x1.y" + d_number, "first 123 then " + id}) {
    EXPECT_TRUE(HoldsPersonId(text, kProduction)) << text;
  }
  std::string bad_k2 = id;
  bad_k2.back() = bad_k2.back() == '9' ? '0' : static_cast<char>(bad_k2.back() + 1);
  for (const std::string& text :
       {std::string(""), std::string("r-1"), bad_k2, "1" + id, id + "0", id.substr(0, 10),
        std::string("2024-01-05T10:00:00Z"), std::string(64, '1')}) {
    EXPECT_FALSE(HoldsPersonId(text, kProduction)) << text;
  }
  // A synthetic id (month + 80) is one only where synthetic ids are accepted.
  const std::string synthetic = AnyValid("158765");
  EXPECT_FALSE(HoldsPersonId("t-" + synthetic, kProduction));
  EXPECT_TRUE(HoldsPersonId("t-" + synthetic, kTest));
}

TEST(ReportIdTest, HoldingANationalIdIsRefusedWithoutEchoingIt) {
  const std::string id = AnyValid("150765");
  for (const std::string& s : {id, "bill-" + id, id + ".2"}) {
    absl::Status st = ValidateReportId(s, kProduction);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(st.message(),
              "report_id: holds a national id (an 11-digit number that validates); use an id of "
              "the practitioner system's own");
    EXPECT_FALSE(absl::StrContains(st.message(), id));
  }
  const std::string synthetic = AnyValid("158765");
  EXPECT_TRUE(ValidateReportId("t-" + synthetic, kProduction).ok());
  EXPECT_FALSE(ValidateReportId("t-" + synthetic, kTest).ok());
}

TEST(ReportIdTest, Invalid) {
  for (const std::string& s :
       {std::string(""), std::string(65, 'x'), std::string("a b"), std::string("a/b"),
        std::string("\xC3\xB8"), std::string("a\0b", 3), std::string("a\nb"), std::string("a+b"),
        std::string(1 << 20, 'x')}) {
    absl::Status st = ValidateReportId(s, kProduction);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(s.substr(0, 9));
    EXPECT_THAT(std::string(st.message()), StartsWith("report_id: "));
  }
}

}  // namespace
}  // namespace frikort::core
