// Registry and Issuance services, the audit log, health and reflection, through
// a real gRPC channel to an in-process server.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/id_scan.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

class RegistryTest : public ServerTest {
 protected:
  grpc::Status ListLookups(const std::string& person, int page_size, const std::string& token,
                           v1::ListLookupsResponse* response) {
    v1::ListLookupsRequest request;
    request.set_person_id(person);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return registry_->ListLookups(Ctx().get(), request, response);
  }

  grpc::Status ListFreeCards(int year, const std::string& issued_on, int page_size,
                             const std::string& token, v1::ListFreeCardsResponse* response) {
    v1::ListFreeCardsRequest request;
    request.set_year(year);
    request.set_issued_on(issued_on);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return issuance_->ListFreeCards(Ctx().get(), request, response);
  }

  grpc::Status ListPayouts(const std::string& run_id, int year, int page_size,
                           const std::string& token, v1::ListPayoutsResponse* response) {
    v1::ListPayoutsRequest request;
    request.set_run_id(run_id);
    request.set_year(year);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return issuance_->ListPayouts(Ctx().get(), request, response);
  }

  static constexpr int64_t kCap2026 = 327800;
};

// ---- GetLedger ----------------------------------------------------------------------

TEST_F(RegistryTest, EmptyLedgerHasTheSchemesAndCapsOfTheYear) {
  const std::string person = PersonId(1);
  v1::Ledger ledger = Ledger(person, 2026);
  EXPECT_EQ(ledger.person_id(), person);
  EXPECT_EQ(ledger.year(), 2026);
  EXPECT_FALSE(ledger.reserved());
  EXPECT_THAT(ledger.entries(), SizeIs(0));
  ASSERT_THAT(ledger.schemes(), SizeIs(1));
  const v1::SchemeLedger& s = ledger.schemes(0);
  EXPECT_EQ(s.scheme(), v1::TAK);
  EXPECT_EQ(s.cap_ore(), kCap2026);
  EXPECT_EQ(s.counted_total_ore(), 0);
  EXPECT_EQ(s.cap_reached_on(), "");
  EXPECT_FALSE(s.has_card());
  EXPECT_EQ(s.refunded_ore(), 0);
  EXPECT_EQ(s.outstanding_ore(), 0);

  v1::Ledger old = Ledger(person, 2020);
  ASSERT_THAT(old.schemes(), SizeIs(2));
  std::map<v1::Scheme, int64_t> caps;
  for (const v1::SchemeLedger& sl : old.schemes()) caps[sl.scheme()] = sl.cap_ore();
  EXPECT_EQ(caps[v1::TAK1], 246000);
  EXPECT_EQ(caps[v1::TAK2], 217600);
}

TEST_F(RegistryTest, GetLedgerRefusesBadYearAndPerson) {
  v1::Ledger ledger;
  for (int year : {0, 2009, 2027, -5, 99999}) {
    grpc::Status s = GetLedger(PersonId(2), year, &ledger);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << year;
    EXPECT_THAT(s.error_message(), HasSubstr("year")) << year;
  }
  grpc::Status s = GetLedger(WithBadCheckDigit(PersonId(2)), 2026, &ledger);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("person_id"));
}

TEST_F(RegistryTest, EntriesInServiceTimeOrderWithTotalsAndCrossing) {
  const std::string person = PersonId(3);
  Report("e-apr", person, 200000, OsloTime(2026, 4, 1));
  Report("e-feb", person, 100000, OsloTime(2026, 2, 1));
  Report("e-mar", person, 100000, OsloTime(2026, 3, 1));
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(3));
  EXPECT_EQ(ledger.entries(0).report_id(), "e-feb");
  EXPECT_EQ(ledger.entries(1).report_id(), "e-mar");
  EXPECT_EQ(ledger.entries(2).report_id(), "e-apr");
  const v1::SchemeLedger& s = ledger.schemes(0);
  EXPECT_EQ(s.counted_total_ore(), 400000);
  EXPECT_EQ(s.cap_reached_on(), "2026-04-01");
  EXPECT_EQ(s.outstanding_ore(), 400000 - kCap2026);
  // Other years are separate.
  EXPECT_THAT(Ledger(person, 2025).entries(), SizeIs(0));
}

// ---- SetReservation -----------------------------------------------------------------

TEST_F(RegistryTest, SetReservationRoundTrip) {
  const std::string person = PersonId(4);
  v1::SetReservationResponse response;
  ASSERT_TRUE(SetReservation(person, true, &response).ok());
  EXPECT_EQ(response.person_id(), person);
  EXPECT_TRUE(response.reserved());
  EXPECT_TRUE(Ledger(person, 2026).reserved());
  ASSERT_TRUE(SetReservation(person, false, &response).ok());
  EXPECT_FALSE(response.reserved());
  EXPECT_FALSE(Ledger(person, 2026).reserved());

  grpc::Status s = SetReservation("12345", true, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("person_id"));
}

// ---- ListLookups --------------------------------------------------------------------

TEST_F(RegistryTest, EveryLookupIsLoggedNewestFirstWithPaging) {
  const std::string person = PersonId(5);
  const std::string other = PersonId(6);
  struct Asked {
    std::string date;
    v1::ServiceCategory category;
    absl::Time time;
  };
  std::vector<Asked> asked;
  const std::vector<std::pair<std::string, v1::ServiceCategory>> lookups = {
      {"2026-06-15", v1::PHYSICIAN},
      {"2025-03-01", v1::SERVICE_CATEGORY_UNSPECIFIED},
      {"2024-01-01", v1::DENTAL},
      {"", v1::LABORATORY},
      {"2026-01-02", v1::PRESCRIPTION}};
  for (const auto& [date, category] : lookups) {
    clock_->Advance(absl::Minutes(1));
    v1::CheckExemptionResponse response;
    ASSERT_TRUE(Check(person, date, category, &response).ok());
    asked.push_back({response.date(), category, clock_->Now()});
  }
  // Neither another person's lookups nor refused ones appear.
  v1::CheckExemptionResponse response;
  ASSERT_TRUE(Check(other, "", v1::PHYSICIAN, &response).ok());
  EXPECT_FALSE(Check(person, "2020-01-01", v1::PHYSICIAN, &response).ok());
  EXPECT_FALSE(Check(person, "bad", v1::PHYSICIAN, &response).ok());

  v1::ListLookupsResponse all;
  ASSERT_TRUE(ListLookups(person, 0, "", &all).ok());
  ASSERT_THAT(all.lookups(), SizeIs(5));
  EXPECT_EQ(all.next_page_token(), "");
  for (int i = 0; i < 5; ++i) {
    const Asked& want = asked[4 - i];  // newest first
    const v1::LookupRecord& got = all.lookups(i);
    EXPECT_EQ(got.date(), want.date) << i;
    EXPECT_EQ(got.category(), want.category) << i;
    EXPECT_EQ(FromTs(got.time()), want.time) << i;
    EXPECT_THAT(got.caller(), StartsWith("dev:")) << i;
    EXPECT_THAT(got.caller(), HasSubstr("127.0.0.1")) << i;
  }
  EXPECT_EQ(all.lookups(1).date(), "2026-06-15");  // the empty date was logged as today

  // Pages of two: 2 + 2 + 1, the same records in the same order.
  std::vector<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    v1::ListLookupsResponse page;
    ASSERT_TRUE(ListLookups(person, 2, token, &page).ok());
    EXPECT_LE(page.lookups_size(), 2);
    for (const v1::LookupRecord& r : page.lookups()) paged.push_back(r.ShortDebugString());
    token = page.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_THAT(paged, SizeIs(5));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(paged[i], all.lookups(i).ShortDebugString());

  v1::ListLookupsResponse others;
  ASSERT_TRUE(ListLookups(other, 0, "", &others).ok());
  EXPECT_THAT(others.lookups(), SizeIs(1));
}

TEST_F(RegistryTest, ListLookupsRefusesBadArguments) {
  v1::ListLookupsResponse response;
  grpc::Status s = ListLookups(PersonId(7), -1, "", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
  s = ListLookups(PersonId(7), 10, "not-a-token", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_token"));
  s = ListLookups("abc", 10, "", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("person_id"));
}

// ---- Issuance -----------------------------------------------------------------------

TEST_F(RegistryTest, RunIssuanceIssuesCardsPaysExcessAndIsIdempotent) {
  const std::string early = PersonId(10);   // cap reached 1 March: more than 3 weeks ago
  const std::string recent = PersonId(11);  // cap reached 10 June
  const std::string below = PersonId(12);
  Report("i-1", early, kCap2026 + 10000, OsloTime(2026, 3, 1));
  Report("i-2", recent, kCap2026, OsloTime(2026, 6, 10));
  Report("i-3", below, 1000, OsloTime(2026, 6, 10));

  // A dry run decides the same but writes nothing.
  v1::IssuanceRun dry;
  ASSERT_TRUE(RunIssuance("", true, &dry).ok());
  EXPECT_TRUE(dry.dry_run());
  EXPECT_EQ(dry.cards_issued(), 2);
  v1::ListFreeCardsResponse cards;
  ASSERT_TRUE(ListFreeCards(2026, "", 0, "", &cards).ok());
  EXPECT_THAT(cards.cards(), SizeIs(0));

  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", false, &run).ok());
  EXPECT_FALSE(run.run_id().empty());
  EXPECT_EQ(run.as_of(), "2026-06-15");
  EXPECT_FALSE(run.dry_run());
  EXPECT_EQ(run.cards_issued(), 2);
  EXPECT_EQ(run.cards_past_deadline(), 1);
  EXPECT_EQ(run.payouts(), 1);  // 2026 has no refund minimum
  EXPECT_EQ(run.payout_total_ore(), 10000);
  EXPECT_EQ(run.carried_forward_ore(), 0);
  EXPECT_GE(run.ledgers_examined(), 2);
  EXPECT_LE(run.ledgers_examined(), 3);

  ASSERT_TRUE(ListFreeCards(2026, "", 0, "", &cards).ok());
  ASSERT_THAT(cards.cards(), SizeIs(2));
  bool saw_early = false;
  for (const v1::FreeCard& c : cards.cards()) {
    EXPECT_EQ(c.year(), 2026);
    EXPECT_EQ(c.scheme(), v1::TAK);
    EXPECT_EQ(c.valid_to(), "2026-12-31");
    EXPECT_EQ(c.issued_on(), "2026-06-15");
    EXPECT_FALSE(c.under_review());
    if (c.person_id() == early) {
      saw_early = true;
      EXPECT_EQ(c.valid_from(), "2026-03-01");
      EXPECT_EQ(c.basis_total_ore(), kCap2026 + 10000);
    } else {
      EXPECT_EQ(c.person_id(), recent);
      EXPECT_EQ(c.valid_from(), "2026-06-10");
    }
  }
  EXPECT_TRUE(saw_early);

  v1::Ledger ledger = Ledger(early, 2026);
  ASSERT_TRUE(ledger.schemes(0).has_card());
  EXPECT_EQ(ledger.schemes(0).card().valid_from(), "2026-03-01");
  EXPECT_EQ(ledger.schemes(0).refunded_ore(), 10000);
  EXPECT_EQ(ledger.schemes(0).outstanding_ore(), 0);

  v1::ListPayoutsResponse payouts;
  ASSERT_TRUE(ListPayouts(run.run_id(), 0, 0, "", &payouts).ok());
  ASSERT_THAT(payouts.payouts(), SizeIs(1));
  EXPECT_EQ(payouts.payouts(0).person_id(), early);
  EXPECT_EQ(payouts.payouts(0).year(), 2026);
  EXPECT_EQ(payouts.payouts(0).scheme(), v1::TAK);
  EXPECT_EQ(payouts.payouts(0).amount_ore(), 10000);
  EXPECT_EQ(payouts.payouts(0).run_id(), run.run_id());
  EXPECT_EQ(payouts.payouts(0).created_on(), "2026-06-15");
  ASSERT_TRUE(ListPayouts("", 2026, 0, "", &payouts).ok());
  EXPECT_THAT(payouts.payouts(), SizeIs(1));

  // Again: nothing new, nothing paid twice.
  v1::IssuanceRun second;
  clock_->Advance(absl::Hours(24));
  ASSERT_TRUE(RunIssuance("2026-06-16", false, &second).ok());
  EXPECT_NE(second.run_id(), run.run_id());
  EXPECT_EQ(second.as_of(), "2026-06-16");
  EXPECT_EQ(second.cards_issued(), 0);
  EXPECT_EQ(second.payouts(), 0);
  ASSERT_TRUE(ListPayouts("", 2026, 0, "", &payouts).ok());
  EXPECT_THAT(payouts.payouts(), SizeIs(1));
  ASSERT_TRUE(ListPayouts(second.run_id(), 0, 0, "", &payouts).ok());
  EXPECT_THAT(payouts.payouts(), SizeIs(0));

  // issued_on filter and paging.
  ASSERT_TRUE(ListFreeCards(2026, "2026-06-15", 0, "", &cards).ok());
  EXPECT_THAT(cards.cards(), SizeIs(2));
  ASSERT_TRUE(ListFreeCards(2026, "2026-06-14", 0, "", &cards).ok());
  EXPECT_THAT(cards.cards(), SizeIs(0));
  v1::ListFreeCardsResponse page1;
  ASSERT_TRUE(ListFreeCards(2026, "", 1, "", &page1).ok());
  ASSERT_THAT(page1.cards(), SizeIs(1));
  ASSERT_FALSE(page1.next_page_token().empty());
  v1::ListFreeCardsResponse page2;
  ASSERT_TRUE(ListFreeCards(2026, "", 1, page1.next_page_token(), &page2).ok());
  ASSERT_THAT(page2.cards(), SizeIs(1));
  EXPECT_NE(page1.cards(0).person_id(), page2.cards(0).person_id());
  EXPECT_TRUE(page2.next_page_token().empty());
}

TEST_F(RegistryTest, CancellationBelowTheCapPutsTheCardUnderReview) {
  const std::string person = PersonId(13);
  Report("rv-1", person, 200000, OsloTime(2026, 2, 1));
  Report("rv-2", person, 200000, OsloTime(2026, 3, 1));
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", false, &run).ok());
  ASSERT_EQ(run.cards_issued(), 1);
  ASSERT_EQ(Cancel("1234567", "rv-2").outcome(), v1::ACCEPTED);
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_TRUE(ledger.schemes(0).has_card());
  EXPECT_TRUE(ledger.schemes(0).card().under_review());
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 200000);
  // The card stays valid until an operator looks.
  EXPECT_EQ(CheckOne(person, "").status(), v1::EXEMPT);
}

TEST_F(RegistryTest, RefundMinimumCarriesSmallExcessIn2019) {
  clock_->Set(OsloTime(2019, 12, 1, 11));
  const std::string person = PersonId(14);
  // 2019 tak 1 is 2369 NOK; 100 NOK over is under the 200 NOK minimum.
  Report("m-1", person, 236900 + 10000, OsloTime(2019, 5, 1));
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", false, &run).ok());
  EXPECT_EQ(run.as_of(), "2019-12-01");
  EXPECT_EQ(run.cards_issued(), 1);
  EXPECT_EQ(run.payouts(), 0);
  EXPECT_EQ(run.carried_forward_ore(), 10000);
}

TEST_F(RegistryTest, IssuanceRefusesBadArguments) {
  v1::IssuanceRun run;
  grpc::Status s = RunIssuance("2026-13-01", false, &run);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("as_of"));
  // The fake clock says 2026-06-15: a decision date after it is refused.
  s = RunIssuance("2026-06-16", false, &run);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("after today"));

  v1::ListFreeCardsResponse cards;
  s = ListFreeCards(0, "", 0, "", &cards);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("year"));
  s = ListFreeCards(2030, "", 0, "", &cards);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("year"));
  s = ListFreeCards(2026, "15.06.2026", 0, "", &cards);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("issued_on"));
  s = ListFreeCards(2026, "", -2, "", &cards);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
  s = ListFreeCards(2026, "", 0, "garbage", &cards);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::ListPayoutsResponse payouts;
  s = ListPayouts("", 0, 0, "", &payouts);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("run_id"));
  s = ListPayouts("", 1999, 0, "", &payouts);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("year"));
  s = ListPayouts("run-999999", 0, -1, "", &payouts);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
  s = ListPayouts("yesterday", 0, 0, "", &payouts);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("run_id"));
  // A well-formed run id that never ran: an empty list, not an error.
  ASSERT_TRUE(ListPayouts("run-999999", 0, 0, "", &payouts).ok());
  EXPECT_THAT(payouts.payouts(), SizeIs(0));
}

// ---- standard services ------------------------------------------------------------

// A run id is client text that can hold a national id: a malformed one is
// described by its length, never repeated.
TEST_F(RegistryTest, AMalformedRunIdIsNotRepeated) {
  const std::string run_id = absl::StrCat("run-", PersonId(5), "-and-then-some");
  v1::ListPayoutsResponse payouts;
  grpc::Status s = ListPayouts(run_id, 0, 0, "", &payouts);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("run_id"));
  EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat(run_id.size(), " characters")));
  EXPECT_THAT(s.error_message(), Not(HasSubstr(run_id.substr(4))));
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(s.error_message())) << s.error_message();
}

TEST_F(RegistryTest, HealthIsServing) {
  HealthAnswer overall = HealthCheck(channel_, "");
  ASSERT_TRUE(overall.status.ok()) << overall.status.error_message();
  EXPECT_EQ(overall.serving_status, 1);  // SERVING
  HealthAnswer reporting = HealthCheck(channel_, "frikort.v1.Reporting");
  ASSERT_TRUE(reporting.status.ok());
  EXPECT_EQ(reporting.serving_status, 1);
  HealthAnswer unknown = HealthCheck(channel_, "no.such.Service");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RegistryTest, ReflectionListsTheServices) {
  const std::string listing = ReflectionListServices(channel_);
  ASSERT_FALSE(listing.empty());
  for (const char* name : {"frikort.v1.Reporting", "frikort.v1.Lookup", "frikort.v1.Registry",
                           "frikort.v1.Issuance", "grpc.health.v1.Health"}) {
    EXPECT_TRUE(absl::StrContains(listing, name)) << name;
  }
}

TEST_F(RegistryTest, AfterShutdownNoCallIsServed) {
  StopServer();
  v1::Ledger ledger;
  grpc::Status s = GetLedger(PersonId(20), 2026, &ledger);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(HealthCheck(channel_, "", absl::Seconds(2)).status.ok());
}

// ---- server construction ------------------------------------------------------------

TEST(ServerOptionsTest, ListenAddressRules) {
  EXPECT_TRUE(server::CheckListenAddress("127.0.0.1:0").ok());
  EXPECT_TRUE(server::CheckListenAddress("[::1]:50051").ok());
  EXPECT_TRUE(server::CheckListenAddress("localhost:50051").ok());
  absl::Status s = server::CheckListenAddress("0.0.0.0:50051");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("loopback"));
  EXPECT_EQ(server::CheckListenAddress("[::]:1").code(), absl::StatusCode::kFailedPrecondition);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", ":50051",
                          "::1:50051", "[::1]50051", "[::1"}) {
    EXPECT_EQ(server::CheckListenAddress(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

class ServerStartTest : public ServerTest {};

TEST_F(ServerStartTest, RefusesNonLoopbackAndBusyPort) {
  server::ServerOptions options;
  options.listen_address = "0.0.0.0:0";
  server::FrikortServer open(options, reg_.get(), job_.get(), rules_.get(), clock_.get());
  absl::Status s = open.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("loopback"));

  options.listen_address = absl::StrCat("127.0.0.1:", server_->port());
  server::FrikortServer busy(options, reg_.get(), job_.get(), rules_.get(), clock_.get());
  EXPECT_EQ(busy.Start().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace frikort::testutil
