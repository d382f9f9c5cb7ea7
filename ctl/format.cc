#include "ctl/format.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/timestamp.h"
#include "ctl/csv.h"

namespace frikort::ctl {
namespace {

std::string SchemeName(v1::Scheme s) { return v1::Scheme_Name(s); }

std::string Ore(int64_t ore) { return absl::StrCat(ore); }

std::string OsloTimeText(const google::protobuf::Timestamp& ts) {
  std::optional<absl::Time> t = core::FromProtoTimestamp(ts);
  if (!t.has_value()) return "?";
  return absl::FormatTime("%Y-%m-%d %H:%M", *t, core::OsloTimeZone());
}

std::string Csv(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  auto line = [&out](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      out += CsvField(cells[i]);
    }
    out += '\n';
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

}  // namespace

absl::StatusOr<Format> ParseFormat(absl::string_view text) {
  if (text == "table") return Format::kTable;
  if (text == "csv") return Format::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("--format: '", text, "' is not one of table, csv"));
}

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&width](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], cells[i].size());
    }
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      if (i > 0) l += "  ";
      l += cells[i];
      if (i + 1 < cells.size()) l.append(width[i] - cells[i].size(), ' ');
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(l), "\n");
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string FormatExemptions(const v1::CheckExemptionResponse& response) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::SchemeExemption& e : response.exemptions()) {
    rows.push_back({SchemeName(e.scheme()), v1::ExemptionStatus_Name(e.status()),
                    e.valid_from().empty() ? "-" : e.valid_from(),
                    e.valid_to().empty() ? "-" : e.valid_to()});
  }
  return absl::StrCat(response.person_id(), " on ", response.date(), "\n",
                      Table({"scheme", "status", "valid_from", "valid_to"}, rows));
}

std::string NotCountedNote(v1::NotCountedReason reason) {
  switch (reason) {
    case v1::UNPAID:
      return "not counted: unpaid";
    case v1::EXEMPT_BY_FREE_CARD:
      return "not counted: exempt by free card";
    case v1::PERFORMED_ABROAD:
      return "not counted: abroad";
    case v1::CANCELLED:
      return "not counted: cancelled";
    case v1::NO_DIRECT_SETTLEMENT:
      return "not counted: no direct-settlement agreement";
    default:
      return "not counted";
  }
}

std::string FormatLedger(const v1::Ledger& ledger) {
  std::string out =
      absl::StrCat(ledger.person_id(), " ", ledger.year(),
                   ledger.reserved() ? " (reserved: not exempt, nothing issued)" : "", "\n");
  std::vector<std::vector<std::string>> schemes;
  for (const v1::SchemeLedger& s : ledger.schemes()) {
    std::string card = "-";
    if (s.has_card()) {
      card = absl::StrCat(s.card().valid_from(), "..", s.card().valid_to(), " issued ",
                          s.card().issued_on(), s.card().under_review() ? " UNDER REVIEW" : "");
    }
    schemes.push_back({SchemeName(s.scheme()), Ore(s.cap_ore()), Ore(s.counted_total_ore()),
                       s.cap_reached_on().empty() ? "-" : s.cap_reached_on(), card,
                       Ore(s.refunded_ore()), Ore(s.outstanding_ore())});
  }
  absl::StrAppend(&out, Table({"scheme", "cap_ore", "counted_ore", "cap_reached_on", "card",
                               "refunded_ore", "outstanding_ore"},
                              schemes));
  std::vector<std::vector<std::string>> entries;
  for (const v1::LedgerEntry& e : ledger.entries()) {
    std::vector<std::string> notes;
    if (!e.counted()) notes.push_back(NotCountedNote(e.not_counted_reason()));
    if (e.cancelled()) notes.push_back("cancelled");
    if (e.late()) notes.push_back("late");
    if (e.performed_abroad()) notes.push_back("abroad");
    entries.push_back({OsloTimeText(e.service_time()), e.report_id(), e.provider_id(),
                       v1::ServiceCategory_Name(e.category()), SchemeName(e.scheme()),
                       Ore(e.amount_ore()), v1::PaymentStatus_Name(e.payment()),
                       absl::StrJoin(notes, ", ")});
  }
  absl::StrAppend(&out, "\n", entries.size(), " co-payments\n");
  if (!entries.empty()) {
    absl::StrAppend(&out, Table({"service_time", "report_id", "provider_id", "category", "scheme",
                                 "amount_ore", "payment", "notes"},
                                entries));
  }
  return out;
}

std::string FormatRun(const v1::IssuanceRun& run) {
  std::string out = run.dry_run()
                        ? absl::StrCat("dry run as of ", run.as_of(), " (nothing written)\n")
                        : absl::StrCat("run ", run.run_id(), " as of ", run.as_of(), "\n");
  absl::StrAppend(&out,
                  Table({"ledgers_examined", "cards_issued", "cards_past_deadline", "payouts",
                         "payout_total_ore", "carried_forward_ore"},
                        {{absl::StrCat(run.ledgers_examined()), absl::StrCat(run.cards_issued()),
                          absl::StrCat(run.cards_past_deadline()), absl::StrCat(run.payouts()),
                          Ore(run.payout_total_ore()), Ore(run.carried_forward_ore())}}));
  return out;
}

std::string FormatProviders(const std::vector<v1::Provider>& providers, Format format) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Provider& p : providers) {
    if (p.agreements().empty()) rows.push_back({p.provider_id(), p.name(), "", "", ""});
    for (const v1::Agreement& a : p.agreements()) {
      rows.push_back({p.provider_id(), p.name(), a.valid_from(), a.valid_to(), a.version()});
    }
  }
  const std::vector<std::string> header = {"provider_id", "name", "valid_from", "valid_to",
                                           "version"};
  if (format == Format::kCsv) return Csv(header, rows);
  return absl::StrCat(Table(header, rows), providers.size(), " providers\n");
}

std::string FormatCards(const std::vector<v1::FreeCard>& cards, Format format) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::FreeCard& c : cards) {
    rows.push_back({c.person_id(), absl::StrCat(c.year()), SchemeName(c.scheme()), c.valid_from(),
                    c.valid_to(), c.issued_on(), Ore(c.basis_total_ore()),
                    c.under_review() ? "true" : "false"});
  }
  const std::vector<std::string> header = {"person_id",       "year",        "scheme",
                                           "valid_from",      "valid_to",    "issued_on",
                                           "basis_total_ore", "under_review"};
  if (format == Format::kCsv) return Csv(header, rows);
  return absl::StrCat(Table(header, rows), cards.size(), " cards\n");
}

std::string FormatPayouts(const std::vector<v1::Payout>& payouts, Format format) {
  std::vector<std::vector<std::string>> rows;
  int64_t total = 0;
  for (const v1::Payout& p : payouts) {
    rows.push_back({p.person_id(), absl::StrCat(p.year()), SchemeName(p.scheme()),
                    Ore(p.amount_ore()), p.run_id(), p.created_on()});
    total += p.amount_ore();
  }
  const std::vector<std::string> header = {"person_id",  "year",   "scheme",
                                           "amount_ore", "run_id", "created_on"};
  if (format == Format::kCsv) return Csv(header, rows);
  return absl::StrCat(Table(header, rows), payouts.size(), " payouts, ", total, " øre\n");
}

std::string FormatBackup(const v1::BackupResponse& b) {
  std::optional<absl::Time> created = core::FromProtoTimestamp(b.created());
  return absl::StrCat("backup ", b.backup_id(), " in ", b.dest(), ": ", b.files(), " files, ",
                      b.size_bytes(), " bytes, created ",
                      created.has_value()
                          ? absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", *created, absl::UTCTimeZone())
                          : "?",
                      "; ", b.backups_in_dest(), " backups in the folder\n",
                      "the pseudonym key is not in the backup: keep it backed up apart\n");
}

}  // namespace frikort::ctl
