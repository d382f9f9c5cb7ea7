// The operator's pseudonym secret: loading, and creating one in development.
#ifndef FRIKORT_STORAGE_SECRET_H_
#define FRIKORT_STORAGE_SECRET_H_

#include <string>

#include "absl/status/statusor.h"

namespace frikort::storage {

inline constexpr size_t kMinSecretBytes = 32;

// Reads the secret from `key_file`. The file must hold at least 32 bytes
// (surrounding whitespace is ignored: a hex or base64 line is fine) and must
// not be readable or writable by group or others (FailedPrecondition
// otherwise, naming the path and the mode). NotFound if it does not exist.
absl::StatusOr<std::string> LoadSecret(const std::string& key_file);

// Development mode: `<data_dir>/pseudonym.key`, created with 32 random bytes
// (hex, mode 0600) on first use and reused after.
absl::StatusOr<std::string> LoadOrCreateDevSecret(const std::string& data_dir);

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_SECRET_H_
