// Moving a register to another store: every table and the lookup log of one
// store copied into an empty other (RocksDB into PostgreSQL), over the Store
// seam only, in chunked commits so memory stays bounded by one chunk.
//
// An interrupted copy is not resumed: the first commit into the target marks
// it as a copy in progress (its key check holds kCopyInProgress, so neither a
// register nor a second copy opens it), and only the last commit writes the
// real key check. A second copy into such a target is refused, saying how to
// start over (empty the target).
//
// Errors: FailedPrecondition for a source that is not a register or was
// created with another key, and for a target that is not empty; the stores'
// own errors (Unavailable, DataLoss) otherwise. Messages name tables and
// counts, never keys.
#ifndef FRIKORT_STORAGE_COPY_REGISTER_H_
#define FRIKORT_STORAGE_COPY_REGISTER_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/register.h"
#include "storage/store.h"

namespace frikort::storage {

// The key check a target holds while a copy into it is under way.
inline constexpr absl::string_view kCopyInProgress = "copy in progress";

struct CopyOptions {
  // A chunk is committed when it holds this many rows or bytes.
  size_t chunk_rows = 5000;
  size_t chunk_bytes = size_t{8} << 20;
};

// Rows copied per table (Table::kLookups: the lookup log's records).
using CopyCounts = std::array<uint64_t, kNumTables>;

// Copies every row of `source` (read through one consistent reader) into the
// empty `target`. `secret_check` is the check value of the key the caller
// holds (Crypto::SecretCheck): the source must hold the same one.
absl::StatusOr<CopyCounts> CopyStore(StoreReader& source, Store& target,
                                     absl::string_view secret_check,
                                     const CopyOptions& options = {});

struct CopyRegisterReport {
  CopyCounts copied{};
  Register::VerifyReport verify;  // of the target, opened as a register after the copy
};

// Opens the store of `source` (RocksDB in source.data_dir, which must hold a
// register, unless source.open_store is set) and the store of `target`
// (target.open_store), copies with CopyStore under source.secret, then opens
// the target as a register (its migrations run) and verifies it.
absl::StatusOr<CopyRegisterReport> CopyRegister(const RegisterOptions& source,
                                                const RegisterOptions& target,
                                                const CopyOptions& options = {});

}  // namespace frikort::storage

#endif  // FRIKORT_STORAGE_COPY_REGISTER_H_
