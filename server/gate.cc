#include "server/gate.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/calendar.h"
#include "core/national_id.h"
#include "core/provider.h"

namespace frikort::server {
namespace {

// A refusal of the provider binding (authz.h) repeats the provider_id it
// refused. That is fine for a provider number (1 to 9 digits, validated), but
// any other text could hold a national id: then `field` is named with the
// text's length instead, and that goes to the client and the audit log.
absl::Status WithoutForeignText(absl::Status denial, const Principal& principal,
                                absl::string_view field, absl::string_view provider_id,
                                absl::string_view tail) {
  if (core::ValidateProviderId(provider_id).ok()) return denial;
  return absl::PermissionDeniedError(absl::StrCat(
      field, ": caller '", principal.cn, "' may not report for a provider_id that is no provider ",
      "number (", provider_id.size(), " characters)", tail));
}

}  // namespace

CallTicket::CallTicket(CallTicket&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), caller_(std::move(other.caller_)) {}

CallTicket& CallTicket::operator=(CallTicket&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    caller_ = std::move(other.caller_);
  }
  return *this;
}

CallTicket::~CallTicket() { Release(); }

void CallTicket::Release() {
  if (limiter_ != nullptr) std::exchange(limiter_, nullptr)->Release(caller_);
}

absl::StatusOr<CallTicket> CallLimiter::Acquire(absl::string_view caller) {
  if (max_ <= 0) return CallTicket();  // no limit: nothing to count
  std::string name(caller);
  absl::MutexLock l(&mu_);
  int& n = in_flight_[name];
  if (max_ > 0 && n >= max_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("caller '", caller, "' already has ", n,
                     " calls in flight, the most allowed; retry when one has finished"));
  }
  ++n;
  return CallTicket(this, std::move(name));
}

int CallLimiter::InFlight(absl::string_view caller) const {
  absl::MutexLock l(&mu_);
  auto it = in_flight_.find(caller);
  return it == in_flight_.end() ? 0 : it->second;
}

void CallLimiter::Release(const std::string& caller) {
  absl::MutexLock l(&mu_);
  auto it = in_flight_.find(caller);
  if (it == in_flight_.end()) return;
  // Dropping idle callers keeps the map as small as the callers in flight.
  if (--it->second <= 0) in_flight_.erase(it);
}

CallGate::CallGate(GateOptions options)
    : options_(std::move(options)), limiter_(options_.max_calls_per_caller) {}

absl::StatusOr<Admission> CallGate::Admit(const grpc::CallbackServerContext& context, Rpc rpc,
                                          absl::string_view person_id, absl::string_view dest) {
  // A call nobody waits for is not started: its answer could not be delivered.
  if (context.IsCancelled()) {
    return absl::CancelledError(absl::StrCat(RpcName(rpc), ": cancelled before it was served"));
  }
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError(
        absl::StrCat(RpcName(rpc), ": the deadline passed before the call was served"));
  }
  Admission a;
  a.caller = options_.caller ? options_.caller(context) : CallerFromContext(context);
  absl::StatusOr<std::shared_ptr<const Principal>> principal = authorizer_.Authorize(a.caller, rpc);
  if (!principal.ok()) return Denied(a.caller, rpc, principal.status());
  if (rpc == Rpc::kCheckExemption && authorizer_.enforcing()) {
    if (absl::Status s = CheckLookupAgreement(**principal); !s.ok()) {
      return Denied(a.caller, rpc, s);
    }
  }
  absl::StatusOr<CallTicket> ticket = limiter_.Acquire(a.caller);
  if (!ticket.ok()) return ticket.status();
  a.ticket = *std::move(ticket);
  if (IsOperatorRpc(rpc) && options_.audit) {
    const std::string person =
        person_id.empty() || options_.reg == nullptr ? "" : options_.reg->AuditPseudonym(person_id);
    options_.audit(FormatAuditLine({.time = absl::Now(),
                                    .event = "operator_call",
                                    .caller = a.caller,
                                    .rpc = RpcName(rpc),
                                    .person = person,
                                    .reason = "",
                                    .dest = dest}));
  }
  return a;
}

absl::Status CallGate::AdmitPeer(absl::string_view cn, absl::string_view path) {
  if (absl::StartsWith(path, "/grpc.health.v1.Health/") ||
      absl::StartsWith(path, "/grpc.reflection.")) {
    return absl::OkStatus();
  }
  absl::Status s = authorizer_.CheckKnown(cn);
  if (s.ok()) return s;
  absl::string_view rpc = "unknown";  // the path is client input: only a known name is logged
  if (absl::ConsumePrefix(&path, "/")) {
    for (Rpc r : kAllRpcs) {
      if (path == RpcName(r)) rpc = RpcName(r);
    }
  }
  return Denied(cn, rpc, std::move(s));
}

absl::Status CallGate::CheckProviders(
    const Admission& admission, Rpc rpc,
    const google::protobuf::RepeatedPtrField<v1::CoPayment>& items) {
  absl::StatusOr<std::shared_ptr<const Principal>> now = Reauthorize(admission, rpc);
  if (!now.ok()) return now.status();
  absl::Status s = server::CheckProviders(**now, items);
  if (s.ok()) return s;
  for (int i = 0; i < items.size(); ++i) {  // the item refused: the first foreign one
    if ((*now)->MayReportFor(items[i].provider_id())) continue;
    s = WithoutForeignText(std::move(s), **now, absl::StrCat("co_payments[", i, "].provider_id"),
                           items[i].provider_id(), "; nothing of this batch was stored");
    break;
  }
  return Denied(admission.caller, rpc, s);
}

absl::Status CallGate::CheckProvider(const Admission& admission, Rpc rpc,
                                     absl::string_view provider_id) {
  absl::StatusOr<std::shared_ptr<const Principal>> now = Reauthorize(admission, rpc);
  if (!now.ok()) return now.status();
  absl::Status s = server::CheckProvider(**now, provider_id);
  if (s.ok()) return s;
  return Denied(admission.caller, rpc,
                WithoutForeignText(std::move(s), **now, "provider_id", provider_id, ""));
}

absl::StatusOr<std::shared_ptr<const Principal>> CallGate::Reauthorize(const Admission& admission,
                                                                       Rpc rpc) {
  absl::StatusOr<std::shared_ptr<const Principal>> now =
      authorizer_.Authorize(admission.caller, rpc);
  if (!now.ok()) return Denied(admission.caller, rpc, now.status());
  return now;
}

absl::Status CallGate::CheckLookupAgreement(const Principal& principal) {
  // Reception systems and vetted enterprises (provider=*) are not bound by it.
  if ((principal.roles & static_cast<RoleSet>(Role::kReception)) != 0 || principal.any_provider) {
    return absl::OkStatus();
  }
  if (options_.reg == nullptr || options_.clock == nullptr) return absl::OkStatus();
  const absl::CivilDay today = core::OsloDate(options_.clock->Now());
  for (const std::string& id : principal.providers) {
    absl::StatusOr<core::ProviderRecord> p = options_.reg->GetProvider(id);
    if (p.ok() && core::InForce(p->agreements, today)) return absl::OkStatus();
    if (!p.ok() && p.status().code() != absl::StatusCode::kNotFound) return p.status();
  }
  return absl::PermissionDeniedError(
      "CheckExemption: no direct-settlement agreement is in force today for a provider this "
      "certificate reports for; only providers with an agreement may use the lookup");
}

absl::Status CallGate::Denied(absl::string_view caller, Rpc rpc, absl::Status status) {
  return Denied(caller, RpcName(rpc), std::move(status));
}

absl::Status CallGate::Denied(absl::string_view caller, absl::string_view rpc,
                              absl::Status status) {
  if (options_.audit) {
    options_.audit(FormatAuditLine({.time = absl::Now(),
                                    .event = "denied",
                                    .caller = caller,
                                    .rpc = rpc,
                                    .person = "",
                                    .reason = status.message(),
                                    .dest = ""}));
  }
  return status;
}

}  // namespace frikort::server
