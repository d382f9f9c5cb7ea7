// frikortctl's output: the answers of the server as text for a person (plain
// tables, columns padded to their widest cell) or as CSV for a program
// (cards, payouts). Pure functions of the messages; times are shown in Oslo
// time, so UseOsloTimeZone() must have succeeded first.
#ifndef FRIKORT_CTL_FORMAT_H_
#define FRIKORT_CTL_FORMAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "frikort/v1/frikort.pb.h"
#include "frikort/v1/operations.pb.h"

namespace frikort::ctl {

enum class Format { kTable, kCsv };
// "table" or "csv"; InvalidArgument naming --format otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view text);

// Columns padded to their widest cell, two spaces apart.
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);

std::string FormatExemptions(const v1::CheckExemptionResponse& response);
// Why an entry does not count, as the ledger's notes say it.
std::string NotCountedNote(v1::NotCountedReason reason);
std::string FormatLedger(const v1::Ledger& ledger);
// One row per agreement period (a provider without one: one row, dates
// empty), in the columns `providers import` reads.
std::string FormatProviders(const std::vector<v1::Provider>& providers, Format format);
std::string FormatRun(const v1::IssuanceRun& run);
// CSV header: person_id,year,scheme,valid_from,valid_to,issued_on,basis_total_ore,under_review
std::string FormatCards(const std::vector<v1::FreeCard>& cards, Format format);
// CSV header: person_id,year,scheme,amount_ore,run_id,created_on
std::string FormatPayouts(const std::vector<v1::Payout>& payouts, Format format);
std::string FormatBackup(const v1::BackupResponse& backup);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_FORMAT_H_
