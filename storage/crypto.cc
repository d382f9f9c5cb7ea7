// OpenSSL 3's EVP layer looks an algorithm up in its provider tables on
// every one-shot call (HMAC(), EVP_Q_mac, EVP_EncryptInit with a cipher):
// for the 11-byte ids hashed here that lookup cost more than the hash itself
// (profile of the ingest path: strcmp, pthread_rwlock, OSSL_PARAM_locate,
// getpid under the request threads). So HMAC-SHA-256 runs on SHA-256 states
// keyed once (the low-level SHA-256 interface, deprecated in OpenSSL 3 but
// kept, and exact), and AES-256-GCM reuses one cipher context per thread with
// the key schedule in place; only the nonce changes per call.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "storage/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "absl/status/status.h"

namespace frikort::storage {
namespace {

constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), U(data), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// This thread's AES-256-GCM encryption context and the key (by Crypto
// generation) it holds.
struct ThreadCipher {
  uint64_t generation = 0;
  CipherCtx ctx;
};

std::atomic<uint64_t> next_generation{1};

}  // namespace

// SHA-256 after absorbing one block of (key ^ ipad) and one of (key ^ opad):
// HMAC (RFC 2104) continues from copies of these per message.
struct Crypto::HmacKey {
  SHA256_CTX inner, outer;

  explicit HmacKey(absl::string_view key) {
    unsigned char block[SHA256_CBLOCK] = {};
    if (key.size() > SHA256_CBLOCK) {
      SHA256(U(key), key.size(), block);
    } else {
      std::memcpy(block, key.data(), key.size());
    }
    unsigned char pad[SHA256_CBLOCK];
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&inner);
    SHA256_Update(&inner, pad, SHA256_CBLOCK);
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&outer);
    SHA256_Update(&outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
  }
  ~HmacKey() {
    OPENSSL_cleanse(&inner, sizeof(inner));
    OPENSSL_cleanse(&outer, sizeof(outer));
  }

  std::string Mac(absl::string_view data) const {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX c = inner;
    SHA256_Update(&c, data.data(), data.size());
    SHA256_Final(digest, &c);
    c = outer;
    SHA256_Update(&c, digest, sizeof(digest));
    SHA256_Final(digest, &c);
    return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
  }
};

absl::StatusOr<Crypto> Crypto::Create(absl::string_view secret) {
  if (secret.size() < 32) {
    return absl::InvalidArgumentError("pseudonym key: must be at least 32 bytes");
  }
  Crypto c;
  c.pseudonym_key_ = std::make_shared<const HmacKey>(Hmac(secret, "frikort/pseudonym/v1"));
  c.encryption_key_ = Hmac(secret, "frikort/id-encryption/v1");
  c.content_key_ = std::make_shared<const HmacKey>(Hmac(secret, "frikort/content-hash/v1"));
  c.check_key_ = Hmac(secret, "frikort/secret-check/v1");
  c.generation_ = next_generation.fetch_add(1);
  return c;
}

std::string Crypto::Pseudonym(absl::string_view national_id) const {
  return pseudonym_key_->Mac(national_id);
}

std::string Crypto::ContentHash(absl::string_view content) const {
  return content_key_->Mac(content).substr(0, 16);
}

std::string Crypto::SecretCheck() const { return Hmac(check_key_, "check"); }

absl::StatusOr<std::string> Crypto::Encrypt(absl::string_view plaintext,
                                            absl::string_view aad) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonceBytes) != 1) return absl::InternalError("RAND_bytes failed");
  thread_local ThreadCipher cipher;
  if (cipher.generation != generation_) {
    cipher.generation = 0;
    cipher.ctx.reset(EVP_CIPHER_CTX_new());
    if (!cipher.ctx ||
        EVP_EncryptInit_ex(cipher.ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(cipher.ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_EncryptInit_ex(cipher.ctx.get(), nullptr, nullptr, U(encryption_key_), nullptr) != 1) {
      cipher.ctx.reset();
      return absl::InternalError("AES-256-GCM: cannot set up the cipher");
    }
    cipher.generation = generation_;
  }
  EVP_CIPHER_CTX* ctx = cipher.ctx.get();
  int len = 0;
  // A new nonce on the context that holds the key schedule.
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, o) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx, o + kNonceBytes, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, o + kNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          o + kNonceBytes + plaintext.size()) != 1) {
    cipher.generation = 0;  // set it up afresh next time
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> Crypto::Decrypt(absl::string_view sealed, absl::string_view aad) const {
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
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) !=
          1) {
    return absl::DataLossError("encrypted id: authentication failed (wrong key or damaged record)");
  }
  return out;
}

}  // namespace frikort::storage
