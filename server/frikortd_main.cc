// frikortd: the Frikort register server.
//
//   frikortd --listen=127.0.0.1:50051 --data_dir=./data
//
//   frikortd --listen=0.0.0.0:50051 --data_dir=/var/lib/frikort
//     --tls_cert=server.pem --tls_key=server.key --tls_client_ca=clients-ca.pem
//     --authz_file=/etc/frikort/authz.txt --pseudonym_key_file=/etc/frikort/pseudonym.key
//   frikortd --verify --data_dir=./data
//   frikortd --restore_from=BACKUP --data_dir=NEW
//   frikortd --copy_register --data_dir=OLD --store=postgres --postgres_dsn=DSN
//     --pseudonym_key_file=F
//
// Exit status: 0 after SIGTERM/SIGINT (calls in flight finished, register
// closed), 1 when startup fails (one line on stderr saying why), 2 for a bad
// flag or argument. SIGHUP re-reads the authz file (a malformed one is refused
// with its line number and the previous table stays in force) and the
// Citizen service's JWKS file (likewise). With --verify:
// 0 when every invariant holds, 3 when a violation was found, 1 when the
// register could not be walked.
//
// This file is the command line only: the flags, turned into DaemonOptions
// for RunDaemon (server/daemon.h), which does the rest.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "core/command_line.h"
#include "server/daemon.h"

namespace {
// The flags' defaults are DaemonOptions' own.
frikort::server::DaemonOptions Defaults() { return {}; }
}  // namespace

ABSL_FLAG(std::string, listen, Defaults().listen,
          "HOST:PORT to listen on; without TLS only a loopback address is allowed");
ABSL_FLAG(std::string, data_dir, Defaults().data_dir,
          "folder of the register's database (created if missing)");
ABSL_FLAG(bool, allow_synthetic_ids, Defaults().allow_synthetic_ids,
          "accept synthetic test national ids (month + 40 / + 80); never in production");
ABSL_FLAG(absl::Duration, issuance_interval, Defaults().issuance_interval,
          "how often the issuance job runs by itself (e.g. 24h, 30s); 0 = never");
ABSL_FLAG(int, lookup_years_back, Defaults().lookup_years_back,
          "how many years back CheckExemption may ask about");
ABSL_FLAG(std::string, pseudonym_key_file, Defaults().pseudonym_key_file,
          "file with the pseudonym secret (>= 32 bytes, mode 0600); empty = development mode, "
          "a secret is created in the data folder");
ABSL_FLAG(std::string, rules_file, Defaults().rules_file, "the rules table (caps per year)");
ABSL_FLAG(int64_t, block_cache_mb, Defaults().block_cache_mb, "RocksDB block cache size, MiB");
ABSL_FLAG(int64_t, write_buffer_mb, Defaults().write_buffer_mb, "RocksDB write buffer size, MiB");
ABSL_FLAG(bool, verify, Defaults().verify,
          "walk the register in --data_dir, check every invariant, print what was checked and "
          "every violation, and exit (0 = clean, 3 = violations); frikortd must not be running");
ABSL_FLAG(std::string, tls_cert, Defaults().tls_cert,
          "server certificate chain (PEM) for mutual TLS; with --tls_key and --tls_client_ca");
ABSL_FLAG(std::string, tls_key, Defaults().tls_key,
          "the server certificate's private key (PEM, mode 0600) for mutual TLS");
ABSL_FLAG(std::string, metrics_listen, Defaults().metrics_listen,
          "HOST:PORT serving Prometheus metrics at /metrics (plain HTTP); empty = none");
ABSL_FLAG(std::string, log_format, Defaults().log_format,
          "text (\"frikortd: ...\" lines) or json (one JSON object per line, for collectors)");
ABSL_FLAG(std::string, restore_from, Defaults().restore_from,
          "restore the newest backup in this folder into --data_dir (which must be new), "
          "verify it and exit");
ABSL_FLAG(std::string, tls_client_ca, Defaults().tls_client_ca,
          "CA certificate(s) (PEM) that sign client certificates; others are refused");
ABSL_FLAG(std::string, authz_file, Defaults().authz_file,
          "roles per client certificate CN (required with TLS); re-read on SIGHUP");
ABSL_FLAG(int, max_calls_per_caller, Defaults().max_calls_per_caller,
          "calls one caller may have in flight (RESOURCE_EXHAUSTED beyond); 0 = no limit");
ABSL_FLAG(std::string, store, Defaults().store,
          "where the register lives: rocksdb (in --data_dir) or postgres (in --postgres_dsn; "
          "needs --pseudonym_key_file)");
ABSL_FLAG(std::string, postgres_dsn, Defaults().postgres_dsn,
          "with --store=postgres: the libpq connection string of the register's database");
ABSL_FLAG(
    bool, copy_register, Defaults().copy_register,
    "copy the RocksDB register in --data_dir into the empty PostgreSQL database of "
    "--postgres_dsn (with --store=postgres), verify the copy, print what was copied and exit");
ABSL_FLAG(std::string, citizen_jwks_file, Defaults().citizen_jwks_file,
          "the Citizen service's token signing keys (JWKS, RSA and EC P-256); re-read on SIGHUP");
ABSL_FLAG(std::string, citizen_token_issuer, Defaults().citizen_token_issuer,
          "the Citizen service's token issuer: the 'iss' every token must carry");
ABSL_FLAG(std::string, citizen_token_audience, Defaults().citizen_token_audience,
          "the Citizen service's audience: a value every token's 'aud' must contain");
ABSL_FLAG(int, max_concurrent_streams, Defaults().max_concurrent_streams,
          "calls one connection may have open at once (HTTP/2 streams); each may buffer up to "
          "4 MiB");
ABSL_FLAG(int64_t, memory_quota_mb, Defaults().memory_quota_mb,
          "MiB gRPC may hold for all connections together (its resource quota)");
ABSL_FLAG(absl::Duration, max_connection_idle, Defaults().max_connection_idle,
          "a connection with no call open this long is closed");
ABSL_FLAG(absl::Duration, max_connection_age, Defaults().max_connection_age,
          "every connection is closed after this long (clients reconnect)");

namespace {

frikort::server::DaemonOptions OptionsFromFlags() {
  frikort::server::DaemonOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.allow_synthetic_ids = absl::GetFlag(FLAGS_allow_synthetic_ids);
  options.issuance_interval = absl::GetFlag(FLAGS_issuance_interval);
  options.lookup_years_back = absl::GetFlag(FLAGS_lookup_years_back);
  options.pseudonym_key_file = absl::GetFlag(FLAGS_pseudonym_key_file);
  options.rules_file = absl::GetFlag(FLAGS_rules_file);
  options.block_cache_mb = absl::GetFlag(FLAGS_block_cache_mb);
  options.write_buffer_mb = absl::GetFlag(FLAGS_write_buffer_mb);
  options.verify = absl::GetFlag(FLAGS_verify);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.log_format = absl::GetFlag(FLAGS_log_format);
  options.restore_from = absl::GetFlag(FLAGS_restore_from);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.authz_file = absl::GetFlag(FLAGS_authz_file);
  options.max_calls_per_caller = absl::GetFlag(FLAGS_max_calls_per_caller);
  options.store = absl::GetFlag(FLAGS_store);
  options.postgres_dsn = absl::GetFlag(FLAGS_postgres_dsn);
  options.copy_register = absl::GetFlag(FLAGS_copy_register);
  options.citizen_jwks_file = absl::GetFlag(FLAGS_citizen_jwks_file);
  options.citizen_token_issuer = absl::GetFlag(FLAGS_citizen_token_issuer);
  options.citizen_token_audience = absl::GetFlag(FLAGS_citizen_token_audience);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.memory_quota_mb = absl::GetFlag(FLAGS_memory_quota_mb);
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built with assertions on, which makes every Mutex lock
  // (ours and gRPC's) maintain a global lock-order graph: several percent of
  // the lookup path's CPU in a profile. The tests keep it; the server does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "the Frikort co-payment register server.\n"
      "  frikortd --listen=127.0.0.1:50051 --data_dir=./data [--issuance_interval=24h]\n"
      "  frikortd --listen=0.0.0.0:50051 --tls_cert=F --tls_key=F --tls_client_ca=F "
      "--authz_file=F ...");
  if (std::string error = frikort::core::PrecheckFlags(argc, argv, /*allow_positional=*/false);
      !error.empty()) {
    std::fprintf(stderr, "frikortd: %s (see --help)\n", error.c_str());
    return frikort::server::kExitBadFlags;
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "frikortd: unexpected argument '%s' (see --help)\n", rest[1]);
    return frikort::server::kExitBadFlags;
  }
  return frikort::server::RunDaemon(OptionsFromFlags());
}
