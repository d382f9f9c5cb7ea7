#include "storage/copy_register.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "storage/crypto.h"
#include "storage/rocks_store.h"

namespace frikort::storage {
namespace {

constexpr absl::string_view kSecretCheckKey = "secret_check";

using Rows = std::vector<std::pair<std::string, std::string>>;

// The first table of `store` that holds a row, nullopt when all are empty.
absl::StatusOr<std::optional<Table>> FirstNonEmptyTable(StoreReader& store) {
  for (int t = 0; t < kNumTables; ++t) {
    bool found = false;
    absl::Status s =
        store.Scan(static_cast<Table>(t), {}, [&](absl::string_view, absl::string_view) {
          found = true;
          return false;
        });
    if (!s.ok()) return s;
    if (found) return static_cast<Table>(t);
  }
  return std::nullopt;
}

absl::Status CheckTargetEmpty(Store& target) {
  absl::StatusOr<std::optional<Table>> used = FirstNonEmptyTable(target);
  if (!used.ok()) return used.status();
  if (!used->has_value()) return absl::OkStatus();
  absl::StatusOr<std::optional<std::string>> check = target.Get(Table::kMeta, kSecretCheckKey);
  if (!check.ok()) return check.status();
  if (check->has_value() && **check == kCopyInProgress) {
    return absl::FailedPreconditionError(
        "the target holds an interrupted copy; empty it (drop its frikort_ tables, or the "
        "database, and create it again) and copy again");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("the target is not empty (table ", TableName(**used),
                   " holds rows); a register is copied only into an empty one"));
}

absl::Status CommitRows(Store& target, Table table, const Rows& rows) {
  if (table == Table::kLookups) return target.AppendLookups(rows);
  WriteSet w;
  auto& writes = w.tables[static_cast<int>(table)];
  writes.reserve(rows.size());
  for (const auto& [k, v] : rows) writes.push_back({k, &v});
  return target.Commit(w);
}

absl::Status PutSecretCheck(Store& target, const std::string& value) {
  const Rows rows = {{std::string(kSecretCheckKey), value}};
  return CommitRows(target, Table::kMeta, rows);
}

// Copies one table in chunks; the number of rows copied. The key check of
// kMeta is left out (the caller writes it last).
absl::StatusOr<uint64_t> CopyTable(StoreReader& source, Store& target, Table table,
                                   const CopyOptions& options) {
  uint64_t copied = 0;
  std::string start;  // "" = from the first key
  while (true) {
    Rows chunk;
    size_t bytes = 0;
    bool more = false;
    absl::Status s = source.Scan(
        table, {.prefix = "", .start = start}, [&](absl::string_view k, absl::string_view v) {
          if (chunk.size() >= options.chunk_rows || bytes >= options.chunk_bytes) {
            more = true;
            return false;
          }
          if (table == Table::kMeta && k == kSecretCheckKey) return true;
          chunk.emplace_back(k, v);
          bytes += k.size() + v.size();
          return true;
        });
    if (!s.ok()) return s;
    if (!chunk.empty()) {
      if (absl::Status c = CommitRows(target, table, chunk); !c.ok()) return c;
      copied += chunk.size();
      // The next chunk starts just after the last key copied.
      start = chunk.back().first;
      start.push_back('\0');
    }
    if (!more) return copied;
  }
}

}  // namespace

absl::StatusOr<CopyCounts> CopyStore(StoreReader& source, Store& target,
                                     absl::string_view secret_check, const CopyOptions& options) {
  if (options.chunk_rows == 0 || options.chunk_bytes == 0) {
    return absl::InvalidArgumentError("copy: chunk_rows and chunk_bytes must be > 0");
  }
  absl::StatusOr<std::optional<std::string>> check = source.Get(Table::kMeta, kSecretCheckKey);
  if (!check.ok()) return check.status();
  if (!check->has_value()) {
    return absl::FailedPreconditionError("the source holds no register (no key check)");
  }
  if (**check != secret_check) {
    return absl::FailedPreconditionError(
        "the pseudonym key does not match the one the source register was created with");
  }
  if (absl::Status s = CheckTargetEmpty(target); !s.ok()) return s;

  // From here on an interruption leaves a target marked as a copy in progress.
  if (absl::Status s = PutSecretCheck(target, std::string(kCopyInProgress)); !s.ok()) return s;
  CopyCounts counts{};
  for (int t = 0; t < kNumTables; ++t) {
    absl::StatusOr<uint64_t> n = CopyTable(source, target, static_cast<Table>(t), options);
    if (!n.ok()) return n.status();
    counts[t] = *n;
  }
  if (absl::Status s = target.SyncLookups(); !s.ok()) return s;
  if (absl::Status s = PutSecretCheck(target, **check); !s.ok()) return s;
  counts[static_cast<int>(Table::kMeta)] += 1;  // the key check
  return counts;
}

absl::StatusOr<CopyRegisterReport> CopyRegister(const RegisterOptions& source,
                                                const RegisterOptions& target,
                                                const CopyOptions& options) {
  if (!target.open_store) {
    return absl::InvalidArgumentError("copy: the target register names no store");
  }
  absl::StatusOr<Crypto> crypto = Crypto::Create(source.secret);
  if (!crypto.ok()) return crypto.status();

  absl::StatusOr<std::unique_ptr<Store>> from;
  if (source.open_store) {
    from = source.open_store(source);
  } else {
    // Opening RocksDB would create a register where there is none.
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(source.data_dir) / "CURRENT", ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("data_dir ", source.data_dir, ": holds no register"));
    }
    from = OpenRocksStore(RocksStoreOptionsFrom(source));
  }
  if (!from.ok()) return from.status();
  absl::StatusOr<std::unique_ptr<Store>> to = target.open_store(target);
  if (!to.ok()) return to.status();

  CopyRegisterReport report;
  {
    std::unique_ptr<StoreReader> snapshot = (*from)->Snapshot();
    absl::StatusOr<CopyCounts> copied = CopyStore(*snapshot, **to, crypto->SecretCheck(), options);
    if (!copied.ok()) return copied.status();
    report.copied = *copied;
  }
  from->reset();

  // The target store, already open (and holding what the store holds for
  // its writer), is handed to the register.
  RegisterOptions opened = target;
  auto handed = std::make_shared<std::unique_ptr<Store>>(*std::move(to));
  opened.open_store = [handed](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
    if (*handed == nullptr) return absl::InternalError("copy: the target store was opened twice");
    return std::move(*handed);
  };
  absl::StatusOr<std::unique_ptr<Register>> reg = Register::Open(opened);
  if (!reg.ok()) return reg.status();
  absl::StatusOr<Register::VerifyReport> verify = (*reg)->Verify();
  if (!verify.ok()) return verify.status();
  report.verify = *std::move(verify);
  return report;
}

}  // namespace frikort::storage
