// frikort.v1.Providers (role operator): the registry of practitioners and
// practices with an agreement on direct settlement. PutProvider stores the
// whole record and re-evaluates the stored co-payments it affects, which may
// take long (a provider with a million entries): it runs on a thread of its
// own, so no gRPC thread waits. GetProvider and ListProviders are short reads
// done inline.
//
// Ownership: borrows the register and the gate, which must outlive the
// service (or at least JoinPuts()).
#ifndef FRIKORT_SERVER_PROVIDERS_SERVICE_H_
#define FRIKORT_SERVER_PROVIDERS_SERVICE_H_

#include <list>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "server/gate.h"
#include "storage/register.h"

namespace frikort::server {

class ProvidersService final : public v1::Providers::CallbackService {
 public:
  ProvidersService(storage::Register* reg, CallGate* gate) : reg_(reg), gate_(gate) {}
  // Waits for puts in progress (JoinPuts()).
  ~ProvidersService() override;

  grpc::ServerUnaryReactor* PutProvider(grpc::CallbackServerContext* context,
                                        const v1::PutProviderRequest* request,
                                        v1::PutProviderResponse* response) override;
  grpc::ServerUnaryReactor* GetProvider(grpc::CallbackServerContext* context,
                                        const v1::GetProviderRequest* request,
                                        v1::Provider* response) override;
  grpc::ServerUnaryReactor* ListProviders(grpc::CallbackServerContext* context,
                                          const v1::ListProvidersRequest* request,
                                          v1::ListProvidersResponse* response) override;

  // Waits for every put thread started so far. Call after the gRPC server
  // has shut down (so no new put can start).
  void JoinPuts();

 private:
  struct PutThread {
    std::thread thread;
    bool done = false;
  };
  void ReapFinishedPuts() ABSL_LOCKS_EXCLUDED(mu_);

  storage::Register* const reg_;
  CallGate* const gate_;
  absl::Mutex mu_;
  std::list<PutThread> puts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_PROVIDERS_SERVICE_H_
