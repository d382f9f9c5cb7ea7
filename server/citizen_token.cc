#include "server/citizen_token.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "server/startup_files.h"

namespace frikort::server {
namespace {

using Json = nlohmann::json;

// RSA moduli outside these sizes are refused: too weak, or too costly to
// verify on every call.
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;
constexpr size_t kP256CoordinateBytes = 32;
constexpr absl::string_view kAcrAllowed[] = {"idporten-loa-substantial", "idporten-loa-high"};

absl::Status Refused(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("authorization: ", why));
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bn = std::unique_ptr<BIGNUM, BnFree>;

// base64url without padding (RFC 7515): the characters are checked here, the
// decoding is Abseil's.
bool DecodeBase64Url(absl::string_view in, std::string* out) {
  for (char c : in) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return absl::WebSafeBase64Unescape(in, out);
}

// A JSON object from text, or nullopt.
std::optional<Json> ParseObject(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// The string member `name`, or nullptr when absent or not a string.
const std::string* StringMember(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// ---- keys -------------------------------------------------------------------

absl::StatusOr<Pkey> PkeyFromParams(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) <= 0) {
    return absl::InternalError("OpenSSL could not set up a public key");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return absl::InvalidArgumentError("not a valid public key");
  }
  Pkey pkey(raw);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) <= 0) {
    return absl::InvalidArgumentError("not a valid public key");
  }
  return pkey;
}

absl::StatusOr<std::string> KeyField(const Json& jwk, const char* name) {
  const std::string* text = StringMember(jwk, name);
  std::string raw;
  if (text == nullptr || text->empty() || !DecodeBase64Url(*text, &raw)) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is missing or not base64url"));
  }
  return raw;
}

absl::StatusOr<Pkey> RsaKey(const Json& jwk) {
  absl::StatusOr<std::string> n = KeyField(jwk, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = KeyField(jwk, "e");
  if (!e.ok()) return e.status();
  Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()),
                    nullptr));
  Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()),
                    nullptr));
  if (bn_n == nullptr || bn_e == nullptr) return absl::InternalError("OpenSSL: out of memory");
  const int bits = BN_num_bits(bn_n.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return absl::InvalidArgumentError(absl::StrCat("RSA modulus of ", bits, " bits; between ",
                                                   kMinRsaBits, " and ", kMaxRsaBits, " needed"));
  }
  if (!BN_is_odd(bn_e.get()) || BN_is_one(bn_e.get())) {
    return absl::InvalidArgumentError("RSA exponent 'e' is not a valid public exponent");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return absl::InternalError("OpenSSL: out of memory");
  }
  return PkeyFromParams("RSA", bld.get());
}

absl::StatusOr<Pkey> EcKey(const Json& jwk) {
  const std::string* crv = StringMember(jwk, "crv");
  if (crv == nullptr || *crv != "P-256") {
    return absl::InvalidArgumentError("EC key: only the curve P-256 is accepted");
  }
  absl::StatusOr<std::string> x = KeyField(jwk, "x");
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = KeyField(jwk, "y");
  if (!y.ok()) return y.status();
  if (x->size() != kP256CoordinateBytes || y->size() != kP256CoordinateBytes) {
    return absl::InvalidArgumentError("EC key: 'x' and 'y' must be 32 bytes each");
  }
  const std::string point = absl::StrCat("\x04", *x, *y);  // uncompressed point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return absl::InternalError("OpenSSL: out of memory");
  }
  return PkeyFromParams("EC", bld.get());
}

// ---- signatures -------------------------------------------------------------

// JWS ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER.
bool EcdsaRawToDer(absl::string_view raw, std::string* der) {
  if (raw.size() != 2 * kP256CoordinateBytes) return false;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes, kP256CoordinateBytes, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kP256CoordinateBytes, kP256CoordinateBytes, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || !ECDSA_SIG_set0(sig.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return false;
  der->resize(static_cast<size_t>(len));
  auto* out = reinterpret_cast<unsigned char*>(der->data());
  return i2d_ECDSA_SIG(sig.get(), &out) == len;
}

bool SignatureVerifies(const Jwks::Key& key, absl::string_view signing_input,
                       absl::string_view signature) {
  std::string der;
  if (key.alg == TokenAlg::kES256) {
    if (!EcdsaRawToDer(signature, &der)) return false;
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey) <= 0) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// ---- claims -----------------------------------------------------------------

// A NumericDate claim: absent (nullopt, ok), a number of seconds, or an error.
absl::StatusOr<std::optional<absl::Time>> TimeClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  // Far beyond any real date, within what absl::Time holds exactly.
  constexpr double kMaxSeconds = 1e12;
  if (!it->is_number() || !std::isfinite(it->get<double>()) ||
      std::fabs(it->get<double>()) > kMaxSeconds) {
    return Refused(absl::StrCat("token claim '", name, "' is not a number of seconds"));
  }
  return absl::FromUnixSeconds(static_cast<int64_t>(std::floor(it->get<double>())));
}

absl::Status CheckTimes(const Json& claims, absl::Time now) {
  absl::StatusOr<std::optional<absl::Time>> exp = TimeClaim(claims, "exp");
  if (!exp.ok()) return exp.status();
  if (!exp->has_value()) return Refused("token has no 'exp' claim");
  if (now >= **exp + kTokenLeeway) return Refused("token has expired ('exp' is past)");
  absl::StatusOr<std::optional<absl::Time>> iat = TimeClaim(claims, "iat");
  if (!iat.ok()) return iat.status();
  if (!iat->has_value()) return Refused("token has no 'iat' claim");
  if (**iat > now + kTokenLeeway) return Refused("token is issued in the future ('iat')");
  absl::StatusOr<std::optional<absl::Time>> nbf = TimeClaim(claims, "nbf");
  if (!nbf.ok()) return nbf.status();
  if (nbf->has_value() && **nbf > now + kTokenLeeway) {
    return Refused("token is not valid yet ('nbf' is in the future)");
  }
  return absl::OkStatus();
}

bool AudienceContains(const Json& claims, absl::string_view audience) {
  auto it = claims.find("aud");
  if (it == claims.end()) return false;
  if (it->is_string()) return it->get_ref<const std::string&>() == audience;
  if (!it->is_array()) return false;
  for (const Json& a : *it) {
    if (a.is_string() && a.get_ref<const std::string&>() == audience) return true;
  }
  return false;
}

}  // namespace

// ---- Jwks ---------------------------------------------------------------------

Jwks::~Jwks() {
  for (auto& [kid, key] : keys_) EVP_PKEY_free(key.pkey);
}

absl::StatusOr<std::shared_ptr<const Jwks>> Jwks::Parse(absl::string_view json) {
  std::optional<Json> doc = ParseObject(json);
  if (!doc.has_value()) return absl::InvalidArgumentError("not a JSON object");
  auto keys = doc->find("keys");
  if (keys == doc->end() || !keys->is_array()) {
    return absl::InvalidArgumentError("no 'keys' array");
  }
  std::shared_ptr<Jwks> out(new Jwks());
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& jwk = (*keys)[i];
    auto where = [i](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: ", why));
    };
    if (!jwk.is_object()) return where("not an object");
    const std::string* use = StringMember(jwk, "use");
    if (use != nullptr && *use != "sig") continue;  // an encryption key: not ours
    const std::string* kty = StringMember(jwk, "kty");
    if (kty == nullptr) return where("no 'kty'");
    TokenAlg alg;
    absl::StatusOr<Pkey> pkey;
    if (*kty == "RSA") {
      alg = TokenAlg::kRS256;
      pkey = RsaKey(jwk);
    } else if (*kty == "EC") {
      alg = TokenAlg::kES256;
      pkey = EcKey(jwk);
    } else {
      continue;  // a key type no accepted algorithm uses
    }
    if (!pkey.ok()) return where(pkey.status().message());
    const std::string* declared = StringMember(jwk, "alg");
    if (declared != nullptr && *declared != (alg == TokenAlg::kRS256 ? "RS256" : "ES256")) {
      return where("'alg' does not match the key type (RSA keys are RS256, EC keys ES256)");
    }
    const std::string* kid = StringMember(jwk, "kid");
    if (kid == nullptr || kid->empty()) return where("no 'kid'");
    if (out->keys_.contains(*kid)) return where("its 'kid' is used by an earlier key too");
    out->keys_.emplace(*kid, Key{alg, pkey->release()});
  }
  if (out->keys_.empty()) return absl::InvalidArgumentError("no RSA or EC P-256 signing key");
  return std::shared_ptr<const Jwks>(std::move(out));
}

absl::StatusOr<std::shared_ptr<const Jwks>> Jwks::LoadFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFlagFile("citizen_jwks_file", path, /*private_key=*/false);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::shared_ptr<const Jwks>> keys = Parse(*text);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("citizen_jwks_file ", path, ": ", keys.status().message()));
  }
  return keys;
}

const Jwks::Key* Jwks::Find(absl::string_view kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

// ---- the token ------------------------------------------------------------------

absl::StatusOr<VerifiedToken> VerifyToken(absl::string_view token, const Jwks& keys,
                                          const TokenPolicy& policy, absl::Time now) {
  if (token.empty()) return Refused("no token");
  if (token.size() > kMaxTokenBytes) {
    return Refused(absl::StrCat("token of ", token.size(), " bytes; at most ", kMaxTokenBytes));
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    return Refused("token is not a JWT (three base64url parts joined by '.')");
  }
  std::string header_json, payload_json, signature;
  if (!DecodeBase64Url(parts[0], &header_json) || !DecodeBase64Url(parts[1], &payload_json) ||
      !DecodeBase64Url(parts[2], &signature)) {
    return Refused("token is not a JWT (a part is not base64url)");
  }
  std::optional<Json> header = ParseObject(header_json);
  if (!header.has_value()) return Refused("token header is not a JSON object");
  const std::string* alg = StringMember(*header, "alg");
  if (alg == nullptr) return Refused("token header has no 'alg'");
  TokenAlg want;
  if (*alg == "RS256") {
    want = TokenAlg::kRS256;
  } else if (*alg == "ES256") {
    want = TokenAlg::kES256;
  } else {
    return Refused("token algorithm is not accepted (only RS256 and ES256)");
  }
  if (header->contains("crit")) return Refused("token header has 'crit' extensions");
  const std::string* kid = StringMember(*header, "kid");
  if (kid == nullptr) return Refused("token header has no 'kid'");
  const Jwks::Key* key = keys.Find(*kid);
  if (key == nullptr) return Refused("token is signed by an unknown key ('kid')");
  if (key->alg != want) return Refused("token algorithm does not match its key's type");
  const absl::string_view signing_input(token.data(), parts[0].size() + 1 + parts[1].size());
  if (!SignatureVerifies(*key, signing_input, signature)) {
    return Refused("token signature does not verify");
  }

  std::optional<Json> claims = ParseObject(payload_json);
  if (!claims.has_value()) return Refused("token payload is not a JSON object");
  const std::string* iss = StringMember(*claims, "iss");
  if (iss == nullptr || *iss != policy.issuer) return Refused("token 'iss' is not the issuer");
  if (!AudienceContains(*claims, policy.audience)) {
    return Refused("token 'aud' does not name this register");
  }
  if (absl::Status s = CheckTimes(*claims, now); !s.ok()) return s;
  const std::string* acr = StringMember(*claims, "acr");
  if (acr == nullptr ||
      std::find(std::begin(kAcrAllowed), std::end(kAcrAllowed), *acr) == std::end(kAcrAllowed)) {
    return Refused("token 'acr' is too low (idporten-loa-substantial or idporten-loa-high needed)");
  }
  const std::string* pid = StringMember(*claims, "pid");
  if (pid == nullptr) return Refused("token has no 'pid' claim");
  absl::StatusOr<core::PersonId> person = core::ParsePersonId(*pid, policy.id_options);
  if (!person.ok()) {
    const core::PersonIdOptions synthetic{.allow_synthetic = true};
    absl::StatusOr<core::PersonId> test_id = core::ParsePersonId(*pid, synthetic);
    if (test_id.ok() && test_id->synthetic) {
      return Refused("token 'pid' is a synthetic test id, which this register does not accept");
    }
    return Refused(
        absl::StrCat("token 'pid' is not a valid national id (", pid->size(), " characters)"));
  }
  return VerifiedToken{.pid = std::move(person->digits), .acr = *acr};
}

absl::StatusOr<absl::string_view> BearerToken(absl::string_view authorization) {
  if (authorization.empty()) {
    return Refused("no 'authorization: Bearer <token>' metadata (the person's token is required)");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return Refused("the 'authorization' metadata is not 'Bearer <token>'");
  }
  return absl::StripLeadingAsciiWhitespace(authorization.substr(kScheme.size()));
}

// ---- CitizenTokenVerifier -----------------------------------------------------------

absl::Status CitizenTokenVerifier::Configure(std::string jwks_file, TokenPolicy policy) {
  absl::StatusOr<std::shared_ptr<const Jwks>> keys = Jwks::LoadFile(jwks_file);
  if (!keys.ok()) return keys.status();
  auto fresh = std::make_shared<const State>(
      State{.jwks_file = std::move(jwks_file), .policy = std::move(policy), .keys = *keys});
  absl::MutexLock l(&mu_);
  state_ = std::move(fresh);
  return absl::OkStatus();
}

std::shared_ptr<const CitizenTokenVerifier::State> CitizenTokenVerifier::state() const {
  absl::MutexLock l(&mu_);
  return state_;
}

bool CitizenTokenVerifier::configured() const { return state() != nullptr; }

absl::StatusOr<size_t> CitizenTokenVerifier::Reload() {
  std::shared_ptr<const State> now = state();
  if (now == nullptr) {
    return absl::FailedPreconditionError("citizen_jwks_file: none given (Citizen service off)");
  }
  absl::StatusOr<std::shared_ptr<const Jwks>> keys = Jwks::LoadFile(now->jwks_file);
  if (!keys.ok()) return keys.status();
  const size_t n = (*keys)->size();
  auto fresh = std::make_shared<const State>(
      State{.jwks_file = now->jwks_file, .policy = now->policy, .keys = *std::move(keys)});
  absl::MutexLock l(&mu_);
  state_ = std::move(fresh);
  return n;
}

absl::StatusOr<VerifiedToken> CitizenTokenVerifier::Verify(absl::string_view token,
                                                           absl::Time now) const {
  std::shared_ptr<const State> s = state();
  if (s == nullptr) {
    return absl::FailedPreconditionError(
        "the Citizen service is not configured (citizen_jwks_file, citizen_token_issuer and "
        "citizen_token_audience are needed)");
  }
  return VerifyToken(token, *s->keys, s->policy, now);
}

}  // namespace frikort::server
