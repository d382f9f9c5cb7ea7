#include "server/copy_command.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/log.h"
#include "server/startup_files.h"
#include "server/system_clock.h"
#include "storage/copy_register.h"

namespace frikort::server {
namespace {

absl::StatusOr<storage::CopyRegisterReport> Copy(const DaemonOptions& options) {
  absl::StatusOr<std::unique_ptr<core::RulesTable>> rules = LoadRules(options.rules_file);
  if (!rules.ok()) return rules.status();
  absl::StatusOr<std::string> secret =
      LoadPseudonymKey(options.pseudonym_key_file, options.data_dir, KeyUse::kVerify);
  if (!secret.ok()) return secret.status();
  DaemonOptions from = options;
  from.store = "rocksdb";
  from.postgres_dsn.clear();
  const storage::RegisterOptions source =
      RegisterOptionsFor(from, *secret, rules->get(), SystemClock::Get());
  const storage::RegisterOptions target =
      RegisterOptionsFor(options, *std::move(secret), rules->get(), SystemClock::Get());
  return storage::CopyRegister(source, target);
}

}  // namespace

int CopyRegisterCommand(const DaemonOptions& options, std::FILE* out) {
  if (options.store != "postgres") {
    std::fprintf(stderr,
                 "frikortd: --copy_register copies into PostgreSQL: give --store=postgres and "
                 "--postgres_dsn\n");
    return kExitBadFlags;
  }
  absl::StatusOr<storage::CopyRegisterReport> r = Copy(options);
  if (!r.ok()) {
    log::Log(log::Level::kError, "copy_failed",
             absl::StrCat("copy_register: ", r.status().message()));
    return kExitStartupFailed;
  }
  std::string rows;
  for (int t = 0; t < storage::kNumTables; ++t) {
    const auto table = static_cast<storage::Table>(t);
    if (table == storage::Table::kLookups) continue;
    absl::StrAppend(&rows, rows.empty() ? "" : ", ", storage::TableName(table), " ", r->copied[t]);
  }
  const storage::Register::VerifyReport& v = r->verify;
  std::fprintf(
      out,
      "copied the register in %s into PostgreSQL: rows %s; lookup log %llu records\n"
      "verified the copy: %llu persons, %llu entries, %llu ledgers, %llu cards, %llu "
      "payouts, %llu due markers: %zu violation%s\n",
      options.data_dir.c_str(), rows.c_str(),
      static_cast<unsigned long long>(r->copied[static_cast<int>(storage::Table::kLookups)]),
      static_cast<unsigned long long>(v.persons), static_cast<unsigned long long>(v.entries),
      static_cast<unsigned long long>(v.ledgers), static_cast<unsigned long long>(v.cards),
      static_cast<unsigned long long>(v.payouts), static_cast<unsigned long long>(v.due_markers),
      v.violations.size(), v.violations.size() == 1 ? "" : "s");
  for (const std::string& violation : v.violations) {
    std::fprintf(out, "violation: %s\n", violation.c_str());
  }
  std::fflush(out);
  return v.violations.empty() ? kExitOk : kExitViolations;
}

}  // namespace frikort::server
