// frikortd: the Frikort register server.
//
//   frikortd --listen=127.0.0.1:50051 --data_dir=./data
//
//   frikortd --listen=0.0.0.0:50051 --data_dir=/var/lib/frikort
//     --tls_cert=server.pem --tls_key=server.key --tls_client_ca=clients-ca.pem
//     --authz_file=/etc/frikort/authz.txt --pseudonym_key_file=/etc/frikort/pseudonym.key
//   frikortd --verify --data_dir=./data
//   frikortd --restore_from=BACKUP --data_dir=NEW
//
// Exit status: 0 after SIGTERM/SIGINT (calls in flight finished, register
// closed), 1 when startup fails (one line on stderr saying why), 2 for a bad
// flag or argument. SIGHUP re-reads the authz file (a malformed one is refused
// with its line number and the previous table stays in force). With --verify:
// 0 when every invariant holds, 3 when a violation was found, 1 when the
// register could not be walked.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "core/address.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "grpc/support/log.h"
#include "jobs/issuance.h"
#include "server/log.h"
#include "server/server.h"
#include "storage/register.h"
#include "storage/secret.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "HOST:PORT to listen on; without TLS only a loopback address is allowed");
ABSL_FLAG(std::string, data_dir, "./data",
          "folder of the register's database (created if missing)");
ABSL_FLAG(bool, allow_synthetic_ids, false,
          "accept synthetic test national ids (month + 40 / + 80); never in production");
ABSL_FLAG(absl::Duration, issuance_interval, absl::Hours(24),
          "how often the issuance job runs by itself (e.g. 24h, 30s); 0 = never");
ABSL_FLAG(int, lookup_years_back, 2, "how many years back CheckExemption may ask about");
ABSL_FLAG(std::string, pseudonym_key_file, "",
          "file with the pseudonym secret (>= 32 bytes, mode 0600); empty = development mode, "
          "a secret is created in the data folder");
ABSL_FLAG(std::string, rules_file, "deploy/rules.txt", "the rules table (caps per year)");
ABSL_FLAG(int64_t, block_cache_mb, 512, "RocksDB block cache size, MiB");
ABSL_FLAG(int64_t, write_buffer_mb, 256, "RocksDB write buffer size, MiB");
ABSL_FLAG(bool, verify, false,
          "walk the register in --data_dir, check every invariant, print what was checked and "
          "every violation, and exit (0 = clean, 3 = violations); frikortd must not be running");
ABSL_FLAG(std::string, tls_cert, "",
          "server certificate chain (PEM) for mutual TLS; with --tls_key and --tls_client_ca");
ABSL_FLAG(std::string, tls_key, "",
          "the server certificate's private key (PEM, mode 0600) for mutual TLS");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT serving Prometheus metrics at /metrics (plain HTTP); empty = none");
ABSL_FLAG(std::string, log_format, "text",
          "text (\"frikortd: ...\" lines) or json (one JSON object per line, for collectors)");
ABSL_FLAG(std::string, restore_from, "",
          "restore the newest backup in this folder into --data_dir (which must be new), "
          "verify it and exit");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA certificate(s) (PEM) that sign client certificates; others are refused");
ABSL_FLAG(std::string, authz_file, "",
          "roles per client certificate CN (required with TLS); re-read on SIGHUP");
ABSL_FLAG(int, max_calls_per_caller, 100,
          "calls one caller may have in flight (RESOURCE_EXHAUSTED beyond); 0 = no limit");

namespace frikort::server {
namespace {

constexpr int kExitStartupFailed = 1;
constexpr int kExitBadFlags = 2;
constexpr int kExitViolations = 3;
constexpr absl::Duration kShutdownGrace = absl::Seconds(5);

// gRPC's own log lines. Until the server has started they are held back, so a
// startup failure stays one line on stderr (its reason folded into that line);
// after that they go to stderr, one line each, prefixed.
absl::Mutex log_mu;
bool log_hold ABSL_GUARDED_BY(log_mu) = true;
std::string log_held ABSL_GUARDED_BY(log_mu);

void GrpcLog(gpr_log_func_args* args) {
  absl::MutexLock l(&log_mu);
  if (log_hold) {
    if (args->severity == GPR_LOG_SEVERITY_ERROR) log_held = args->message;
    return;
  }
  log::Log(args->severity == GPR_LOG_SEVERITY_ERROR ? log::Level::kError : log::Level::kInfo,
           "grpc", absl::StrCat("grpc: ", args->message));
}

void ReleaseGrpcLog() {
  absl::MutexLock l(&log_mu);
  log_hold = false;
}

std::string HeldGrpcError() {
  absl::MutexLock l(&log_mu);
  return log_held;
}

// A flag whose value parses but makes no sense.
absl::Status CheckFlagValues() {
  if (absl::GetFlag(FLAGS_data_dir).empty()) {
    return absl::InvalidArgumentError("--data_dir must not be empty");
  }
  if (absl::GetFlag(FLAGS_issuance_interval) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--issuance_interval must not be negative");
  }
  const int years_back = absl::GetFlag(FLAGS_lookup_years_back);
  if (years_back < 0 || years_back > 100) {
    return absl::InvalidArgumentError("--lookup_years_back must be between 0 and 100");
  }
  for (int64_t mb : {absl::GetFlag(FLAGS_block_cache_mb), absl::GetFlag(FLAGS_write_buffer_mb)}) {
    if (mb <= 0 || mb > (int64_t{1} << 20)) {
      return absl::InvalidArgumentError(
          "--block_cache_mb and --write_buffer_mb must be between 1 and 1048576");
    }
  }
  const int max_calls = absl::GetFlag(FLAGS_max_calls_per_caller);
  if (max_calls < 0 || max_calls > 1000000) {
    return absl::InvalidArgumentError("--max_calls_per_caller must be between 0 and 1000000");
  }
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(absl::GetFlag(FLAGS_listen), "listen");
  if (!hp.ok()) return hp.status();
  return absl::OkStatus();
}

// The contents of the file flag --`flag` names ("" when the flag is empty).
// A private key must not be accessible by group or others.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path,
                                         bool private_key) {
  if (path.empty()) return std::string();
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::is_regular_file(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " ", path, ": ", ec ? ec.message() : std::string("not a regular file")));
  }
  using std::filesystem::perms;
  const perms shared = perms::group_all | perms::others_all;
  if (private_key && (st.permissions() & shared) != perms::none) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s has mode %04o: a private key must not be accessible by group or others "
        "(chmod 600)",
        flag, path, static_cast<unsigned>(st.permissions()) & 07777));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, " ", path, ": cannot read"));
  return text.str();
}

// The TLS and authz flags, read and checked; nothing else of the server.
absl::StatusOr<ServerOptions> SecurityOptionsFromFlags() {
  ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.authz_file = absl::GetFlag(FLAGS_authz_file);
  options.max_calls_per_caller = absl::GetFlag(FLAGS_max_calls_per_caller);
  struct {
    const char* flag;
    std::string path;
    bool private_key;
    std::string* pem;
  } files[] = {
      {"tls_cert", absl::GetFlag(FLAGS_tls_cert), false, &options.tls.cert_pem},
      {"tls_key", absl::GetFlag(FLAGS_tls_key), true, &options.tls.key_pem},
      {"tls_client_ca", absl::GetFlag(FLAGS_tls_client_ca), false, &options.tls.client_ca_pem},
  };
  for (auto& f : files) {
    absl::StatusOr<std::string> pem = ReadFlagFile(f.flag, f.path, f.private_key);
    if (!pem.ok()) return pem.status();
    if (!f.path.empty() && pem->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(f.flag, " ", f.path, ": empty file"));
    }
    *f.pem = *std::move(pem);
  }
  if (absl::Status s = CheckSecurityOptions(options); !s.ok()) return s;
  return options;
}

// SIGHUP: the authz file again, or why not. One log line either way.
void ReloadAuthz(FrikortServer* server) {
  if (absl::GetFlag(FLAGS_authz_file).empty()) {
    log::Log(log::Level::kWarning, "authz_reload",
             "SIGHUP: no --authz_file (development mode), nothing to reload");
    return;
  }
  absl::StatusOr<size_t> n = server->ReloadAuthz();
  if (n.ok()) {
    log::Log(log::Level::kInfo, "authz_reload",
             absl::StrCat("SIGHUP: authz file ", absl::GetFlag(FLAGS_authz_file),
                          " reloaded; client certificates: ", *n));
  } else {
    log::Log(log::Level::kError, "authz_reload",
             absl::StrCat("SIGHUP: ", n.status().message(), "; the previous table stays in force"));
  }
}

// Makes the message name the flag `what` and its value `path`, without saying
// either twice.
absl::Status WithContext(const absl::Status& status, absl::string_view what,
                         absl::string_view path) {
  const bool has_what = absl::StrContains(status.message(), what);
  const bool has_path = absl::StrContains(status.message(), path);
  if (has_what && has_path) return status;
  if (has_path) return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  return absl::Status(status.code(), absl::StrCat(what, " ", path, ": ", status.message()));
}

std::string DisplayAddress(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

// The Oslo time zone and --rules_file.
absl::StatusOr<std::unique_ptr<core::RulesTable>> LoadRules() {
  if (absl::Status s = core::InitOsloTimeZone(); !s.ok()) return s;
  const std::string rules_file = absl::GetFlag(FLAGS_rules_file);
  absl::StatusOr<core::RulesTable> rules = core::RulesTable::LoadFile(rules_file);
  if (!rules.ok()) return WithContext(rules.status(), "rules_file", rules_file);
  return std::make_unique<core::RulesTable>(*std::move(rules));
}

// The register named by the flags, opened, with what it borrows.
struct OpenRegister {
  std::unique_ptr<core::RulesTable> rules;
  const core::Clock* clock = nullptr;
  core::PersonIdOptions id_options;
  std::unique_ptr<storage::Register> reg;
};

// Loads the rules and the pseudonym secret and opens the register. With
// `existing_only` (verify) nothing is created: the folder must hold a register
// and, in development mode, its key.
absl::StatusOr<OpenRegister> Open(bool existing_only) {
  OpenRegister out;
  absl::StatusOr<std::unique_ptr<core::RulesTable>> rules = LoadRules();
  if (!rules.ok()) return rules.status();
  out.rules = *std::move(rules);

  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  std::error_code ec;
  if (existing_only) {
    if (!std::filesystem::exists(std::filesystem::path(data_dir) / "CURRENT", ec)) {
      return absl::NotFoundError(absl::StrCat("data_dir ", data_dir, ": holds no register"));
    }
  } else {
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("data_dir ", data_dir, ": cannot create: ", ec.message()));
    }
  }

  const std::string key_file = absl::GetFlag(FLAGS_pseudonym_key_file);
  absl::StatusOr<std::string> secret;
  if (!key_file.empty()) {
    secret = storage::LoadSecret(key_file);
    if (!secret.ok()) return WithContext(secret.status(), "pseudonym_key_file", key_file);
  } else {
    secret = existing_only
                 ? storage::LoadSecret((std::filesystem::path(data_dir) / "pseudonym.key").string())
                 : storage::LoadOrCreateDevSecret(data_dir);
    if (!secret.ok()) return WithContext(secret.status(), "data_dir", data_dir);
  }

  out.clock = core::RealClock::Get();
  out.id_options.allow_synthetic = absl::GetFlag(FLAGS_allow_synthetic_ids);
  storage::RegisterOptions reg_options;
  reg_options.data_dir = data_dir;
  reg_options.secret = *std::move(secret);
  reg_options.rules = out.rules.get();
  reg_options.clock = out.clock;
  reg_options.id_options = out.id_options;
  reg_options.block_cache_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_block_cache_mb)) << 20;
  reg_options.write_buffer_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_write_buffer_mb))
                                   << 20;
  absl::StatusOr<std::unique_ptr<storage::Register>> reg = storage::Register::Open(reg_options);
  if (!reg.ok()) return WithContext(reg.status(), "data_dir", data_dir);
  out.reg = *std::move(reg);
  return out;
}

// --verify: walks the whole register (one snapshot, streaming, bounded memory)
// and prints what it checked and every violation on stdout. Returns the exit
// status, or an error when the walk could not be done.
absl::StatusOr<int> Verify() {
  absl::StatusOr<OpenRegister> opened = Open(/*existing_only=*/true);
  if (!opened.ok()) return opened.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<storage::Register::VerifyReport> report = opened->reg->Verify();
  if (!report.ok()) return report.status();
  for (const std::string& v : report->violations) std::printf("violation: %s\n", v.c_str());
  std::printf(
      "verified %s in %lld ms: %llu persons, %llu entries (each with its idempotency index), %llu "
      "ledgers (totals, crossing dates, refunds within the excess), %llu cards, %llu payouts, "
      "%llu due markers: %zu violation%s\n",
      absl::GetFlag(FLAGS_data_dir).c_str(),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)),
      static_cast<unsigned long long>(report->persons),
      static_cast<unsigned long long>(report->entries),
      static_cast<unsigned long long>(report->ledgers),
      static_cast<unsigned long long>(report->cards),
      static_cast<unsigned long long>(report->payouts),
      static_cast<unsigned long long>(report->due_markers), report->violations.size(),
      report->violations.size() == 1 ? "" : "s");
  std::fflush(stdout);
  return report->violations.empty() ? 0 : kExitViolations;
}

// --restore_from: restores into a new data folder, verifies and returns. The
// key is the one the backed-up register was created with: --pseudonym_key_file,
// or in development mode the old data folder's pseudonym.key copied into the
// new folder first (a restore never creates a key).
absl::Status Restore() {
  const std::string backup_dir = absl::GetFlag(FLAGS_restore_from);
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string key_file = absl::GetFlag(FLAGS_pseudonym_key_file);
  absl::StatusOr<std::unique_ptr<core::RulesTable>> rules = LoadRules();
  if (!rules.ok()) return rules.status();
  const std::string dev_key = data_dir + "/pseudonym.key";
  const std::string key_path = key_file.empty() ? dev_key : key_file;
  absl::StatusOr<std::string> secret = storage::LoadSecret(key_path);
  if (absl::IsNotFound(secret.status()) && key_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore needs the pseudonym key the backed-up register was created with: give "
        "--pseudonym_key_file, or (development mode) copy the old data folder's pseudonym.key to ",
        dev_key));
  }
  if (!secret.ok()) return WithContext(secret.status(), "pseudonym_key_file", key_path);
  storage::RegisterOptions options;
  options.data_dir = data_dir;
  options.secret = *std::move(secret);
  options.rules = rules->get();
  options.clock = core::RealClock::Get();
  options.id_options.allow_synthetic = absl::GetFlag(FLAGS_allow_synthetic_ids);
  absl::StatusOr<storage::Register::RestoreReport> r =
      storage::Register::Restore(backup_dir, options);
  if (!r.ok()) return r.status();
  const storage::Register::VerifyReport& v = r->verify;
  if (!v.violations.empty()) {
    return absl::DataLossError(absl::StrCat(
        "restored backup ", r->backup.backup_id, " into ", data_dir, ", but verifying it found ",
        v.violations.size(), " violations, the first: ", v.violations.front()));
  }
  log::Log(log::Level::kInfo, "restored",
           absl::StrCat(
               "restored backup ", r->backup.backup_id, " (made ",
               absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", r->backup.created, absl::UTCTimeZone()),
               ") from ", backup_dir, " into ", data_dir, " and verified it: ", v.persons,
               " persons, ", v.entries, " entries, ", v.cards, " cards, ", v.payouts, " payouts"),
           {{"backup_id", absl::StrCat(r->backup.backup_id)},
            {"restore_from", backup_dir},
            {"data_dir", data_dir}});
  return absl::OkStatus();
}

// The daemon proper. Signals arrive only through sigwait() in this thread: the
// mask is set before any thread exists, so every thread inherits it.
absl::Status Run() {
  gpr_set_log_function(GrpcLog);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  if (int err = pthread_sigmask(SIG_BLOCK, &signals, nullptr); err != 0) {
    return absl::InternalError(absl::StrCat("cannot block signals: ", std::strerror(err)));
  }

  // TLS material, the authz file and the address are checked before the
  // register is touched.
  absl::StatusOr<ServerOptions> security = SecurityOptionsFromFlags();
  if (!security.ok()) return security.status();
  const std::string listen = absl::GetFlag(FLAGS_listen);

  absl::StatusOr<OpenRegister> opened = Open(/*existing_only=*/false);
  if (!opened.ok()) return opened.status();
  const core::Clock* clock = opened->clock;
  core::RulesTable* rules = opened->rules.get();
  storage::Register* reg = opened->reg.get();

  auto metrics = std::make_unique<Metrics>(reg);
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  int metrics_port = 0;
  if (!metrics_listen.empty()) {
    absl::StatusOr<int> port = metrics->Serve(metrics_listen);
    if (!port.ok()) return port.status();
    metrics_port = *port;
  }

  jobs::IssuanceJob job(reg, rules, clock);
  job.set_observer([m = metrics.get()](const jobs::RunSummary& s) {
    m->RecordRun(s);
    log::Log(s.cards_past_deadline > 0 ? log::Level::kWarning : log::Level::kInfo, "issuance_run",
             absl::StrCat("issuance ", s.run_id, " as_of ", core::FormatDate(s.as_of),
                          ": examined ", s.ledgers_examined, ", cards ", s.cards_issued, " (",
                          s.cards_past_deadline, " past deadline), payouts ", s.payouts, " (",
                          s.payout_total, " ore), carried ", s.carried_forward, " ore"),
             {{"run_id", s.run_id},
              {"as_of", core::FormatDate(s.as_of)},
              {"ledgers_examined", absl::StrCat(s.ledgers_examined)},
              {"cards_issued", absl::StrCat(s.cards_issued)},
              {"cards_past_deadline", absl::StrCat(s.cards_past_deadline)},
              {"payouts", absl::StrCat(s.payouts)},
              {"payout_total_ore", absl::StrCat(s.payout_total)}});
  });

  ServerOptions server_options = *std::move(security);
  server_options.lookup_years_back = absl::GetFlag(FLAGS_lookup_years_back);
  server_options.id_options = opened->id_options;
  server_options.metrics = metrics.get();
  auto server = std::make_unique<FrikortServer>(server_options, reg, &job, rules, clock);
  if (absl::Status s = server->Start(); !s.ok()) {
    if (absl::StrContains(HeldGrpcError(), "Address already in use")) {
      return absl::UnavailableError(absl::StrCat("listen: ", listen, ": address already in use"));
    }
    return s;
  }
  ReleaseGrpcLog();

  jobs::Scheduler scheduler(&job, absl::GetFlag(FLAGS_issuance_interval),
                            [](const absl::Status& s) {
                              log::Log(log::Level::kError, "issuance_failed",
                                       absl::StrCat("scheduled issuance failed: ", s.message()));
                            });
  scheduler.Start();

  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(listen, "listen");
  const std::string address = DisplayAddress(hp.ok() ? hp->host : listen, server->port());
  log::Log(log::Level::kInfo, "listening", absl::StrCat("frikortd listening on ", address),
           {{"address", address}});
  if (!metrics_listen.empty()) {
    absl::StatusOr<core::HostPort> mhp = core::SplitHostPort(metrics_listen, "metrics_listen");
    const std::string url = absl::StrCat(
        "http://", DisplayAddress(mhp.ok() ? mhp->host : metrics_listen, metrics_port), "/metrics");
    log::Log(log::Level::kInfo, "metrics", absl::StrCat("frikortd metrics on ", url),
             {{"url", url}});
  }

  int signo = 0;
  while (true) {
    int err = sigwait(&signals, &signo);
    if (err == 0 && signo == SIGHUP) {
      ReloadAuthz(server.get());
      continue;
    }
    if (err == 0) break;
    if (err != EINTR) {
      log::Log(log::Level::kError, "sigwait_failed",
               absl::StrCat("sigwait failed: ", std::strerror(err)));
      break;
    }
  }
  log::Log(log::Level::kInfo, "shutting_down",
           absl::StrCat(signo == SIGINT ? "SIGINT" : "SIGTERM", " received, shutting down"));
  server->Shutdown(absl::Now() + kShutdownGrace);
  server.reset();
  scheduler.Stop();
  metrics.reset();      // the endpoint reads the register: stop it first
  opened->reg.reset();  // closes the database after every write has completed
  log::Log(log::Level::kInfo, "stopped", "register closed, exiting");
  return absl::OkStatus();
}

}  // namespace
}  // namespace frikort::server

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
  if (std::string error = frikort::common::PrecheckFlags(argc, argv, /*allow_positional=*/false);
      !error.empty()) {
    std::fprintf(stderr, "frikortd: %s (see --help)\n", error.c_str());
    return frikort::server::kExitBadFlags;
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "frikortd: unexpected argument '%s' (see --help)\n", rest[1]);
    return frikort::server::kExitBadFlags;
  }
  if (absl::Status s = frikort::server::CheckFlagValues(); !s.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(s.message()).c_str());
    return frikort::server::kExitBadFlags;
  }
  namespace log = frikort::server::log;
  absl::StatusOr<log::Format> log_format = log::ParseFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(log_format.status().message()).c_str());
    return frikort::server::kExitBadFlags;
  }
  log::SetFormat(*log_format);
  if (!absl::GetFlag(FLAGS_restore_from).empty()) {
    if (absl::Status s = frikort::server::Restore(); !s.ok()) {
      log::Log(log::Level::kError, "restore_failed", s.message());
      return frikort::server::kExitStartupFailed;
    }
    return 0;
  }
  if (absl::GetFlag(FLAGS_verify)) {
    absl::StatusOr<int> code = frikort::server::Verify();
    if (!code.ok()) {
      log::Log(log::Level::kError, "verify_failed",
               absl::StrCat("verify: ", code.status().message()));
      return frikort::server::kExitStartupFailed;
    }
    return *code;
  }
  if (absl::Status s = frikort::server::Run(); !s.ok()) {
    log::Log(log::Level::kError, "startup_failed", s.message());
    return frikort::server::kExitStartupFailed;
  }
  return 0;
}
