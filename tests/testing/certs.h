// Test certificates made in the test with OpenSSL: a CA, and server and client
// certificates it signs, or a client certificate that is itself a CA (EC P-256
// keys, so making them is fast), as PEM texts; and a gRPC channel that
// presents one of them.
#ifndef FRIKORT_TESTS_TESTING_CERTS_H_
#define FRIKORT_TESTS_TESTING_CERTS_H_

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace frikort::testing {

// A certificate and its private key, PEM.
struct Credential {
  std::string cert_pem;
  std::string key_pem;
};

class TestCa {
 public:
  // A self-signed CA whose subject is CN=`name`. Two CAs with the same name
  // have different keys: one does not vouch for the other's certificates.
  explicit TestCa(const std::string& name) : key_(NewKey()), cert_(X509_new(), X509_free) {
    Fill(cert_.get(), {name}, key_.get(), nullptr);
    AddExt(cert_.get(), cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert_.get(), cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    AddExt(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
    X509_sign(cert_.get(), key_.get(), EVP_sha256());
    cert_pem_ = CertPem(cert_.get());
  }

  // What an attacker with a client certificate that is also a CA holds: a
  // CA:TRUE certificate with subject CN=`cn` that `issuer` signed as a client
  // certificate (clientAuth, digitalSignature), with keyCertSign so it can
  // sign certificates of its own. Those carry it as their chain (leaf first).
  TestCa(const std::string& cn, TestCa& issuer) : key_(NewKey()), cert_(X509_new(), X509_free) {
    Fill(cert_.get(), {cn}, key_.get(), issuer.cert_.get());
    ASN1_INTEGER_set(X509_get_serialNumber(cert_.get()), ++issuer.serial_);  // the issuer's series
    AddExt(cert_.get(), issuer.cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert_.get(), issuer.cert_.get(), NID_key_usage,
           "critical,digitalSignature,keyAgreement,keyCertSign");
    AddExt(cert_.get(), issuer.cert_.get(), NID_ext_key_usage, "clientAuth");
    AddExt(cert_.get(), cert_.get(), NID_subject_key_identifier, "hash");
    AddExt(cert_.get(), issuer.cert_.get(), NID_authority_key_identifier, "keyid");
    X509_sign(cert_.get(), issuer.key_.get(), EVP_sha256());
    cert_pem_ = CertPem(cert_.get());
    chain_pem_ = cert_pem_;
  }

  const std::string& cert_pem() const { return cert_pem_; }
  // This CA's own certificate and key, to present as a client certificate.
  Credential Itself() const { return {cert_pem_, KeyPem(key_.get())}; }

  // A client certificate with subject CN=`cn` (no CN at all when empty).
  Credential Client(const std::string& cn) { return Issue({cn}, "clientAuth", ""); }
  // A client certificate whose subject has a CN for each of `cns`, in order.
  Credential ClientWithCns(const std::vector<std::string>& cns) {
    return Issue(cns, "clientAuth", "");
  }
  // A server certificate for localhost and 127.0.0.1.
  Credential Server() { return Issue({"localhost"}, "serverAuth", "DNS:localhost,IP:127.0.0.1"); }

 private:
  using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

  static KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

  // Version 3, serial, validity (an hour ago to a week ahead), subject, key.
  void Fill(X509* x, const std::vector<std::string>& cns, EVP_PKEY* key, X509* issuer) {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(x);
    if (!cns.front().empty()) {
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("Frikort tests"), -1, -1,
                                 0);
      for (const std::string& cn : cns) {
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
      }
    } else {
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("No CN"), -1, -1, 0);
    }
    X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x, key);
  }

  static void AddExt(X509* x, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) return;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static std::string Drain(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  }
  static std::string CertPem(X509* x) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    return Drain(bio);
  }

  static std::string KeyPem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    return Drain(bio);
  }

  Credential Issue(const std::vector<std::string>& cns, const char* usage, const char* san) {
    KeyPtr key = NewKey();
    CertPtr cert(X509_new(), X509_free);
    Fill(cert.get(), cns, key.get(), cert_.get());
    AddExt(cert.get(), cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), cert_.get(), NID_key_usage, "critical,digitalSignature,keyAgreement");
    AddExt(cert.get(), cert_.get(), NID_ext_key_usage, usage);
    AddExt(cert.get(), cert_.get(), NID_authority_key_identifier, "keyid");
    if (san[0] != '\0') AddExt(cert.get(), cert_.get(), NID_subject_alt_name, san);
    X509_sign(cert.get(), key_.get(), EVP_sha256());
    Credential c;
    c.cert_pem = CertPem(cert.get()) + chain_pem_;
    c.key_pem = KeyPem(key.get());
    return c;
  }

  KeyPtr key_;
  CertPtr cert_;
  std::string cert_pem_;
  std::string chain_pem_;  // for an intermediate: its certificate, sent after a leaf
  long serial_ = 0;
};

// A channel to `target` that trusts `server_ca_pem` and presents `client`
// (none when null). Each channel has its own connection, so two channels never
// share one client certificate's session.
inline std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target,
                                                 const std::string& server_ca_pem,
                                                 const Credential* client) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = server_ca_pem;
  if (client != nullptr) {
    options.pem_private_key = client->key_pem;
    options.pem_cert_chain = client->cert_pem;
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), args);
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_CERTS_H_
