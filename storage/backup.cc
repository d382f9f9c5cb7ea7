#include "storage/backup.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/backup_engine.h"
#include "storage/crypto.h"

namespace frikort::storage {
namespace {

namespace fs = std::filesystem;

// The application metadata stored with every backup: a format line and the
// check value of the pseudonym key, hex.
// Format 2: the register's lookup log is backed up beside it (its backup id
// on a `lookup_log_backup` line); frikortd builds that read only format 1
// refuse it rather than restore the register without its log.
constexpr absl::string_view kMetadataFormat = "frikort-backup 1";
constexpr absl::string_view kMetadataFormatWithLog = "frikort-backup 2";
constexpr absl::string_view kCheckPrefix = "secret_check ";
constexpr absl::string_view kLogBackupPrefix = "lookup_log_backup ";
// The one file a data folder may hold before a restore (development mode's key).
constexpr char kDevKeyName[] = "pseudonym.key";

// `log_backup`: the lookup log's backup taken with this one (0: none).
std::string Metadata(absl::string_view secret_check, rocksdb::BackupID log_backup) {
  std::string out = absl::StrCat(log_backup != 0 ? kMetadataFormatWithLog : kMetadataFormat, "\n",
                                 kCheckPrefix, absl::BytesToHexString(secret_check), "\n");
  if (log_backup != 0) absl::StrAppend(&out, kLogBackupPrefix, log_backup, "\n");
  return out;
}

// The value of the line starting with `prefix` in a backup's metadata; ""
// if it has none.
std::string FromMetadata(absl::string_view metadata, absl::string_view prefix) {
  std::vector<absl::string_view> lines = absl::StrSplit(metadata, '\n');
  if (lines.empty() || (lines[0] != kMetadataFormat && lines[0] != kMetadataFormatWithLog)) {
    return "";
  }
  for (absl::string_view line : lines) {
    if (absl::ConsumePrefix(&line, prefix)) return std::string(line);
  }
  return "";
}

// The key check value recorded in a backup's metadata; "" if it has none.
std::string CheckFromMetadata(absl::string_view metadata) {
  return absl::HexStringToBytes(FromMetadata(metadata, kCheckPrefix));
}

absl::Status FromRocksIo(const rocksdb::Status& s, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", s.ToString()));
}

// `path` made absolute and free of "." and ".." (and of symlinks, as far as
// it exists).
fs::path Normalized(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::path(path).lexically_normal() : p;
}

bool IsInside(const fs::path& inner, const fs::path& outer) {
  auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return o == outer.end();
}

// A destination in a message: operator input, so quoted only when it is
// short and printable, else described by its length.
std::string DescribeDest(absl::string_view dest) {
  constexpr size_t kMaxShown = 256;
  const bool printable = std::all_of(dest.begin(), dest.end(),
                                     [](char c) { return static_cast<unsigned char>(c) >= 0x20; });
  if (printable && dest.size() <= kMaxShown) return absl::StrCat("'", dest, "'");
  return absl::StrCat("a path of ", dest.size(), " bytes");
}

absl::Status BadDest(absl::string_view dest, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("dest: ", DescribeDest(dest), " ", why));
}

// Refuses, before anything is written, a destination that is no folder the
// backup could live in: not absolute, too long or holding a NUL byte, in the
// kernel's or the devices' file systems, a file (or below one), or inside or
// around the data folder.
absl::Status CheckBackupDest(const std::string& dest, const std::string& data_dir) {
  if (dest.find('\0') != std::string::npos) return BadDest(dest, "holds a NUL byte");
  if (dest.size() > 4096) return BadDest(dest, "is longer than 4096 bytes");
  if (dest.empty() || dest[0] != '/') {
    return BadDest(dest, "is not an absolute path on the server's host");
  }
  const fs::path target = Normalized(dest);
  for (const char* system : {"/proc", "/sys", "/dev"}) {
    if (IsInside(target, fs::path(system))) {
      return BadDest(dest, absl::StrCat("is in ", system, "; back up to a folder on a disk"));
    }
  }
  const fs::path data = Normalized(data_dir);
  if (IsInside(target, data)) {
    return BadDest(dest, "is inside the data folder; back up to another folder");
  }
  if (IsInside(data, target)) {
    return BadDest(dest, "holds the data folder; back up to a folder outside it");
  }
  // The destination, or the nearest folder above it that exists, must be a
  // folder: a file (such as /dev/null) is refused before a folder is made.
  std::error_code ec;
  for (fs::path p = target; !p.empty(); p = p.parent_path()) {
    const fs::file_status st = fs::status(p, ec);
    if (st.type() == fs::file_type::none) break;  // unreadable: creating it will say why
    if (st.type() == fs::file_type::not_found) {
      if (p == p.parent_path()) break;
      continue;
    }
    if (st.type() != fs::file_type::directory) {
      return BadDest(dest, p == target ? "exists and is not a folder"
                                       : "lies below a path that is not a folder");
    }
    break;
  }
  return absl::OkStatus();
}

BackupInfo ToInfo(const rocksdb::BackupInfo& in, const std::string& dest, int count) {
  BackupInfo out;
  out.backup_id = in.backup_id;
  out.dest = dest;
  out.created = absl::FromUnixSeconds(in.timestamp);
  out.size_bytes = in.size;
  out.files = in.number_files;
  out.backups_in_dest = count;
  return out;
}

// A data folder a restore may write into: missing, or holding nothing but
// development mode's key file.
absl::Status CheckRestoreTarget(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::exists(data_dir, ec)) return absl::OkStatus();
  if (!fs::is_directory(data_dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", data_dir, " is not a folder; restore into a new folder"));
  }
  for (const fs::directory_entry& e : fs::directory_iterator(data_dir, ec)) {
    if (e.path().filename().string() != kDevKeyName) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data_dir ", data_dir, " is not empty (it holds ", e.path().filename().string(),
          "); restore only into a new folder, never over a register"));
    }
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", data_dir, ": cannot list: ", ec.message()));
  }
  return absl::OkStatus();
}

// The lookup log backup that the register's backup `info` names, checked
// (every file there, of the recorded size) before anything is restored. No
// engine for backups made before the log had a database of its own.
struct LookupLogBackup {
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine;
  rocksdb::BackupID id = 0;
  std::string folder;
};

absl::StatusOr<LookupLogBackup> CheckedLookupLogBackup(const std::string& backup_dir,
                                                       const rocksdb::BackupInfo& info) {
  LookupLogBackup out;
  const std::string id_text = FromMetadata(info.app_metadata, kLogBackupPrefix);
  const bool with_log = absl::StartsWith(info.app_metadata, kMetadataFormatWithLog);
  if (id_text.empty() && !with_log) return out;
  if (!absl::SimpleAtoi(id_text, &out.id) || out.id == 0) {
    return absl::DataLossError(absl::StrCat("restore_from ", backup_dir, ": backup ",
                                            info.backup_id,
                                            " names no readable lookup log backup. Nothing was "
                                            "written"));
  }
  out.folder = (fs::path(backup_dir) / internal::kLookupLogDir).string();
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::BackupEngineOptions(out.folder), rocksdb::Env::Default(), &raw);
  out.engine.reset(raw);
  if (s.ok()) s = out.engine->VerifyBackup(out.id);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("restore_from ", backup_dir, ": the lookup log backup ",
                                            out.id, " in ", out.folder, " that backup ",
                                            info.backup_id, " needs is missing or damaged (",
                                            s.ToString(), "). Nothing was written"));
  }
  return out;
}

// Restores the checked lookup log backup into data_dir/lookup-log.
absl::Status RestoreLookupLog(const LookupLogBackup& log, const std::string& data_dir) {
  if (log.engine == nullptr) return absl::OkStatus();
  const std::string target = (fs::path(data_dir) / internal::kLookupLogDir).string();
  rocksdb::IOStatus s =
      log.engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), log.id, target, target);
  if (!s.ok()) {
    return FromRocksIo(s, absl::StrCat("restoring lookup log backup ", log.id, " from ", log.folder,
                                       " into ", target, " failed"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {

namespace {

// One database backed up into the engine folder `folder` (created if
// missing), verified, with `metadata`.
absl::StatusOr<rocksdb::BackupInfo> BackupInto(rocksdb::DB* db, const fs::path& folder,
                                               const std::string& metadata, int* backups) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("dest: cannot create ", folder.string(), ": ", ec.message()));
  }
  rocksdb::BackupEngineOptions options(folder.string());
  options.sync = true;
  options.max_background_operations = 1;
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(options, rocksdb::Env::Default(), &raw);
  if (!s.ok())
    return FromRocksIo(s, absl::StrCat("dest: cannot open backups in ", folder.string()));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);

  // Without a flush the engine copies the live WAL with the table files: one
  // consistent point across all column families, with nothing forced to disk
  // that the write path has not already made durable.
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = false;
  create.decrease_background_thread_cpu_priority = true;
  create.background_thread_cpu_priority = rocksdb::CpuPriority::kLow;
  rocksdb::BackupID id = 0;
  s = engine->CreateNewBackupWithMetadata(create, db, metadata, &id);
  if (!s.ok()) return FromRocksIo(s, absl::StrCat("backup into ", folder.string(), " failed"));
  s = engine->VerifyBackup(id);
  if (!s.ok()) {
    return FromRocksIo(s, absl::StrCat("backup ", id, " in ", folder.string(), " is damaged"));
  }
  rocksdb::BackupInfo info;
  rocksdb::Status gs = engine->GetBackupInfo(id, &info);
  if (!gs.ok()) return FromRocksIo(gs, absl::StrCat("backup ", id, " in ", folder.string()));
  std::vector<rocksdb::BackupInfo> all;
  engine->GetBackupInfo(&all);
  *backups = static_cast<int>(all.size());
  return info;
}

}  // namespace

absl::StatusOr<BackupInfo> CreateBackup(rocksdb::DB* db, rocksdb::DB* log_db,
                                        const std::string& data_dir, const std::string& dest,
                                        absl::string_view secret_check) {
  if (absl::Status s = CheckBackupDest(dest, data_dir); !s.ok()) return s;
  const fs::path target = Normalized(dest);
  // The lookup log first: the register's backup names it, so a restore
  // never pairs a register with a lookup log backup that did not complete.
  int log_backups = 0;
  absl::StatusOr<rocksdb::BackupInfo> log =
      BackupInto(log_db, target / kLookupLogDir, Metadata(secret_check, 0), &log_backups);
  if (!log.ok()) return log.status();
  int backups = 0;
  absl::StatusOr<rocksdb::BackupInfo> main =
      BackupInto(db, target, Metadata(secret_check, log->backup_id), &backups);
  if (!main.ok()) return main.status();
  BackupInfo out = ToInfo(*main, target.string(), backups);
  out.size_bytes += log->size;
  out.files += log->number_files;
  return out;
}

}  // namespace internal

absl::StatusOr<Register::RestoreReport> Register::Restore(const std::string& backup_dir,
                                                          const RegisterOptions& options) {
  if (options.rules == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("register options: rules and clock are required");
  }
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir: must not be empty");
  absl::StatusOr<Crypto> crypto = Crypto::Create(options.secret);
  if (!crypto.ok()) return crypto.status();
  std::error_code ec;
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("restore_from ", backup_dir, ": no such folder"));
  }
  if (IsInside(Normalized(options.data_dir), Normalized(backup_dir))) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_dir ", options.data_dir, " is inside the backup folder ", backup_dir));
  }

  // BackupEngine keeps its index in meta/; without it the folder was never
  // backed up into.
  if (!fs::is_directory(fs::path(backup_dir) / "meta", ec)) {
    return absl::NotFoundError(absl::StrCat("restore_from ", backup_dir, " holds no backup"));
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::BackupEngineOptions(backup_dir), rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocksIo(s, absl::StrCat("restore_from ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  rocksdb::BackupInfo info;
  rocksdb::Status gs = engine->GetLatestBackupInfo(&info);
  if (gs.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("restore_from ", backup_dir, " holds no backup"));
  }
  if (!gs.ok()) return FromRocksIo(gs, absl::StrCat("restore_from ", backup_dir));
  std::vector<rocksdb::BackupInfo> all;
  engine->GetBackupInfo(&all);

  const std::string check = CheckFromMetadata(info.app_metadata);
  if (check.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore_from ", backup_dir, ": backup ", info.backup_id,
                     " was not made by frikortd (its metadata has no pseudonym key check)"));
  }
  if (check != crypto->SecretCheck()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the pseudonym key does not match the one of the register backed up in ", backup_dir,
        " (backup ", info.backup_id,
        "); restore needs the key that register was created with. Nothing was written"));
  }
  if (absl::Status t = CheckRestoreTarget(options.data_dir); !t.ok()) return t;
  absl::StatusOr<LookupLogBackup> log_backup = CheckedLookupLogBackup(backup_dir, info);
  if (!log_backup.ok()) return log_backup.status();
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", options.data_dir, ": cannot create: ", ec.message()));
  }
  // The engine empties the folder it restores into: development mode's key
  // waits beside it meanwhile.
  const fs::path key = fs::path(options.data_dir) / kDevKeyName;
  const fs::path key_aside = fs::path(options.data_dir).concat(".restoring.key");
  const bool has_key = fs::exists(key, ec);
  if (has_key) {
    fs::rename(key, key_aside, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot move ", key.string(), " aside during the restore: ", ec.message()));
    }
  }
  s = engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), info.backup_id, options.data_dir,
                                  options.data_dir);
  if (has_key) {
    fs::rename(key_aside, key, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot move ", key_aside.string(), " back to ", key.string(), ": ", ec.message()));
    }
  }
  if (!s.ok()) {
    return FromRocksIo(s, absl::StrCat("restoring backup ", info.backup_id, " from ", backup_dir,
                                       " into ", options.data_dir, " failed"));
  }
  // The lookup log backed up with it (none in backups made before the log had
  // a database of its own: its records are then in the register's backup).
  if (absl::Status restored = RestoreLookupLog(*log_backup, options.data_dir); !restored.ok()) {
    return restored;
  }

  absl::StatusOr<std::unique_ptr<Register>> reg = Open(options);
  if (!reg.ok()) return reg.status();
  absl::StatusOr<VerifyReport> verify = (*reg)->Verify();
  if (!verify.ok()) return verify.status();
  RestoreReport report;
  report.backup = ToInfo(info, backup_dir, static_cast<int>(all.size()));
  report.verify = *std::move(verify);
  return report;
}

}  // namespace frikort::storage
