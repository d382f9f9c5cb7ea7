// The Citizen service's token check, on tokens minted here: every refusal is
// UNAUTHENTICATED, says what was wrong, and never repeats the token or the id.
#include "server/citizen_token.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/citizen_tokens.h"

namespace frikort::server {
namespace {

using ::frikort::testing::B64Url;
using ::frikort::testing::Json;
using ::frikort::testing::JwksJson;
using ::frikort::testing::kTestAudience;
using ::frikort::testing::kTestIssuer;
using ::frikort::testing::TokenKey;
using ::frikort::testing::ValidClaims;
using ::testing::HasSubstr;
using ::testing::Not;

class CitizenTokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new TokenKey(TokenKey::Rsa("rsa-1"));
    ec_ = new TokenKey(TokenKey::Ec("ec-1"));
    other_ = new TokenKey(TokenKey::Rsa("rsa-1"));  // same kid, another key
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
    delete other_;
  }
  void SetUp() override {
    auto keys = Jwks::Parse(JwksJson({rsa_, ec_}));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
    policy_ = {.issuer = kTestIssuer, .audience = kTestAudience, .id_options = {}};
  }

  absl::StatusOr<VerifiedToken> Verify(const std::string& token) {
    return VerifyToken(token, *keys_, policy_, now_);
  }
  // Refused with UNAUTHENTICATED, a message holding `why`, and neither the
  // token nor the person's id (nor any run of its digits) in the message.
  void ExpectRefused(const std::string& token, const std::string& why) {
    absl::StatusOr<VerifiedToken> v = Verify(token);
    ASSERT_FALSE(v.ok()) << why;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kUnauthenticated) << v.status();
    const std::string message(v.status().message());
    EXPECT_THAT(message, HasSubstr(why));
    EXPECT_THAT(message, Not(HasSubstr(pid_.substr(0, 6))));
    if (!token.empty()) {
      EXPECT_THAT(message, Not(HasSubstr(token.substr(0, 12))));
    }
  }
  Json Claims() const { return ValidClaims(pid_, now_); }

  static TokenKey* rsa_;
  static TokenKey* ec_;
  static TokenKey* other_;
  std::shared_ptr<const Jwks> keys_;
  TokenPolicy policy_;
  absl::Time now_ = absl::FromUnixSeconds(1781517600);
  const std::string pid_ = testutil::PersonId(7);
};
TokenKey* CitizenTokenTest::rsa_ = nullptr;
TokenKey* CitizenTokenTest::ec_ = nullptr;
TokenKey* CitizenTokenTest::other_ = nullptr;

TEST_F(CitizenTokenTest, AcceptsRs256AndEs256) {
  for (const TokenKey* key : {rsa_, ec_}) {
    absl::StatusOr<VerifiedToken> v = Verify(key->Sign(Claims()));
    ASSERT_TRUE(v.ok()) << key->alg() << ": " << v.status();
    EXPECT_EQ(v->pid, pid_);
    EXPECT_EQ(v->acr, "idporten-loa-high");
  }
  Json claims = Claims();
  claims["aud"] = {"someone-else", kTestAudience};
  claims["acr"] = "idporten-loa-substantial";
  claims.erase("nbf");
  EXPECT_TRUE(Verify(ec_->Sign(claims)).ok());
}

TEST_F(CitizenTokenTest, RefusesWhatIsNotAJwt) {
  ExpectRefused("", "no token");
  ExpectRefused("abc.def", "three base64url parts");
  ExpectRefused("a.b.c.d", "three base64url parts");
  const std::string good = rsa_->Sign(Claims());
  ExpectRefused(good + "=", "not base64url");
  ExpectRefused(absl::StrCat("e30.", good.substr(good.find('.') + 1)), "header has no 'alg'");
  ExpectRefused(absl::StrCat(B64Url("[1]"), ".e30.c2ln"), "header is not a JSON object");
  ExpectRefused(std::string(kMaxTokenBytes + 1, 'a'), "bytes; at most");
}

TEST_F(CitizenTokenTest, RefusesAlgorithmsOutsideTheAllowList) {
  // alg none, without a signature and with one.
  const std::string unsigned_input =
      absl::StrCat(B64Url(R"({"alg":"none","kid":"rsa-1"})"), ".", B64Url(Claims().dump()));
  ExpectRefused(unsigned_input + ".", "three base64url parts");
  ExpectRefused(unsigned_input + ".c2ln", "algorithm is not accepted");
  // HS256 keyed with the RSA public key's JWK (the classic confusion).
  const std::string hs_input =
      absl::StrCat(B64Url(R"({"alg":"HS256","kid":"rsa-1"})"), ".", B64Url(Claims().dump()));
  const std::string secret = rsa_->Jwk().dump();
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(hs_input.data()), hs_input.size(), mac,
                      sizeof(mac), &mac_len),
            nullptr);
  ExpectRefused(
      absl::StrCat(hs_input, ".", B64Url(std::string(reinterpret_cast<char*>(mac), mac_len))),
      "algorithm is not accepted");
  // ES256 named for the RSA key: the key's type decides.
  ExpectRefused(ec_->Sign(Claims(), {{"kid", "rsa-1"}}), "does not match its key's type");
}

TEST_F(CitizenTokenTest, RefusesUnknownKeysAndKeysInTheToken) {
  ExpectRefused(rsa_->Sign(Claims(), {{"kid", "rsa-2"}}), "unknown key ('kid')");
  // Another key under a known kid, carried in the header as jwk: ignored.
  Json header = {{"jwk", other_->Jwk()}, {"jku", "https://attacker.example/jwks"}};
  ExpectRefused(other_->Sign(Claims(), header), "signature does not verify");
  ExpectRefused(rsa_->Sign(Claims(), {{"crit", {"exp"}}}), "'crit'");
  Json no_kid = {{"kid", nullptr}};
  ExpectRefused(rsa_->Sign(Claims(), no_kid), "no 'kid'");
}

TEST_F(CitizenTokenTest, RefusesATamperedPayload) {
  for (const TokenKey* key : {rsa_, ec_}) {
    const std::string good = key->Sign(Claims());
    Json claims = Claims();
    claims["pid"] = testutil::PersonId(8);
    const size_t first = good.find('.');
    const size_t second = good.find('.', first + 1);
    const std::string tampered =
        absl::StrCat(good.substr(0, first + 1), B64Url(claims.dump()), good.substr(second));
    ExpectRefused(tampered, "signature does not verify");
    std::string flipped = good;
    flipped[second + 5] = flipped[second + 5] == 'A' ? 'B' : 'A';
    ExpectRefused(flipped, "signature does not verify");
  }
}

TEST_F(CitizenTokenTest, ChecksTimesWithAMinuteOfLeeway) {
  const int64_t t = absl::ToUnixSeconds(now_);
  Json claims = Claims();
  claims["exp"] = t - 59;  // within the leeway
  EXPECT_TRUE(Verify(rsa_->Sign(claims)).ok());
  claims["exp"] = t - 61;
  ExpectRefused(rsa_->Sign(claims), "expired");
  claims = Claims();
  claims["nbf"] = t + 59;
  EXPECT_TRUE(Verify(rsa_->Sign(claims)).ok());
  claims["nbf"] = t + 61;
  ExpectRefused(rsa_->Sign(claims), "not valid yet");
  claims = Claims();
  claims["iat"] = t + 61;
  ExpectRefused(rsa_->Sign(claims), "issued in the future");
  claims = Claims();
  claims.erase("exp");
  ExpectRefused(rsa_->Sign(claims), "no 'exp'");
  claims = Claims();
  claims["exp"] = "tomorrow";
  ExpectRefused(rsa_->Sign(claims), "'exp' is not a number");
  claims["exp"] = 1e300;
  ExpectRefused(rsa_->Sign(claims), "'exp' is not a number");
}

TEST_F(CitizenTokenTest, RefusesTheWrongIssuerAudienceOrLevel) {
  Json claims = Claims();
  claims["iss"] = "https://login.other.example/";
  ExpectRefused(rsa_->Sign(claims), "'iss' is not the issuer");
  claims = Claims();
  claims["aud"] = "another-service";
  ExpectRefused(rsa_->Sign(claims), "'aud' does not name this register");
  claims["aud"] = {"another-service"};
  ExpectRefused(rsa_->Sign(claims), "'aud' does not name this register");
  claims = Claims();
  claims["acr"] = "idporten-loa-low";
  ExpectRefused(rsa_->Sign(claims), "'acr' is too low");
  claims.erase("acr");
  ExpectRefused(rsa_->Sign(claims), "'acr' is too low");
}

TEST_F(CitizenTokenTest, RefusesAPidThatIsNoValidId) {
  Json claims = Claims();
  claims["pid"] = testutil::WithBadCheckDigit(pid_);
  ExpectRefused(rsa_->Sign(claims), "'pid' is not a valid national id (11 characters)");
  claims["pid"] = 12345678901;
  ExpectRefused(rsa_->Sign(claims), "no 'pid'");
  // A synthetic test id (month + 80): refused unless synthetic ids are on.
  const std::string synthetic = testutil::MakePersonIdFor(absl::CivilDay(1985, 4, 12), 100, 0, 80);
  claims["pid"] = synthetic;
  ExpectRefused(rsa_->Sign(claims), "synthetic test id");
  policy_.id_options.allow_synthetic = true;
  absl::StatusOr<VerifiedToken> v = Verify(rsa_->Sign(claims));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->pid, synthetic);
}

TEST(JwksTest, RefusesKeysItCannotUseSafely) {
  EXPECT_THAT(Jwks::Parse("[]").status().message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(Jwks::Parse(R"({"keys":[]})").status().message(), HasSubstr("no RSA or EC"));
  TokenKey rsa = TokenKey::Rsa("k");
  Json jwk = rsa.Jwk();
  jwk["alg"] = "ES256";
  EXPECT_THAT(Jwks::Parse(Json{{"keys", {jwk}}}.dump()).status().message(),
              HasSubstr("'alg' does not match"));
  jwk = rsa.Jwk();
  jwk["n"] = B64Url(std::string(128, '\x7f'));  // 1024 bits
  EXPECT_THAT(Jwks::Parse(Json{{"keys", {jwk}}}.dump()).status().message(), HasSubstr("1023 bits"));
  Json ec = TokenKey::Ec("e").Jwk();
  ec["y"] = ec["x"];  // not a point on the curve
  EXPECT_THAT(Jwks::Parse(Json{{"keys", {ec}}}.dump()).status().message(),
              HasSubstr("not a valid public key"));
  EXPECT_THAT(Jwks::Parse(Json{{"keys", {rsa.Jwk(), rsa.Jwk()}}}.dump()).status().message(),
              HasSubstr("'kid' is used by an earlier key"));
  // An encryption key and an unknown key type are skipped.
  Json enc = rsa.Jwk();
  enc["use"] = "enc";
  enc["kid"] = "enc";
  auto keys = Jwks::Parse(
      Json{{"keys", {enc, {{"kty", "OKP"}, {"kid", "x"}}, TokenKey::Ec("e").Jwk()}}}.dump());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)->size(), 1u);
  EXPECT_EQ((*keys)->Find("enc"), nullptr);
}

TEST(BearerTokenTest, NeedsTheBearerScheme) {
  EXPECT_EQ(BearerToken("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(BearerToken("Basic dXNlcjpwYXNz").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(BearerToken("Bearer ").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(*BearerToken("Bearer a.b.c"), "a.b.c");
  EXPECT_EQ(*BearerToken("bearer a.b.c"), "a.b.c");
}

TEST(CitizenTokenVerifierTest, ReloadPutsANewFileInForceAndKeepsTheOldOnError) {
  const std::string dir = testutil::MakeTempDir("frikort-jwks-test-");
  const std::string path = dir + "/jwks.json";
  TokenKey first = TokenKey::Ec("first");
  TokenKey second = TokenKey::Ec("second");
  frikort::testing::WriteJwksFile(path, {&first});
  CitizenTokenVerifier verifier;
  const absl::Time now = absl::FromUnixSeconds(1781517600);
  const std::string pid = testutil::PersonId(3);
  EXPECT_EQ(verifier.Verify("x", now).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(verifier.Reload().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(verifier.Configure(path, {kTestIssuer, kTestAudience, {}}).ok());
  EXPECT_TRUE(verifier.Verify(first.Sign(ValidClaims(pid, now)), now).ok());
  EXPECT_FALSE(verifier.Verify(second.Sign(ValidClaims(pid, now)), now).ok());

  frikort::testing::WriteJwksFile(path, {&second});
  ASSERT_EQ(verifier.Reload().value_or(0), 1u);
  EXPECT_FALSE(verifier.Verify(first.Sign(ValidClaims(pid, now)), now).ok());
  EXPECT_TRUE(verifier.Verify(second.Sign(ValidClaims(pid, now)), now).ok());

  std::ofstream(path, std::ios::trunc) << "{not json";
  absl::StatusOr<size_t> broken = verifier.Reload();
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.status().message(), HasSubstr(path));
  EXPECT_TRUE(verifier.Verify(second.Sign(ValidClaims(pid, now)), now).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace frikort::server
