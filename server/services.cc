#include "server/services.h"

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/copayment.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "server/convert.h"
#include "server/gate.h"
#include "server/report_stream.h"
#include "server/requests.h"
#include "server/submit_answer.h"

namespace frikort::server {
namespace {

using v1::SubmitCoPaymentsRequest;
using v1::SubmitCoPaymentsResponse;

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The same for an admitted call: its slot is given back before the answer.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status, Admission& admission) {
  admission.ticket.Release();
  return FinishNow(context, status);
}

}  // namespace

std::string CallerFromContext(const grpc::CallbackServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    // Only the CN: the authz file is keyed by it, and a subject alternative
    // name that happened to equal another certificate's CN must not pass.
    for (const grpc::string_ref& cn : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      return std::string(cn.data(), cn.size());
    }
    return "";
  }
  return absl::StrCat("dev:", context.peer());
}

// ---- Reporting ----------------------------------------------------------------

grpc::ServerUnaryReactor* ReportingService::SubmitCoPayments(grpc::CallbackServerContext* context,
                                                             const SubmitCoPaymentsRequest* request,
                                                             SubmitCoPaymentsResponse* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kSubmitCoPayments);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status shape = CheckRequest(*request);
  if (!shape.ok()) return FinishNow(context, shape, *admission);
  absl::Status bound =
      ctx_->gate->CheckProviders(*admission, Rpc::kSubmitCoPayments, request->co_payments());
  if (!bound.ok()) return FinishNow(context, bound, *admission);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::vector<core::CoPaymentInput> items = ToInputs(*request);
  const size_t expected = items.size();
  ctx_->reg->SubmitAsync(
      std::move(items), [this, reactor, response, expected, admission = *std::move(admission)](
                            absl::StatusOr<std::vector<storage::ReportResult>> results) mutable {
        admission.ticket.Release();
        reactor->Finish(ToGrpcStatus(FillSubmitResponse(results, expected, *ctx_, response)));
      });
  return reactor;
}

ReportStream* ReportingService::StreamCoPayments(grpc::CallbackServerContext* context) {
  return NewReportStream(ctx_, ctx_->gate->Admit(*context, Rpc::kStreamCoPayments));
}

namespace {

// Completes a unary call answering one ReportResult; the call's admission is
// held until then.
storage::Register::ResultDone FinishWithResult(grpc::ServerUnaryReactor* reactor,
                                               v1::ReportResult* response, Admission admission) {
  return [reactor, response,
          admission = std::move(admission)](absl::StatusOr<storage::ReportResult> result) mutable {
    if (result.ok()) ToProto(*result, response);
    admission.ticket.Release();
    reactor->Finish(ToGrpcStatus(result.status()));
  };
}

}  // namespace

grpc::ServerUnaryReactor* ReportingService::UpdatePayment(grpc::CallbackServerContext* context,
                                                          const v1::UpdatePaymentRequest* request,
                                                          v1::ReportResult* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kUpdatePayment);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status bound =
      ctx_->gate->CheckProvider(*admission, Rpc::kUpdatePayment, request->provider_id());
  if (!bound.ok()) return FinishNow(context, bound, *admission);
  // An unknown number is a malformed request; a known but wrong status is the
  // register's per-report answer (REJECTED INVALID_PAYMENT_STATUS).
  absl::StatusOr<core::Payment> payment = CheckRequest(*request);
  if (!payment.ok()) return FinishNow(context, payment.status(), *admission);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_->reg->UpdatePaymentAsync(request->provider_id(), request->report_id(),
                                static_cast<int>(*payment),
                                FinishWithResult(reactor, response, *std::move(admission)));
  return reactor;
}

grpc::ServerUnaryReactor* ReportingService::CancelCoPayment(
    grpc::CallbackServerContext* context, const v1::CancelCoPaymentRequest* request,
    v1::ReportResult* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kCancelCoPayment);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status bound =
      ctx_->gate->CheckProvider(*admission, Rpc::kCancelCoPayment, request->provider_id());
  if (!bound.ok()) return FinishNow(context, bound, *admission);
  if (absl::Status reason = CheckRequest(*request, ctx_->id_options); !reason.ok())
    return FinishNow(context, reason, *admission);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ctx_->reg->CancelAsync(request->provider_id(), request->report_id(), request->reason(),
                         FinishWithResult(reactor, response, *std::move(admission)));
  return reactor;
}

// ---- Lookup -------------------------------------------------------------------

grpc::ServerUnaryReactor* LookupService::CheckExemption(grpc::CallbackServerContext* context,
                                                        const v1::CheckExemptionRequest* request,
                                                        v1::CheckExemptionResponse* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kCheckExemption);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::StatusOr<ExemptionQuery> query =
      CheckRequest(*request, ctx_->id_options, ctx_->clock->Today(), ctx_->lookup_years_back);
  if (!query.ok()) return FinishNow(context, query.status(), *admission);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::CivilDay date = query->date;
  const std::string caller = admission->caller;  // the admission moves into the callback
  // Answered once the lookup is logged (from the register's audit thread),
  // or refused (from a lookup reader or this thread).
  ctx_->reg->CheckExemptionAsync(
      request->person_id(), date, query->category, caller,
      [reactor, request, response, date, admission = *std::move(admission)](
          absl::StatusOr<std::vector<storage::SchemeExemption>> exemptions) mutable {
        if (exemptions.ok()) {
          response->set_person_id(request->person_id());
          response->set_date(core::FormatDate(date));
          for (const storage::SchemeExemption& e : *exemptions) {
            ToProto(e, response->add_exemptions());
          }
        }
        admission.ticket.Release();
        reactor->Finish(ToGrpcStatus(exemptions.status()));
      });
  return reactor;
}

// ---- Registry -----------------------------------------------------------------

grpc::ServerUnaryReactor* RegistryService::GetLedger(grpc::CallbackServerContext* context,
                                                     const v1::GetLedgerRequest* request,
                                                     v1::Ledger* response) {
  absl::StatusOr<Admission> admission =
      ctx_->gate->Admit(*context, Rpc::kGetLedger, request->person_id());
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status status = CheckRequest(*request, ctx_->id_options, *ctx_->rules);
  if (status.ok()) {
    absl::StatusOr<storage::LedgerView> ledger = ctx_->reg->GetLedgerPage(
        request->person_id(), request->year(), request->page_size(), request->page_token());
    status = ledger.status();
    if (ledger.ok()) {
      ToProto(*ledger, response);
      status =
          CheckAnswerSize(*response, ctx_->max_message_bytes, "ask for smaller pages (page_size)");
    }
  }
  if (!status.ok()) response->Clear();
  return FinishNow(context, status, *admission);
}

grpc::ServerUnaryReactor* RegistryService::SetReservation(grpc::CallbackServerContext* context,
                                                          const v1::SetReservationRequest* request,
                                                          v1::SetReservationResponse* response) {
  absl::StatusOr<Admission> admission =
      ctx_->gate->Admit(*context, Rpc::kSetReservation, request->person_id());
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status id = CheckRequest(*request, ctx_->id_options);
  if (!id.ok()) return FinishNow(context, id, *admission);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool reserved = request->reserved();
  std::string person_id = request->person_id();
  response->set_person_id(person_id);
  ctx_->reg->SetReservationAsync(std::move(person_id), reserved,
                                 [reactor, response, reserved,
                                  admission = *std::move(admission)](absl::Status status) mutable {
                                   if (status.ok()) response->set_reserved(reserved);
                                   admission.ticket.Release();
                                   reactor->Finish(ToGrpcStatus(status));
                                 });
  return reactor;
}

grpc::ServerUnaryReactor* RegistryService::ListLookups(grpc::CallbackServerContext* context,
                                                       const v1::ListLookupsRequest* request,
                                                       v1::ListLookupsResponse* response) {
  absl::StatusOr<Admission> admission =
      ctx_->gate->Admit(*context, Rpc::kListLookups, request->person_id());
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status status = CheckRequest(*request, ctx_->id_options);
  if (status.ok()) {
    absl::StatusOr<storage::Page<storage::LookupRecord>> page =
        ctx_->reg->ListLookups(request->person_id(), request->page_size(), request->page_token());
    status = page.status();
    if (page.ok()) {
      for (const storage::LookupRecord& r : page->items) ToProto(r, response->add_lookups());
      response->set_next_page_token(page->next_page_token);
    }
  }
  return FinishNow(context, status, *admission);
}

// ---- Issuance -----------------------------------------------------------------

IssuanceService::~IssuanceService() { JoinRuns(); }

void IssuanceService::JoinRuns() {
  std::list<RunThread> runs;
  {
    absl::MutexLock l(&mu_);
    runs.swap(runs_);  // nodes (and the threads' iterators) stay valid
  }
  for (RunThread& r : runs) {
    if (r.thread.joinable()) r.thread.join();
  }
}

void IssuanceService::ReapFinishedRuns() {
  std::list<RunThread> finished;
  {
    absl::MutexLock l(&mu_);
    for (auto it = runs_.begin(); it != runs_.end();) {
      auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), runs_, it);
      it = next;
    }
  }
  for (RunThread& r : finished) {
    if (r.thread.joinable()) r.thread.join();
  }
}

grpc::ServerUnaryReactor* IssuanceService::RunIssuance(grpc::CallbackServerContext* context,
                                                       const v1::RunIssuanceRequest* request,
                                                       v1::IssuanceRun* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kRunIssuance);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::StatusOr<std::optional<absl::CivilDay>> as_of =
      CheckRequest(*request, ctx_->clock->Today());
  if (!as_of.ok()) return FinishNow(context, as_of.status(), *admission);
  ReapFinishedRuns();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool dry_run = request->dry_run();
  const std::optional<absl::CivilDay> day = *as_of;
  if (const absl::CivilDay today = ctx_->clock->Today(); day && *day < today && !dry_run) {
    // Written before the run starts, so a backdated run leaves its trail even
    // if it fails half-way.
    const std::string as_of_text = core::FormatDate(*day), today_text = core::FormatDate(today);
    ctx_->gate->Audit({.time = absl::Now(),
                       .event = "backdated_run",
                       .caller = admission->caller,
                       .rpc = RpcName(Rpc::kRunIssuance),
                       .person = "",
                       .reason = "",
                       .as_of = as_of_text,
                       .decided_on = today_text});
  }
  absl::MutexLock l(&mu_);
  auto it = runs_.emplace(runs_.end());
  // The thread cannot mark itself done before `thread` is assigned: it needs mu_.
  it->thread = std::thread(
      [this, it, reactor, response, day, dry_run, admission = *std::move(admission)]() mutable {
        absl::StatusOr<jobs::RunSummary> summary = ctx_->job->Run(day, dry_run);
        if (summary.ok()) ToProto(*summary, response);
        admission.ticket.Release();
        reactor->Finish(ToGrpcStatus(summary.status()));
        absl::MutexLock l(&mu_);
        it->done = true;
      });
  return reactor;
}

grpc::ServerUnaryReactor* IssuanceService::ListFreeCards(grpc::CallbackServerContext* context,
                                                         const v1::ListFreeCardsRequest* request,
                                                         v1::ListFreeCardsResponse* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kListFreeCards);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::StatusOr<std::optional<absl::CivilDay>> issued_on = CheckRequest(*request, *ctx_->rules);
  absl::Status status = issued_on.status();
  if (status.ok()) {
    absl::StatusOr<storage::Page<storage::Card>> page = ctx_->reg->ListFreeCards(
        request->year(), *issued_on, request->page_size(), request->page_token());
    status = page.status();
    if (page.ok()) {
      for (const storage::Card& c : page->items) ToProto(c, response->add_cards());
      response->set_next_page_token(page->next_page_token);
    }
  }
  return FinishNow(context, status, *admission);
}

grpc::ServerUnaryReactor* IssuanceService::ListPayouts(grpc::CallbackServerContext* context,
                                                       const v1::ListPayoutsRequest* request,
                                                       v1::ListPayoutsResponse* response) {
  absl::StatusOr<Admission> admission = ctx_->gate->Admit(*context, Rpc::kListPayouts);
  if (!admission.ok()) return FinishNow(context, admission.status());
  absl::Status status = CheckRequest(*request, *ctx_->rules);
  if (status.ok()) {
    absl::StatusOr<storage::Page<storage::Payout>> page = ctx_->reg->ListPayouts(
        request->run_id(), request->year(), request->page_size(), request->page_token());
    status = page.status();
    if (page.ok()) {
      for (const storage::Payout& p : page->items) ToProto(p, response->add_payouts());
      response->set_next_page_token(page->next_page_token);
    }
  }
  return FinishNow(context, status, *admission);
}

}  // namespace frikort::server
