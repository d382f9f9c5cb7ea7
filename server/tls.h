// Mutual TLS for frikortd: the server's certificate and key, and the CA whose
// client certificates are accepted. Clients without a certificate from that CA
// are refused during the handshake, before any call.
//
// The handshake only proves a chain to a client CA. So that a client's CN is
// one the client CA chose, every call is then refused (UNAUTHENTICATED, before
// any handler or audit record) unless the client certificate
//   - is signed directly by a tls_client_ca certificate (issuer name and
//     signature), not by an intermediate,
//   - came with no intermediate: the chain gRPC reports for the peer holds
//     nothing but it and client CA certificates,
//   - is not itself a CA (basicConstraints CA:TRUE, or keyCertSign), and
//   - has at most one common name (CN) in its subject.
// UNAUTHENTICATED, not PERMISSION_DENIED: the caller's identity cannot be
// established, so there is no principal whose rights could be lacking.
#ifndef FRIKORT_SERVER_TLS_H_
#define FRIKORT_SERVER_TLS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"

namespace frikort::server {

// PEM texts (not paths). All three or none.
struct TlsOptions {
  std::string cert_pem;       // the server's certificate (chain, leaf first)
  std::string key_pem;        // its private key
  std::string client_ca_pem;  // the CA certificate(s) that sign client certificates

  bool enabled() const { return !cert_pem.empty() || !key_pem.empty() || !client_ca_pem.empty(); }
};

// InvalidArgument naming the field (tls_cert, tls_key, tls_client_ca) when one
// is missing, holds no PEM certificate or key, the key does not belong to the
// certificate, the certificate has expired, or a CA certificate is not a CA.
absl::Status CheckTlsOptions(const TlsOptions& tls);

// Decides, at the start of every call (when its headers have arrived, before
// gRPC buffers its message), whether the certificate's CN may call the method
// `path` ("/package.Service/Method", client input) at all; a refusal is the
// call's status. Called on gRPC's threads; must not block.
using CallerCheck = std::function<absl::Status(absl::string_view cn, absl::string_view path)>;

// Server credentials that require and verify a client certificate, with the
// per-call client certificate rules above and, when given, `caller_check`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeTlsServerCredentials(
    const TlsOptions& tls, CallerCheck caller_check = nullptr);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_TLS_H_
