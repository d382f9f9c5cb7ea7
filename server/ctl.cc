#include "server/ctl.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "common/timestamp.h"
#include "core/address.h"
#include "core/calendar.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/channel_arguments.h"

namespace frikort::ctl {
namespace {

namespace fs = std::filesystem;

// Known columns, in the order of their index in CsvImportReader::column_of_.
enum Column {
  kReportId,
  kProviderId,
  kPersonId,
  kServiceTime,
  kCategory,
  kAmountOre,
  kPayment,
  kPerformedAbroad,
  kAttributedYear,
  kNumColumns
};
constexpr int kNumRequired = 7;

const char* ColumnName(int c) {
  return c < kNumRequired ? kRequiredColumns[c] : kOptionalColumns[c - kNumRequired];
}

// In-flight stream messages before the importer waits for an answer.
constexpr size_t kImportWindow = 4;
constexpr absl::Duration kDefaultCallTimeout = absl::Seconds(30);
constexpr int kPageSize = 1000;

// ---- enum names ----

// Parses a contract enum by its name, case-insensitively; the UNSPECIFIED
// value is not accepted.
template <typename Enum>
absl::StatusOr<Enum> ParseEnumName(absl::string_view text, absl::string_view field,
                                   bool (*parse)(const std::string&, Enum*),
                                   const google::protobuf::EnumDescriptor* descriptor) {
  Enum value{};
  const std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  if (!upper.empty() && parse(upper, &value) && static_cast<int>(value) != 0) return value;
  std::vector<std::string> names;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    if (descriptor->value(i)->number() != 0) names.push_back(descriptor->value(i)->name());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", text, "' is not one of ", absl::StrJoin(names, ", ")));
}

std::string SchemeName(v1::Scheme s) { return v1::Scheme_Name(s); }

std::string Ore(int64_t ore) { return absl::StrCat(ore); }

std::string OsloTimeText(const google::protobuf::Timestamp& ts) {
  std::optional<absl::Time> t = common::FromProtoTimestamp(ts);
  if (!t.has_value()) return "?";
  return absl::FormatTime("%Y-%m-%d %H:%M", *t, core::OsloTimeZone());
}

// One line for an error: no line breaks inside.
std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(absl::StripAsciiWhitespace(text), {{"\r", " "}, {"\n", " "}});
}

std::string CallError(absl::string_view command, const grpc::Status& s) {
  return absl::StrCat(command, ": ", OneLine(s.error_message()), " (",
                      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ")");
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

absl::StatusOr<bool> ParseBool(absl::string_view text, absl::string_view field) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (v.empty() || v == "false" || v == "0" || v == "no") return false;
  if (v == "true" || v == "1" || v == "yes") return true;
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", text, "' is not true/false, yes/no or 1/0"));
}

}  // namespace

// ---- CSV ---------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> SplitCsvRecord(absl::string_view record) {
  std::vector<std::string> fields(1);
  size_t i = 0;
  bool field_start = true;
  while (i < record.size()) {
    const char c = record[i];
    if (field_start && c == '"') {
      // A quoted field runs to the next quote that is not doubled.
      ++i;
      for (;;) {
        if (i >= record.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("field ", fields.size(), ": a quote is never closed"));
        }
        if (record[i] == '"') {
          if (i + 1 < record.size() && record[i + 1] == '"') {
            fields.back() += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        fields.back() += record[i++];
      }
      if (i < record.size() && record[i] != ',') {
        return absl::InvalidArgumentError(
            absl::StrCat("field ", fields.size(), ": text after the closing quote"));
      }
      field_start = false;
      continue;
    }
    if (c == ',') {
      fields.emplace_back();
      field_start = true;
    } else {
      fields.back() += c;
      field_start = false;
    }
    ++i;
  }
  return fields;
}

std::string CsvField(absl::string_view value) {
  if (value.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(value);
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

absl::StatusOr<std::unique_ptr<CsvImportReader>> CsvImportReader::Open(std::istream* in) {
  auto reader = std::unique_ptr<CsvImportReader>(new CsvImportReader(in, {}, 0, 0, 0));
  std::string header;
  int line = 0;
  if (!reader->ReadRecord(&header, &line)) {
    return absl::InvalidArgumentError(
        "header: the file is empty; the first line must name the "
        "columns (report_id,provider_id,...)");
  }
  absl::StatusOr<std::vector<std::string>> names = SplitCsvRecord(header);
  if (!names.ok())
    return absl::InvalidArgumentError(absl::StrCat("header: ", names.status().message()));
  std::vector<int> column_of(kNumColumns, -1);
  for (size_t i = 0; i < names->size(); ++i) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace((*names)[i]));
    if (i == 0 && absl::StartsWith(name, "\xEF\xBB\xBF")) name.erase(0, 3);  // a UTF-8 BOM
    int known = -1;
    for (int c = 0; c < kNumColumns; ++c) {
      if (name == ColumnName(c)) known = c;
    }
    if (known < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("header: unknown column '", (*names)[i],
                       "' (columns: ", absl::StrJoin(kRequiredColumns, ","), ", optional ",
                       absl::StrJoin(kOptionalColumns, ","), ")"));
    }
    if (column_of[known] >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("header: column ", name, " appears twice"));
    }
    column_of[known] = static_cast<int>(i);
  }
  for (int c = 0; c < kNumRequired; ++c) {
    if (column_of[c] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("header: column ", ColumnName(c), " is missing"));
    }
  }
  reader->column_of_ = std::move(column_of);
  reader->width_ = names->size();
  return reader;
}

bool CsvImportReader::ReadRecord(std::string* record, int* first_line) {
  record->clear();
  std::string physical;
  bool open_quote = false;
  while (std::getline(*in_, physical)) {
    bytes_read_ += physical.size() + 1;
    ++line_;
    if (!physical.empty() && physical.back() == '\r') physical.pop_back();
    if (!open_quote) {
      if (absl::StripAsciiWhitespace(physical).empty()) continue;  // a blank line
      *first_line = line_;
    } else {
      *record += '\n';
    }
    *record += physical;
    // Quotes come in pairs in a complete record ("" inside a field is two).
    open_quote = std::count(record->begin(), record->end(), '"') % 2 == 1;
    if (!open_quote) return true;
  }
  return open_quote;  // a record cut short by the end: SplitCsvRecord says so
}

bool CsvImportReader::Next(Row* row) {
  std::string record;
  if (!ReadRecord(&record, &row->line)) return false;
  absl::StatusOr<std::vector<std::string>> fields = SplitCsvRecord(record);
  row->report_id.clear();
  if (fields.ok() && static_cast<size_t>(column_of_[kReportId]) < fields->size()) {
    row->report_id = std::string(absl::StripAsciiWhitespace((*fields)[column_of_[kReportId]]));
  }
  if (!fields.ok()) {
    row->payment = fields.status();
  } else if (fields->size() != width_) {
    row->payment = absl::InvalidArgumentError(
        absl::StrCat("has ", fields->size(), " fields; the header has ", width_));
  } else {
    row->payment = Parse(*fields);
  }
  return true;
}

absl::StatusOr<absl::Time> ParseServiceTime(absl::string_view text) {
  const std::string t(absl::StripAsciiWhitespace(text));
  absl::Time out;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, t, &out, &error)) return out;
  for (const char* format :
       {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"}) {
    if (absl::ParseTime(format, t, core::OsloTimeZone(), &out, &error)) return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("service_time: '", text,
                   "' is not a time (RFC 3339 such as 2025-03-01T08:30:00+01:00, or "
                   "YYYY-MM-DD HH:MM in Oslo time)"));
}

absl::StatusOr<v1::CoPayment> CsvImportReader::Parse(const std::vector<std::string>& fields) const {
  auto field = [&](Column c) -> absl::string_view {
    return column_of_[c] < 0 ? absl::string_view()
                             : absl::StripAsciiWhitespace(fields[column_of_[c]]);
  };
  v1::CoPayment p;
  p.set_report_id(std::string(field(kReportId)));
  p.set_provider_id(std::string(field(kProviderId)));
  p.set_person_id(std::string(field(kPersonId)));
  absl::StatusOr<absl::Time> time = ParseServiceTime(field(kServiceTime));
  if (!time.ok()) return time.status();
  common::ToProtoTimestamp(*time, p.mutable_service_time());
  absl::StatusOr<v1::ServiceCategory> category = ParseEnumName(
      field(kCategory), "category", &v1::ServiceCategory_Parse, v1::ServiceCategory_descriptor());
  if (!category.ok()) return category.status();
  p.set_category(*category);
  int64_t amount = 0;
  if (!absl::SimpleAtoi(field(kAmountOre), &amount)) {
    return absl::InvalidArgumentError(
        absl::StrCat("amount_ore: '", field(kAmountOre), "' is not a whole number of øre"));
  }
  p.set_amount_ore(amount);
  absl::StatusOr<v1::PaymentStatus> payment = ParseEnumName(
      field(kPayment), "payment", &v1::PaymentStatus_Parse, v1::PaymentStatus_descriptor());
  if (!payment.ok()) return payment.status();
  p.set_payment(*payment);
  absl::StatusOr<bool> abroad = ParseBool(field(kPerformedAbroad), "performed_abroad");
  if (!abroad.ok()) return abroad.status();
  p.set_performed_abroad(*abroad);
  if (absl::string_view year = field(kAttributedYear); !year.empty()) {
    int y = 0;
    if (!absl::SimpleAtoi(year, &y)) {
      return absl::InvalidArgumentError(
          absl::StrCat("attributed_year: '", year, "' is not a year"));
    }
    p.set_attributed_year(y);
  }
  return p;
}

// ---- output ------------------------------------------------------------------

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
    if (!e.counted()) notes.push_back("not counted");
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
  std::optional<absl::Time> created = common::FromProtoTimestamp(b.created());
  return absl::StrCat("backup ", b.backup_id(), " in ", b.dest(), ": ", b.files(), " files, ",
                      b.size_bytes(), " bytes, created ",
                      created.has_value()
                          ? absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", *created, absl::UTCTimeZone())
                          : "?",
                      "; ", b.backups_in_dest(), " backups in the folder\n",
                      "the pseudonym key is not in the backup: keep it backed up apart\n");
}

// ---- connecting --------------------------------------------------------------

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, " ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().find("-----BEGIN ") == std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat("--", flag, " ", path, ": not a PEM file"));
  }
  return buf.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, absl::string_view server) {
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(server, "--server");
  if (!hp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server: '", server, "' is not HOST:PORT or [IPV6]:PORT"));
  }
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (the client certificate and its key)");
  }
  if (tls.cert.empty() && tls.ca.empty()) {
    if (!tls.server_name.empty()) {
      return absl::InvalidArgumentError("--tls_server_name needs TLS (--tls_ca)");
    }
    if (!core::IsLoopbackHost(hp->host)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--server ", server,
          " is not a loopback address: give --tls_ca (and --tls_cert, --tls_key for mutual "
          "TLS); plaintext is only for a development server on this host"));
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca, "tls_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!tls.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(tls.cert, "tls_cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(tls.key, "tls_key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& server,
                                                       const TlsFiles& tls) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      MakeChannelCredentials(tls, server);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  return grpc::CreateCustomChannel(server, *creds, args);
}

// ---- commands ----------------------------------------------------------------

const char kUsage[] =
    "frikortctl [--server=HOST:PORT] [--tls_ca=CA.pem [--tls_cert=C.pem --tls_key=K.pem]] "
    "COMMAND\n"
    "  import FILE.csv [--batch_size=1000]\n"
    "  lookup PERSON [--date=YYYY-MM-DD] [--category=NAME]\n"
    "  ledger PERSON --year=Y\n"
    "  reserve PERSON | unreserve PERSON\n"
    "  issue [--as-of=YYYY-MM-DD] [--dry-run]\n"
    "  cards --year=Y [--format=table|csv]\n"
    "  payouts --year=Y|--run=ID [--format=table|csv]\n"
    "  backup --dest=/ABSOLUTE/FOLDER/ON/THE/SERVER\n"
    "  health   (exit 0 when grpc.health.v1 answers SERVING; for probes)";

namespace {

struct CommandSpec {
  const char* name;
  std::vector<const char*> operands;  // names, for the messages
  std::vector<const char*> flags;     // command-specific flags it takes
};

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {"import", {"FILE"}, {"batch_size"}},
      {"lookup", {"PERSON"}, {"date", "category"}},
      {"ledger", {"PERSON"}, {"year"}},
      {"reserve", {"PERSON"}, {}},
      {"unreserve", {"PERSON"}, {}},
      {"issue", {}, {"as_of", "dry_run"}},
      {"cards", {}, {"year", "format"}},
      {"payouts", {}, {"year", "run", "format"}},
      {"backup", {}, {"dest"}},
      {"health", {}, {}},
  };
  return *commands;
}

// The flag spelled as the user may have typed it (--as-of for as_of).
std::string Spelled(absl::string_view flag) {
  return absl::StrCat("--", absl::StrReplaceAll(flag, {{"_", "-"}}));
}

std::unique_ptr<grpc::ClientContext> Context(const Options& options, bool long_running) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  absl::Duration timeout = options.timeout;
  if (timeout == absl::ZeroDuration() && !long_running) timeout = kDefaultCallTimeout;
  if (timeout > absl::ZeroDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// ---- import ----

class Importer {
 public:
  Importer(const Options& options, std::ostream& out, std::ostream& progress)
      : options_(options), out_(out), progress_(progress) {}

  // Returns the exit code; a failure is one line in *error.
  int Run(const std::string& path, v1::Reporting::Stub* stub, std::string* error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      *error = absl::StrCat("import: cannot read ", path, ": ", std::strerror(errno));
      return kExitFailed;
    }
    std::error_code ec;
    total_bytes_ = fs::file_size(path, ec);
    if (ec) total_bytes_ = 0;
    absl::StatusOr<std::unique_ptr<CsvImportReader>> reader = CsvImportReader::Open(&in);
    if (!reader.ok()) {
      *error = absl::StrCat("import: ", path, ": ", reader.status().message());
      return kExitFailed;
    }
    std::unique_ptr<grpc::ClientContext> ctx = Context(options_, /*long_running=*/true);
    auto stream = stub->StreamCoPayments(ctx.get());
    bool broken = false;
    v1::SubmitCoPaymentsRequest batch;
    std::vector<int> lines;
    auto send = [&]() {
      if (batch.co_payments_size() == 0 || broken) return;
      if (!stream->Write(batch)) {
        broken = true;
        return;
      }
      pending_.push_back(std::move(lines));
      lines.clear();
      batch.Clear();
      while (!broken && pending_.size() >= kImportWindow) broken = !ReadAnswer(stream.get());
    };
    CsvImportReader::Row row;
    while (!broken && (*reader)->Next(&row)) {
      ++rows_;
      if (!row.payment.ok()) {
        Reject(row.line, absl::StrCat(row.report_id.empty() ? "" : "report ", row.report_id,
                                      row.report_id.empty() ? "" : ": ",
                                      "rejected: ", row.payment.status().message()));
      } else {
        *batch.add_co_payments() = *std::move(row.payment);
        lines.push_back(row.line);
        if (batch.co_payments_size() >= options_.batch_size) send();
      }
      DrawProgress((*reader)->bytes_read(), false);
    }
    send();
    if (!broken) stream->WritesDone();
    while (!pending_.empty() && ReadAnswer(stream.get())) {
    }
    grpc::Status status = stream->Finish();
    DrawProgress((*reader)->bytes_read(), true);
    if (status.ok() && !pending_.empty()) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, "the server sent too few answers");
    }
    std::sort(rejections_.begin(), rejections_.end());
    for (const auto& [line, text] : rejections_) out_ << "line " << line << ": " << text << "\n";
    const int64_t unanswered =
        rows_ - accepted_ - duplicates_ - static_cast<int64_t>(rejections_.size());
    out_ << path << ": " << rows_ << " rows: " << accepted_ << " accepted, " << duplicates_
         << " duplicates, " << rejections_.size() << " rejected";
    if (!status.ok()) out_ << ", " << unanswered << " not answered";
    out_ << "\n";
    if (!status.ok()) {
      *error = absl::StrCat(CallError("import", status),
                            "; rows not answered may be sent again (duplicates are safe)");
      return kExitFailed;
    }
    return rejections_.empty() ? kExitOk : kExitRejectedRows;
  }

 private:
  bool ReadAnswer(
      grpc::ClientReaderWriter<v1::SubmitCoPaymentsRequest, v1::SubmitCoPaymentsResponse>* stream) {
    v1::SubmitCoPaymentsResponse response;
    if (!stream->Read(&response)) return false;
    std::vector<int> lines = std::move(pending_.front());
    pending_.pop_front();
    for (int i = 0; i < response.results_size() && i < static_cast<int>(lines.size()); ++i) {
      const v1::ReportResult& r = response.results(i);
      if (r.outcome() == v1::ACCEPTED) {
        ++accepted_;
      } else if (r.outcome() == v1::DUPLICATE) {
        ++duplicates_;
      } else {
        Reject(lines[i],
               absl::StrCat("report ", r.report_id(), ": rejected ",
                            v1::RejectReason_Name(r.reason()), ": ", OneLine(r.message())));
      }
    }
    return true;
  }

  void Reject(int line, std::string text) { rejections_.emplace_back(line, std::move(text)); }

  void DrawProgress(uint64_t done, bool last) {
    if (!options_.progress) return;
    const int percent = total_bytes_ == 0
                            ? 100
                            : static_cast<int>(std::min<uint64_t>(100, done * 100 / total_bytes_));
    if (!last && percent == last_percent_) return;
    last_percent_ = percent;
    constexpr int kWidth = 30;
    const int filled = percent * kWidth / 100;
    progress_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '-') << "] "
              << absl::StrFormat("%3d%%", percent) << "  " << rows_ << " rows";
    if (last) progress_ << "\r\033[K";
    progress_.flush();
  }

  const Options& options_;
  std::ostream& out_;
  std::ostream& progress_;
  uint64_t total_bytes_ = 0;
  int last_percent_ = -1;
  int64_t rows_ = 0, accepted_ = 0, duplicates_ = 0;
  std::vector<std::pair<int, std::string>> rejections_;
  std::deque<std::vector<int>> pending_;  // the lines of each batch sent, not yet answered
};

// ---- listings ----

template <typename Item, typename Request, typename Response, typename Call, typename Items>
grpc::Status ListAll(const Options& options, Request request, Call call, Items items,
                     std::vector<Item>* out) {
  request.set_page_size(kPageSize);
  for (;;) {
    Response response;
    grpc::Status s = call(Context(options, false).get(), request, &response);
    if (!s.ok()) return s;
    for (const Item& i : items(response)) out->push_back(i);
    if (response.next_page_token().empty()) return grpc::Status::OK;
    request.set_page_token(response.next_page_token());
  }
}

int Finish(const grpc::Status& s, absl::string_view command, const std::string& text,
           std::ostream& out, std::ostream& err) {
  if (!s.ok()) {
    err << "frikortctl: " << CallError(command, s) << "\n";
    return kExitFailed;
  }
  out << text;
  return kExitOk;
}

// grpc.health.v1.Health/Check for the whole server (service ""), without its
// generated code (not installed): the request is field 1 = "" (gRPC refuses
// to send an empty buffer), and SERVING is field 1 = 1.
int Health(const std::shared_ptr<grpc::Channel>& channel, const Options& options, std::ostream& out,
           std::ostream& err) {
  grpc::GenericStub stub(channel);
  std::unique_ptr<grpc::ClientContext> ctx = Context(options, false);
  grpc::Slice service(std::string("\x0a\x00", 2));
  grpc::ByteBuffer request(&service, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    err << "frikortctl: " << CallError("health", status) << "\n";
    return kExitFailed;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (bytes == std::string("\x08\x01", 2)) {
    out << "SERVING\n";
    return kExitOk;
  }
  err << "frikortctl: health: the server is not serving\n";
  return kExitFailed;
}

}  // namespace

absl::Status CheckUsage(const std::vector<std::string>& args, const Options& options) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "no command (import, lookup, ledger, reserve, unreserve, issue, cards, payouts, backup, "
        "health)");
  }
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& c : Commands()) {
    if (args[0] == c.name) spec = &c;
  }
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command '", args[0],
        "' (import, lookup, ledger, reserve, unreserve, issue, cards, payouts, backup, health)"));
  }
  const std::string cmd = spec->name;
  if (args.size() - 1 < spec->operands.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cmd, ": missing ", spec->operands[args.size() - 1]));
  }
  if (args.size() - 1 > spec->operands.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cmd, ": unexpected argument '", args[spec->operands.size() + 1], "'"));
  }
  for (const std::string& flag : options.given) {
    if (std::find_if(spec->flags.begin(), spec->flags.end(),
                     [&](const char* f) { return flag == f; }) == spec->flags.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(cmd, ": ", Spelled(flag), " does not apply to this command"));
    }
  }
  for (size_t i = 0; i < spec->operands.size(); ++i) {
    if (args[i + 1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", spec->operands[i], " is empty"));
    }
  }
  const bool needs_year = cmd == "ledger" || cmd == "cards";
  if (needs_year && options.year <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(cmd, ": --year=Y is required"));
  }
  if (options.given.count("year") > 0 && options.year <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(cmd, ": --year must be a year, e.g. 2025"));
  }
  if (cmd == "payouts" && options.year <= 0 && options.run.empty()) {
    return absl::InvalidArgumentError("payouts: give --year=Y, --run=ID or both");
  }
  if (cmd == "backup" && options.dest.empty()) {
    return absl::InvalidArgumentError(
        "backup: --dest=FOLDER is required (an absolute path on the server's host)");
  }
  if (cmd == "import" && (options.batch_size < 1 || options.batch_size > 10000)) {
    return absl::InvalidArgumentError("import: --batch_size must be between 1 and 10000");
  }
  if (cmd == "cards" || cmd == "payouts") {
    if (absl::StatusOr<Format> f = ParseFormat(options.format); !f.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", f.status().message()));
    }
  }
  if (cmd == "lookup" && !options.category.empty()) {
    absl::StatusOr<v1::ServiceCategory> c =
        ParseEnumName(options.category, "--category", &v1::ServiceCategory_Parse,
                      v1::ServiceCategory_descriptor());
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", c.status().message()));
  }
  if (options.timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must not be negative");
  }
  return absl::OkStatus();
}

int Run(const std::vector<std::string>& args, const Options& options,
        const std::shared_ptr<grpc::Channel>& channel, std::ostream& out, std::ostream& progress,
        std::ostream& err) {
  if (absl::Status s = CheckUsage(args, options); !s.ok()) {
    err << "frikortctl: " << s.message() << "\n";
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  const std::string operand = args.size() > 1 ? args[1] : "";

  if (cmd == "import") {
    auto stub = v1::Reporting::NewStub(channel);
    std::string error;
    const int code = Importer(options, out, progress).Run(operand, stub.get(), &error);
    if (!error.empty()) err << "frikortctl: " << error << "\n";
    return code;
  }
  if (cmd == "lookup") {
    v1::CheckExemptionRequest request;
    request.set_person_id(operand);
    request.set_date(options.date);
    if (!options.category.empty()) {
      request.set_category(*ParseEnumName(options.category, "--category",
                                          &v1::ServiceCategory_Parse,
                                          v1::ServiceCategory_descriptor()));
    }
    v1::CheckExemptionResponse response;
    grpc::Status s = v1::Lookup::NewStub(channel)->CheckExemption(Context(options, false).get(),
                                                                  request, &response);
    return Finish(s, cmd, s.ok() ? FormatExemptions(response) : "", out, err);
  }
  if (cmd == "ledger") {
    v1::GetLedgerRequest request;
    request.set_person_id(operand);
    request.set_year(options.year);
    v1::Ledger response;
    grpc::Status s = v1::Registry::NewStub(channel)->GetLedger(Context(options, false).get(),
                                                               request, &response);
    return Finish(s, cmd, s.ok() ? FormatLedger(response) : "", out, err);
  }
  if (cmd == "reserve" || cmd == "unreserve") {
    v1::SetReservationRequest request;
    request.set_person_id(operand);
    request.set_reserved(cmd == "reserve");
    v1::SetReservationResponse response;
    grpc::Status s = v1::Registry::NewStub(channel)->SetReservation(Context(options, false).get(),
                                                                    request, &response);
    return Finish(s, cmd,
                  absl::StrCat(response.person_id(),
                               response.reserved() ? " is reserved\n" : " is not reserved\n"),
                  out, err);
  }
  if (cmd == "issue") {
    v1::RunIssuanceRequest request;
    request.set_as_of(options.as_of);
    request.set_dry_run(options.dry_run);
    v1::IssuanceRun response;
    grpc::Status s = v1::Issuance::NewStub(channel)->RunIssuance(Context(options, true).get(),
                                                                 request, &response);
    return Finish(s, cmd, s.ok() ? FormatRun(response) : "", out, err);
  }
  if (cmd == "cards") {
    auto stub = v1::Issuance::NewStub(channel);
    v1::ListFreeCardsRequest request;
    request.set_year(options.year);
    std::vector<v1::FreeCard> cards;
    grpc::Status s = ListAll<v1::FreeCard, v1::ListFreeCardsRequest, v1::ListFreeCardsResponse>(
        options, request,
        [&](grpc::ClientContext* c, const v1::ListFreeCardsRequest& r,
            v1::ListFreeCardsResponse* o) { return stub->ListFreeCards(c, r, o); },
        [](const v1::ListFreeCardsResponse& r) { return r.cards(); }, &cards);
    return Finish(s, cmd, s.ok() ? FormatCards(cards, *ParseFormat(options.format)) : "", out, err);
  }
  if (cmd == "payouts") {
    auto stub = v1::Issuance::NewStub(channel);
    v1::ListPayoutsRequest request;
    request.set_year(options.year);
    request.set_run_id(options.run);
    std::vector<v1::Payout> payouts;
    grpc::Status s = ListAll<v1::Payout, v1::ListPayoutsRequest, v1::ListPayoutsResponse>(
        options, request,
        [&](grpc::ClientContext* c, const v1::ListPayoutsRequest& r, v1::ListPayoutsResponse* o) {
          return stub->ListPayouts(c, r, o);
        },
        [](const v1::ListPayoutsResponse& r) { return r.payouts(); }, &payouts);
    return Finish(s, cmd, s.ok() ? FormatPayouts(payouts, *ParseFormat(options.format)) : "", out,
                  err);
  }
  if (cmd == "health") return Health(channel, options, out, err);
  // backup
  v1::BackupRequest request;
  request.set_dest(options.dest);
  v1::BackupResponse response;
  grpc::Status s =
      v1::Operations::NewStub(channel)->Backup(Context(options, true).get(), request, &response);
  return Finish(s, cmd, s.ok() ? FormatBackup(response) : "", out, err);
}

}  // namespace frikort::ctl
