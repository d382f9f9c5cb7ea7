// frikort.v1.Citizen: the person's own view, served to the national health
// portal. The calling system needs the citizen-portal role, and every call
// carries the logged-in person's token (server/citizen_token.h) in the
// `authorization: Bearer <JWT>` metadata, in development mode too. The
// person is always the token's pid: no request names one, so a portal can
// read a person only with that person's token.
//
// Each call is one audit line (event "citizen_call", the portal's name and
// the person's pseudonym); a refused token is a "denied" line without a
// person. A person's reads of their own data are not added to the lookup
// log, which records who else looked them up.
//
// Ownership: borrows the ServiceContext and the verifier, which must outlive
// it. Thread safety: like the other services (no mutable state of its own).
#ifndef FRIKORT_SERVER_CITIZEN_SERVICE_H_
#define FRIKORT_SERVER_CITIZEN_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/citizen_token.h"
#include "server/services.h"

namespace frikort::server {

struct Admission;  // server/gate.h

class CitizenService final : public v1::Citizen::CallbackService {
 public:
  CitizenService(const ServiceContext* ctx, const CitizenTokenVerifier* tokens, AuditSink audit)
      : ctx_(ctx), tokens_(tokens), audit_(std::move(audit)) {}

  grpc::ServerUnaryReactor* GetMyOverview(grpc::CallbackServerContext* context,
                                          const v1::GetMyOverviewRequest* request,
                                          v1::MyOverview* response) override;
  grpc::ServerUnaryReactor* ListMyLookups(grpc::CallbackServerContext* context,
                                          const v1::ListMyLookupsRequest* request,
                                          v1::ListLookupsResponse* response) override;

 private:
  // Admits the call (role, concurrent calls), checks that the service is
  // configured and verifies the person's token; the person's id, or why not.
  absl::StatusOr<std::string> Admit(const grpc::CallbackServerContext& context, Rpc rpc,
                                    Admission* admission);

  const ServiceContext* const ctx_;
  const CitizenTokenVerifier* const tokens_;
  const AuditSink audit_;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_CITIZEN_SERVICE_H_
