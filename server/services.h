// The four frikort.v1 services on gRPC's callback API. Handlers are thin: they
// check the request's shape, convert, call the register (writes complete on its
// commit thread, which then finishes the call), and convert back. No handler
// blocks a gRPC thread: reads are short RocksDB reads done inline; an issuance
// run, which is long, runs on a thread of its own that IssuanceService tracks.
//
// Ownership: the services borrow everything in ServiceContext; it must outlive
// them. Thread safety: gRPC calls the handlers from any thread; they share no
// mutable state except IssuanceService's thread list (guarded).
#ifndef FRIKORT_SERVER_SERVICES_H_
#define FRIKORT_SERVER_SERVICES_H_

#include <functional>
#include <list>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/calendar.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "jobs/issuance.h"
#include "server/requests.h"
#include "storage/register.h"

namespace frikort::server {

// Who is calling, for authorization and the audit logs.
using CallerFn = std::function<std::string(const grpc::CallbackServerContext&)>;

// The default: the subject common name (CN) of the client certificate when the
// channel is authenticated (mutual TLS; "" for a certificate without a CN),
// else "dev:" + the peer address (development mode, plaintext on loopback).
std::string CallerFromContext(const grpc::CallbackServerContext& context);

class CallGate;  // server/gate.h
class Metrics;   // server/metrics.h

struct ServiceContext {
  storage::Register* reg = nullptr;
  jobs::IssuanceJob* job = nullptr;
  const core::RulesTable* rules = nullptr;
  const core::Clock* clock = nullptr;
  // Must equal the register's options: the edge validates ids with them too.
  core::PersonIdOptions id_options;
  // CheckExemption accepts dates from 1 January of (this year - N) to 31
  // December of this year.
  int lookup_years_back = 2;
  // The largest answer gRPC will send (ServerOptions::max_message_bytes).
  int max_message_bytes = 4 << 20;
  // Counts the report outcomes answered; may be null.
  Metrics* metrics = nullptr;
  // Names the caller (CallerFn), authorizes it, limits its calls in flight
  // and keeps the operator audit log; every handler asks it first. Required.
  CallGate* gate = nullptr;
};

// StreamCoPayments is registered raw (server/report_stream.h says why).
using ReportingBase = v1::Reporting::WithCallbackMethod_SubmitCoPayments<
    v1::Reporting::WithRawCallbackMethod_StreamCoPayments<
        v1::Reporting::WithCallbackMethod_UpdatePayment<
            v1::Reporting::WithCallbackMethod_CancelCoPayment<v1::Reporting::Service>>>>;

class ReportingService final : public ReportingBase {
 public:
  explicit ReportingService(const ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* SubmitCoPayments(grpc::CallbackServerContext* context,
                                             const v1::SubmitCoPaymentsRequest* request,
                                             v1::SubmitCoPaymentsResponse* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamCoPayments(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* UpdatePayment(grpc::CallbackServerContext* context,
                                          const v1::UpdatePaymentRequest* request,
                                          v1::ReportResult* response) override;
  grpc::ServerUnaryReactor* CancelCoPayment(grpc::CallbackServerContext* context,
                                            const v1::CancelCoPaymentRequest* request,
                                            v1::ReportResult* response) override;

 private:
  const ServiceContext* const ctx_;
};

class LookupService final : public v1::Lookup::CallbackService {
 public:
  explicit LookupService(const ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* CheckExemption(grpc::CallbackServerContext* context,
                                           const v1::CheckExemptionRequest* request,
                                           v1::CheckExemptionResponse* response) override;

 private:
  const ServiceContext* const ctx_;
};

class RegistryService final : public v1::Registry::CallbackService {
 public:
  explicit RegistryService(const ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* GetLedger(grpc::CallbackServerContext* context,
                                      const v1::GetLedgerRequest* request,
                                      v1::Ledger* response) override;
  grpc::ServerUnaryReactor* SetReservation(grpc::CallbackServerContext* context,
                                           const v1::SetReservationRequest* request,
                                           v1::SetReservationResponse* response) override;
  grpc::ServerUnaryReactor* ListLookups(grpc::CallbackServerContext* context,
                                        const v1::ListLookupsRequest* request,
                                        v1::ListLookupsResponse* response) override;

 private:
  const ServiceContext* const ctx_;
};

class IssuanceService final : public v1::Issuance::CallbackService {
 public:
  explicit IssuanceService(const ServiceContext* ctx) : ctx_(ctx) {}
  // Joins every run thread (JoinRuns()).
  ~IssuanceService() override;

  grpc::ServerUnaryReactor* RunIssuance(grpc::CallbackServerContext* context,
                                        const v1::RunIssuanceRequest* request,
                                        v1::IssuanceRun* response) override;
  grpc::ServerUnaryReactor* ListFreeCards(grpc::CallbackServerContext* context,
                                          const v1::ListFreeCardsRequest* request,
                                          v1::ListFreeCardsResponse* response) override;
  grpc::ServerUnaryReactor* ListPayouts(grpc::CallbackServerContext* context,
                                        const v1::ListPayoutsRequest* request,
                                        v1::ListPayoutsResponse* response) override;

  // Waits for every run thread started so far. Call after the gRPC server has
  // shut down (so no new run can start).
  void JoinRuns();

 private:
  struct RunThread {
    std::thread thread;
    bool done = false;
  };
  // Joins the threads of runs that have finished; called when a run starts so
  // the list stays short.
  void ReapFinishedRuns() ABSL_LOCKS_EXCLUDED(mu_);

  const ServiceContext* const ctx_;
  absl::Mutex mu_;
  std::list<RunThread> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_SERVICES_H_
