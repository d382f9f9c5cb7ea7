// The person's login token for the Citizen service: a JWT in compact form
// (header.payload.signature, base64url), signed RS256 or ES256 by a key of
// the identity provider's JWKS file, chosen by the header's `kid`.
//
// Only those two algorithms are accepted (an explicit allow-list: `none`,
// HS256 and every other name are refused), each only with a key of its own
// type (RSA of at least 2048 bits for RS256, EC P-256 for ES256). Key
// material is taken from the JWKS file only: jku, jwk, x5u and x5c in the
// header are ignored, and a `crit` header is refused. The signature is
// checked before any claim is read. Then: `iss` equals the configured issuer,
// `aud` (a string or an array of strings) contains the configured audience,
// `exp` is after now and `nbf`/`iat` are not after now (each with 60 s
// leeway), `acr` is idporten-loa-substantial or idporten-loa-high, and `pid`
// is a valid national id (synthetic ids only when allowed).
//
// Every refusal is UNAUTHENTICATED with a message naming what was wrong; it
// never repeats the token, a claim's value or the person's id.
//
// Thread safety: Jwks is immutable. CitizenTokenVerifier may be used by any
// thread while one thread reloads its keys; a call keeps the keys it started
// with.
#ifndef FRIKORT_SERVER_CITIZEN_TOKEN_H_
#define FRIKORT_SERVER_CITIZEN_TOKEN_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/national_id.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace frikort::server {

// Clock skew allowed on exp, nbf and iat.
inline constexpr absl::Duration kTokenLeeway = absl::Seconds(60);
// A longer Authorization value is refused before it is parsed.
inline constexpr size_t kMaxTokenBytes = 16 * 1024;

enum class TokenAlg { kRS256, kES256 };

// The identity provider's signing keys, by kid.
class Jwks {
 public:
  // InvalidArgument naming the key (by index) and what is wrong. Keys whose
  // `use` is not "sig", or whose kty is neither RSA nor EC, are skipped; a
  // file without one usable key is refused, and so is a kid used twice.
  static absl::StatusOr<std::shared_ptr<const Jwks>> Parse(absl::string_view json);
  // Parse of the file; errors name the path (FailedPrecondition when
  // unreadable).
  static absl::StatusOr<std::shared_ptr<const Jwks>> LoadFile(const std::string& path);

  ~Jwks();
  Jwks(const Jwks&) = delete;
  Jwks& operator=(const Jwks&) = delete;

  size_t size() const { return keys_.size(); }

  struct Key {
    TokenAlg alg;
    EVP_PKEY* pkey;  // owned by the Jwks
  };
  // nullptr when there is no key with this kid.
  const Key* Find(absl::string_view kid) const;

 private:
  Jwks() = default;
  absl::flat_hash_map<std::string, Key> keys_;
};

struct TokenPolicy {
  std::string issuer;
  std::string audience;
  core::PersonIdOptions id_options;
};

struct VerifiedToken {
  std::string pid;  // the person: 11 digits, validated
  std::string acr;
};

// Checks `token` (the compact JWT, without "Bearer ") at `now`.
absl::StatusOr<VerifiedToken> VerifyToken(absl::string_view token, const Jwks& keys,
                                          const TokenPolicy& policy, absl::Time now);

// The token from an `authorization` metadata value "Bearer <JWT>" (the
// scheme in any case); UNAUTHENTICATED when absent or of another scheme.
absl::StatusOr<absl::string_view> BearerToken(absl::string_view authorization);

// The policy and the JWKS file in force; the file is re-read by Reload().
class CitizenTokenVerifier {
 public:
  CitizenTokenVerifier() = default;
  CitizenTokenVerifier(const CitizenTokenVerifier&) = delete;
  CitizenTokenVerifier& operator=(const CitizenTokenVerifier&) = delete;

  // Reads `jwks_file` and puts it in force with `policy`. On error nothing
  // changes.
  absl::Status Configure(std::string jwks_file, TokenPolicy policy);
  bool configured() const;
  // Re-reads the JWKS file; on error the keys in force stay. Returns the
  // number of keys. FailedPrecondition when not configured.
  absl::StatusOr<size_t> Reload();

  // FailedPrecondition when not configured; else VerifyToken.
  absl::StatusOr<VerifiedToken> Verify(absl::string_view token, absl::Time now) const;

 private:
  struct State {
    std::string jwks_file;
    TokenPolicy policy;
    std::shared_ptr<const Jwks> keys;
  };
  std::shared_ptr<const State> state() const;

  mutable absl::Mutex mu_;
  std::shared_ptr<const State> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_CITIZEN_TOKEN_H_
