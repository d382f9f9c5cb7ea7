// frikort.v1.Citizen against an in-process server in development mode (the
// role check with mutual TLS is in tls_roles_test.cc): the person is always the
// token's, a token is required, every call is audited, and a person's own
// reads stay out of their lookup log.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/citizen_tokens.h"

namespace frikort::testutil {
namespace {

using ::frikort::testing::Json;
using ::frikort::testing::TokenKey;
using ::frikort::testing::ValidClaims;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

class CitizenServiceTest : public ServerTest {
 protected:
  static void SetUpTestSuite() { key_ = new TokenKey(TokenKey::Ec("portal-test-key")); }
  static void TearDownTestSuite() { delete key_; }

  void ConfigureServer(server::ServerOptions* options) override {
    const std::string jwks = dir_ + "/jwks.json";
    frikort::testing::WriteJwksFile(jwks, {key_});
    options->citizen_jwks_file = jwks;
    options->citizen_token_issuer = frikort::testing::kTestIssuer;
    options->citizen_token_audience = frikort::testing::kTestAudience;
    options->audit = [this](const std::string& line) {
      absl::MutexLock l(&audit_mu_);
      audit_.push_back(line);
    };
  }
  void SetUp() override {
    ServerTest::SetUp();
    citizen_ = v1::Citizen::NewStub(channel_);
  }

  std::string TokenFor(const std::string& pid) {
    return key_->Sign(ValidClaims(pid, clock_->Now()));
  }
  std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto ctx = Ctx();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  grpc::Status Overview(const std::string& token, int year, v1::MyOverview* out) {
    v1::GetMyOverviewRequest q;
    q.set_year(year);
    return citizen_->GetMyOverview(As(token).get(), q, out);
  }
  grpc::Status MyLookups(const std::string& token, v1::ListLookupsResponse* out) {
    v1::ListMyLookupsRequest q;
    return citizen_->ListMyLookups(As(token).get(), q, out);
  }
  void Lookup(const std::string& person) {
    v1::CheckExemptionRequest q;
    q.set_person_id(person);
    v1::CheckExemptionResponse r;
    grpc::Status s = lookup_->CheckExemption(Ctx().get(), q, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::vector<std::string> AuditLines() {
    absl::MutexLock l(&audit_mu_);
    return audit_;
  }

  static TokenKey* key_;
  std::unique_ptr<v1::Citizen::Stub> citizen_;
  absl::Mutex audit_mu_;
  std::vector<std::string> audit_ ABSL_GUARDED_BY(audit_mu_);
  const std::string alice_ = PersonId(1);
  const std::string bob_ = PersonId(2);
};
TokenKey* CitizenServiceTest::key_ = nullptr;

TEST_F(CitizenServiceTest, TheOverviewIsTheTokensPersonsAndNobodyElses) {
  Report("a1", alice_, 120000, OsloTime(2026, 2, 1));
  Report("a2", alice_, 250000, OsloTime(2026, 3, 1));
  Report("b1", bob_, 5000, OsloTime(2026, 2, 2));
  Report("a-old", alice_, 7000, OsloTime(2025, 5, 1));

  v1::MyOverview mine;
  grpc::Status s = Overview(TokenFor(alice_), 0, &mine);  // 0 = this year (2026)
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(mine.person_id(), alice_);
  EXPECT_EQ(mine.year(), 2026);
  EXPECT_FALSE(mine.reserved());
  std::vector<std::string> reports;
  for (const v1::LedgerEntry& e : mine.entries()) reports.push_back(e.report_id());
  EXPECT_THAT(reports, ElementsAre("a1", "a2"));
  ASSERT_THAT(mine.schemes(), SizeIs(1));
  EXPECT_EQ(mine.schemes(0).counted_total_ore(), 370000);
  EXPECT_EQ(mine.schemes(0).cap_reached_on(), "2026-03-01");

  v1::MyOverview bobs;
  ASSERT_TRUE(Overview(TokenFor(bob_), 2026, &bobs).ok());
  EXPECT_EQ(bobs.person_id(), bob_);
  ASSERT_THAT(bobs.entries(), SizeIs(1));
  EXPECT_EQ(bobs.entries(0).report_id(), "b1");

  v1::MyOverview last_year;
  ASSERT_TRUE(Overview(TokenFor(alice_), 2025, &last_year).ok());
  ASSERT_THAT(last_year.entries(), SizeIs(1));
  EXPECT_EQ(last_year.entries(0).report_id(), "a-old");

  v1::MyOverview none;
  s = Overview(TokenFor(alice_), 1999, &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("year"));
}

TEST_F(CitizenServiceTest, TheOverviewHoldsTheCardThePayoutsAndTheReservation) {
  Report("a1", alice_, 330000, OsloTime(2026, 2, 1));
  v1::RunIssuanceRequest run;
  v1::IssuanceRun done;
  ASSERT_TRUE(issuance_->RunIssuance(Ctx().get(), run, &done).ok());
  ASSERT_EQ(done.payouts(), 1);

  v1::MyOverview mine;
  ASSERT_TRUE(Overview(TokenFor(alice_), 2026, &mine).ok());
  ASSERT_THAT(mine.schemes(), SizeIs(1));
  EXPECT_TRUE(mine.schemes(0).has_card());
  EXPECT_EQ(mine.schemes(0).refunded_ore(), 330000 - 327800);
  ASSERT_THAT(mine.payouts(), SizeIs(1));
  EXPECT_EQ(mine.payouts(0).person_id(), alice_);
  EXPECT_EQ(mine.payouts(0).amount_ore(), 330000 - 327800);
  EXPECT_EQ(mine.payouts(0).run_id(), done.run_id());

  v1::MyOverview bobs;
  ASSERT_TRUE(Overview(TokenFor(bob_), 2026, &bobs).ok());
  EXPECT_THAT(bobs.payouts(), IsEmpty());
  EXPECT_FALSE(bobs.schemes(0).has_card());

  v1::SetReservationRequest reserve;
  reserve.set_person_id(alice_);
  reserve.set_reserved(true);
  v1::SetReservationResponse reserved;
  ASSERT_TRUE(registry_->SetReservation(Ctx().get(), reserve, &reserved).ok());
  ASSERT_TRUE(Overview(TokenFor(alice_), 2026, &mine).ok());
  EXPECT_TRUE(mine.reserved());
  EXPECT_THAT(mine.entries(), SizeIs(1));  // their own data, still shown to them
}

TEST_F(CitizenServiceTest, MyLookupsAreOthersLookupsNewestFirstWithoutMyOwnReads) {
  Lookup(alice_);
  clock_->Advance(absl::Minutes(5));
  Lookup(alice_);
  Lookup(bob_);
  v1::MyOverview overview;
  ASSERT_TRUE(Overview(TokenFor(alice_), 2026, &overview).ok());

  v1::ListLookupsResponse mine;
  grpc::Status s = MyLookups(TokenFor(alice_), &mine);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(mine.lookups(), SizeIs(2));
  EXPECT_GT(mine.lookups(0).time().seconds(), mine.lookups(1).time().seconds());
  EXPECT_THAT(mine.lookups(0).caller(), HasSubstr("dev:"));
  // Reading the log is not a lookup either.
  ASSERT_TRUE(MyLookups(TokenFor(alice_), &mine).ok());
  EXPECT_THAT(mine.lookups(), SizeIs(2));

  v1::ListLookupsResponse bobs;
  ASSERT_TRUE(MyLookups(TokenFor(bob_), &bobs).ok());
  EXPECT_THAT(bobs.lookups(), SizeIs(1));
}

TEST_F(CitizenServiceTest, ATokenIsRequiredAndEveryRefusalIsUnauthenticated) {
  Report("a1", alice_, 120000, OsloTime(2026, 2, 1));
  v1::MyOverview out;
  grpc::Status s = Overview("", 2026, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("authorization"));

  auto ctx = Ctx();
  ctx->AddMetadata("authorization", "Basic YWxpY2U6c2VjcmV0");
  v1::GetMyOverviewRequest q;
  EXPECT_EQ(citizen_->GetMyOverview(ctx.get(), q, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Signed by a key the register does not hold, under the known kid.
  TokenKey stranger = TokenKey::Ec(key_->kid());
  const std::string forged = stranger.Sign(ValidClaims(alice_, clock_->Now()));
  s = Overview(forged, 2026, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("signature does not verify"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr(alice_)));
  EXPECT_THAT(out.entries(), IsEmpty());

  // Expired by the server's clock.
  const std::string token = TokenFor(alice_);
  clock_->Advance(absl::Hours(2));
  v1::ListLookupsResponse lookups;
  s = MyLookups(token, &lookups);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("expired"));
}

TEST_F(CitizenServiceTest, EachCallIsOneAuditLineWithThePortalAndThePseudonym) {
  v1::MyOverview out;
  ASSERT_TRUE(Overview(TokenFor(alice_), 2026, &out).ok());
  v1::ListLookupsResponse lookups;
  ASSERT_TRUE(MyLookups(TokenFor(alice_), &lookups).ok());
  EXPECT_FALSE(Overview("not-a-token", 2026, &out).ok());

  const std::vector<std::string> lines = AuditLines();
  ASSERT_THAT(lines, SizeIs(3));
  const std::string pseudonym = reg_->AuditPseudonym(alice_);
  ASSERT_FALSE(pseudonym.empty());
  EXPECT_THAT(lines[0], HasSubstr(R"("audit":"citizen_call")"));
  EXPECT_THAT(lines[0], HasSubstr("frikort.v1.Citizen/GetMyOverview"));
  EXPECT_THAT(lines[0], HasSubstr(absl::StrCat(R"("person":")", pseudonym)));
  EXPECT_THAT(lines[0], HasSubstr(R"("caller":"dev:)"));
  EXPECT_THAT(lines[1], HasSubstr("frikort.v1.Citizen/ListMyLookups"));
  EXPECT_THAT(lines[2], HasSubstr(R"("audit":"denied")"));
  for (const std::string& line : lines) EXPECT_THAT(line, Not(HasSubstr(alice_)));
}

// The same server without the three flags.
class UnconfiguredCitizenTest : public ServerTest {};

TEST_F(UnconfiguredCitizenTest, AnswersFailedPreconditionEvenWithAToken) {
  TokenKey key = TokenKey::Rsa("k");
  auto citizen = v1::Citizen::NewStub(channel_);
  auto ctx = Ctx();
  ctx->AddMetadata("authorization", "Bearer " + key.Sign(ValidClaims(PersonId(1), clock_->Now())));
  v1::GetMyOverviewRequest q;
  v1::MyOverview out;
  grpc::Status s = citizen->GetMyOverview(ctx.get(), q, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("--citizen_jwks_file"));
}

}  // namespace
}  // namespace frikort::testutil
