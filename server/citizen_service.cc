#include "server/citizen_service.h"

#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "server/gate.h"
#include "server/requests.h"

namespace frikort::server {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status,
                                 Admission* admission) {
  if (admission != nullptr) admission->ticket.Release();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The `authorization` metadata's value ("" when absent); UNAUTHENTICATED
// when it is given more than once.
absl::StatusOr<absl::string_view> AuthorizationOf(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto [first, last] = metadata.equal_range("authorization");
  if (first == last) return absl::string_view();
  if (std::next(first) != last) {
    return absl::UnauthenticatedError("authorization: given more than once");
  }
  return absl::string_view(first->second.data(), first->second.size());
}

}  // namespace

absl::StatusOr<std::string> CitizenService::Admit(const grpc::CallbackServerContext& context,
                                                  Rpc rpc, Admission* admission) {
  absl::StatusOr<Admission> admitted = ctx_->gate->Admit(context, rpc);
  if (!admitted.ok()) return admitted.status();
  *admission = *std::move(admitted);
  auto audit = [&](absl::string_view event, absl::string_view person, absl::string_view reason) {
    if (!audit_) return;
    audit_(FormatAuditLine({.time = absl::Now(),
                            .event = event,
                            .caller = admission->caller,
                            .rpc = RpcName(rpc),
                            .person = person,
                            .reason = reason}));
  };
  absl::StatusOr<VerifiedToken> token = [&]() -> absl::StatusOr<VerifiedToken> {
    if (!tokens_->configured()) {
      return absl::FailedPreconditionError(
          "the Citizen service is not configured on this register (it needs "
          "--citizen_jwks_file, --citizen_token_issuer and --citizen_token_audience)");
    }
    absl::StatusOr<absl::string_view> header = AuthorizationOf(context);
    if (!header.ok()) return header.status();
    absl::StatusOr<absl::string_view> bearer = BearerToken(*header);
    if (!bearer.ok()) return bearer.status();
    return tokens_->Verify(*bearer, ctx_->clock->Now());
  }();
  if (!token.ok()) {
    audit("denied", "", token.status().message());
    return token.status();
  }
  audit("citizen_call", ctx_->reg->AuditPseudonym(token->pid), "");
  return std::move(token->pid);
}

grpc::ServerUnaryReactor* CitizenService::GetMyOverview(grpc::CallbackServerContext* context,
                                                        const v1::GetMyOverviewRequest* request,
                                                        v1::MyOverview* response) {
  Admission admission;
  absl::StatusOr<std::string> person = Admit(*context, Rpc::kGetMyOverview, &admission);
  if (!person.ok()) return Finish(context, person.status(), &admission);
  // The operator's ledger read, for the token's person: the same checks.
  v1::GetLedgerRequest ledger_request;
  ledger_request.set_person_id(*person);
  ledger_request.set_year(request->year() != 0 ? request->year()
                                               : static_cast<int>(ctx_->clock->Today().year()));
  absl::Status status = CheckRequest(ledger_request, ctx_->id_options, *ctx_->rules);
  if (!status.ok()) return Finish(context, status, &admission);
  absl::StatusOr<storage::LedgerView> ledger = ctx_->reg->GetLedger(*person, ledger_request.year());
  if (!ledger.ok()) return Finish(context, ledger.status(), &admission);
  absl::StatusOr<std::vector<storage::Payout>> payouts =
      ctx_->reg->ListPersonPayouts(*person, ledger_request.year());
  if (!payouts.ok()) return Finish(context, payouts.status(), &admission);
  v1::Ledger converted;
  ToProto(*ledger, &converted);
  response->set_person_id(converted.person_id());
  response->set_year(converted.year());
  response->set_reserved(converted.reserved());
  response->mutable_schemes()->Swap(converted.mutable_schemes());
  response->mutable_entries()->Swap(converted.mutable_entries());
  for (const storage::Payout& p : *payouts) ToProto(p, response->add_payouts());
  return Finish(context, absl::OkStatus(), &admission);
}

grpc::ServerUnaryReactor* CitizenService::ListMyLookups(grpc::CallbackServerContext* context,
                                                        const v1::ListMyLookupsRequest* request,
                                                        v1::ListLookupsResponse* response) {
  Admission admission;
  absl::StatusOr<std::string> person = Admit(*context, Rpc::kListMyLookups, &admission);
  if (!person.ok()) return Finish(context, person.status(), &admission);
  v1::ListLookupsRequest lookups_request;
  lookups_request.set_person_id(*person);
  lookups_request.set_page_size(request->page_size());
  lookups_request.set_page_token(request->page_token());
  absl::Status status = CheckRequest(lookups_request, ctx_->id_options);
  if (!status.ok()) return Finish(context, status, &admission);
  absl::StatusOr<storage::Page<storage::LookupRecord>> page =
      ctx_->reg->ListLookups(*person, lookups_request.page_size(), lookups_request.page_token());
  if (!page.ok()) return Finish(context, page.status(), &admission);
  for (const storage::LookupRecord& r : page->items) ToProto(r, response->add_lookups());
  response->set_next_page_token(page->next_page_token);
  return Finish(context, absl::OkStatus(), &admission);
}

}  // namespace frikort::server
