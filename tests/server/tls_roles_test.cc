// Mutual TLS against an in-process server: every role against every RPC, and
// a certificate whose name is not in the authz file.
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/server/tls_fixture.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;

TEST_F(TlsTest, EveryRoleAgainstEveryRpc) {
  const std::set<Rpc> reporter = {Rpc::kSubmitCoPayments, Rpc::kStreamCoPayments,
                                  Rpc::kUpdatePayment, Rpc::kCancelCoPayment, Rpc::kCheckExemption};
  const std::set<Rpc> reception = {Rpc::kCheckExemption};
  const std::set<Rpc> op = {Rpc::kGetLedger,    Rpc::kSetReservation, Rpc::kListLookups,
                            Rpc::kRunIssuance,  Rpc::kListFreeCards,  Rpc::kListPayouts,
                            Rpc::kBackup,       Rpc::kPutProvider,    Rpc::kGetProvider,
                            Rpc::kListProviders};
  // The reporter's lookups need its provider's agreement (TlsTest.
  // LookupByAReporterNeedsAnAgreementInForceToday).
  PutAgreement(kOwnProvider, "2026-01-01", "");
  // The portal's calls carry a valid person's token: without the role it is
  // PERMISSION_DENIED all the same.
  const std::set<Rpc> portal = {Rpc::kGetMyOverview, Rpc::kListMyLookups};
  const std::map<std::string, std::set<Rpc>> allowed = {
      {"reporter-1", reporter}, {kMunicipality, reporter}, {"desk-1", reception}, {"ops-1", op},
      {"portal-1", portal},     {"stranger", {}},
  };
  const std::vector<RpcCall> rpcs = EveryRpc();
  ASSERT_EQ(rpcs.size(), std::size(server::kAllRpcs));
  int n = 0;
  for (const auto& [cn, may] : allowed) {
    Client c = As(cn);
    HealthAnswer health = HealthCheck(c.channel, "");
    EXPECT_TRUE(health.status.ok()) << cn << ": " << health.status.error_message();
    EXPECT_EQ(health.serving_status, 1) << cn << ": the health check needs no role";
    for (const RpcCall& r : rpcs) {
      grpc::Status s = r.call(c, ++n);
      const std::string what = absl::StrCat(cn, " -> ", server::RpcName(r.rpc));
      if (may.contains(r.rpc)) {
        EXPECT_TRUE(s.ok()) << what << ": " << s.error_code() << " " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << what;
        EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("'", cn, "'"))) << what;
      }
    }
  }
  std::filesystem::remove_all(BackupDest());
}

TEST_F(TlsTest, StrangerCertificateIsDeniedEveryCall) {
  Client c = As("stranger");
  for (const RpcCall& r : EveryRpc()) {
    grpc::Status s = r.call(c, 1);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << server::RpcName(r.rpc);
    EXPECT_THAT(s.error_message(), HasSubstr("'stranger' is not in the authz file"));
  }
  EXPECT_EQ(Entries(1), 0);
}

}  // namespace
}  // namespace frikort::testutil
