// frikortctl's commands: the usage check of a command line and running a
// command over a gRPC channel (import, lookup, ledger, reserve, unreserve,
// issue, cards, payouts, backup, health).
//
// Contract: Run() checks the usage first (exit 2), then makes the calls;
// results go to `out`, the import progress bar to `progress`, a failure as
// one line starting "frikortctl: " to `err`. Returns an exit code of
// ctl/options.h. Listings are fetched page by page until the last.
#ifndef FRIKORT_CTL_COMMANDS_H_
#define FRIKORT_CTL_COMMANDS_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ctl/options.h"
#include "grpcpp/channel.h"

namespace frikort::ctl {

// The commands' one-line usage, for --help.
extern const char kUsage[];

// Runs `args` (command and its operands) against `channel`. Returns the exit
// code.
int Run(const std::vector<std::string>& args, const Options& options,
        const std::shared_ptr<grpc::Channel>& channel, std::ostream& out, std::ostream& progress,
        std::ostream& err);

// The usage check alone (no server needed): OK, or InvalidArgument with the
// line to print.
absl::Status CheckUsage(const std::vector<std::string>& args, const Options& options);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_COMMANDS_H_
