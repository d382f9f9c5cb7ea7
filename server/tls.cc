#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "server/log.h"

namespace frikort::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

BioPtr MemBio(absl::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ReadCerts(absl::string_view pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemBio(pem);
  while (bio != nullptr) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  ERR_clear_error();  // the end of the text reads as an error
  return certs;
}

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool Expired(X509* cert) { return X509_cmp_current_time(X509_get0_notAfter(cert)) < 0; }

absl::Status Refused(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("client certificate refused: ", why));
}

// The number of common names (CN) in the certificate's subject.
int CountCommonNames(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int count = 0;
  for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
    ++count;
  }
  return count;
}

// The rules for a client certificate beyond what the handshake proves (a chain
// to one of the client CAs), as listed at the top of tls.h.
class ClientCertChecker {
 public:
  explicit ClientCertChecker(absl::string_view client_ca_pem) : cas_(ReadCerts(client_ca_pem)) {}

  absl::Status Check(absl::string_view leaf_pem, const std::vector<std::string>& chain_pems) const {
    std::vector<X509Ptr> leaves = ReadCerts(leaf_pem);
    if (leaves.size() != 1) return Refused("the peer's certificate cannot be read");
    X509* leaf = leaves.front().get();
    // Anything in the peer's chain besides its own certificate and a client
    // CA (gRPC's chain property may hold either) is an intermediate; only
    // certificates a client CA signed itself are accepted.
    for (const std::string& pem : chain_pems) {
      for (const X509Ptr& extra : ReadCerts(pem)) {
        if (X509_cmp(extra.get(), leaf) != 0 && !IsClientCa(extra.get())) {
          return Refused(
              "the client presented a chain through another CA; present only the certificate "
              "the client CA issued");
        }
      }
    }
    if (X509_check_ca(leaf) != 0) {
      return Refused("it is itself a CA certificate (basicConstraints CA:TRUE or keyCertSign)");
    }
    if (const int cns = CountCommonNames(leaf); cns > 1) {
      return Refused(absl::StrCat("its subject has ", cns,
                                  " common names (CN); exactly one names the caller"));
    }
    for (const X509Ptr& ca : cas_) {
      if (X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca.get())) != 0) {
        continue;
      }
      EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
      if (ca_key != nullptr && X509_verify(leaf, ca_key) == 1) return absl::OkStatus();
      ERR_clear_error();
    }
    ERR_clear_error();
    return Refused(
        "it is not issued directly by a tls_client_ca certificate (certificates issued by an "
        "intermediate CA are not accepted)");
  }

 private:
  bool IsClientCa(X509* cert) const {
    for (const X509Ptr& ca : cas_) {
      if (X509_cmp(ca.get(), cert) == 0) return true;
    }
    return false;
  }

  const std::vector<X509Ptr> cas_;
};

// Refuses, per call and before any handler, a peer whose certificate breaks
// ClientCertChecker's rules. Decisions are cached by the SHA-256 of what the
// peer presented, so a connection's calls cost a hash each.
class ClientIdentityProcessor final : public grpc::AuthMetadataProcessor {
 public:
  ClientIdentityProcessor(absl::string_view client_ca_pem, CallerCheck caller_check)
      : checker_(client_ca_pem), caller_check_(std::move(caller_check)) {}

  // The check is a hash, or a parse and a signature check, and the caller
  // check's table lookup: no blocking.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    absl::Status s = CheckPeer(*context);
    if (s.ok() && caller_check_) s = caller_check_(CommonName(*context), Path(auth_metadata));
    if (s.ok()) return grpc::Status::OK;
    return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
  }

 private:
  // Enough for every client certificate of a deployment; a flood of distinct
  // certificates only makes the cache start over.
  static constexpr size_t kMaxCached = 4096;

  absl::Status CheckPeer(const grpc::AuthContext& context) {
    if (!context.IsPeerAuthenticated()) {
      return Refused("the peer presented no verified certificate");
    }
    std::vector<grpc::string_ref> leaves =
        context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (leaves.size() != 1) return Refused("the peer's certificate is not available");
    const absl::string_view leaf(leaves.front().data(), leaves.front().size());
    std::vector<std::string> chain;
    for (const grpc::string_ref& pem :
         context.FindPropertyValues(GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME)) {
      chain.emplace_back(pem.data(), pem.size());
    }
    const std::string key = Fingerprint(leaf, chain);
    {
      absl::MutexLock l(&mu_);
      if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    }
    absl::Status s = checker_.Check(leaf, chain);
    if (!s.ok()) {
      log::Log(log::Level::kWarning, "client_certificate_refused", s.message());
    }
    absl::MutexLock l(&mu_);
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_.emplace(key, s);
    return s;
  }

  // The call's method path ("/frikort.v1.Registry/GetLedger"); empty if
  // gRPC did not pass it.
  static absl::string_view Path(const InputMetadata& metadata) {
    auto it = metadata.find(":path");
    if (it == metadata.end()) return {};
    return absl::string_view(it->second.data(), it->second.size());
  }

  // The subject's CN (CheckPeer allows at most one); empty when it has none.
  static absl::string_view CommonName(const grpc::AuthContext& context) {
    for (const grpc::string_ref& cn : context.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      return absl::string_view(cn.data(), cn.size());
    }
    return {};
  }

  // SHA-256 over the leaf and the chain, each preceded by its length.
  static std::string Fingerprint(absl::string_view leaf, const std::vector<std::string>& chain) {
    std::string text = absl::StrCat(leaf.size(), ":", leaf);
    for (const std::string& pem : chain) absl::StrAppend(&text, pem.size(), ":", pem);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr) != 1) {
      ERR_clear_error();
      return text;  // the text itself is a key as good, only longer
    }
    return std::string(reinterpret_cast<const char*>(digest), n);
  }

  const ClientCertChecker checker_;
  const CallerCheck caller_check_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Status> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status CheckTlsOptions(const TlsOptions& tls) {
  if (tls.cert_pem.empty() || tls.key_pem.empty() || tls.client_ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert, tls_key, tls_client_ca: mutual TLS needs all three (server certificate, its "
        "key, and the CA of the client certificates)");
  }
  std::vector<X509Ptr> chain = ReadCerts(tls.cert_pem);
  if (chain.empty()) return Bad("tls_cert", "no PEM certificate in it");
  if (Expired(chain.front().get())) return Bad("tls_cert", "the certificate has expired");

  BioPtr key_bio = MemBio(tls.key_pem);
  KeyPtr key(key_bio == nullptr
                 ? nullptr
                 : PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) return Bad("tls_key", "no unencrypted PEM private key in it");
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return Bad("tls_key", "the key does not belong to the tls_cert certificate");
  }

  std::vector<X509Ptr> cas = ReadCerts(tls.client_ca_pem);
  if (cas.empty()) return Bad("tls_client_ca", "no PEM certificate in it");
  for (size_t i = 0; i < cas.size(); ++i) {
    if (X509_check_ca(cas[i].get()) == 0) {
      return Bad("tls_client_ca", absl::StrCat("certificate ", i + 1, " is not a CA certificate"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTlsServerCredentials(
    const TlsOptions& tls, CallerCheck caller_check) {
  if (absl::Status s = CheckTlsOptions(tls); !s.ok()) return s;
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.client_ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::SslServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("tls: gRPC refused the TLS credentials");
  creds->SetAuthMetadataProcessor(
      std::make_shared<ClientIdentityProcessor>(tls.client_ca_pem, std::move(caller_check)));
  return creds;
}

}  // namespace frikort::server
