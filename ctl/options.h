// What every frikortctl command shares: the exit codes, the options taken from
// the command line, and the per-call pieces (a call's deadline, a failed call
// as one line).
//
// Exit codes of frikortctl (see README "frikortctl"):
//   0  done;
//   1  the server refused or failed (e.g. a bad person id, unreachable), or a
//      file could not be read;
//   2  bad command line (unknown command or flag, missing or extra argument);
//   3  import finished, but some rows were rejected (each one is listed).
#ifndef FRIKORT_CTL_OPTIONS_H_
#define FRIKORT_CTL_OPTIONS_H_

#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace frikort::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRejectedRows = 3;

struct Options {
  std::string date;              // lookup
  std::string category;          // lookup
  int year = 0;                  // ledger, cards, payouts
  std::string as_of;             // issue
  bool dry_run = false;          // issue
  std::string run;               // payouts
  std::string format = "table";  // cards, payouts
  std::string dest;              // backup
  std::string in_force_on;       // providers list
  int batch_size = 1000;         // import
  // 0: 30 s for a single call; none for import, issue and backup.
  absl::Duration timeout = absl::ZeroDuration();
  // Whether to draw the import progress bar (on a terminal).
  bool progress = false;
  // The command-specific flags given on the command line, by name, to refuse
  // one that does not apply.
  std::set<std::string> given;
};

// A call's context: the deadline is options.timeout, or when that is 0, 30 s
// for a single call and none for a `long_running` one.
// Loads Europe/Oslo from tzdata and hands it to core (dates in CSV files and
// tables are Oslo dates). Call once before any command.
absl::Status UseOsloTimeZone();

std::unique_ptr<grpc::ClientContext> CallContext(const Options& options, bool long_running);

// "`command`: message (CODE)", on one line whatever the server sent.
std::string CallError(absl::string_view command, const grpc::Status& s);

// `text` without surrounding blanks, line breaks inside turned into spaces.
std::string OneLine(absl::string_view text);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_OPTIONS_H_
