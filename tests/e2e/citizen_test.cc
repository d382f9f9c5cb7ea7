// The Citizen service in the real frikortd: its flags, the person's token on
// every call, and the JWKS file re-read on SIGHUP (a malformed file keeps the
// keys in force).
#include <fstream>

#include "tests/e2e/daemon.h"
#include "tests/testing/citizen_tokens.h"

namespace frikort::testutil {
namespace {

using ::frikort::testing::TokenKey;
using ::frikort::testing::ValidClaims;
using ::testing::HasSubstr;

class CitizenE2eTest : public DaemonTest {
 protected:
  std::vector<std::string> CitizenArgs() {
    std::vector<std::string> args = Args();
    args.push_back("--citizen_jwks_file=" + jwks_);
    args.push_back(absl::StrCat("--citizen_token_issuer=", frikort::testing::kTestIssuer));
    args.push_back(absl::StrCat("--citizen_token_audience=", frikort::testing::kTestAudience));
    return args;
  }
  grpc::Status Overview(const std::shared_ptr<grpc::Channel>& channel, const TokenKey& key,
                        v1::MyOverview* out) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", "Bearer " + key.Sign(ValidClaims(person_, absl::Now())));
    v1::GetMyOverviewRequest q;
    return v1::Citizen::NewStub(channel)->GetMyOverview(ctx.get(), q, out);
  }
  // Waits until `check` holds (a reload is taken by the daemon's signal thread).
  template <typename Fn>
  bool Eventually(Fn check) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (check()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::string jwks_;
  const std::string person_ = PersonId(4);
};

TEST_F(CitizenE2eTest, AJwksChangeTakesEffectOnSighup) {
  jwks_ = dir_ + "/jwks.json";
  TokenKey old_key = TokenKey::Rsa("2026-01");
  TokenKey new_key = TokenKey::Ec("2026-02");
  frikort::testing::WriteJwksFile(jwks_, {&old_key});
  Daemon* d = nullptr;
  std::shared_ptr<grpc::Channel> channel = StartServing(&d, CitizenArgs());
  ASSERT_NE(channel, nullptr);

  v1::MyOverview out;
  grpc::Status s = Overview(channel, old_key, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.person_id(), person_);
  s = Overview(channel, new_key, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown key"));

  // The identity provider rolls its key: the new one in, the old one out.
  frikort::testing::WriteJwksFile(jwks_, {&new_key});
  d->Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return Overview(channel, new_key, &out).ok(); })) << d->Stderr();
  EXPECT_EQ(Overview(channel, old_key, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(d->Stderr(), HasSubstr("reloaded; keys: 1"));

  // A broken file is refused and the keys in force stay.
  std::ofstream(jwks_, std::ios::trunc) << "{\"keys\": [";
  d->Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(d->Stderr(), "the previous keys stay in force");
  })) << d->Stderr();
  EXPECT_TRUE(Overview(channel, new_key, &out).ok());
  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(20)).value_or(-1), 0) << d->Stderr();
}

TEST_F(CitizenE2eTest, StartupRefusesAPartialConfigurationOrABadJwksFile) {
  jwks_ = dir_ + "/jwks.json";
  std::vector<std::string> partial = Args();
  partial.push_back("--citizen_token_issuer=x");
  ExpectRefused(partial, 1, "give all three");
  std::ofstream(jwks_) << "{}";
  ExpectRefused(CitizenArgs(), 1, "citizen_jwks_file");
}

}  // namespace
}  // namespace frikort::testutil
