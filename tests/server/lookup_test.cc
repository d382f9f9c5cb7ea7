// Lookup service (CheckExemption) through a real gRPC channel.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class LookupTest : public ServerTest {
 protected:
  // Every exemption answer of a lookup, by scheme.
  std::map<v1::Scheme, v1::SchemeExemption> CheckAll(const std::string& person,
                                                     const std::string& date,
                                                     v1::ServiceCategory category) {
    v1::CheckExemptionResponse response;
    grpc::Status s = Check(person, date, category, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::map<v1::Scheme, v1::SchemeExemption> out;
    for (const v1::SchemeExemption& e : response.exemptions()) {
      EXPECT_EQ(out.count(e.scheme()), 0u) << "scheme answered twice";
      out[e.scheme()] = e;
    }
    return out;
  }

  grpc::StatusCode CheckCode(const std::string& person, const std::string& date,
                             v1::ServiceCategory category = v1::SERVICE_CATEGORY_UNSPECIFIED,
                             std::string* message = nullptr) {
    v1::CheckExemptionResponse response;
    grpc::Status s = Check(person, date, category, &response);
    if (message != nullptr) *message = s.error_message();
    return s.error_code();
  }

  static constexpr int64_t kCap2026 = 327800;  // 3278 NOK
};

TEST_F(LookupTest, UnknownPersonIsNotExempt) {
  const std::string person = PersonId(1);
  v1::CheckExemptionResponse response;
  ASSERT_TRUE(Check(person, "2026-06-15", v1::PHYSICIAN, &response).ok());
  EXPECT_EQ(response.person_id(), person);
  EXPECT_EQ(response.date(), "2026-06-15");
  ASSERT_THAT(response.exemptions(), SizeIs(1));
  EXPECT_EQ(response.exemptions(0).scheme(), v1::TAK);
  EXPECT_EQ(response.exemptions(0).status(), v1::NOT_EXEMPT);
  EXPECT_EQ(response.exemptions(0).valid_from(), "");
  EXPECT_EQ(response.exemptions(0).valid_to(), "");
}

TEST_F(LookupTest, EmptyDateIsTodayInOslo) {
  const std::string person = PersonId(2);
  v1::CheckExemptionResponse response;
  ASSERT_TRUE(Check(person, "", v1::SERVICE_CATEGORY_UNSPECIFIED, &response).ok());
  EXPECT_EQ(response.date(), "2026-06-15");
  // 22:30 UTC on 15 June is 00:30 on 16 June in Oslo (summer time, UTC+2).
  clock_->Set(absl::FromUnixSeconds(1781517600) + absl::Hours(12) + absl::Minutes(30));
  response.Clear();
  ASSERT_TRUE(Check(person, "", v1::SERVICE_CATEGORY_UNSPECIFIED, &response).ok());
  EXPECT_EQ(response.date(), "2026-06-16");
}

TEST_F(LookupTest, CapReachedInRealTimeThenExemptAfterIssuance) {
  const std::string person = PersonId(3);
  Report("c-1", person, 200000, OsloTime(2026, 2, 10));
  EXPECT_EQ(CheckOne(person, "").status(), v1::NOT_EXEMPT);
  // Exactly the cap: reached on the service date of this report.
  Report("c-2", person, kCap2026 - 200000, OsloTime(2026, 3, 5));
  v1::SchemeExemption e = CheckOne(person, "");
  EXPECT_EQ(e.scheme(), v1::TAK);
  EXPECT_EQ(e.status(), v1::CAP_REACHED);
  EXPECT_EQ(e.valid_from(), "2026-03-05");
  EXPECT_EQ(e.valid_to(), "2026-12-31");
  // Asked about the day before the crossing: not exempt then.
  v1::SchemeExemption before = CheckOne(person, "2026-03-04");
  EXPECT_EQ(before.status(), v1::NOT_EXEMPT);
  EXPECT_EQ(before.valid_from(), "");
  EXPECT_EQ(CheckOne(person, "2026-03-05").status(), v1::CAP_REACHED);
  // Later in the same year (in the future) is still answered.
  EXPECT_EQ(CheckOne(person, "2026-12-31").status(), v1::CAP_REACHED);

  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", false, &run).ok());
  EXPECT_EQ(run.cards_issued(), 1);
  v1::SchemeExemption after = CheckOne(person, "2026-06-15", v1::DENTAL);
  EXPECT_EQ(after.status(), v1::EXEMPT);
  EXPECT_EQ(after.valid_from(), "2026-03-05");
  EXPECT_EQ(after.valid_to(), "2026-12-31");
  EXPECT_EQ(CheckOne(person, "2026-03-04").status(), v1::NOT_EXEMPT);
}

TEST_F(LookupTest, CrossingDateFollowsServiceTimeNotArrival) {
  const std::string person = PersonId(4);
  Report("o-1", person, 200000, OsloTime(2026, 5, 1));
  Report("o-2", person, 200000, OsloTime(2026, 1, 15));  // arrives later, happened earlier
  v1::SchemeExemption e = CheckOne(person, "");
  EXPECT_EQ(e.status(), v1::CAP_REACHED);
  EXPECT_EQ(e.valid_from(), "2026-05-01");
}

TEST_F(LookupTest, UnpaidCountsOnlyOncePaid) {
  const std::string person = PersonId(5);
  Report("u-1", person, kCap2026, OsloTime(2026, 4, 1), v1::PHYSICIAN, v1::INVOICED_UNPAID);
  EXPECT_EQ(CheckOne(person, "").status(), v1::NOT_EXEMPT);
  EXPECT_EQ(UpdatePayment("1234567", "u-1", v1::PAID).outcome(), v1::ACCEPTED);
  v1::SchemeExemption e = CheckOne(person, "");
  EXPECT_EQ(e.status(), v1::CAP_REACHED);
  EXPECT_EQ(e.valid_from(), "2026-04-01");
}

TEST_F(LookupTest, CancellationBelowTheCapUndoesCapReached) {
  const std::string person = PersonId(6);
  Report("x-1", person, kCap2026, OsloTime(2026, 4, 1));
  EXPECT_EQ(CheckOne(person, "").status(), v1::CAP_REACHED);
  EXPECT_EQ(Cancel("1234567", "x-1").outcome(), v1::ACCEPTED);
  EXPECT_EQ(CheckOne(person, "").status(), v1::NOT_EXEMPT);
}

TEST_F(LookupTest, CategoryPicksTheSchemeInTwoCapYears) {
  clock_->Set(OsloTime(2020, 11, 15, 11));
  const std::string person = PersonId(7);
  // 2176 NOK of dental care: the tak 2 cap of 2020, nothing in tak 1.
  Report("d-1", person, 100000, OsloTime(2020, 2, 1), v1::DENTAL);
  Report("d-2", person, 117600, OsloTime(2020, 3, 1), v1::PHYSIOTHERAPY);
  Report("p-1", person, 50000, OsloTime(2020, 3, 2), v1::PHYSICIAN);

  auto dental = CheckAll(person, "2020-11-15", v1::DENTAL);
  ASSERT_THAT(dental, SizeIs(1));
  ASSERT_EQ(dental.count(v1::TAK2), 1u);
  EXPECT_EQ(dental[v1::TAK2].status(), v1::CAP_REACHED);
  EXPECT_EQ(dental[v1::TAK2].valid_from(), "2020-03-01");
  EXPECT_EQ(dental[v1::TAK2].valid_to(), "2020-12-31");

  for (v1::ServiceCategory c : {v1::PHYSICIAN, v1::PATIENT_TRAVEL, v1::PRESCRIPTION}) {
    auto tak1 = CheckAll(person, "2020-11-15", c);
    ASSERT_THAT(tak1, SizeIs(1)) << c;
    ASSERT_EQ(tak1.count(v1::TAK1), 1u) << c;
    EXPECT_EQ(tak1[v1::TAK1].status(), v1::NOT_EXEMPT) << c;
  }

  auto all = CheckAll(person, "2020-11-15", v1::SERVICE_CATEGORY_UNSPECIFIED);
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[v1::TAK1].status(), v1::NOT_EXEMPT);
  EXPECT_EQ(all[v1::TAK2].status(), v1::CAP_REACHED);

  // The same categories in a one-cap year all answer TAK.
  clock_->Set(StartTime());
  auto merged = CheckAll(person, "2026-01-10", v1::DENTAL);
  ASSERT_THAT(merged, SizeIs(1));
  EXPECT_EQ(merged.count(v1::TAK), 1u);
}

TEST_F(LookupTest, ReservedPersonIsAlwaysNotExempt) {
  const std::string person = PersonId(8);
  Report("r-1", person, kCap2026 + 5000, OsloTime(2026, 3, 1));
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", false, &run).ok());
  ASSERT_EQ(CheckOne(person, "").status(), v1::EXEMPT);

  ASSERT_TRUE(SetReservation(person, true).ok());
  for (v1::ServiceCategory c : {v1::SERVICE_CATEGORY_UNSPECIFIED, v1::PHYSICIAN, v1::DENTAL}) {
    v1::SchemeExemption e = CheckOne(person, "", c);
    EXPECT_EQ(e.status(), v1::NOT_EXEMPT) << c;
    EXPECT_EQ(e.valid_from(), "");
    EXPECT_EQ(e.valid_to(), "");
  }
  // Withdrawing the opt-out shows the card again.
  ASSERT_TRUE(SetReservation(person, false).ok());
  EXPECT_EQ(CheckOne(person, "").status(), v1::EXEMPT);

  // Reserved before reaching the cap: still NOT_EXEMPT, however much was paid before.
  const std::string other = PersonId(9);
  Report("r-2", other, kCap2026, OsloTime(2026, 2, 1));
  ASSERT_EQ(CheckOne(other, "").status(), v1::CAP_REACHED);
  ASSERT_TRUE(SetReservation(other, true).ok());
  EXPECT_EQ(CheckOne(other, "").status(), v1::NOT_EXEMPT);
}

TEST_F(LookupTest, DateWindow) {
  const std::string person = PersonId(10);
  std::string message;
  // Two years back from 2026: 2024-01-01 is the first day that may be asked.
  EXPECT_EQ(CheckCode(person, "2024-01-01"), grpc::StatusCode::OK);
  EXPECT_EQ(CheckCode(person, "2023-12-31", v1::SERVICE_CATEGORY_UNSPECIFIED, &message),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("date"));
  EXPECT_EQ(CheckCode(person, "2010-06-01"), grpc::StatusCode::INVALID_ARGUMENT);
  // A later day this year is fine; next year is refused.
  EXPECT_EQ(CheckCode(person, "2026-12-31"), grpc::StatusCode::OK);
  EXPECT_EQ(CheckCode(person, "2027-01-01", v1::SERVICE_CATEGORY_UNSPECIFIED, &message),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("date"));
}

TEST_F(LookupTest, MalformedDate) {
  const std::string person = PersonId(11);
  for (const char* bad : {"2026-02-30", "20260615", "2026-6-15", "15.06.2026", "tomorrow",
                          "2026-06-15T10:00:00Z", " 2026-06-15", "2026-13-01"}) {
    std::string message;
    EXPECT_EQ(CheckCode(person, bad, v1::SERVICE_CATEGORY_UNSPECIFIED, &message),
              grpc::StatusCode::INVALID_ARGUMENT)
        << bad;
    EXPECT_THAT(message, HasSubstr("date")) << bad;
  }
}

TEST_F(LookupTest, BadPersonIdAndCategory) {
  std::string message;
  EXPECT_EQ(
      CheckCode(WithBadCheckDigit(PersonId(12)), "", v1::SERVICE_CATEGORY_UNSPECIFIED, &message),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("person_id"));
  EXPECT_EQ(CheckCode("", "", v1::SERVICE_CATEGORY_UNSPECIFIED, &message),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("person_id"));
  const std::string h_number = MakePersonIdFor(absl::CivilDay(1970, 5, 5), 0, 0, 40);
  EXPECT_EQ(CheckCode(h_number, ""), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(CheckCode(PersonId(12), "", static_cast<v1::ServiceCategory>(42), &message),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("category"));
  EXPECT_EQ(CheckCode(PersonId(12), "", static_cast<v1::ServiceCategory>(-7)),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(LookupTest, LookupNeverRevealsAmounts) {
  const std::string person = PersonId(13);
  Report("a-1", person, 123456, OsloTime(2026, 2, 1));
  v1::CheckExemptionResponse response;
  ASSERT_TRUE(Check(person, "", v1::SERVICE_CATEGORY_UNSPECIFIED, &response).ok());
  // Only scheme, status and dates: the serialized answer carries no amount.
  const std::string bytes = response.SerializeAsString();
  v1::CheckExemptionResponse expected;
  expected.set_person_id(person);
  expected.set_date("2026-06-15");
  auto* e = expected.add_exemptions();
  e->set_scheme(v1::TAK);
  e->set_status(v1::NOT_EXEMPT);
  EXPECT_EQ(bytes, expected.SerializeAsString());
}

}  // namespace
}  // namespace frikort::testutil
