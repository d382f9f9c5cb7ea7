#include "server/report_stream.h"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "server/convert.h"
#include "server/requests.h"
#include "server/submit_answer.h"
#include "server/unparsed.h"

namespace frikort::server {
namespace {

using v1::SubmitCoPaymentsRequest;
using v1::SubmitCoPaymentsResponse;

// StreamCoPayments: one response per request message, in request order.
//
// Each message read is submitted at once (the register applies them in
// arrival order) and given a sequence number; answers may come back in any
// order and are written strictly by sequence, one Write in flight at a time as
// the bidi reactor requires. Up to kMaxStreamInFlight messages are read ahead
// of the responses written, which bounds memory per stream. A bad message
// (empty, oversized) or a register failure stops reading; the responses to the
// messages before it are still written, then the stream finishes with the
// error. The reactor deletes itself in OnDone, which gRPC calls only after
// Finish; Finish is only called once no register callback is outstanding.
class StreamReactor final : public ReportStream {
 public:
  StreamReactor(const ServiceContext* ctx, Admission admission)
      : ctx_(ctx), admission_(std::move(admission)) {
    {
      absl::MutexLock l(&mu_);
      read_in_flight_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call broke
      Actions a;
      {
        absl::MutexLock l(&mu_);
        read_in_flight_ = false;
        stop_reading_ = true;
        a = Step();
      }
      Apply(a);
      return;
    }
    // The message is parsed here (the method is raw): bytes that are no
    // request end the stream as a bad argument, not as the client's close.
    SubmitCoPaymentsRequest request;
    absl::Status refused = Parse(&request);
    if (refused.ok()) refused = CheckRequest(request);
    if (refused.ok()) {
      refused =
          ctx_->gate->CheckProviders(admission_, Rpc::kStreamCoPayments, request.co_payments());
    }
    if (!refused.ok()) {
      Actions a;
      {
        absl::MutexLock l(&mu_);
        read_in_flight_ = false;
        stop_reading_ = true;
        SetError(ToGrpcStatus(refused));
        a = Step();
      }
      Apply(a);
      return;
    }
    std::vector<core::CoPaymentInput> items = ToInputs(request);
    const size_t expected = items.size();
    uint64_t seq = 0;
    {
      absl::MutexLock l(&mu_);
      read_in_flight_ = false;
      seq = next_read_seq_++;
      ++outstanding_;
    }
    ctx_->reg->SubmitAsync(
        std::move(items),
        [this, seq, expected](absl::StatusOr<std::vector<storage::ReportResult>> results) {
          absl::StatusOr<grpc::ByteBuffer> answer = Answer(results, expected);
          Actions a;
          {
            absl::MutexLock l(&mu_);
            --outstanding_;
            if (!stop_writing_) pending_.emplace(seq, std::move(answer));
            a = Step();
          }
          Apply(a);  // touches nothing of *this after the last gRPC call
        });
    // OnDone cannot run before this reaction returns, so *this is still alive.
    Actions a;
    {
      absl::MutexLock l(&mu_);
      a = Step();
    }
    Apply(a);
  }

  void OnWriteDone(bool ok) override {
    Actions a;
    {
      absl::MutexLock l(&mu_);
      write_in_flight_ = false;
      if (!ok) {  // the call is broken (client gone): stop, drop the rest
        stop_writing_ = true;
        stop_reading_ = true;
        pending_.clear();
        SetError(grpc::Status(grpc::StatusCode::CANCELLED, "stream: write failed"));
      }
      a = Step();
    }
    Apply(a);
  }

  void OnDone() override { delete this; }

 private:
  struct Actions {
    bool write = false;
    bool read = false;
    bool finish = false;
    grpc::Status status;
  };

  void SetError(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (final_status_.ok()) final_status_ = status;
  }

  // Decides the next gRPC operations from the state; the caller applies them
  // after releasing mu_ (gRPC may run reactions inline).
  Actions Step() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions a;
    if (finished_) return a;
    if (!write_in_flight_ && !stop_writing_) {
      auto it = pending_.find(next_write_seq_);
      if (it != pending_.end()) {
        if (it->second.ok()) {
          writing_ = std::move(*it->second);
          pending_.erase(it);
          ++next_write_seq_;
          write_in_flight_ = true;
          a.write = true;
        } else {
          SetError(ToGrpcStatus(it->second.status()));
          stop_writing_ = true;
          stop_reading_ = true;
          pending_.clear();
        }
      }
    }
    const uint64_t unwritten = next_read_seq_ - next_write_seq_ + (write_in_flight_ ? 1 : 0);
    if (!stop_reading_ && !read_in_flight_ && unwritten < kMaxStreamInFlight) {
      read_in_flight_ = true;
      a.read = true;
    }
    if (stop_reading_ && !read_in_flight_ && !write_in_flight_ && outstanding_ == 0 &&
        pending_.empty()) {
      finished_ = true;
      a.finish = true;
      a.status = final_status_;
    }
    return a;
  }

  // writing_ and request_ are only touched by the one operation in flight on
  // them, which Step() hands out under mu_.
  void Apply(const Actions& a) {
    if (a.write) StartWrite(&writing_);
    if (a.read) StartRead(&request_);
    if (a.finish) {
      admission_.ticket.Release();  // the caller may call again once it has the status
      Finish(a.status);
    }
  }

  // The answer to one message, as the bytes to write (serialized here, on
  // the register's callback, rather than under mu_).
  absl::StatusOr<grpc::ByteBuffer> Answer(
      const absl::StatusOr<std::vector<storage::ReportResult>>& results, size_t expected) const {
    SubmitCoPaymentsResponse response;
    absl::Status status = FillSubmitResponse(results, expected, *ctx_, &response);
    if (!status.ok()) return status;
    grpc::ByteBuffer bytes;
    bool own_buffer = false;
    const grpc::Status serialized = grpc::SerializationTraits<SubmitCoPaymentsResponse>::Serialize(
        response, &bytes, &own_buffer);
    if (!serialized.ok()) return absl::InternalError("stream: the answer could not be encoded");
    return bytes;
  }

  // The message just read, as bytes, into `request`; request_ is then empty.
  absl::Status Parse(SubmitCoPaymentsRequest* request) {
    const grpc::Status parsed =
        grpc::SerializationTraits<SubmitCoPaymentsRequest>::Deserialize(&request_, request);
    if (parsed.ok()) return absl::OkStatus();
    return absl::InvalidArgumentError(kUnparsedRequestMessage);
  }

  const ServiceContext* const ctx_;
  Admission admission_;  // its ticket is released by the one Finish
  grpc::ByteBuffer request_;
  grpc::ByteBuffer writing_;

  absl::Mutex mu_;
  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_reading_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // register callbacks not yet run
  uint64_t next_read_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_write_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, absl::StatusOr<grpc::ByteBuffer>> pending_ ABSL_GUARDED_BY(mu_);
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// A stream refused before it started.
class RefusedStream final : public ReportStream {
 public:
  explicit RefusedStream(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

ReportStream* NewReportStream(const ServiceContext* ctx, absl::StatusOr<Admission> admission) {
  if (!admission.ok()) return new RefusedStream(admission.status());
  return new StreamReactor(ctx, *std::move(admission));
}

}  // namespace frikort::server
