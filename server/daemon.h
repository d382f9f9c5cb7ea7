// frikortd's startup and life, apart from its command line: frikortd_main.cc
// turns the flags into DaemonOptions and calls RunDaemon. Serving: checks the
// TLS material, the authz file and the listen address before anything else,
// loads the rules and the pseudonym key, opens the register, serves until
// SIGTERM/SIGINT (calls in flight may finish), re-reads the authz file and
// the Citizen service's JWKS file on SIGHUP. Or, instead, --verify (walk the register) or
// --restore_from (restore a backup into a new folder and verify it).
//
// Errors: each step returns absl::Status naming the option and the path or
// value at fault (never a national id); RunDaemon logs the one line and maps
// it to the exit code. RunDaemon first sets umask 077, so every file and
// folder frikortd creates (database, WAL, backups, the development key) is
// private to its user. Threads: Serve and RunDaemon block SIGTERM, SIGINT and
// SIGHUP in the calling thread (every thread started after inherits that) and
// take them with sigwait; call them from the main thread before any other
// thread exists. The other functions keep no state.
#ifndef FRIKORT_SERVER_DAEMON_H_
#define FRIKORT_SERVER_DAEMON_H_

#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "server/server.h"
#include "storage/register.h"

namespace frikort::server {

// Exit codes of frikortd.
inline constexpr int kExitOk = 0;
inline constexpr int kExitStartupFailed = 1;  // one line on stderr says why
inline constexpr int kExitBadFlags = 2;       // a flag or argument is wrong
inline constexpr int kExitViolations = 3;     // --verify found violations

// What frikortd is told to do; one field per flag (the flags' defaults are
// these).
struct DaemonOptions {
  std::string listen = "127.0.0.1:50051";
  std::string data_dir = "./data";
  bool allow_synthetic_ids = false;
  absl::Duration issuance_interval = absl::Hours(24);  // zero = never by itself
  int lookup_years_back = 2;
  std::string pseudonym_key_file;  // empty = development mode
  std::string rules_file = "deploy/rules.txt";
  int64_t block_cache_mb = 512;
  int64_t write_buffer_mb = 256;
  bool verify = false;
  std::string restore_from;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string authz_file;
  std::string metrics_listen;  // empty = no metrics endpoint
  std::string log_format = "text";
  int max_calls_per_caller = 100;
  // Where the register lives: "rocksdb" (in data_dir) or "postgres" (in the
  // database postgres_dsn names; pseudonym_key_file is then required).
  std::string store = "rocksdb";
  std::string postgres_dsn;
  // The Citizen service's token check: all three or none.
  std::string citizen_jwks_file;  // re-read on SIGHUP
  std::string citizen_token_issuer;
  std::string citizen_token_audience;
  // Per connection (server.h ConnectionLimits).
  int max_concurrent_streams = ConnectionLimits().max_concurrent_streams;
  int64_t memory_quota_mb = ConnectionLimits().memory_quota_mb;
  absl::Duration max_connection_idle = ConnectionLimits().max_idle;
  absl::Duration max_connection_age = ConnectionLimits().max_age;
};

// Values that parse but make no sense (exit code kExitBadFlags):
// InvalidArgument naming the flag.
absl::Status CheckDaemonOptions(const DaemonOptions& options);

// The server's address, TLS material (files read and checked) and authz file;
// what Serve checks before it touches the register. FailedPrecondition /
// InvalidArgument naming the flag, the path and what is wrong.
absl::StatusOr<ServerOptions> SecurityOptions(const DaemonOptions& options);

// The register's options as frikortd opens it (serving, verifying and
// restoring alike). `rules` and `clock` are borrowed by the register.
storage::RegisterOptions RegisterOptionsFor(const DaemonOptions& options, std::string secret,
                                            const core::RulesTable* rules,
                                            const core::Clock* clock);

// The register, opened, with what it borrows (declared first: destroyed
// after it).
struct OpenedRegister {
  std::unique_ptr<core::RulesTable> rules;
  const core::Clock* clock = nullptr;
  core::PersonIdOptions id_options;
  std::unique_ptr<storage::Register> reg;
  // What it was opened with (borrows rules and clock above).
  storage::RegisterOptions reg_options;
};
enum class OpenMode {
  kCreate,        // serving: the data folder and development key are made if missing
  kExistingOnly,  // verify: nothing is created; NotFound when there is no register
  kPrepareOnly,   // serving from PostgreSQL: rules, key and reg_options; reg stays empty
};
// Loads the rules and the pseudonym key and opens the register in
// options.data_dir (or PostgreSQL). Errors name rules_file,
// pseudonym_key_file, data_dir or the store (never the DSN: it may hold a
// password).
absl::StatusOr<OpenedRegister> OpenRegister(const DaemonOptions& options, OpenMode mode);

// --verify: walks the register (one snapshot, bounded memory) and prints every
// violation and a summary line to `out`. Returns kExitOk or kExitViolations,
// or an error when the walk could not be done (no register, the daemon holds
// it, a wrong key).
absl::StatusOr<int> Verify(const DaemonOptions& options, std::FILE* out);

// --restore_from: restores the newest backup there into options.data_dir
// (missing, or holding only development mode's pseudonym.key), verifies it and
// logs one line. Refused before anything is written without the right key or
// into a folder that is not empty; DataLoss when the restored register has
// violations.
absl::Status Restore(const DaemonOptions& options);

// Serves until SIGTERM or SIGINT; Ok after an orderly shutdown (calls in
// flight finished, register closed). Errors are startup refusals.
absl::Status Serve(const DaemonOptions& options);

// Waits (sigwait) for one of `signals`, which the calling thread must block;
// calls `on_sighup` for each SIGHUP and returns the first other signal. A
// failing sigwait is logged and returns 0.
int WaitForStopSignal(const sigset_t& signals, absl::FunctionRef<void()> on_sighup);

// All of frikortd after the command line: checks the options, sets the log
// format, then restores, verifies or serves. Returns the exit code; a failure
// is one line on stderr.
int RunDaemon(const DaemonOptions& options);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_DAEMON_H_
