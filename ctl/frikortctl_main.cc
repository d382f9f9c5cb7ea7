// frikortctl: the operators' command line for frikortd.
//
//   frikortctl --server=127.0.0.1:50051 import reports.csv
//   frikortctl lookup 01016012345 --date=2025-03-01
//   frikortctl payouts --year=2025 --format=csv > payouts.csv
//
// Exit status: see ctl/options.h (0 done, 1 refused or failed, 2 bad command
// line, 3 import finished with rejected rows).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/command_line.h"
#include "ctl/commands.h"
#include "ctl/connect.h"
#include "ctl/options.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "frikortd's address, HOST:PORT");
ABSL_FLAG(std::string, tls_ca, "",
          "CA bundle (PEM) that signs the server's certificate; turns TLS on");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (PEM) for mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "the client certificate's private key (PEM)");
ABSL_FLAG(std::string, tls_server_name, "",
          "name expected in the server's certificate when it differs from the host in --server");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "deadline per call; 0 = 30s for a single call, none for import, issue and backup");
ABSL_FLAG(std::string, date, "", "lookup: the day asked about, YYYY-MM-DD (default today)");
ABSL_FLAG(std::string, category, "", "lookup: a service category, e.g. PHYSICIAN (default all)");
ABSL_FLAG(int, year, 0, "ledger, cards, payouts: the year");
ABSL_FLAG(std::string, as_of, "", "issue: the decision date, YYYY-MM-DD (default today)");
ABSL_FLAG(bool, dry_run, false, "issue: compute the run's summary and write nothing");
ABSL_FLAG(std::string, run, "", "payouts: a run id, e.g. run-000042");
ABSL_FLAG(std::string, format, "table", "cards, payouts: table or csv");
ABSL_FLAG(std::string, dest, "", "backup: absolute folder on the server's host");
ABSL_FLAG(std::string, in_force_on, "",
          "providers list: only providers with an agreement in force that day, YYYY-MM-DD");
ABSL_FLAG(int, batch_size, 1000, "import: co-payments per stream message (1-10000)");

namespace {

// The command-specific flags (the rest apply to every command).
constexpr const char* kCommandFlags[] = {"date", "category", "year", "as_of",      "dry_run",
                                         "run",  "format",   "dest", "batch_size", "in_force_on"};

// The issue spells some flags with hyphens (--as-of, --dry-run); Abseil's
// names cannot hold one, so a flag's name is rewritten before parsing.
void UnhyphenateFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(argc);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 2 && arg[0] == '-') {
      const size_t start = arg[1] == '-' ? 2 : 1;
      const size_t end = std::min(arg.find('='), arg.size());
      std::string name = absl::StrReplaceAll(arg.substr(start, end - start), {{"-", "_"}});
      arg = absl::StrCat(arg.substr(0, start), name, arg.substr(end));
      storage->push_back(std::move(arg));
      argv[i] = storage->back().data();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      absl::StrCat("the Frikort operators' command line.\n", frikort::ctl::kUsage));
  std::vector<std::string> rewritten;
  UnhyphenateFlagNames(argc, argv, &rewritten);
  if (std::string error = frikort::core::PrecheckFlags(argc, argv, /*allow_positional=*/true);
      !error.empty()) {
    std::fprintf(stderr, "frikortctl: %s (see --help)\n", error.c_str());
    return frikort::ctl::kExitUsage;
  }
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());

  if (absl::Status s = frikort::ctl::UseOsloTimeZone(); !s.ok()) {
    std::fprintf(stderr, "frikortctl: %s\n", std::string(s.message()).c_str());
    return frikort::ctl::kExitFailed;
  }
  frikort::ctl::Options options;
  options.date = absl::GetFlag(FLAGS_date);
  options.category = absl::GetFlag(FLAGS_category);
  options.year = absl::GetFlag(FLAGS_year);
  options.as_of = absl::GetFlag(FLAGS_as_of);
  options.dry_run = absl::GetFlag(FLAGS_dry_run);
  options.run = absl::GetFlag(FLAGS_run);
  options.format = absl::GetFlag(FLAGS_format);
  options.dest = absl::GetFlag(FLAGS_dest);
  options.in_force_on = absl::GetFlag(FLAGS_in_force_on);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.progress = isatty(STDERR_FILENO) == 1;
  for (const char* name : kCommandFlags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    // (IsSpecifiedOnCommandLine is private in this Abseil: a flag given
    // with its default value counts as not given, which is harmless.)
    if (flag != nullptr && flag->CurrentValue() != flag->DefaultValue()) {
      options.given.insert(name);
    }
  }
  if (absl::Status s = frikort::ctl::CheckUsage(args, options); !s.ok()) {
    std::fprintf(stderr, "frikortctl: %s (see --help)\n", std::string(s.message()).c_str());
    return frikort::ctl::kExitUsage;
  }

  frikort::ctl::TlsFiles tls;
  tls.ca = absl::GetFlag(FLAGS_tls_ca);
  tls.cert = absl::GetFlag(FLAGS_tls_cert);
  tls.key = absl::GetFlag(FLAGS_tls_key);
  tls.server_name = absl::GetFlag(FLAGS_tls_server_name);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      frikort::ctl::Connect(absl::GetFlag(FLAGS_server), tls);
  if (!channel.ok()) {
    std::fprintf(stderr, "frikortctl: %s\n", std::string(channel.status().message()).c_str());
    return absl::IsInvalidArgument(channel.status()) ? frikort::ctl::kExitUsage
                                                     : frikort::ctl::kExitFailed;
  }
  return frikort::ctl::Run(args, options, *channel, std::cout, std::cerr, std::cerr);
}
