#include "server/authz.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/national_id.h"

namespace frikort::server {
namespace {

constexpr RoleSet Bits(Role r) { return static_cast<RoleSet>(r); }

struct RoleName {
  Role role;
  const char* name;
};
constexpr RoleName kRoleNames[] = {
    {Role::kReporter, "reporter"},
    {Role::kReception, "reception"},
    {Role::kOperator, "operator"},
    {Role::kCitizenPortal, "citizen-portal"},
};

// X.509 allows 64 characters in a CN; UTF-8 may take up to 4 bytes each.
constexpr size_t kMaxCnBytes = 256;

// The prefix CallerFromContext gives callers without a certificate.
constexpr absl::string_view kDevPrefix = "dev:";

absl::Status LineError(int line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", why));
}

std::string JoinRoles(RoleSet roles, absl::string_view separator) {
  std::vector<std::string> names;
  for (const RoleName& r : kRoleNames) {
    if ((roles & Bits(r.role)) != 0) names.push_back(r.name);
  }
  return names.empty() ? "no role" : absl::StrJoin(names, separator);
}

// Splits off the CN (quoted or not) from the start of `line`.
absl::StatusOr<std::string> TakeCn(int n, absl::string_view* line) {
  std::string cn;
  if (absl::ConsumePrefix(line, "\"")) {
    const size_t close = line->find('"');
    if (close == absl::string_view::npos) return LineError(n, "no closing '\"' after the CN");
    cn = std::string(line->substr(0, close));
    line->remove_prefix(close + 1);
    if (!line->empty() && !absl::ascii_isspace(line->front()) && line->front() != '#') {
      return LineError(n, "a space must follow the quoted CN");
    }
  } else {
    size_t end = 0;
    while (end < line->size() && !absl::ascii_isspace((*line)[end]) && (*line)[end] != '#') ++end;
    cn = std::string(line->substr(0, end));
    line->remove_prefix(end);
    if (absl::StrContains(cn, '"')) return LineError(n, "a CN with '\"' must be quoted whole");
  }
  if (cn.empty()) return LineError(n, "empty CN");
  if (cn.size() > kMaxCnBytes) {
    return LineError(n, absl::StrCat("CN of ", cn.size(), " bytes; at most ", kMaxCnBytes));
  }
  for (char c : cn) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return LineError(n, "the CN holds a control character");
    }
  }
  if (absl::StartsWith(cn, kDevPrefix)) {
    return LineError(n, absl::StrCat("CN '", cn, "': the prefix '", kDevPrefix,
                                     "' is reserved for development-mode callers"));
  }
  return cn;
}

absl::StatusOr<RoleSet> ParseRoles(int n, absl::string_view field) {
  RoleSet roles = 0;
  for (absl::string_view name : absl::StrSplit(field, ',')) {
    bool known = false;
    for (const RoleName& r : kRoleNames) {
      if (name == r.name) {
        roles |= Bits(r.role);
        known = true;
      }
    }
    if (!known) {
      return LineError(n, absl::StrCat("unknown role '", name,
                                       "' (roles: reporter, reception, operator, citizen-portal)"));
    }
  }
  return roles;
}

absl::Status ParseProviders(int n, absl::string_view field, Principal* p) {
  absl::string_view list = field;
  if (!absl::ConsumePrefix(&list, "provider=")) {
    return LineError(n, absl::StrCat("unexpected '", field,
                                     "'; expected provider=<id>[,<id>...] "
                                     "or provider=*"));
  }
  if (list == "*") {
    p->any_provider = true;
    return absl::OkStatus();
  }
  for (absl::string_view id : absl::StrSplit(list, ',')) {
    if (id == "*") return LineError(n, "provider=* stands alone, not in a list");
    if (absl::Status s = core::ValidateProviderId(id); !s.ok()) {
      return LineError(n, absl::StrCat("provider '", id, "': ", s.message()));
    }
    p->providers.emplace(id);
  }
  return absl::OkStatus();
}

absl::StatusOr<Principal> ParseLine(int n, absl::string_view line) {
  absl::StatusOr<std::string> cn = TakeCn(n, &line);
  if (!cn.ok()) return cn.status();
  Principal p;
  p.cn = *std::move(cn);
  if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipWhitespace());
  if (fields.empty()) return LineError(n, absl::StrCat("CN '", p.cn, "' has no role"));
  if (fields.size() > 2) return LineError(n, absl::StrCat("unexpected '", fields[2], "'"));
  absl::StatusOr<RoleSet> roles = ParseRoles(n, fields[0]);
  if (!roles.ok()) return roles.status();
  p.roles = *roles;
  const bool reporter = (p.roles & Bits(Role::kReporter)) != 0;
  if (fields.size() == 2) {
    if (absl::Status s = ParseProviders(n, fields[1], &p); !s.ok()) return s;
    if (!reporter) return LineError(n, "provider= applies only to the reporter role");
  } else if (reporter) {
    return LineError(n, "the reporter role needs provider=<id>[,<id>...] or provider=*");
  }
  return p;
}

// Each RPC's full name and the roles that may call it, in enum order.
struct RpcInfo {
  Rpc rpc;
  const char* name;
  RoleSet roles;
};
constexpr RoleSet kReporting = Bits(Role::kReporter);
constexpr RoleSet kLookup = Bits(Role::kReporter) | Bits(Role::kReception);
constexpr RoleSet kOperating = Bits(Role::kOperator);
constexpr RoleSet kCitizen = Bits(Role::kCitizenPortal);
constexpr RpcInfo kRpcInfo[] = {
    {Rpc::kSubmitCoPayments, "frikort.v1.Reporting/SubmitCoPayments", kReporting},
    {Rpc::kStreamCoPayments, "frikort.v1.Reporting/StreamCoPayments", kReporting},
    {Rpc::kUpdatePayment, "frikort.v1.Reporting/UpdatePayment", kReporting},
    {Rpc::kCancelCoPayment, "frikort.v1.Reporting/CancelCoPayment", kReporting},
    {Rpc::kCheckExemption, "frikort.v1.Lookup/CheckExemption", kLookup},
    {Rpc::kGetLedger, "frikort.v1.Registry/GetLedger", kOperating},
    {Rpc::kSetReservation, "frikort.v1.Registry/SetReservation", kOperating},
    {Rpc::kListLookups, "frikort.v1.Registry/ListLookups", kOperating},
    {Rpc::kRunIssuance, "frikort.v1.Issuance/RunIssuance", kOperating},
    {Rpc::kListFreeCards, "frikort.v1.Issuance/ListFreeCards", kOperating},
    {Rpc::kListPayouts, "frikort.v1.Issuance/ListPayouts", kOperating},
    {Rpc::kBackup, "frikort.v1.Operations/Backup", kOperating},
    {Rpc::kGetMyOverview, "frikort.v1.Citizen/GetMyOverview", kCitizen},
    {Rpc::kListMyLookups, "frikort.v1.Citizen/ListMyLookups", kCitizen},
    {Rpc::kPutProvider, "frikort.v1.Providers/PutProvider", kOperating},
    {Rpc::kGetProvider, "frikort.v1.Providers/GetProvider", kOperating},
    {Rpc::kListProviders, "frikort.v1.Providers/ListProviders", kOperating},
};
static_assert(std::size(kRpcInfo) == std::size(kAllRpcs));

constexpr bool InEnumOrder() {
  for (size_t i = 0; i < std::size(kRpcInfo); ++i) {
    if (static_cast<size_t>(kRpcInfo[i].rpc) != i || kAllRpcs[i] != kRpcInfo[i].rpc) return false;
  }
  return true;
}
static_assert(InEnumOrder());

const RpcInfo& Info(Rpc rpc) { return kRpcInfo[static_cast<size_t>(rpc)]; }

}  // namespace

absl::string_view RpcName(Rpc rpc) { return Info(rpc).name; }

RoleSet RolesFor(Rpc rpc) { return Info(rpc).roles; }

bool IsOperatorRpc(Rpc rpc) { return RolesFor(rpc) == Bits(Role::kOperator); }

std::string FormatRoles(RoleSet roles) { return JoinRoles(roles, ","); }

absl::StatusOr<AuthzTable> AuthzTable::Parse(absl::string_view text) {
  AuthzTable table;
  absl::flat_hash_map<std::string, int> first_line;
  int n = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++n;
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line.front() == '#') continue;
    absl::StatusOr<Principal> p = ParseLine(n, line);
    if (!p.ok()) return p.status();
    auto [it, added] = first_line.emplace(p->cn, n);
    if (!added) {
      return LineError(n, absl::StrCat("CN '", p->cn, "' is already on line ", it->second));
    }
    std::string cn = p->cn;
    table.by_cn_.emplace(std::move(cn), *std::move(p));
  }
  return table;
}

absl::StatusOr<AuthzTable> AuthzTable::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("authz file ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<AuthzTable> table = Parse(text.str());
  if (!table.ok()) {
    return absl::Status(table.status().code(),
                        absl::StrCat("authz file ", path, ": ", table.status().message()));
  }
  // An empty table would refuse every call: more likely a truncated or wrong
  // file than an intent, and on reload it would lock every client out.
  if (table->size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("authz_file ", path,
                     ": no client certificate line (only comments or blank lines); at least one "
                     "is needed"));
  }
  return table;
}

const Principal* AuthzTable::Find(absl::string_view cn) const {
  auto it = by_cn_.find(cn);
  return it == by_cn_.end() ? nullptr : &it->second;
}

absl::StatusOr<size_t> Authorizer::LoadFile(const std::string& path) {
  absl::StatusOr<AuthzTable> table = AuthzTable::LoadFile(path);
  if (!table.ok()) return table.status();
  const size_t size = table->size();
  auto fresh = std::make_shared<const AuthzTable>(*std::move(table));
  absl::MutexLock l(&mu_);
  table_ = std::move(fresh);
  return size;
}

bool Authorizer::enforcing() const {
  absl::MutexLock l(&mu_);
  return table_ != nullptr;
}

absl::StatusOr<std::shared_ptr<const Principal>> Authorizer::Find(absl::string_view cn) const {
  std::shared_ptr<const AuthzTable> table;
  {
    absl::MutexLock l(&mu_);
    table = table_;
  }
  if (table == nullptr) {
    static const auto* const kEverything =
        new std::shared_ptr<const Principal>(std::make_shared<const Principal>(
            Principal{.cn = "",
                      .roles = Bits(Role::kReporter) | Bits(Role::kReception) |
                               Bits(Role::kOperator) | Bits(Role::kCitizenPortal),
                      .any_provider = true,
                      .providers = {}}));
    return *kEverything;
  }
  if (cn.empty()) {
    return absl::UnauthenticatedError("the client certificate has no subject common name (CN)");
  }
  const Principal* p = table->Find(cn);
  if (p == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller '", cn, "' is not in the authz file; it may call nothing"));
  }
  // Shares ownership of the table: the principal outlives a reload.
  return std::shared_ptr<const Principal>(std::move(table), p);
}

absl::Status Authorizer::CheckKnown(absl::string_view cn) const { return Find(cn).status(); }

absl::StatusOr<std::shared_ptr<const Principal>> Authorizer::Authorize(absl::string_view cn,
                                                                       Rpc rpc) const {
  absl::StatusOr<std::shared_ptr<const Principal>> p = Find(cn);
  if (!p.ok()) return p;
  if (((*p)->roles & RolesFor(rpc)) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("caller '", cn, "' (", FormatRoles((*p)->roles), ") may not call ",
                     RpcName(rpc), ": that needs the ", JoinRoles(RolesFor(rpc), " or "), " role"));
  }
  return p;
}

absl::Status CheckProviders(const Principal& principal,
                            const google::protobuf::RepeatedPtrField<v1::CoPayment>& items) {
  for (int i = 0; i < items.size(); ++i) {
    const std::string& provider = items[i].provider_id();
    if (!principal.MayReportFor(provider)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "co_payments[", i, "].provider_id: caller '", principal.cn,
          "' may not report for provider '", provider, "'; nothing of this batch was stored"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckProvider(const Principal& principal, absl::string_view provider_id) {
  if (principal.MayReportFor(provider_id)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "provider_id: caller '", principal.cn, "' may not report for provider '", provider_id, "'"));
}

}  // namespace frikort::server
