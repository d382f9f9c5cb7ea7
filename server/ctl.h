// frikortctl's logic, apart from its main() so tests can use it without a
// server: reading co-payments from CSV (a clear error per bad row), the
// channel credentials, the output formats (tables and CSV), and the commands
// themselves over a gRPC channel.
//
// Exit codes of frikortctl (see README "frikortctl"):
//   0  done;
//   1  the server refused or failed (e.g. a bad person id, unreachable), or a
//      file could not be read;
//   2  bad command line (unknown command or flag, missing or extra argument);
//   3  import finished, but some rows were rejected (each one is listed).
#ifndef FRIKORT_SERVER_CTL_H_
#define FRIKORT_SERVER_CTL_H_

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace frikort::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRejectedRows = 3;

// ---- CSV ---------------------------------------------------------------------

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

// ---- output ------------------------------------------------------------------

enum class Format { kTable, kCsv };
// "table" or "csv"; InvalidArgument naming --format otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view text);

// Columns padded to their widest cell, two spaces apart.
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);

std::string FormatExemptions(const v1::CheckExemptionResponse& response);
std::string FormatLedger(const v1::Ledger& ledger);
std::string FormatRun(const v1::IssuanceRun& run);
// CSV header: person_id,year,scheme,valid_from,valid_to,issued_on,basis_total_ore,under_review
std::string FormatCards(const std::vector<v1::FreeCard>& cards, Format format);
// CSV header: person_id,year,scheme,amount_ore,run_id,created_on
std::string FormatPayouts(const std::vector<v1::Payout>& payouts, Format format);
std::string FormatBackup(const v1::BackupResponse& backup);

// ---- connecting --------------------------------------------------------------

struct TlsFiles {
  std::string cert;         // client certificate chain (PEM), for mutual TLS
  std::string key;          // its private key (PEM)
  std::string ca;           // CA bundle that signs the server's certificate (PEM)
  std::string server_name;  // expected name in the server's certificate, if not the host
};

// TLS credentials when any TLS file is given (cert and key go together;
// without --tls_ca the system's roots are used), else plaintext, which is
// only allowed to a loopback address (national ids would travel in clear).
// Errors name the flag and the file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls, absl::string_view server);
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& server,
                                                       const TlsFiles& tls);

// ---- commands ----------------------------------------------------------------

struct Options {
  std::string date;              // lookup
  std::string category;          // lookup
  int year = 0;                  // ledger, cards, payouts
  std::string as_of;             // issue
  bool dry_run = false;          // issue
  std::string run;               // payouts
  std::string format = "table";  // cards, payouts
  std::string dest;              // backup
  int batch_size = 1000;         // import
  // 0: 30 s for a single call; none for import, issue and backup.
  absl::Duration timeout = absl::ZeroDuration();
  // Whether to draw the import progress bar (on a terminal).
  bool progress = false;
  // The command-specific flags given on the command line, by name, to refuse
  // one that does not apply.
  std::set<std::string> given;
};

// The commands' one-line usage, for --help.
extern const char kUsage[];

// Runs `args` (command and its operands) against `channel`: results on `out`,
// the progress bar on `progress`, a failure as one line on `err`. Returns the
// exit code.
int Run(const std::vector<std::string>& args, const Options& options,
        const std::shared_ptr<grpc::Channel>& channel, std::ostream& out, std::ostream& progress,
        std::ostream& err);

// The usage check alone (no server needed): OK, or InvalidArgument with the
// line to print. Run() does it first.
absl::Status CheckUsage(const std::vector<std::string>& args, const Options& options);

}  // namespace frikort::ctl

#endif  // FRIKORT_SERVER_CTL_H_
