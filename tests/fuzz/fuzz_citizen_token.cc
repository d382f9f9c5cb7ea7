// Fuzz target: the Citizen service's token check (server/citizen_token.h).
// The first byte picks what the rest is:
//   0: a whole token (header.payload.signature), checked against the keys;
//   1: a token's claims, signed here with the EC key of the JWKS, so the
//      claim checks behind the signature are reached too;
//   2: a JWKS file's text.
// Beyond "no crash, no undefined behaviour, no leak", it checks:
// - a refusal is UNAUTHENTICATED and starts with "authorization: ";
// - a refusal is at most 256 bytes and never repeats the token (looked for
//   in tokens with a byte no message has), nor a pid of six or more digits;
// - an accepted token's pid is a valid national id;
// - a JWKS refusal is InvalidArgument.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/national_id.h"
#include "server/citizen_token.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/testing/citizen_tokens.h"

namespace frikort::fuzz {
namespace {

using ::frikort::testing::TokenKey;

struct Setup {
  TokenKey ec = TokenKey::Ec("ec-1");
  TokenKey rsa = TokenKey::Rsa("rsa-1");
  std::shared_ptr<const server::Jwks> keys;
  server::TokenPolicy policy{.issuer = frikort::testing::kTestIssuer,
                             .audience = frikort::testing::kTestAudience,
                             .id_options = {}};
  absl::Time now = absl::FromUnixSeconds(1781517600);  // 2026-06-15T10:00:00Z

  Setup() {
    auto parsed = server::Jwks::Parse(frikort::testing::JwksJson({&ec, &rsa}));
    FUZZ_CHECK(parsed.ok());
    keys = *parsed;
  }
};

const Setup& TheSetup() {
  static const Setup* const setup = new Setup();
  return *setup;
}

void CheckAnswer(const absl::StatusOr<server::VerifiedToken>& v, absl::string_view token,
                 absl::string_view claims) {
  if (v.ok()) {
    FUZZ_CHECK(core::ParsePersonId(v->pid, TheSetup().policy.id_options).ok());
    return;
  }
  FUZZ_CHECK(v.status().code() == absl::StatusCode::kUnauthenticated);
  FUZZ_CHECK(absl::StartsWith(v.status().message(), "authorization: "));
  // The message is bounded, and does not repeat the token. A printable token
  // may be a piece of a message's own fixed text (the fuzzer learns those
  // texts from the comparisons it watches), so the echo is looked for when
  // the token has a byte no message of ours has; a message that repeated
  // tokens would repeat those too.
  FUZZ_CHECK(v.status().message().size() <= 256);
  const bool has_odd_byte = std::any_of(token.begin(), token.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e;
  });
  if (token.size() >= 8 && has_odd_byte) {
    FUZZ_CHECK(!absl::StrContains(v.status().message(), token));
  }
  // The pid, when the claims are JSON with a digit string in it.
  const size_t pid = claims.find("\"pid\"");
  if (pid != absl::string_view::npos) {
    const size_t open = claims.find('"', pid + 5);
    const size_t close = open == absl::string_view::npos ? open : claims.find('"', open + 1);
    if (close != absl::string_view::npos) {
      CheckNoIdEcho(v.status(), claims.substr(open + 1, close - open - 1));
    }
  }
}

}  // namespace
}  // namespace frikort::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace frikort::fuzz;  // NOLINT
  if (size == 0) return 0;
  const Setup& setup = TheSetup();
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      CheckAnswer(frikort::server::VerifyToken(rest, *setup.keys, setup.policy, setup.now), rest,
                  "");
      break;
    }
    case 1: {
      // The claims as given (JSON or not), under a valid header and signature.
      const std::string header = frikort::testing::B64Url(R"({"alg":"ES256","kid":"ec-1"})");
      const std::string input = header + "." + frikort::testing::B64Url(std::string(rest));
      const std::string token =
          input + "." + frikort::testing::B64Url(setup.ec.RawSignature(input));
      CheckAnswer(frikort::server::VerifyToken(token, *setup.keys, setup.policy, setup.now), token,
                  rest);
      break;
    }
    default: {
      auto parsed = frikort::server::Jwks::Parse(rest);
      if (!parsed.ok()) FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
      break;
    }
  }
  return 0;
}
