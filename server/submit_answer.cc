#include "server/submit_answer.h"

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/metrics.h"

namespace frikort::server {

absl::Status CheckAnswerSize(const google::protobuf::Message& answer, int max_message_bytes,
                             absl::string_view what) {
  const size_t bytes = answer.ByteSizeLong();
  if (bytes <= static_cast<size_t>(max_message_bytes)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat("answer: ", bytes, " bytes, more than the ",
                                                   max_message_bytes, " that can be sent; ", what));
}

absl::Status FillSubmitResponse(const absl::StatusOr<std::vector<storage::ReportResult>>& results,
                                size_t expected, const ServiceContext& ctx,
                                v1::SubmitCoPaymentsResponse* response) {
  if (!results.ok()) return results.status();
  if (results->size() != expected) {
    return absl::InternalError(absl::StrCat("register answered ", results->size(), " results for ",
                                            expected, " co-payments"));
  }
  response->mutable_results()->Reserve(static_cast<int>(results->size()));
  for (const storage::ReportResult& r : *results) ToProto(r, response->add_results());
  if (ctx.metrics != nullptr) ctx.metrics->RecordReportResults(*response);
  return CheckAnswerSize(*response, ctx.max_message_bytes,
                         "the batch was applied; send it again in smaller batches to read the "
                         "results (stored reports answer DUPLICATE)");
}

}  // namespace frikort::server
