// Who may call what: the roles of client certificates, read from the authz
// file, and the decision per call.
//
// The file has one line per client certificate, keyed by the subject's common
// name (CN); `#` starts a comment, blank lines are ignored:
//
//   <CN> <role>[,<role>...] [provider=<id>[,<id>...]|provider=*]
//
// A CN with spaces is written in double quotes ("Oslo kommune legevakt").
// Roles: reporter (Reporting and Lookup), reception (Lookup), operator
// (Registry, Issuance and Providers), citizen-portal (Citizen, each call with the
// person's own token: server/citizen_token.h). A line with the reporter role must say for which
// providers it reports (HPR or organisation numbers, or * for any: an
// enterprise certificate reporting for its physicians); other lines must not.
//
// Thread safety: AuthzTable and Principal are immutable. Authorizer may be
// read by any thread while one thread reloads it; a call keeps the principal
// it was authorized with even if the table is replaced meanwhile.
#ifndef FRIKORT_SERVER_AUTHZ_H_
#define FRIKORT_SERVER_AUTHZ_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "frikort/v1/frikort.pb.h"

namespace frikort::server {

enum class Role : uint8_t {
  kReporter = 1 << 0,
  kReception = 1 << 1,
  kOperator = 1 << 2,
  kCitizenPortal = 1 << 3,
};
using RoleSet = uint8_t;  // Role bits

// The frikort.v1 methods (the health check and reflection need no role).
enum class Rpc {
  kSubmitCoPayments,
  kStreamCoPayments,
  kUpdatePayment,
  kCancelCoPayment,
  kCheckExemption,
  kGetLedger,
  kSetReservation,
  kListLookups,
  kRunIssuance,
  kListFreeCards,
  kListPayouts,
  kBackup,  // frikort.v1.Operations, beside the public contract
  kGetMyOverview,
  kListMyLookups,
  kPutProvider,
  kGetProvider,
  kListProviders,
};
inline constexpr Rpc kAllRpcs[] = {
    Rpc::kSubmitCoPayments, Rpc::kStreamCoPayments, Rpc::kUpdatePayment,  Rpc::kCancelCoPayment,
    Rpc::kCheckExemption,   Rpc::kGetLedger,        Rpc::kSetReservation, Rpc::kListLookups,
    Rpc::kRunIssuance,      Rpc::kListFreeCards,    Rpc::kListPayouts,    Rpc::kBackup,
    Rpc::kGetMyOverview,    Rpc::kListMyLookups,    Rpc::kPutProvider,    Rpc::kGetProvider,
    Rpc::kListProviders,
};

// "frikort.v1.Registry/GetLedger".
absl::string_view RpcName(Rpc rpc);
// The roles any one of which allows the call.
RoleSet RolesFor(Rpc rpc);
// Registry, Issuance and Operations: the calls the operator audit log records.
bool IsOperatorRpc(Rpc rpc);
// "reporter,operator".
std::string FormatRoles(RoleSet roles);

// One client certificate's rights.
struct Principal {
  std::string cn;
  RoleSet roles = 0;
  bool any_provider = false;
  absl::flat_hash_set<std::string> providers;

  bool MayReportFor(absl::string_view provider_id) const {
    return any_provider || providers.contains(provider_id);
  }
};

class AuthzTable {
 public:
  // InvalidArgument "line N: <reason>" for the first malformed line.
  static absl::StatusOr<AuthzTable> Parse(absl::string_view text);
  // Parse of the file's contents; errors name the path. A file without a
  // certificate line is refused (InvalidArgument naming authz_file).
  static absl::StatusOr<AuthzTable> LoadFile(const std::string& path);

  // nullptr when the CN has no line.
  const Principal* Find(absl::string_view cn) const;
  size_t size() const { return by_cn_.size(); }

 private:
  absl::flat_hash_map<std::string, Principal> by_cn_;
};

// The table in force, or none (development mode: every caller has every role
// and may report for any provider).
class Authorizer {
 public:
  Authorizer() = default;
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // Reads `path` and puts its table in force, atomically for the calls that
  // follow. On error the table in force (if any) stays. Returns the number of
  // certificate lines. A file without one is refused like a malformed one.
  absl::StatusOr<size_t> LoadFile(const std::string& path);
  // False in development mode (no table was ever loaded).
  bool enforcing() const;

  // The caller's rights for `rpc`: PERMISSION_DENIED when the CN has no line
  // or none of the roles `rpc` needs; UNAUTHENTICATED for an empty CN.
  absl::StatusOr<std::shared_ptr<const Principal>> Authorize(absl::string_view cn, Rpc rpc) const;
  // Whether the CN may call anything (has a line; always in development
  // mode): Authorize's answer before it looks at the roles.
  absl::Status CheckKnown(absl::string_view cn) const;

 private:
  absl::StatusOr<std::shared_ptr<const Principal>> Find(absl::string_view cn) const;

  mutable absl::Mutex mu_;
  std::shared_ptr<const AuthzTable> table_ ABSL_GUARDED_BY(mu_);
};

// PERMISSION_DENIED naming the first co-payment (by index) whose provider the
// principal may not report for. The call must then store nothing.
absl::Status CheckProviders(const Principal& principal,
                            const google::protobuf::RepeatedPtrField<v1::CoPayment>& items);
// The same for one provider id (UpdatePayment, CancelCoPayment).
absl::Status CheckProvider(const Principal& principal, absl::string_view provider_id);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_AUTHZ_H_
