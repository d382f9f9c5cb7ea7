// frikort_bench, part "citizen": the citizen calls and their token check.
#include "server/citizen_token.h"
#include "tests/bench/bench.h"
#include "tests/testing/citizen_tokens.h"

namespace frikort::bench {
namespace {

// Microseconds per call of `fn`, over `n` calls on this thread.
template <typename Fn>
double MicrosPerCall(int n, Fn fn) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) fn();
  return absl::ToDoubleMicroseconds(absl::Now() - start) / n;
}

// OpenSSL's verification alone of a SHA-256 signature (DER for EC) by `key`.
double SignatureMicros(const frikort::testing::TokenKey& key, int n) {
  const std::string input(600, 'x');  // about a token's header and payload
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sign(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EVP_DigestSignInit(sign.get(), nullptr, EVP_sha256(), nullptr, key.pkey());
  EVP_DigestSign(sign.get(), nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(sign.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
  sig.resize(len);
  return MicrosPerCall(n, [&] {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey());
    if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         in, input.size()) != 1) {
      Stack::Die(absl::InternalError("signature check: does not verify"));
    }
  });
}

}  // namespace

void Citizen() {
  using frikort::testing::TokenKey;
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_lookup_seconds));
  TempDir keys_dir("citizen-keys");
  const TokenKey rsa = TokenKey::Rsa("bench-rs256");
  const TokenKey ec = TokenKey::Ec("bench-es256");
  const std::string jwks = (keys_dir.path / "jwks.json").string();
  frikort::testing::WriteJwksFile(jwks, {&rsa, &ec});
  Stack s("citizen", true, [&](server::ServerOptions* so) {
    so->citizen_jwks_file = jwks;
    so->citizen_token_issuer = frikort::testing::kTestIssuer;
    so->citizen_token_audience = frikort::testing::kTestAudience;
  });
  // kFull people with kEntries co-payments each in 2024 (the overview's
  // year), everyone else with one (the lookups').
  constexpr int kFull = 64;
  constexpr int kEntries = 100;
  const auto persons = MakeIds(20000);
  std::vector<core::CoPaymentInput> items;
  for (int p = 0; p < kFull; ++p) {
    for (int e = 0; e < kEntries; ++e) {
      items.push_back(ToInput(MakeCoPayment(persons[p], p * kEntries + e, 2000)));
    }
  }
  for (size_t i = kFull; i < persons.size(); ++i) {
    items.push_back(ToInput(MakeCoPayment(persons[i], 1000000 + i, i % 2 ? 400000 : 5000)));
    if (items.size() == 10000) {
      if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
      items.clear();
    }
  }
  if (auto r = s.reg->Submit(std::move(items)); !r.ok()) Stack::Die(r.status());
  // The portal passes each person's RS256 token; the server verifies it on
  // every call.
  std::vector<std::string> tokens;
  for (int p = 0; p < kFull; ++p) {
    tokens.push_back(rsa.Sign(frikort::testing::ValidClaims(persons[p], kNow)));
  }
  constexpr int kWindows = 8;
  std::printf(
      "citizen: %d calls in flight, %d s each in %d alternating windows, %d people with "
      "%d entries, token (RS256) verified on every call\n",
      in_flight, absl::GetFlag(FLAGS_lookup_seconds), kWindows, kFull, kEntries);
  grpc::GenericStub stub(s.channel);
  v1::GetMyOverviewRequest overview_request;
  overview_request.set_year(2024);
  const std::string overview_bytes = overview_request.SerializeAsString();
  Samples overview, check;
  for (int w = 0; w < kWindows; ++w) {
    HammerCalls(
        in_flight, length / kWindows,
        [&](int t, int64_t i, std::function<void()> done) {
          StartUnaryCall(stub, "/frikort.v1.Citizen/GetMyOverview", overview_bytes,
                         tokens[(t + i) % kFull], [done](const std::string& answer) {
                           // MyOverview.entries is field 5.
                           if (CountField(answer, 5) != kEntries) {
                             Stack::Die(absl::InternalError("GetMyOverview: unexpected answer"));
                           }
                           done();
                         });
        },
        &overview);
    HammerCalls(
        in_flight, length / kWindows,
        [&](int t, int64_t i, std::function<void()> done) {
          StartCheckExemption(stub, persons, t, i, w, std::move(done));
        },
        &check);
  }
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "GetMyOverview (100 entries)",
              overview.per_second(), overview.Percentile(50), overview.Percentile(99));
  std::printf("  %-40s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms\n", "CheckExemption",
              check.per_second(), check.Percentile(50), check.Percentile(99));
  std::printf("  p99 target for GetMyOverview: < 20 ms\n");
  // The token check on one thread: whole (parse, signature, claims) and
  // OpenSSL's signature verification alone.
  constexpr int kChecks = 4000;
  server::TokenPolicy policy{.issuer = frikort::testing::kTestIssuer,
                             .audience = frikort::testing::kTestAudience,
                             .id_options = {}};
  auto parsed = server::Jwks::LoadFile(jwks);
  if (!parsed.ok()) Stack::Die(parsed.status());
  for (const TokenKey* key : {&rsa, &ec}) {
    const std::string token = key->Sign(frikort::testing::ValidClaims(persons[0], kNow));
    const double whole = MicrosPerCall(kChecks, [&] {
      if (!server::VerifyToken(token, **parsed, policy, kNow).ok()) {
        Stack::Die(absl::InternalError("VerifyToken: refused a valid token"));
      }
    });
    std::printf("  token check %s, one thread: %.1f us per call, of which the signature %.1f us\n",
                key->alg().c_str(), whole, SignatureMicros(*key, kChecks));
  }
}

}  // namespace frikort::bench
