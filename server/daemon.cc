#include "server/daemon.h"

#include <pthread.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/address.h"
#include "grpc/support/log.h"
#include "jobs/issuance.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/register_keeper.h"
#include "server/register_slot.h"
#include "server/startup_files.h"
#include "server/system_clock.h"
#include "storage/pg_store.h"

namespace frikort::server {
namespace {

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

// Holds gRPC's log lines back again (each Serve starts held, so a refusal in
// a later Serve in the same process still finds gRPC's reason).
void HoldGrpcLog() {
  absl::MutexLock l(&log_mu);
  log_hold = true;
  log_held.clear();
}

void ReleaseGrpcLog() {
  absl::MutexLock l(&log_mu);
  log_hold = false;
}

std::string HeldGrpcError() {
  absl::MutexLock l(&log_mu);
  return log_held;
}

// SIGHUP: the authz file again, or why not. One log line either way.
void ReloadAuthz(FrikortServer* server, const std::string& authz_file) {
  if (authz_file.empty()) {
    log::Log(log::Level::kWarning, "authz_reload",
             "SIGHUP: no --authz_file (development mode), nothing to reload");
    return;
  }
  absl::StatusOr<size_t> n = server->ReloadAuthz();
  if (n.ok()) {
    log::Log(
        log::Level::kInfo, "authz_reload",
        absl::StrCat("SIGHUP: authz file ", authz_file, " reloaded; client certificates: ", *n));
  } else {
    log::Log(log::Level::kError, "authz_reload",
             absl::StrCat("SIGHUP: ", n.status().message(), "; the previous table stays in force"));
  }
}

// SIGHUP: the Citizen service's JWKS file again, when the service is on.
void ReloadCitizenKeys(FrikortServer* server, const std::string& jwks_file) {
  if (jwks_file.empty()) return;
  absl::StatusOr<size_t> n = server->ReloadCitizenKeys();
  if (n.ok()) {
    log::Log(log::Level::kInfo, "jwks_reload",
             absl::StrCat("SIGHUP: citizen JWKS file ", jwks_file, " reloaded; keys: ", *n));
  } else {
    log::Log(log::Level::kError, "jwks_reload",
             absl::StrCat("SIGHUP: ", n.status().message(), "; the previous keys stay in force"));
  }
}

std::string DisplayAddress(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

// "HOST:PORT" of `listen` with the port actually bound.
std::string BoundAddress(const std::string& listen, int port) {
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(listen, "listen");
  return DisplayAddress(hp.ok() ? hp->host : listen, port);
}

void LogIssuanceRun(const jobs::RunSummary& s) {
  log::Log(s.cards_past_deadline > 0 ? log::Level::kWarning : log::Level::kInfo, "issuance_run",
           absl::StrCat("issuance ", s.run_id, " as_of ", core::FormatDate(s.as_of), ": examined ",
                        s.ledgers_examined, ", cards ", s.cards_issued, " (", s.cards_past_deadline,
                        " past deadline), payouts ", s.payouts, " (", s.payout_total,
                        " ore), carried ", s.carried_forward, " ore"),
           {{"run_id", s.run_id},
            {"as_of", core::FormatDate(s.as_of)},
            {"ledgers_examined", absl::StrCat(s.ledgers_examined)},
            {"cards_issued", absl::StrCat(s.cards_issued)},
            {"cards_past_deadline", absl::StrCat(s.cards_past_deadline)},
            {"payouts", absl::StrCat(s.payouts)},
            {"payout_total_ore", absl::StrCat(s.payout_total)}});
}

ConnectionLimits LimitsOf(const DaemonOptions& options) {
  ConnectionLimits limits;
  limits.max_concurrent_streams = options.max_concurrent_streams;
  limits.memory_quota_mb = options.memory_quota_mb;
  limits.max_idle = options.max_connection_idle;
  limits.max_age = options.max_connection_age;
  return limits;
}

}  // namespace

absl::Status CheckDaemonOptions(const DaemonOptions& options) {
  if (options.store != "rocksdb" && options.store != "postgres") {
    return absl::InvalidArgumentError("--store must be rocksdb or postgres");
  }
  if (options.store == "postgres") {
    if (options.postgres_dsn.empty()) {
      return absl::InvalidArgumentError("--store=postgres needs --postgres_dsn");
    }
    if (options.pseudonym_key_file.empty()) {
      return absl::InvalidArgumentError(
          "--store=postgres needs --pseudonym_key_file (there is no data folder to keep a "
          "development key in)");
    }
    if (!options.restore_from.empty()) {
      return absl::InvalidArgumentError(
          "--restore_from restores a RocksDB backup; a register in PostgreSQL is restored with "
          "PostgreSQL's own tools");
    }
  } else if (!options.postgres_dsn.empty()) {
    return absl::InvalidArgumentError("--postgres_dsn needs --store=postgres");
  }
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir must not be empty");
  }
  if (options.issuance_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--issuance_interval must not be negative");
  }
  if (options.lookup_years_back < 0 || options.lookup_years_back > 100) {
    return absl::InvalidArgumentError("--lookup_years_back must be between 0 and 100");
  }
  for (int64_t mb : {options.block_cache_mb, options.write_buffer_mb}) {
    if (mb <= 0 || mb > (int64_t{1} << 20)) {
      return absl::InvalidArgumentError(
          "--block_cache_mb and --write_buffer_mb must be between 1 and 1048576");
    }
  }
  if (options.max_calls_per_caller < 0 || options.max_calls_per_caller > 1000000) {
    return absl::InvalidArgumentError("--max_calls_per_caller must be between 0 and 1000000");
  }
  if (absl::Status s = CheckConnectionLimits(LimitsOf(options)); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(options.listen, "listen");
  if (!hp.ok()) return hp.status();
  return absl::OkStatus();
}

absl::StatusOr<ServerOptions> SecurityOptions(const DaemonOptions& options) {
  ServerOptions out;
  out.listen_address = options.listen;
  out.authz_file = options.authz_file;
  out.max_calls_per_caller = options.max_calls_per_caller;
  out.citizen_jwks_file = options.citizen_jwks_file;
  out.citizen_token_issuer = options.citizen_token_issuer;
  out.citizen_token_audience = options.citizen_token_audience;
  out.limits = LimitsOf(options);
  struct {
    const char* flag;
    const std::string& path;
    bool private_key;
    std::string* pem;
  } files[] = {
      {"tls_cert", options.tls_cert, false, &out.tls.cert_pem},
      {"tls_key", options.tls_key, true, &out.tls.key_pem},
      {"tls_client_ca", options.tls_client_ca, false, &out.tls.client_ca_pem},
  };
  for (auto& f : files) {
    absl::StatusOr<std::string> pem = ReadFlagFile(f.flag, f.path, f.private_key);
    if (!pem.ok()) return pem.status();
    if (!f.path.empty() && pem->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(f.flag, " ", f.path, ": empty file"));
    }
    *f.pem = *std::move(pem);
  }
  if (absl::Status s = CheckSecurityOptions(out); !s.ok()) return s;
  return out;
}

storage::RegisterOptions RegisterOptionsFor(const DaemonOptions& options, std::string secret,
                                            const core::RulesTable* rules,
                                            const core::Clock* clock) {
  storage::RegisterOptions out;
  out.data_dir = options.data_dir;
  out.secret = std::move(secret);
  out.rules = rules;
  out.clock = clock;
  out.id_options.allow_synthetic = options.allow_synthetic_ids;
  out.block_cache_bytes = static_cast<uint64_t>(options.block_cache_mb) << 20;
  out.write_buffer_bytes = static_cast<uint64_t>(options.write_buffer_mb) << 20;
  if (options.store == "postgres") {
    // data_dir then only names the register in messages.
    out.data_dir = "PostgreSQL";
    out.open_store = [dsn = options.postgres_dsn](const storage::RegisterOptions& reg) {
      return storage::OpenPgStore(
          storage::PgStoreOptions{.dsn = dsn, .sync_writes = reg.sync_writes});
    };
  }
  return out;
}

absl::StatusOr<OpenedRegister> OpenRegister(const DaemonOptions& options, OpenMode mode) {
  OpenedRegister out;
  absl::StatusOr<std::unique_ptr<core::RulesTable>> rules = LoadRules(options.rules_file);
  if (!rules.ok()) return rules.status();
  out.rules = *std::move(rules);

  const bool postgres = options.store == "postgres";
  const std::string& data_dir = options.data_dir;
  std::error_code ec;
  if (postgres) {
    // No folder: the database holds the register, the key file its key.
  } else if (mode == OpenMode::kExistingOnly) {
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

  absl::StatusOr<std::string> secret =
      LoadPseudonymKey(options.pseudonym_key_file, data_dir,
                       mode == OpenMode::kExistingOnly ? KeyUse::kVerify : KeyUse::kServe);
  if (!secret.ok()) return secret.status();

  out.clock = SystemClock::Get();
  const storage::RegisterOptions reg_options =
      RegisterOptionsFor(options, *std::move(secret), out.rules.get(), out.clock);
  out.id_options = reg_options.id_options;
  if (mode == OpenMode::kPrepareOnly) {
    out.reg_options = reg_options;
    return out;
  }
  absl::StatusOr<std::unique_ptr<storage::Register>> reg = storage::Register::Open(reg_options);
  if (!reg.ok()) {
    return postgres ? WithContext(reg.status(), "store", "postgres")
                    : WithContext(reg.status(), "data_dir", data_dir);
  }
  out.reg = *std::move(reg);
  out.reg_options = reg_options;
  return out;
}

namespace {

// The keeper of a register in PostgreSQL, opening it into `slot`.
std::unique_ptr<RegisterKeeper> KeepPgRegister(const DaemonOptions& options,
                                               storage::RegisterOptions reg_options,
                                               RegisterSlot* slot) {
  KeeperOptions keeper;
  keeper.open =
      [dsn = options.postgres_dsn, reg_options = std::move(reg_options)](
          KeeperOptions::LostFn on_lost) -> absl::StatusOr<std::unique_ptr<storage::Register>> {
    storage::RegisterOptions o = reg_options;
    // One attempt at the lease: a standby tries again every second.
    o.open_store = [dsn, on_lost](const storage::RegisterOptions& reg) {
      return storage::OpenPgStore(storage::PgStoreOptions{.dsn = dsn,
                                                          .sync_writes = reg.sync_writes,
                                                          .lease_wait = absl::ZeroDuration(),
                                                          .reclaim_own_lease = true,
                                                          .on_lost = on_lost});
    };
    absl::StatusOr<std::unique_ptr<storage::Register>> reg = storage::Register::Open(o);
    if (!reg.ok() && !storage::IsLeaseHeldElsewhere(reg.status())) {
      return WithContext(reg.status(), "store", "postgres");
    }
    return reg;
  };
  return std::make_unique<RegisterKeeper>(slot, std::move(keeper));
}

}  // namespace

absl::StatusOr<int> Verify(const DaemonOptions& options, std::FILE* out) {
  absl::StatusOr<OpenedRegister> opened = OpenRegister(options, OpenMode::kExistingOnly);
  if (!opened.ok()) return opened.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<storage::Register::VerifyReport> report = opened->reg->Verify();
  if (!report.ok()) return report.status();
  for (const std::string& v : report->violations) std::fprintf(out, "violation: %s\n", v.c_str());
  std::fprintf(
      out,
      "verified %s in %lld ms: %llu persons, %llu entries (each with its idempotency index), %llu "
      "ledgers (totals, crossing dates, refunds within the excess), %llu cards, %llu payouts, "
      "%llu due markers: %zu violation%s\n",
      options.store == "postgres" ? "the register in PostgreSQL" : options.data_dir.c_str(),
      static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)),
      static_cast<unsigned long long>(report->persons),
      static_cast<unsigned long long>(report->entries),
      static_cast<unsigned long long>(report->ledgers),
      static_cast<unsigned long long>(report->cards),
      static_cast<unsigned long long>(report->payouts),
      static_cast<unsigned long long>(report->due_markers), report->violations.size(),
      report->violations.size() == 1 ? "" : "s");
  std::fflush(out);
  return report->violations.empty() ? kExitOk : kExitViolations;
}

absl::Status Restore(const DaemonOptions& options) {
  const std::string& backup_dir = options.restore_from;
  const std::string& data_dir = options.data_dir;
  absl::StatusOr<std::unique_ptr<core::RulesTable>> rules = LoadRules(options.rules_file);
  if (!rules.ok()) return rules.status();
  absl::StatusOr<std::string> secret =
      LoadPseudonymKey(options.pseudonym_key_file, data_dir, KeyUse::kRestore);
  if (!secret.ok()) return secret.status();
  absl::StatusOr<storage::Register::RestoreReport> r = storage::Register::Restore(
      backup_dir,
      RegisterOptionsFor(options, *std::move(secret), rules->get(), SystemClock::Get()));
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

int WaitForStopSignal(const sigset_t& signals, absl::FunctionRef<void()> on_sighup) {
  int signo = 0;
  while (true) {
    int err = sigwait(&signals, &signo);
    if (err == 0 && signo == SIGHUP) {
      on_sighup();
      continue;
    }
    if (err == 0) break;
    if (err != EINTR) {
      log::Log(log::Level::kError, "sigwait_failed",
               absl::StrCat("sigwait failed: ", std::strerror(err)));
      break;
    }
  }
  return signo;
}

// Signals arrive only through sigwait() in this thread: the mask is set before
// any thread exists, so every thread inherits it.
absl::Status Serve(const DaemonOptions& options) {
  HoldGrpcLog();
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
  absl::StatusOr<ServerOptions> security = SecurityOptions(options);
  if (!security.ok()) return security.status();

  // With PostgreSQL the keeper opens the register, or stands by while
  // another frikortd holds its lease, and opens it again after a failover.
  const bool postgres = options.store == "postgres";
  absl::StatusOr<OpenedRegister> opened =
      OpenRegister(options, postgres ? OpenMode::kPrepareOnly : OpenMode::kCreate);
  if (!opened.ok()) return opened.status();
  const core::Clock* clock = opened->clock;
  core::RulesTable* rules = opened->rules.get();
  RegisterSlot slot(absl::UnavailableError("the register is not open"));
  std::unique_ptr<RegisterKeeper> keeper;
  if (postgres) {
    keeper = KeepPgRegister(options, opened->reg_options, &slot);
    if (absl::Status s = keeper->Start(); !s.ok()) return s;
  } else {
    slot.Swap(std::move(opened->reg));
  }
  storage::Register* reg = &slot;

  auto metrics = std::make_unique<Metrics>(reg);
  int metrics_port = 0;
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<int> port = metrics->Serve(options.metrics_listen);
    if (!port.ok()) return port.status();
    metrics_port = *port;
  }

  jobs::IssuanceJob job(reg, clock);
  job.set_observer([m = metrics.get()](const jobs::RunSummary& s) {
    m->RecordRun(s);
    LogIssuanceRun(s);
  });

  ServerOptions server_options = *std::move(security);
  server_options.lookup_years_back = options.lookup_years_back;
  server_options.id_options = opened->id_options;
  server_options.metrics = metrics.get();
  auto server = std::make_unique<FrikortServer>(server_options, reg, &job, rules, clock);
  if (absl::Status s = server->Start(); !s.ok()) {
    if (absl::StrContains(HeldGrpcError(), "Address already in use")) {
      return absl::UnavailableError(
          absl::StrCat("listen: ", options.listen, ": address already in use"));
    }
    return s;
  }
  ReleaseGrpcLog();

  jobs::Scheduler scheduler(&job, options.issuance_interval, [](const absl::Status& s) {
    log::Log(log::Level::kError, "issuance_failed",
             absl::StrCat("scheduled issuance failed: ", s.message()));
  });
  scheduler.Start();

  const std::string address = BoundAddress(options.listen, server->port());
  log::Log(log::Level::kInfo, "listening", absl::StrCat("frikortd listening on ", address),
           {{"address", address}});
  if (!options.metrics_listen.empty()) {
    const std::string url =
        absl::StrCat("http://", BoundAddress(options.metrics_listen, metrics_port), "/metrics");
    log::Log(log::Level::kInfo, "metrics", absl::StrCat("frikortd metrics on ", url),
             {{"url", url}});
  }

  const int signo = WaitForStopSignal(signals, [&server, &options] {
    ReloadAuthz(server.get(), options.authz_file);
    ReloadCitizenKeys(server.get(), options.citizen_jwks_file);
  });
  log::Log(log::Level::kInfo, "shutting_down",
           absl::StrCat(signo == SIGINT ? "SIGINT" : "SIGTERM", " received, shutting down"));
  server->Shutdown(absl::Now() + kShutdownGrace);
  server.reset();
  scheduler.Stop();
  metrics.reset();  // the endpoint reads the register: stop it first
  keeper.reset();   // closes the database after every write has completed
  slot.Swap(nullptr).reset();
  log::Log(log::Level::kInfo, "stopped", "register closed, exiting");
  return absl::OkStatus();
}

int RunDaemon(const DaemonOptions& options) {
  // Everything frikortd creates (database files, WAL, backups, the development
  // key) is private to its user: the register holds reports whose ids and
  // reasons are free text, and RocksDB would otherwise create them 0644.
  umask(077);
  if (absl::Status s = CheckDaemonOptions(options); !s.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(s.message()).c_str());
    return kExitBadFlags;
  }
  absl::StatusOr<log::Format> log_format = log::ParseFormat(options.log_format);
  if (!log_format.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(log_format.status().message()).c_str());
    return kExitBadFlags;
  }
  log::SetFormat(*log_format);
  if (!options.restore_from.empty()) {
    if (absl::Status s = Restore(options); !s.ok()) {
      log::Log(log::Level::kError, "restore_failed", s.message());
      return kExitStartupFailed;
    }
    return kExitOk;
  }
  if (options.verify) {
    absl::StatusOr<int> code = Verify(options, stdout);
    if (!code.ok()) {
      log::Log(log::Level::kError, "verify_failed",
               absl::StrCat("verify: ", code.status().message()));
      return kExitStartupFailed;
    }
    return *code;
  }
  if (absl::Status s = Serve(options); !s.ok()) {
    log::Log(log::Level::kError, "startup_failed", s.message());
    return kExitStartupFailed;
  }
  return kExitOk;
}

}  // namespace frikort::server
