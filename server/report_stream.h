// StreamCoPayments' reactor: one answer per request message, in request order.
//
// The method is registered raw (its messages reach the reactor as bytes), so
// that a message which does not parse (not a SubmitCoPaymentsRequest, or a
// string field that is not UTF-8) is told apart from the client closing its
// side: the typed API shows both as a failed read, and the stream would end
// OK as if the client had finished. Such a message ends the stream with
// INVALID_ARGUMENT, after the answers to the messages before it.
#ifndef FRIKORT_SERVER_REPORT_STREAM_H_
#define FRIKORT_SERVER_REPORT_STREAM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/gate.h"
#include "server/services.h"

namespace frikort::server {

using ReportStream = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

// How many stream messages may be read ahead of the answers written: what one
// stream holds is at most this many answers (each under the largest message)
// plus gRPC's flow-control windows, however slowly the client reads.
inline constexpr uint64_t kMaxStreamInFlight = 8;

// A reactor for an admitted stream, or one that ends at once with the
// refusal. gRPC owns it (it deletes itself when the call is done).
ReportStream* NewReportStream(const ServiceContext* ctx, absl::StatusOr<Admission> admission);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_REPORT_STREAM_H_
