#include "server/startup_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/calendar.h"
#include "storage/secret.h"

namespace frikort::server {

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path,
                                         bool private_key) {
  if (path.empty()) return std::string();
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::is_regular_file(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " ", path, ": ", ec ? ec.message() : std::string("not a regular file")));
  }
  using std::filesystem::perms;
  const perms shared = perms::group_all | perms::others_all;
  if (private_key && (st.permissions() & shared) != perms::none) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s has mode %04o: a private key must not be accessible by group or others "
        "(chmod 600)",
        flag, path, static_cast<unsigned>(st.permissions()) & 07777));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, " ", path, ": cannot read"));
  return text.str();
}

absl::Status WithContext(const absl::Status& status, absl::string_view what,
                         absl::string_view path) {
  const bool has_what = absl::StrContains(status.message(), what);
  const bool has_path = absl::StrContains(status.message(), path);
  if (has_what && has_path) return status;
  if (has_path) return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  return absl::Status(status.code(), absl::StrCat(what, " ", path, ": ", status.message()));
}

absl::Status LoadOsloTimeZone() {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone("Europe/Oslo", &zone)) {
    return absl::FailedPreconditionError(
        "cannot load time zone Europe/Oslo: is tzdata installed (or ZONEINFO set)?");
  }
  return core::SetOsloTimeZone(zone);
}

absl::StatusOr<std::unique_ptr<core::RulesTable>> LoadRules(const std::string& rules_file) {
  if (absl::Status s = LoadOsloTimeZone(); !s.ok()) return s;
  std::ifstream in(rules_file, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("rules_file ", rules_file, ": cannot open the rules file"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("rules_file ", rules_file, ": read error"));
  absl::StatusOr<core::RulesTable> rules = core::RulesTable::Parse(text.str());
  if (!rules.ok()) {
    return absl::Status(rules.status().code(),
                        absl::StrCat("rules_file ", rules_file, ": ", rules.status().message()));
  }
  return std::make_unique<core::RulesTable>(*std::move(rules));
}

absl::StatusOr<std::string> LoadPseudonymKey(const std::string& key_file,
                                             const std::string& data_dir, KeyUse use) {
  absl::StatusOr<std::string> secret;
  switch (use) {
    case KeyUse::kServe:
    case KeyUse::kVerify:
      if (!key_file.empty()) {
        secret = storage::LoadSecret(key_file);
        if (!secret.ok()) return WithContext(secret.status(), "pseudonym_key_file", key_file);
        return secret;
      }
      secret =
          use == KeyUse::kServe
              ? storage::LoadOrCreateDevSecret(data_dir)
              : storage::LoadSecret((std::filesystem::path(data_dir) / "pseudonym.key").string());
      if (!secret.ok()) return WithContext(secret.status(), "data_dir", data_dir);
      return secret;
    case KeyUse::kRestore: {
      // A restore never creates a key: it needs the one the backed-up register
      // was created with.
      const std::string dev_key = data_dir + "/pseudonym.key";
      const std::string key_path = key_file.empty() ? dev_key : key_file;
      secret = storage::LoadSecret(key_path);
      if (absl::IsNotFound(secret.status()) && key_file.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("restore needs the pseudonym key the backed-up register was created "
                         "with: give --pseudonym_key_file, or (development mode) copy the old "
                         "data folder's pseudonym.key to ",
                         dev_key));
      }
      if (!secret.ok()) return WithContext(secret.status(), "pseudonym_key_file", key_path);
      return secret;
    }
  }
  return absl::InternalError("LoadPseudonymKey: unknown use");
}

}  // namespace frikort::server
