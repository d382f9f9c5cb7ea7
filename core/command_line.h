// Command-line checks shared by frikortd and frikortctl.
#ifndef FRIKORT_CORE_COMMAND_LINE_H_
#define FRIKORT_CORE_COMMAND_LINE_H_

#include <string>

namespace frikort::core {

// Abseil's flag parser exits with status 1 on a bad flag, and the tools
// promise their own code and one line. So the arguments are checked first with
// Abseil's own flag registry and value parsers, and only a command line that
// passes reaches absl::ParseCommandLine. Returns the error, or "" when Abseil
// should parse (and --help etc. handle). With `allow_positional`, arguments
// that are not flags are left for the caller; without, they are an error.
std::string PrecheckFlags(int argc, char** argv, bool allow_positional);

}  // namespace frikort::core

#endif  // FRIKORT_CORE_COMMAND_LINE_H_
