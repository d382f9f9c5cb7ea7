#include "server/server.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/address.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/authz.h"
#include "server/log.h"
#include "server/unparsed.h"

namespace frikort::server {
namespace {

// The names the health service reports on besides "" (the whole server).
constexpr const char* kServiceNames[] = {
    "frikort.v1.Reporting", "frikort.v1.Lookup",     "frikort.v1.Registry",
    "frikort.v1.Issuance",  "frikort.v1.Operations", "frikort.v1.Citizen",
};

// The Citizen service's three options: all or none.
absl::Status CheckCitizenOptions(const ServerOptions& options) {
  const int given = !options.citizen_jwks_file.empty() + !options.citizen_token_issuer.empty() +
                    !options.citizen_token_audience.empty();
  if (given == 0) return absl::OkStatus();
  if (given != 3) {
    return absl::InvalidArgumentError(
        "citizen_jwks_file, citizen_token_issuer, citizen_token_audience: give all three (the "
        "Citizen service) or none");
  }
  return Jwks::LoadFile(options.citizen_jwks_file).status();
}

int Ms(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// The HTTP/2 and resource limits of ConnectionLimits (checked before).
void ApplyConnectionLimits(const ConnectionLimits& limits, grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Ms(limits.max_idle));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Ms(limits.max_age));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, Ms(limits.max_age_grace));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Ms(limits.keepalive_time));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Ms(limits.keepalive_timeout));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Ms(limits.min_client_ping_interval));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, limits.max_ping_strikes);
  grpc::ResourceQuota quota("frikortd");
  quota.Resize(static_cast<size_t>(limits.memory_quota_mb) << 20);
  builder->SetResourceQuota(quota);
}

}  // namespace

absl::Status CheckConnectionLimits(const ConnectionLimits& limits) {
  if (limits.max_concurrent_streams < 1 || limits.max_concurrent_streams > 10000) {
    return absl::InvalidArgumentError("max_concurrent_streams: must be between 1 and 10000");
  }
  if (limits.memory_quota_mb < 16 || limits.memory_quota_mb > (int64_t{1} << 20)) {
    return absl::InvalidArgumentError("memory_quota_mb: must be between 16 and 1048576");
  }
  const struct {
    const char* field;
    absl::Duration value;
  } durations[] = {
      {"max_connection_idle", limits.max_idle},
      {"max_connection_age", limits.max_age},
      {"max_connection_age_grace", limits.max_age_grace},
      {"keepalive_time", limits.keepalive_time},
      {"keepalive_timeout", limits.keepalive_timeout},
      {"min_client_ping_interval", limits.min_client_ping_interval},
  };
  for (const auto& d : durations) {
    // gRPC takes them as int milliseconds.
    if (d.value < absl::Milliseconds(1) || d.value > absl::Hours(24 * 24)) {
      return absl::InvalidArgumentError(absl::StrCat(d.field, ": must be between 1ms and 24 days"));
    }
  }
  if (limits.max_ping_strikes < 0) {
    return absl::InvalidArgumentError("max_ping_strikes: must not be negative (0 = no limit)");
  }
  return absl::OkStatus();
}

absl::Status CheckListenAddress(absl::string_view address) {
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(address, "listen");
  if (!hp.ok()) return hp.status();
  if (!core::IsLoopbackHost(hp->host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "listen: ", address,
        " is not a loopback address; without TLS the server speaks plaintext and listens "
        "only on 127.0.0.0/8, ::1 or localhost (configure mutual TLS to listen elsewhere)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSecurityOptions(const ServerOptions& options) {
  if (absl::StatusOr<core::HostPort> hp = core::SplitHostPort(options.listen_address, "listen");
      !hp.ok()) {
    return hp.status();
  }
  if (absl::Status s = CheckCitizenOptions(options); !s.ok()) return s;
  if (!options.tls.enabled()) {
    if (!options.authz_file.empty()) {
      return absl::InvalidArgumentError(
          "authz_file: given without TLS; roles are keyed by client certificate names, which "
          "only mutual TLS provides");
    }
    return CheckListenAddress(options.listen_address);
  }
  if (absl::Status s = CheckTlsOptions(options.tls); !s.ok()) return s;
  if (options.authz_file.empty()) {
    return absl::FailedPreconditionError(
        "authz_file: required with TLS; without it no client certificate has a role");
  }
  return AuthzTable::LoadFile(options.authz_file).status();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options, CallerCheck caller_check) {
  if (options.tls.enabled()) return MakeTlsServerCredentials(options.tls, std::move(caller_check));
  if (absl::Status s = CheckListenAddress(options.listen_address); !s.ok()) return s;
  return grpc::InsecureServerCredentials();
}

FrikortServer::FrikortServer(ServerOptions options, storage::Register* reg, jobs::IssuanceJob* job,
                             const core::RulesTable* rules, const core::Clock* clock)
    : options_(std::move(options)),
      gate_({.caller = options_.caller ? options_.caller : CallerFn(CallerFromContext),
             .max_calls_per_caller = options_.max_calls_per_caller,
             .audit = options_.audit ? options_.audit : AuditSink(WriteAuditToStderr),
             .reg = reg,
             .clock = clock}),
      ctx_{.reg = reg,
           .job = job,
           .rules = rules,
           .clock = clock,
           .id_options = options_.id_options,
           .lookup_years_back = options_.lookup_years_back,
           .max_message_bytes = options_.max_message_bytes,
           .gate = &gate_},
      reporting_(&ctx_),
      lookup_(&ctx_),
      registry_(&ctx_),
      issuance_(&ctx_),
      operations_(reg, &gate_),
      citizen_(&ctx_, &citizen_tokens_,
               options_.audit ? options_.audit : AuditSink(WriteAuditToStderr)),
      providers_(reg, &gate_) {}

FrikortServer::~FrikortServer() { Shutdown(absl::Now()); }

absl::Status FrikortServer::Start() {
  if (server_ != nullptr || shut_down_) {
    return absl::FailedPreconditionError("server: Start called twice");
  }
  if (ctx_.reg == nullptr || ctx_.job == nullptr || ctx_.rules == nullptr ||
      ctx_.clock == nullptr) {
    return absl::InvalidArgumentError("server: register, job, rules and clock are required");
  }
  if (options_.lookup_years_back < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lookup_years_back: ", options_.lookup_years_back, " is negative"));
  }
  if (options_.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max_message_bytes: must be positive");
  }
  if (options_.max_calls_per_caller < 0) {
    return absl::InvalidArgumentError("max_calls_per_caller: must not be negative (0 = no limit)");
  }
  if (absl::Status s = CheckConnectionLimits(options_.limits); !s.ok()) return s;
  if (absl::Status s = CheckSecurityOptions(options_); !s.ok()) return s;
  // Over mutual TLS a CN without a line is refused when its call's headers
  // arrive, before gRPC reads (and buffers) the call's message.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = MakeServerCredentials(
      options_,
      [this](absl::string_view cn, absl::string_view path) { return gate_.AdmitPeer(cn, path); });
  if (!creds.ok()) return creds.status();
  if (!options_.authz_file.empty()) {
    absl::StatusOr<size_t> loaded = gate_.authorizer().LoadFile(options_.authz_file);
    if (!loaded.ok()) return loaded.status();
  }
  if (!options_.citizen_jwks_file.empty()) {
    absl::Status configured = citizen_tokens_.Configure(
        options_.citizen_jwks_file, {.issuer = options_.citizen_token_issuer,
                                     .audience = options_.citizen_token_audience,
                                     .id_options = options_.id_options});
    if (!configured.ok()) return configured;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A port in use must fail to bind, not be shared with another process.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A client that connects and never finishes the handshake is dropped soon.
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10000);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  ApplyConnectionLimits(options_.limits, &builder);
  int selected_port = 0;
  builder.AddListeningPort(options_.listen_address, *creds, &selected_port);
  builder.RegisterService(&reporting_);
  builder.RegisterService(&lookup_);
  builder.RegisterService(&registry_);
  builder.RegisterService(&issuance_);
  builder.RegisterService(&operations_);
  builder.RegisterService(&citizen_);
  builder.RegisterService(&providers_);
  // The status fix comes first, so that the metrics count the status sent.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(UnparsedRequestInterceptorFactory());
  if (options_.metrics != nullptr) creators.push_back(options_.metrics->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(creators));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || selected_port == 0) {
    if (server_ != nullptr) {
      server_->Shutdown();
      server_.reset();
    }
    return absl::UnavailableError(absl::StrCat("listen: cannot bind ", options_.listen_address,
                                               " (address in use or not local?)"));
  }
  port_ = selected_port;
  serving_ = ctx_.reg->Health().ok();
  SetServing(serving_);
  watcher_ = std::thread([this] { WatchRegister(); });
  return absl::OkStatus();
}

void FrikortServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (const char* name : kServiceNames) health->SetServingStatus(name, serving);
}

void FrikortServer::WatchRegister() {
  constexpr absl::Duration kPoll = absl::Milliseconds(200);
  while (true) {
    {
      absl::MutexLock l(&watch_mu_);
      if (watch_mu_.AwaitWithTimeout(absl::Condition(&watch_stop_), kPoll)) return;
    }
    absl::Status health = ctx_.reg->Health();
    if (health.ok() == serving_) continue;
    serving_ = health.ok();
    SetServing(serving_);
    if (serving_) {
      log::Log(log::Level::kInfo, "register_serving", "the register serves: health is SERVING");
    } else {
      log::Log(log::Level::kError, "register_failed",
               absl::StrCat("the register does not serve (", health.message(),
                            "); every call answers UNAVAILABLE and health is NOT_SERVING until "
                            "it serves again"));
    }
  }
}

absl::StatusOr<size_t> FrikortServer::ReloadAuthz() {
  if (options_.authz_file.empty()) {
    return absl::FailedPreconditionError(
        "authz_file: none given (development mode: every caller has every role)");
  }
  return gate_.authorizer().LoadFile(options_.authz_file);
}

absl::StatusOr<size_t> FrikortServer::ReloadCitizenKeys() { return citizen_tokens_.Reload(); }

void FrikortServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock l(&watch_mu_);
    watch_stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
  if (server_ != nullptr) {
    grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    // Sets every status to NOT_SERVING and ignores later changes.
    if (health != nullptr) health->Shutdown();
    server_->Shutdown(absl::ToChronoTime(deadline));
    server_->Wait();
  }
  issuance_.JoinRuns();
  operations_.JoinBackup();
  providers_.JoinPuts();
}

}  // namespace frikort::server
