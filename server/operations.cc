#include "server/operations.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/timestamp.h"
#include "server/convert.h"

namespace frikort::server {

OperationsService::~OperationsService() { JoinBackup(); }

void OperationsService::JoinBackup() {
  std::thread finished;
  {
    absl::MutexLock l(&mu_);
    finished = std::move(thread_);
  }
  if (finished.joinable()) finished.join();
}

grpc::ServerUnaryReactor* OperationsService::Backup(grpc::CallbackServerContext* context,
                                                    const v1::BackupRequest* request,
                                                    v1::BackupResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Admission> admission = gate_->Admit(*context, Rpc::kBackup, {}, request->dest());
  if (!admission.ok()) {
    reactor->Finish(ToGrpcStatus(admission.status()));
    return reactor;
  }
  if (request->dest().empty()) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        "dest: required (an absolute folder path on the server's host)")));
    return reactor;
  }
  std::thread previous;
  absl::MutexLock l(&mu_);
  if (running_) {
    reactor->Finish(ToGrpcStatus(
        absl::AbortedError("a backup is already running; try again when it has finished")));
    return reactor;
  }
  previous = std::move(thread_);  // finished: running_ is false
  running_ = true;
  thread_ =
      std::thread([this, reactor, response, dest = request->dest(), previous = std::move(previous),
                   admission = *std::move(admission)]() mutable {
        if (previous.joinable()) previous.join();
        absl::StatusOr<storage::BackupInfo> info = reg_->Backup(dest);
        if (info.ok()) {
          response->set_backup_id(info->backup_id);
          response->set_dest(info->dest);
          core::ToProtoTimestamp(info->created, response->mutable_created());
          response->set_size_bytes(static_cast<int64_t>(info->size_bytes));
          response->set_files(static_cast<int32_t>(info->files));
          response->set_backups_in_dest(info->backups_in_dest);
        }
        {
          absl::MutexLock l(&mu_);
          running_ = false;
        }
        admission.ticket.Release();
        reactor->Finish(ToGrpcStatus(info.status()));
      });
  return reactor;
}

}  // namespace frikort::server
