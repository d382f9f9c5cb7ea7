// frikort.v1.Operations: calls for the register's operators, beside the public
// contract. Backup runs on a thread of its own (it copies the whole register),
// one at a time; the gRPC thread is never blocked.
//
// Ownership: borrows the register and the gate (the operator role, the
// audit log), which must outlive the service (or at least JoinBackup()).
#ifndef FRIKORT_SERVER_OPERATIONS_H_
#define FRIKORT_SERVER_OPERATIONS_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "server/gate.h"
#include "storage/register.h"

namespace frikort::server {

class OperationsService final : public v1::Operations::CallbackService {
 public:
  OperationsService(storage::Register* reg, CallGate* gate) : reg_(reg), gate_(gate) {}
  // Waits for a backup in progress (JoinBackup()).
  ~OperationsService() override;

  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* context,
                                   const v1::BackupRequest* request,
                                   v1::BackupResponse* response) override;

  // Waits for the backup thread, if any. Call after the gRPC server has shut
  // down (so no new backup can start).
  void JoinBackup();

 private:
  storage::Register* const reg_;
  CallGate* const gate_;
  absl::Mutex mu_;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_OPERATIONS_H_
