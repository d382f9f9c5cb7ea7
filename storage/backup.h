// Backups with RocksDB's BackupEngine, for RegisterImpl::Backup and
// Register::Restore. Internal to storage/.
#ifndef FRIKORT_STORAGE_BACKUP_H_
#define FRIKORT_STORAGE_BACKUP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/db.h"
#include "storage/register.h"

namespace frikort::storage::internal {

// The lookup log's own database, inside the data folder; its backups go to
// the folder of that name inside a backup folder.
inline constexpr char kLookupLogDir[] = "lookup-log";

// Backs up the open `db` (whose folder is `data_dir`) into `dest`, and the
// lookup log's `log_db` into dest/lookup-log first, recording `secret_check`
// (Crypto::SecretCheck, which reveals nothing of the key) so a restore can
// refuse a wrong key before it writes anything, and which lookup log backup
// goes with the register's. The caller makes sure no other backup runs at
// the same time.
absl::StatusOr<BackupInfo> CreateBackup(rocksdb::DB* db, rocksdb::DB* log_db,
                                        const std::string& data_dir, const std::string& dest,
                                        absl::string_view secret_check);

}  // namespace frikort::storage::internal

#endif  // FRIKORT_STORAGE_BACKUP_H_
