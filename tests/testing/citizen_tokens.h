// Signing keys and login tokens for the Citizen service's tests, made in
// process with OpenSSL: an RSA 2048 (RS256) or EC P-256 (ES256) key pair,
// its public JWK, JWKS files, and compact JWTs signed with it (or tampered
// with). The claims start from a valid set that each test changes.
#ifndef FRIKORT_TESTS_TESTING_CITIZEN_TOKENS_H_
#define FRIKORT_TESTS_TESTING_CITIZEN_TOKENS_H_

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace frikort::testing {

using Json = nlohmann::json;

inline constexpr char kTestIssuer[] = "https://login.test.example/";
inline constexpr char kTestAudience[] = "frikort-register";

inline std::string B64Url(const std::string& bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);
  return out;
}

class TokenKey {
 public:
  static TokenKey Rsa(std::string kid) {
    return TokenKey(std::move(kid), "RS256", EVP_RSA_gen(2048));
  }
  static TokenKey Ec(std::string kid) {
    return TokenKey(std::move(kid), "ES256", EVP_EC_gen("P-256"));
  }

  const std::string& kid() const { return kid_; }
  // The key pair (for measuring OpenSSL's verification alone).
  EVP_PKEY* pkey() const { return key_.get(); }
  const std::string& alg() const { return alg_; }

  // The public key as a JWK.
  Json Jwk() const {
    Json j = {{"kid", kid_}, {"use", "sig"}, {"alg", alg_}};
    if (alg_ == "RS256") {
      j["kty"] = "RSA";
      j["n"] = B64Url(BnParam(OSSL_PKEY_PARAM_RSA_N));
      j["e"] = B64Url(BnParam(OSSL_PKEY_PARAM_RSA_E));
    } else {
      unsigned char point[65];
      size_t len = 0;
      EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &len);
      j["kty"] = "EC";
      j["crv"] = "P-256";
      j["x"] = B64Url(std::string(reinterpret_cast<char*>(point) + 1, 32));
      j["y"] = B64Url(std::string(reinterpret_cast<char*>(point) + 33, 32));
    }
    return j;
  }

  // header.payload.signature with this key's algorithm and kid in the header
  // (unless `header` says otherwise).
  std::string Sign(const Json& claims, Json header = Json::object()) const {
    if (!header.contains("alg")) header["alg"] = alg_;
    if (!header.contains("kid")) header["kid"] = kid_;
    if (!header.contains("typ")) header["typ"] = "JWT";
    const std::string input = absl::StrCat(B64Url(header.dump()), ".", B64Url(claims.dump()));
    return absl::StrCat(input, ".", B64Url(RawSignature(input)));
  }

  // The signature JWS wants over `input` (RSA PKCS#1 v1.5, or ECDSA r || s).
  std::string RawSignature(const std::string& input) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get());
    size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
    sig.resize(len);
    if (alg_ == "RS256") return sig;
    const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(parsed), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(parsed), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(parsed);
    return raw;
  }

 private:
  TokenKey(std::string kid, std::string alg, EVP_PKEY* key)
      : kid_(std::move(kid)), alg_(std::move(alg)), key_(key, EVP_PKEY_free) {}

  std::string BnParam(const char* name) const {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key_.get(), name, &bn);
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
  }

  std::string kid_;
  std::string alg_;
  std::shared_ptr<EVP_PKEY> key_;
};

inline std::string JwksJson(const std::vector<const TokenKey*>& keys) {
  Json j = {{"keys", Json::array()}};
  for (const TokenKey* k : keys) j["keys"].push_back(k->Jwk());
  return j.dump();
}

inline void WriteJwksFile(const std::string& path, const std::vector<const TokenKey*>& keys) {
  std::ofstream(path, std::ios::trunc) << JwksJson(keys);
}

// A valid claim set for `pid`, issued a minute before `now`, valid an hour.
inline Json ValidClaims(const std::string& pid, absl::Time now) {
  const int64_t t = absl::ToUnixSeconds(now);
  return {
      {"iss", kTestIssuer}, {"aud", kTestAudience}, {"sub", "a-pairwise-subject"}, {"iat", t - 60},
      {"nbf", t - 60},      {"exp", t + 3600},      {"acr", "idporten-loa-high"},  {"pid", pid}};
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_CITIZEN_TOKENS_H_
