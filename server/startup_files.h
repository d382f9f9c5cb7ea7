// The files frikortd reads at startup, each checked before it is used: TLS
// material named by a flag (a private key must be mode 0600 or stricter), the
// rules table, and the pseudonym key (given, or development mode's in the data
// folder). This is the edge where files are read; core/ and storage/ get what
// was read.
//
// Contract: plain functions, no state; safe from any thread. Errors are
// absl::Status whose message names the flag and the path and says what is
// wrong; they never hold a file's contents.
#ifndef FRIKORT_SERVER_STARTUP_FILES_H_
#define FRIKORT_SERVER_STARTUP_FILES_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/rules.h"

namespace frikort::server {

// The contents of the file the flag `flag` names at `path` ("" when `path` is
// empty). FailedPrecondition when it is missing, not a regular file or cannot
// be read, and with `private_key` when group or others have any access to it
// (the message says the mode and "chmod 600").
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path,
                                         bool private_key);

// `status` with its message naming the flag `what` and its value `path`,
// without saying either twice.
absl::Status WithContext(const absl::Status& status, absl::string_view what,
                         absl::string_view path);

// Loads the Oslo time zone and parses the rules table in `rules_file`. Errors
// name "rules_file", the path and (for a malformed table) the line.
absl::StatusOr<std::unique_ptr<core::RulesTable>> LoadRules(const std::string& rules_file);

// What the pseudonym key is wanted for; it decides where the key may come from
// when no key file is given (development mode).
enum class KeyUse {
  kServe,    // <data_dir>/pseudonym.key, created on first use
  kVerify,   // <data_dir>/pseudonym.key, which must exist
  kRestore,  // <data_dir>/pseudonym.key, copied there by the operator beforehand
};

// The pseudonym secret: from `key_file` when given (at least 32 bytes, mode
// 0600), else development mode's key in `data_dir` as `use` says.
// FailedPrecondition / NotFound naming pseudonym_key_file or data_dir and the
// path; for a restore without any key, what to do about it.
absl::StatusOr<std::string> LoadPseudonymKey(const std::string& key_file,
                                             const std::string& data_dir, KeyUse use);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_STARTUP_FILES_H_
