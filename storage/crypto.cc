#include "storage/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/status/status.h"

namespace frikort::storage {
namespace {

constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<Crypto> Crypto::Create(absl::string_view secret) {
  if (secret.size() < 32) {
    return absl::InvalidArgumentError("pseudonym key: must be at least 32 bytes");
  }
  Crypto c;
  c.pseudonym_key_ = Hmac(secret, "frikort/pseudonym/v1");
  c.encryption_key_ = Hmac(secret, "frikort/id-encryption/v1");
  c.content_key_ = Hmac(secret, "frikort/content-hash/v1");
  c.check_key_ = Hmac(secret, "frikort/secret-check/v1");
  return c;
}

std::string Crypto::Pseudonym(absl::string_view national_id) const {
  return Hmac(pseudonym_key_, national_id);
}

std::string Crypto::ContentHash(absl::string_view content) const {
  return Hmac(content_key_, content).substr(0, 16);
}

std::string Crypto::SecretCheck() const { return Hmac(check_key_, "check"); }

absl::StatusOr<std::string> Crypto::Encrypt(absl::string_view plaintext,
                                            absl::string_view aad) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonceBytes) != 1) return absl::InternalError("RAND_bytes failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(encryption_key_), o) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + kNonceBytes, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          o + kNonceBytes + plaintext.size()) != 1) {
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> Crypto::Decrypt(absl::string_view sealed,
                                            absl::string_view aad) const {
  if (sealed.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("encrypted id: too short");
  }
  const size_t n = sealed.size() - kNonceBytes - kTagBytes;
  std::string out(n, '\0');
  std::string tag(sealed.substr(kNonceBytes + n));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(encryption_key_), U(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        U(sealed) + kNonceBytes, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len,
                          &len) != 1) {
    return absl::DataLossError("encrypted id: authentication failed (wrong key or damaged record)");
  }
  return out;
}

}  // namespace frikort::storage
