// Keyed primitives over the operator's secret (OpenSSL): pseudonyms
// (HMAC-SHA-256), encryption of national ids at rest (AES-256-GCM) and keyed
// content hashes for the idempotency index. Distinct keys are derived from
// the secret per purpose, so no derived value reveals another.
//
// Thread safety: immutable after Create; all methods are const and thread-safe
// (Encrypt keeps one cipher context per thread).
#ifndef FRIKORT_STORAGE_CRYPTO_H_
#define FRIKORT_STORAGE_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace frikort::storage {

inline constexpr size_t kPseudonymBytes = 32;

class Crypto {
 public:
  // InvalidArgument if the secret is shorter than 32 bytes.
  static absl::StatusOr<Crypto> Create(absl::string_view secret);

  // 32 raw bytes; equal ids give equal pseudonyms under the same secret.
  std::string Pseudonym(absl::string_view national_id) const;
  // 16 raw bytes identifying `content` under the secret (no dictionary attack
  // on the national id inside it without the secret).
  std::string ContentHash(absl::string_view content) const;
  // A value stored at creation to recognise the secret on later opens.
  std::string SecretCheck() const;

  // nonce(12) | ciphertext | tag(16); `aad` is bound to the ciphertext.
  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext, absl::string_view aad) const;
  // DataLoss if the ciphertext or its aad was tampered with or the key differs.
  absl::StatusOr<std::string> Decrypt(absl::string_view sealed, absl::string_view aad) const;

 private:
  struct HmacKey;
  Crypto() = default;
  std::shared_ptr<const HmacKey> pseudonym_key_;
  std::string encryption_key_;
  std::shared_ptr<const HmacKey> content_key_;
  std::string check_key_;
  uint64_t generation_ = 0;  // tells one key's per-thread cipher from another's
};

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_CRYPTO_H_
