#include "ctl/connect.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/address.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace frikort::ctl {

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, " ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().find("-----BEGIN ") == std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat("--", flag, " ", path, ": not a PEM file"));
  }
  return buf.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, absl::string_view server) {
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(server, "--server");
  if (!hp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server: '", server, "' is not HOST:PORT or [IPV6]:PORT"));
  }
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (the client certificate and its key)");
  }
  if (tls.cert.empty() && tls.ca.empty()) {
    if (!tls.server_name.empty()) {
      return absl::InvalidArgumentError("--tls_server_name needs TLS (--tls_ca)");
    }
    if (!core::IsLoopbackHost(hp->host)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--server ", server,
          " is not a loopback address: give --tls_ca (and --tls_cert, --tls_key for mutual "
          "TLS); plaintext is only for a development server on this host"));
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca, "tls_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!tls.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(tls.cert, "tls_cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(tls.key, "tls_key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& server,
                                                       const TlsFiles& tls) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      MakeChannelCredentials(tls, server);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(server, *creds, args);
}

}  // namespace frikort::ctl
