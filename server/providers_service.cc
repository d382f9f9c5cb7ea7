#include "server/providers_service.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/convert.h"

namespace frikort::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

ProvidersService::~ProvidersService() { JoinPuts(); }

void ProvidersService::JoinPuts() {
  std::list<PutThread> all;
  {
    absl::MutexLock l(&mu_);
    all.swap(puts_);
  }
  for (PutThread& t : all) {
    if (t.thread.joinable()) t.thread.join();
  }
}

void ProvidersService::ReapFinishedPuts() {
  std::list<PutThread> finished;
  {
    absl::MutexLock l(&mu_);
    for (auto it = puts_.begin(); it != puts_.end();) {
      auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), puts_, it);
      it = next;
    }
  }
  for (PutThread& t : finished) t.thread.join();
}

grpc::ServerUnaryReactor* ProvidersService::PutProvider(grpc::CallbackServerContext* context,
                                                        const v1::PutProviderRequest* request,
                                                        v1::PutProviderResponse* response) {
  absl::StatusOr<Admission> admission = gate_->Admit(*context, Rpc::kPutProvider);
  if (!admission.ok()) return Finish(context, admission.status());
  if (!request->has_provider()) {
    admission->ticket.Release();
    return Finish(context, absl::InvalidArgumentError("provider: not given"));
  }
  ReapFinishedPuts();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::MutexLock l(&mu_);
  auto it = puts_.emplace(puts_.end());
  // The thread cannot mark itself done before `thread` is assigned: it needs mu_.
  it->thread = std::thread([this, it, reactor, response, in = FromProto(request->provider()),
                            admission = *std::move(admission)]() mutable {
    absl::StatusOr<storage::ProviderChange> change = reg_->PutProvider(in);
    if (change.ok()) ToProto(*change, response);
    admission.ticket.Release();
    reactor->Finish(ToGrpcStatus(change.status()));
    absl::MutexLock l(&mu_);
    it->done = true;
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvidersService::GetProvider(grpc::CallbackServerContext* context,
                                                        const v1::GetProviderRequest* request,
                                                        v1::Provider* response) {
  absl::StatusOr<Admission> admission = gate_->Admit(*context, Rpc::kGetProvider);
  if (!admission.ok()) return Finish(context, admission.status());
  absl::StatusOr<core::ProviderRecord> record = reg_->GetProvider(request->provider_id());
  if (record.ok()) ToProto(*record, response);
  admission->ticket.Release();
  return Finish(context, record.status());
}

grpc::ServerUnaryReactor* ProvidersService::ListProviders(grpc::CallbackServerContext* context,
                                                          const v1::ListProvidersRequest* request,
                                                          v1::ListProvidersResponse* response) {
  absl::StatusOr<Admission> admission = gate_->Admit(*context, Rpc::kListProviders);
  if (!admission.ok()) return Finish(context, admission.status());
  absl::StatusOr<std::optional<absl::CivilDay>> day =
      ParseOptionalDate(request->in_force_on(), "in_force_on");
  absl::Status status = day.status();
  if (status.ok()) {
    absl::StatusOr<storage::Page<core::ProviderRecord>> page =
        reg_->ListProviders(*day, request->page_size(), request->page_token());
    status = page.status();
    if (page.ok()) {
      for (const core::ProviderRecord& p : page->items) ToProto(p, response->add_providers());
      response->set_next_page_token(page->next_page_token);
    }
  }
  admission->ticket.Release();
  return Finish(context, status);
}

}  // namespace frikort::server
