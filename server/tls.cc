#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/grpc_security_constants.h"

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

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ReadCerts(const std::string& pem) {
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
    const TlsOptions& tls) {
  if (absl::Status s = CheckTlsOptions(tls); !s.ok()) return s;
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls.client_ca_pem;
  options.pem_key_cert_pairs.push_back({tls.key_pem, tls.cert_pem});
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::SslServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("tls: gRPC refused the TLS credentials");
  return creds;
}

}  // namespace frikort::server
