// CallGate: what every frikort.v1 handler asks first. It refuses a call whose
// deadline has passed or that was cancelled, names the caller, authorizes it
// (server/authz.h), takes one of the caller's concurrent-call slots, and
// audit-logs operator calls and refusals (server/audit.h).
//
// Thread safety: Admit and the checks may be called from any thread; the
// authorizer may be reloaded meanwhile.
#ifndef FRIKORT_SERVER_GATE_H_
#define FRIKORT_SERVER_GATE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "frikort/v1/frikort.pb.h"
#include "grpcpp/server_context.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/services.h"
#include "storage/register.h"

namespace frikort::server {

class CallLimiter;

// One call's slot among its caller's concurrent calls; returned by Release()
// or when the ticket is destroyed. A handler keeps it until it answers, and
// releases it just before, so a caller may start another call as soon as it
// has the answer.
class CallTicket {
 public:
  CallTicket() = default;
  CallTicket(CallTicket&& other) noexcept;
  CallTicket& operator=(CallTicket&& other) noexcept;
  ~CallTicket();

  // Idempotent.
  void Release();

 private:
  friend class CallLimiter;
  CallTicket(CallLimiter* limiter, std::string caller)
      : limiter_(limiter), caller_(std::move(caller)) {}

  CallLimiter* limiter_ = nullptr;
  std::string caller_;
};

// Counts calls in flight per caller name.
class CallLimiter {
 public:
  // max_per_caller 0 = no limit (and no counting: InFlight is then 0).
  explicit CallLimiter(int max_per_caller) : max_(max_per_caller) {}
  CallLimiter(const CallLimiter&) = delete;
  CallLimiter& operator=(const CallLimiter&) = delete;

  // RESOURCE_EXHAUSTED when the caller already has the maximum in flight.
  absl::StatusOr<CallTicket> Acquire(absl::string_view caller);
  int InFlight(absl::string_view caller) const;

 private:
  friend class CallTicket;
  void Release(const std::string& caller);

  const int max_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
};

// What an admitted call carries until it is answered.
struct Admission {
  std::string caller;
  CallTicket ticket;
};

struct GateOptions {
  CallerFn caller = CallerFromContext;
  int max_calls_per_caller = 0;
  AuditSink audit = WriteAuditToStderr;
  // For the pseudonyms in the audit log, and the provider registry of the
  // lookup rule; may be null (no person named, no lookup rule).
  storage::Register* reg = nullptr;
  // "Today" for the lookup rule; may be null (no lookup rule).
  const core::Clock* clock = nullptr;
};

class CallGate {
 public:
  explicit CallGate(GateOptions options);
  CallGate(const CallGate&) = delete;
  CallGate& operator=(const CallGate&) = delete;

  Authorizer& authorizer() { return authorizer_; }
  CallLimiter& limiter() { return limiter_; }

  // Admits the call or says why not: CANCELLED / DEADLINE_EXCEEDED for a call
  // nobody waits for any more, UNAUTHENTICATED / PERMISSION_DENIED from the
  // authorizer, RESOURCE_EXHAUSTED beyond the caller's concurrent calls.
  // `person_id` (if the request names one) is audit-logged as its pseudonym.
  // CheckExemption by a caller whose only role for it is reporter, bound to
  // named providers, is PERMISSION_DENIED unless one of them holds an
  // agreement on direct settlement in force today (domain rule 13).
  // `dest` (Backup's destination) is logged as given (AuditRecord bounds it).
  absl::StatusOr<Admission> Admit(const grpc::CallbackServerContext& context, Rpc rpc,
                                  absl::string_view person_id = {}, absl::string_view dest = {});

  // At the start of every call over mutual TLS, before its message is
  // buffered (server/tls.h CallerCheck): a CN without a line in the authz file
  // is refused (PERMISSION_DENIED, audit-logged; a path that is no frikort.v1
  // method is named "unknown") unless `path` is the health check or
  // reflection, which need no role. Roles are Admit's to check.
  absl::Status AdmitPeer(absl::string_view cn, absl::string_view path);

  // The reporter's provider binding: PERMISSION_DENIED (audit-logged) when a
  // co-payment, or the provider of an update or cancellation, is for a
  // provider the caller may not report for. Checked against the table in
  // force now, so a reload also binds (or revokes) streams already open.
  absl::Status CheckProviders(const Admission& admission, Rpc rpc,
                              const google::protobuf::RepeatedPtrField<v1::CoPayment>& items);
  absl::Status CheckProvider(const Admission& admission, Rpc rpc, absl::string_view provider_id);

  // Writes `record` to the audit log (when the gate keeps one).
  void Audit(const AuditRecord& record) {
    if (options_.audit) options_.audit(FormatAuditLine(record));
  }

 private:
  absl::StatusOr<std::shared_ptr<const Principal>> Reauthorize(const Admission& admission, Rpc rpc);
  absl::Status Denied(absl::string_view caller, Rpc rpc, absl::Status status);
  // The lookup rule above, for an authorized principal.
  absl::Status CheckLookupAgreement(const Principal& principal);
  absl::Status Denied(absl::string_view caller, absl::string_view rpc, absl::Status status);

  const GateOptions options_;
  Authorizer authorizer_;
  CallLimiter limiter_;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_GATE_H_
