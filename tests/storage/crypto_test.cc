// The keyed primitives: pseudonyms and content hashes must stay exactly
// HMAC-SHA-256 under the derived keys (every stored key depends on them), and
// encryption must round-trip under its own key only, from any thread.
#include "storage/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace frikort::storage {
namespace {

// OpenSSL's own one-shot HMAC-SHA-256, as the reference.
std::string ReferenceHmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

TEST(CryptoTest, PseudonymIsHmacSha256UnderTheDerivedKey) {
  const std::string secret(40, 's');
  auto c = Crypto::Create(secret);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string key = ReferenceHmac(secret, "frikort/pseudonym/v1");
  for (const std::string& id :
       std::vector<std::string>{"", "01015012345", "41015012345", std::string(200, '7')}) {
    EXPECT_EQ(absl::BytesToHexString(c->Pseudonym(id)),
              absl::BytesToHexString(ReferenceHmac(key, id)))
        << id;
  }
}

TEST(CryptoTest, ContentHashIsTruncatedHmacSha256) {
  const std::string secret(32, 'c');
  auto c = Crypto::Create(secret);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string key = ReferenceHmac(secret, "frikort/content-hash/v1");
  // Lengths around the SHA-256 block size (64) exercise padding edges.
  for (size_t n : {0, 1, 55, 56, 63, 64, 65, 119, 120, 1000}) {
    const std::string content(n, 'x');
    EXPECT_EQ(absl::BytesToHexString(c->ContentHash(content)),
              absl::BytesToHexString(ReferenceHmac(key, content).substr(0, 16)))
        << n;
  }
}

TEST(CryptoTest, DifferentSecretsGiveDifferentPseudonyms) {
  auto a = Crypto::Create(std::string(32, 'a'));
  auto b = Crypto::Create(std::string(32, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->Pseudonym("01015012345"), b->Pseudonym("01015012345"));
  EXPECT_NE(a->SecretCheck(), b->SecretCheck());
}

TEST(CryptoTest, ShortSecretIsRefused) {
  EXPECT_EQ(Crypto::Create(std::string(31, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CryptoTest, EncryptionRoundTripsUnderItsOwnKeyOnly) {
  auto a = Crypto::Create(std::string(32, 'a'));
  auto b = Crypto::Create(std::string(32, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  // Alternating keys on one thread: the per-thread cipher must follow.
  for (int i = 0; i < 3; ++i) {
    auto sa = a->Encrypt("01015012345", "aad");
    auto sb = b->Encrypt("01015012345", "aad");
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_EQ(*a->Decrypt(*sa, "aad"), "01015012345");
    EXPECT_EQ(*b->Decrypt(*sb, "aad"), "01015012345");
    EXPECT_EQ(a->Decrypt(*sb, "aad").status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(b->Decrypt(*sa, "aad").status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(CryptoTest, EachEncryptionHasItsOwnNonceAndBindsItsAad) {
  auto c = Crypto::Create(std::string(32, 'n'));
  ASSERT_TRUE(c.ok());
  auto one = c->Encrypt("01015012345", "p1");
  auto two = c->Encrypt("01015012345", "p1");
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_NE(one->substr(0, 12), two->substr(0, 12));
  EXPECT_NE(*one, *two);
  EXPECT_EQ(c->Decrypt(*one, "p2").status().code(), absl::StatusCode::kDataLoss);
  std::string tampered = *one;
  tampered[14] ^= 1;
  EXPECT_EQ(c->Decrypt(tampered, "p1").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(c->Decrypt("short", "p1").status().code(), absl::StatusCode::kDataLoss);
}

TEST(CryptoTest, EncryptsFromManyThreads) {
  auto c = Crypto::Create(std::string(32, 't'));
  ASSERT_TRUE(c.ok());
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string id = std::to_string(10000000000LL + t * 1000 + i);
        auto sealed = c->Encrypt(id, "aad");
        if (!sealed.ok() || c->Decrypt(*sealed, "aad").value_or("") != id) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace frikort::storage
