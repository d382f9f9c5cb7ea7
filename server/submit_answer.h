// The answer to a batch of co-payments (SubmitCoPayments and each message of
// StreamCoPayments), and the last guard on an answer's size.
#ifndef FRIKORT_SERVER_SUBMIT_ANSWER_H_
#define FRIKORT_SERVER_SUBMIT_ANSWER_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "frikort/v1/frikort.pb.h"
#include "google/protobuf/message.h"
#include "server/services.h"
#include "storage/register.h"

namespace frikort::server {

// ResourceExhausted when `answer` is larger than `max_message_bytes` (gRPC
// could not send it), so that the status and the metrics say so rather than
// OK; `what` tells the caller what to do. The answers are bounded below the
// limit (README "Bounds"); this is the last guard.
absl::Status CheckAnswerSize(const google::protobuf::Message& answer, int max_message_bytes,
                             absl::string_view what);

// Fills `response` with one result per co-payment, in request order, and
// counts their outcomes in ctx.metrics; the register's failure, or a result
// count other than `expected`, is the error.
absl::Status FillSubmitResponse(const absl::StatusOr<std::vector<storage::ReportResult>>& results,
                                size_t expected, const ServiceContext& ctx,
                                v1::SubmitCoPaymentsResponse* response);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_SUBMIT_ANSWER_H_
