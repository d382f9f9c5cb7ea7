#include "ctl/import.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ctl/csv.h"

namespace frikort::ctl {
namespace {

namespace fs = std::filesystem;

// In-flight stream messages before the importer waits for an answer.
constexpr size_t kImportWindow = 4;

class Importer {
 public:
  Importer(const Options& options, std::ostream& out, std::ostream& progress)
      : options_(options), out_(out), progress_(progress) {}

  // Returns the exit code; a failure is one line in *error.
  int Run(const std::string& path, v1::Reporting::StubInterface* stub, std::string* error) {
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
    std::unique_ptr<grpc::ClientContext> ctx = CallContext(options_, /*long_running=*/true);
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
  bool ReadAnswer(grpc::ClientReaderWriterInterface<v1::SubmitCoPaymentsRequest,
                                                    v1::SubmitCoPaymentsResponse>* stream) {
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

}  // namespace

int Import(const std::string& path, const Options& options, v1::Reporting::StubInterface* stub,
           std::ostream& out, std::ostream& progress, std::string* error) {
  return Importer(options, out, progress).Run(path, stub, error);
}

}  // namespace frikort::ctl
