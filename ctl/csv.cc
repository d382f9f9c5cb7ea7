#include "ctl/csv.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/calendar.h"
#include "core/timestamp.h"

namespace frikort::ctl {
namespace {

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

absl::StatusOr<bool> ParseBool(absl::string_view text, absl::string_view field) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (v.empty() || v == "false" || v == "0" || v == "no") return false;
  if (v == "true" || v == "1" || v == "yes") return true;
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": '", text, "' is not true/false, yes/no or 1/0"));
}

}  // namespace

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
  core::ToProtoTimestamp(*time, p.mutable_service_time());
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

absl::StatusOr<v1::ServiceCategory> ParseCategoryName(absl::string_view text,
                                                      absl::string_view field) {
  return ParseEnumName(text, field, &v1::ServiceCategory_Parse, v1::ServiceCategory_descriptor());
}

}  // namespace frikort::ctl
