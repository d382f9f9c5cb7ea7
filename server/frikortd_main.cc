// frikortd: the Frikort register server.
//
//   frikortd --listen=127.0.0.1:50051 --data_dir=./data
//
//   frikortd --verify --data_dir=./data
//
// Exit status: 0 after SIGTERM/SIGINT (calls in flight finished, register
// closed), 1 when startup fails (one line on stderr saying why), 2 for a bad
// flag or argument. With --verify: 0 when every invariant holds, 3 when a
// violation was found, 1 when the register could not be walked.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
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
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "grpc/support/log.h"
#include "jobs/issuance.h"
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
ABSL_FLAG(int64_t, block_cache_mb, 64, "RocksDB block cache size, MiB");
ABSL_FLAG(int64_t, write_buffer_mb, 32, "RocksDB write buffer size, MiB");
ABSL_FLAG(bool, verify, false,
          "walk the register in --data_dir, check every invariant, print what was checked and "
          "every violation, and exit (0 = clean, 3 = violations); frikortd must not be running");
ABSL_FLAG(std::string, tls_cert, "", "server certificate (PEM) for mutual TLS (not supported yet)");
ABSL_FLAG(std::string, tls_key, "", "server private key (PEM) for mutual TLS (not supported yet)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA bundle (PEM) that signs client certificates (not supported yet)");

namespace frikort::server {
namespace {

constexpr int kExitStartupFailed = 1;
constexpr int kExitBadFlags = 2;
constexpr int kExitViolations = 3;
constexpr absl::Duration kShutdownGrace = absl::Seconds(5);

// Abseil's flag parser exits with status 1 on a bad flag; we promise 2. So the
// arguments are checked first with Abseil's own flag registry and value
// parsers, and only a command line that passes reaches ParseCommandLine.
// Returns the error, or "" when Abseil should parse (and --help etc. handle).
std::string PrecheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") return "";
    if (arg.size() < 2 || arg[0] != '-') return absl::StrCat("unexpected argument '", arg, "'");
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    absl::string_view name = arg;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    // Abseil's own flags (usage, flag files, environment) are left to Abseil.
    for (absl::string_view own :
         {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch", "version",
          "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
      if (name == own) return "";
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && !flag->IsOfType<bool>()) flag = nullptr;
      negated = flag != nullptr;
    }
    if (flag == nullptr) return absl::StrCat("unknown flag --", name);
    if (negated) {
      if (has_value) return absl::StrCat("--", name, " takes no value");
      continue;
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) continue;
      if (i + 1 >= argc) return absl::StrCat("missing value for flag --", name);
      value = argv[++i];
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return error.empty() ? absl::StrCat("illegal value '", value, "' for flag --", name) : error;
    }
  }
  return "";
}

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
  std::fprintf(stderr, "frikortd: grpc: %s\n", args->message);
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
  absl::StatusOr<HostPort> hp = SplitListenAddress(absl::GetFlag(FLAGS_listen));
  if (!hp.ok()) return hp.status();
  return absl::OkStatus();
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
  if (absl::Status s = core::InitOsloTimeZone(); !s.ok()) return s;
  OpenRegister out;
  const std::string rules_file = absl::GetFlag(FLAGS_rules_file);
  absl::StatusOr<core::RulesTable> rules = core::RulesTable::LoadFile(rules_file);
  if (!rules.ok()) return WithContext(rules.status(), "rules_file", rules_file);
  out.rules = std::make_unique<core::RulesTable>(*std::move(rules));

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

// The daemon proper. Signals arrive only through sigwait() in this thread: the
// mask is set before any thread exists, so every thread inherits it.
absl::Status Run() {
  gpr_set_log_function(GrpcLog);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (int err = pthread_sigmask(SIG_BLOCK, &signals, nullptr); err != 0) {
    return absl::InternalError(absl::StrCat("cannot block signals: ", std::strerror(err)));
  }

  if (!absl::GetFlag(FLAGS_tls_cert).empty() || !absl::GetFlag(FLAGS_tls_key).empty() ||
      !absl::GetFlag(FLAGS_tls_client_ca).empty()) {
    return absl::UnimplementedError(
        "TLS is not supported yet: run without --tls_cert, --tls_key and --tls_client_ca, "
        "on a loopback address");
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (absl::Status s = CheckListenAddress(listen); !s.ok()) return s;

  absl::StatusOr<OpenRegister> opened = Open(/*existing_only=*/false);
  if (!opened.ok()) return opened.status();
  const core::Clock* clock = opened->clock;
  core::RulesTable* rules = opened->rules.get();
  storage::Register* reg = opened->reg.get();

  jobs::IssuanceJob job(reg, rules, clock);
  job.set_observer([](const jobs::RunSummary& s) {
    std::fprintf(stderr,
                 "frikortd: issuance %s as_of %s: examined %lld, cards %lld (%lld past "
                 "deadline), payouts %lld (%lld ore), carried %lld ore\n",
                 s.run_id.c_str(), core::FormatDate(s.as_of).c_str(),
                 static_cast<long long>(s.ledgers_examined), static_cast<long long>(s.cards_issued),
                 static_cast<long long>(s.cards_past_deadline), static_cast<long long>(s.payouts),
                 static_cast<long long>(s.payout_total), static_cast<long long>(s.carried_forward));
  });

  ServerOptions server_options;
  server_options.listen_address = listen;
  server_options.lookup_years_back = absl::GetFlag(FLAGS_lookup_years_back);
  server_options.id_options = opened->id_options;
  auto server = std::make_unique<FrikortServer>(server_options, reg, &job, rules, clock);
  if (absl::Status s = server->Start(); !s.ok()) {
    if (absl::StrContains(HeldGrpcError(), "Address already in use")) {
      return absl::UnavailableError(absl::StrCat("listen: ", listen, ": address already in use"));
    }
    return s;
  }
  ReleaseGrpcLog();

  jobs::Scheduler scheduler(&job, absl::GetFlag(FLAGS_issuance_interval));
  scheduler.Start();

  absl::StatusOr<HostPort> hp = SplitListenAddress(listen);
  std::fprintf(stderr, "frikortd listening on %s\n",
               DisplayAddress(hp.ok() ? hp->host : listen, server->port()).c_str());
  std::fflush(stderr);

  int signo = 0;
  while (true) {
    int err = sigwait(&signals, &signo);
    if (err == 0) break;
    if (err != EINTR) {
      std::fprintf(stderr, "frikortd: sigwait failed: %s\n", std::strerror(err));
      break;
    }
  }
  std::fprintf(stderr, "frikortd: %s received, shutting down\n",
               signo == SIGINT ? "SIGINT" : "SIGTERM");
  server->Shutdown(absl::Now() + kShutdownGrace);
  server.reset();
  scheduler.Stop();
  opened->reg.reset();  // closes the database after every write has completed
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
      "  frikortd --listen=127.0.0.1:50051 --data_dir=./data [--issuance_interval=24h]");
  if (std::string error = frikort::server::PrecheckFlags(argc, argv); !error.empty()) {
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
  if (absl::GetFlag(FLAGS_verify)) {
    absl::StatusOr<int> code = frikort::server::Verify();
    if (!code.ok()) {
      std::fprintf(stderr, "frikortd: verify: %s\n", std::string(code.status().message()).c_str());
      return frikort::server::kExitStartupFailed;
    }
    return *code;
  }
  if (absl::Status s = frikort::server::Run(); !s.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(s.message()).c_str());
    return frikort::server::kExitStartupFailed;
  }
  return 0;
}
