// frikortctl's CSV: reading the import file into frikort.v1.CoPayment rows
// (each bad row becomes an error naming its column and the reason, never the
// whole file failing) and quoting a field for CSV output.
//
// Contract: RFC 4180 records (quoted fields may hold commas, line breaks and
// doubled quotes), a header row naming the columns in any order, blank lines
// skipped. Service times without an offset are Oslo time, so
// UseOsloTimeZone() must have succeeded first.
#ifndef FRIKORT_CTL_CSV_H_
#define FRIKORT_CTL_CSV_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "frikort/v1/frikort.pb.h"

namespace frikort::ctl {

// The import file's columns: these, in any order, with a header row.
inline constexpr const char* kRequiredColumns[] = {
    "report_id", "provider_id", "person_id", "service_time", "category", "amount_ore", "payment"};
inline constexpr const char* kOptionalColumns[] = {"performed_abroad", "attributed_year"};

// One record's fields (RFC 4180: fields in double quotes may hold commas,
// newlines and doubled quotes). InvalidArgument for a quote left open or text
// after a closing quote.
absl::StatusOr<std::vector<std::string>> SplitCsvRecord(absl::string_view record);

// A field for a CSV line: quoted when it holds a comma, quote or line break.
std::string CsvField(absl::string_view value);

// Reads co-payments from CSV. Every row becomes a CoPayment or an error
// naming the column and the reason; nothing in the input makes it fail as a
// whole except a bad header. Blank lines are skipped.
class CsvImportReader {
 public:
  struct Row {
    int line = 0;           // where the record starts, 1-based (the header is line 1)
    std::string report_id;  // as far as it could be read ("" if not)
    absl::StatusOr<v1::CoPayment> payment;
  };

  // Reads and checks the header from `in` (borrowed; must outlive the
  // reader). InvalidArgument naming a missing, unknown or repeated column.
  static absl::StatusOr<std::unique_ptr<CsvImportReader>> Open(std::istream* in);

  // The next row; false at the end of the input.
  bool Next(Row* row);
  // Bytes consumed so far (for a progress bar).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  CsvImportReader(std::istream* in, std::vector<int> column_of, size_t width, int line,
                  uint64_t bytes)
      : in_(in), column_of_(std::move(column_of)), width_(width), line_(line), bytes_read_(bytes) {}
  // One record's text (joining lines inside quotes); false at the end.
  bool ReadRecord(std::string* record, int* first_line);
  absl::StatusOr<v1::CoPayment> Parse(const std::vector<std::string>& fields) const;

  std::istream* in_;
  std::vector<int> column_of_;  // field index per known column, -1 if absent
  size_t width_;                // fields in the header
  int line_;                    // lines read so far
  uint64_t bytes_read_;
};

// Parses a service time: RFC 3339 with an offset (2025-03-01T08:30:00+01:00,
// ...Z), or a local time in Europe/Oslo (2025-03-01T08:30[:00] or with a
// space). InvalidArgument naming service_time otherwise.
absl::StatusOr<absl::Time> ParseServiceTime(absl::string_view text);

// A ServiceCategory by its name, case-insensitively (the CSV's category
// column, lookup's --category). UNSPECIFIED is refused; InvalidArgument
// naming `field` and listing the names otherwise.
absl::StatusOr<v1::ServiceCategory> ParseCategoryName(absl::string_view text,
                                                      absl::string_view field);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_CSV_H_
