// frikortd: the Frikort register server.
//
//   frikortd --listen=127.0.0.1:50051 --data_dir=./data
//
//   frikortd --listen=0.0.0.0:50051 --data_dir=/var/lib/frikort
//     --tls_cert=server.pem --tls_key=server.key --tls_client_ca=clients-ca.pem
//     --authz_file=/etc/frikort/authz.txt --pseudonym_key_file=/etc/frikort/pseudonym.key
//
// Exit status: 0 after SIGTERM/SIGINT (calls in flight finished, register
// closed), 1 when startup fails (one line on stderr saying why), 2 for a bad
// flag or argument. SIGHUP re-reads the authz file (a malformed one is refused
// with its line number and the previous table stays in force).
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
ABSL_FLAG(std::string, tls_cert, "",
          "server certificate chain (PEM) for mutual TLS; with --tls_key and --tls_client_ca");
ABSL_FLAG(std::string, tls_key, "",
          "the server certificate's private key (PEM, mode 0600) for mutual TLS");
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
  const int max_calls = absl::GetFlag(FLAGS_max_calls_per_caller);
  if (max_calls < 0 || max_calls > 1000000) {
    return absl::InvalidArgumentError("--max_calls_per_caller must be between 0 and 1000000");
  }
  absl::StatusOr<HostPort> hp = SplitListenAddress(absl::GetFlag(FLAGS_listen));
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

// SIGHUP: the authz file again, or why not. One line on stderr either way.
void ReloadAuthz(FrikortServer* server) {
  if (absl::GetFlag(FLAGS_authz_file).empty()) {
    std::fprintf(stderr,
                 "frikortd: SIGHUP: no --authz_file (development mode), nothing to "
                 "reload\n");
    return;
  }
  absl::StatusOr<size_t> n = server->ReloadAuthz();
  if (n.ok()) {
    std::fprintf(stderr, "frikortd: SIGHUP: authz file %s reloaded; client certificates: %zu\n",
                 absl::GetFlag(FLAGS_authz_file).c_str(), *n);
  } else {
    std::fprintf(stderr, "frikortd: SIGHUP: %s; the previous table stays in force\n",
                 std::string(n.status().message()).c_str());
  }
  std::fflush(stderr);
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

  if (absl::Status s = core::InitOsloTimeZone(); !s.ok()) return s;
  const std::string rules_file = absl::GetFlag(FLAGS_rules_file);
  absl::StatusOr<core::RulesTable> rules = core::RulesTable::LoadFile(rules_file);
  if (!rules.ok()) return WithContext(rules.status(), "rules_file", rules_file);

  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", data_dir, ": cannot create: ", ec.message()));
  }

  const std::string key_file = absl::GetFlag(FLAGS_pseudonym_key_file);
  absl::StatusOr<std::string> secret =
      key_file.empty() ? storage::LoadOrCreateDevSecret(data_dir) : storage::LoadSecret(key_file);
  if (!secret.ok()) {
    return key_file.empty() ? WithContext(secret.status(), "data_dir", data_dir)
                            : WithContext(secret.status(), "pseudonym_key_file", key_file);
  }

  const core::Clock* clock = core::RealClock::Get();
  storage::RegisterOptions reg_options;
  reg_options.data_dir = data_dir;
  reg_options.secret = *std::move(secret);
  reg_options.rules = &*rules;
  reg_options.clock = clock;
  reg_options.id_options.allow_synthetic = absl::GetFlag(FLAGS_allow_synthetic_ids);
  reg_options.block_cache_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_block_cache_mb)) << 20;
  reg_options.write_buffer_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_write_buffer_mb))
                                   << 20;
  absl::StatusOr<std::unique_ptr<storage::Register>> reg = storage::Register::Open(reg_options);
  if (!reg.ok()) return WithContext(reg.status(), "data_dir", data_dir);

  jobs::IssuanceJob job(reg->get(), &*rules, clock);
  job.set_observer([](const jobs::RunSummary& s) {
    std::fprintf(stderr,
                 "frikortd: issuance %s as_of %s: examined %lld, cards %lld (%lld past "
                 "deadline), payouts %lld (%lld ore), carried %lld ore\n",
                 s.run_id.c_str(), core::FormatDate(s.as_of).c_str(),
                 static_cast<long long>(s.ledgers_examined), static_cast<long long>(s.cards_issued),
                 static_cast<long long>(s.cards_past_deadline), static_cast<long long>(s.payouts),
                 static_cast<long long>(s.payout_total), static_cast<long long>(s.carried_forward));
  });

  ServerOptions server_options = *std::move(security);
  server_options.lookup_years_back = absl::GetFlag(FLAGS_lookup_years_back);
  server_options.id_options = reg_options.id_options;
  auto server = std::make_unique<FrikortServer>(server_options, reg->get(), &job, &*rules, clock);
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
    if (err == 0 && signo == SIGHUP) {
      ReloadAuthz(server.get());
      continue;
    }
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
  reg->reset();  // closes the database after every write has completed
  return absl::OkStatus();
}

}  // namespace
}  // namespace frikort::server

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the Frikort co-payment register server.\n"
      "  frikortd --listen=127.0.0.1:50051 --data_dir=./data [--issuance_interval=24h]\n"
      "  frikortd --listen=0.0.0.0:50051 --tls_cert=F --tls_key=F --tls_client_ca=F "
      "--authz_file=F ...");
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
  if (absl::Status s = frikort::server::Run(); !s.ok()) {
    std::fprintf(stderr, "frikortd: %s\n", std::string(s.message()).c_str());
    return frikort::server::kExitStartupFailed;
  }
  return 0;
}
