// FrikortServer: the gRPC server of frikortd, usable in-process (tests) and by
// the daemon. It serves the frikort.v1 services of the contract, the
// operators' frikort.v1.Operations, grpc.health.v1.Health
// (SERVING for "" and each service while the register's Health is Ok) and grpc
// reflection.
//
// Security: with ServerOptions::tls, mutual TLS only (a client certificate
// from the client CA is required) and every frikort.v1 call is authorized by
// the roles in the authz file (server/authz.h); without it, plaintext on a
// loopback address and every caller has every role (development mode). The
// health check and reflection need no role.
//
// Ownership: the register, job, rules and clock are borrowed and must outlive
// the server (or at least its Shutdown()). Thread safety: Start and Shutdown
// are called from one controlling thread; port() after a successful Start.
#ifndef FRIKORT_SERVER_SERVER_H_
#define FRIKORT_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "jobs/issuance.h"
#include "server/audit.h"
#include "server/citizen_service.h"
#include "server/citizen_token.h"
#include "server/gate.h"
#include "server/metrics.h"
#include "server/operations.h"
#include "server/providers_service.h"
#include "server/services.h"
#include "server/tls.h"
#include "storage/register.h"

namespace frikort::server {

// What one connection (and so one peer) may make the server hold, before and
// after authorization; README "Bounds" gives the resulting figures.
struct ConnectionLimits {
  // HTTP/2 streams (calls) open at once on one connection; a client asking
  // more has to wait for one to end. Each may buffer up to max_message_bytes.
  int max_concurrent_streams = 16;
  // All of gRPC's buffers on every connection together (grpc::ResourceQuota).
  int64_t memory_quota_mb = 1024;
  // A connection with no call open this long is closed (GOAWAY).
  absl::Duration max_idle = absl::Minutes(5);
  // Every connection is closed after this long (clients reconnect), calls
  // still open then get the grace period to finish.
  absl::Duration max_age = absl::Hours(2);
  absl::Duration max_age_grace = absl::Minutes(10);
  // The server pings a connection after this long without traffic and drops
  // it when the answer takes longer than the timeout.
  absl::Duration keepalive_time = absl::Minutes(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // A client's pings closer together than this (with no call) are strikes;
  // after max_ping_strikes the connection is closed.
  absl::Duration min_client_ping_interval = absl::Minutes(1);
  int max_ping_strikes = 2;
};

// InvalidArgument naming the field for a limit out of its range.
absl::Status CheckConnectionLimits(const ConnectionLimits& limits);

struct ServerOptions {
  // HOST:PORT or [IPV6]:PORT; port 0 picks a free port (see port()).
  std::string listen_address = "127.0.0.1:50051";
  int lookup_years_back = 2;
  // The largest message received or sent. A full batch (kMaxBatchItems
  // co-payments with the longest fields) is about 1.1 MB, and so is its answer.
  int max_message_bytes = 4 << 20;
  ConnectionLimits limits;
  // Must match the register's RegisterOptions::id_options.
  core::PersonIdOptions id_options;
  // Derives the caller name for authorization and the audit logs; empty =
  // CallerFromContext.
  CallerFn caller;
  // Not owned; when set, every call is timed and counted (must outlive the
  // server).
  Metrics* metrics = nullptr;
  // Mutual TLS; when not enabled, plaintext on a loopback address only.
  TlsOptions tls;
  // The roles of client certificates: required with TLS, refused without.
  std::string authz_file;
  // Calls one caller (certificate CN; a connection in development mode) may
  // have in flight; beyond it RESOURCE_EXHAUSTED. 0 = no limit.
  int max_calls_per_caller = 100;
  // Receives the operator audit log lines; empty = stderr.
  AuditSink audit;
  // The Citizen service's token check (server/citizen_token.h): all three or
  // none; with none the service answers FAILED_PRECONDITION.
  std::string citizen_jwks_file;
  std::string citizen_token_issuer;
  std::string citizen_token_audience;
};

// Ok when the address may be served in plaintext: only on a loopback host
// (FailedPrecondition otherwise, with the reason).
absl::Status CheckListenAddress(absl::string_view address);
// The security options hang together: with TLS, valid TLS material and a
// readable, well-formed authz file (errors name the line); without TLS, a
// loopback address and no authz file. The Citizen options: all three or
// none, and a readable, well-formed JWKS file. What Start checks, for callers that
// want to refuse early (frikortd, before it opens the register).
absl::Status CheckSecurityOptions(const ServerOptions& options);
// The one place credentials are made: mutual TLS when options.tls is enabled,
// else plaintext (after CheckListenAddress).
// With TLS, `caller_check` (if given) runs at the start of every call
// (server/tls.h).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options, CallerCheck caller_check = nullptr);

class FrikortServer {
 public:
  FrikortServer(ServerOptions options, storage::Register* reg, jobs::IssuanceJob* job,
                const core::RulesTable* rules, const core::Clock* clock);
  // Shuts down (with an immediate deadline) if still running.
  ~FrikortServer();
  FrikortServer(const FrikortServer&) = delete;
  FrikortServer& operator=(const FrikortServer&) = delete;

  // Binds and starts serving. InvalidArgument for a malformed address or
  // options (TLS material, authz file), FailedPrecondition for a non-loopback
  // address without TLS or TLS without an authz file, Unavailable when the
  // port cannot be bound. Call once.
  absl::Status Start();
  // Re-reads the authz file and puts it in force for the calls that follow;
  // on error (named with its line number) the table in force stays.
  // FailedPrecondition in development mode (no authz file). Returns the
  // number of certificate lines. Thread-safe.
  absl::StatusOr<size_t> ReloadAuthz();
  // Re-reads the Citizen service's JWKS file; on error the keys in force
  // stay. FailedPrecondition when the service is not configured. Returns
  // the number of keys. Thread-safe.
  absl::StatusOr<size_t> ReloadCitizenKeys();
  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }

  // Health goes NOT_SERVING (as it does by itself, within a second, while the
  // register does not serve), no new calls are accepted, calls in flight may
  // finish until `deadline` (then they are cancelled); returns once every call
  // and issuance run has ended. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  const ServerOptions options_;
  CallGate gate_;
  ServiceContext ctx_;
  ReportingService reporting_;
  LookupService lookup_;
  RegistryService registry_;
  IssuanceService issuance_;
  OperationsService operations_;
  CitizenTokenVerifier citizen_tokens_;
  CitizenService citizen_;
  ProvidersService providers_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;

  // Watches the register's health: while it fails (a register failed closed
  // until restart, a standby without the writer lease, a register being
  // opened again after it lost its store) the health check says NOT_SERVING,
  // so that probes and load balancers take this instance out, and SERVING
  // again once it serves.
  void WatchRegister();
  void SetServing(bool serving);
  bool serving_ = false;  // the watcher's (Start's before it)
  absl::Mutex watch_mu_;
  bool watch_stop_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watcher_;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_SERVER_H_
