// frikortctl's connection to frikortd: the channel credentials from the TLS
// client flags, and the channel itself.
//
// Contract: TLS when any TLS file is given (cert and key go together; without
// --tls_ca the system's roots are used), else plaintext, which is only allowed
// to a loopback address (national ids would travel in clear). Errors name the
// flag and the file: InvalidArgument for a bad command line (exit 2),
// FailedPrecondition for a file that cannot be used or a plaintext address
// that is not loopback (exit 1).
#ifndef FRIKORT_CTL_CONNECT_H_
#define FRIKORT_CTL_CONNECT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace frikort::ctl {

struct TlsFiles {
  std::string cert;         // client certificate chain (PEM), for mutual TLS
  std::string key;          // its private key (PEM)
  std::string ca;           // CA bundle that signs the server's certificate (PEM)
  std::string server_name;  // expected name in the server's certificate, if not the host
};

// The credentials for `server` (HOST:PORT or [IPV6]:PORT, the --server flag).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, absl::string_view server);
// A channel to `server` with those credentials (messages up to 64 MiB).
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& server,
                                                       const TlsFiles& tls);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_CONNECT_H_
