// Mutual TLS against an in-process server: who may connect (another CA, no
// certificate, plaintext; the identity rules: a common name, one only, no
// intermediate, no CA) and the authz file's reload.
#include <filesystem>
#include <string>
#include <vector>

#include "tests/server/tls_fixture.h"

namespace frikort::testutil {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(TlsTest, OtherCaNoCertificateAndPlaintextFailTheHandshake) {
  // A CA with the same name but another key: its "ops-1" is not ours.
  TestCa rogue_ca("Frikort test CA");
  Credential impostor = rogue_ca.Client("ops-1");
  std::vector<std::pair<std::string, Client>> refused;
  refused.emplace_back("other CA", Connect(&impostor));
  refused.emplace_back("no certificate", Connect(nullptr));
  refused.emplace_back("plaintext",
                       Connect(grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials())));
  for (auto& [what, c] : refused) {
    HealthAnswer health = HealthCheck(c.channel, "", absl::Seconds(5));
    EXPECT_EQ(health.status.error_code(), grpc::StatusCode::UNAVAILABLE) << what;
    v1::GetLedgerRequest q;
    q.set_person_id(PersonId(1));
    q.set_year(2026);
    v1::Ledger ledger;
    grpc::Status s = c.registry->GetLedger(Ctx(absl::Seconds(5)).get(), q, &ledger);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << what << ": " << s.error_message();
    v1::SubmitCoPaymentsResponse r;
    s = c.reporting->SubmitCoPayments(Ctx(absl::Seconds(5)).get(),
                                      Batch({Item("x", kOwnProvider, 1)}), &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << what;
  }
  EXPECT_EQ(Entries(1), 0);
}

TEST_F(TlsTest, CertificateWithoutCommonNameIsUnauthenticated) {
  Credential nameless = ca_.Client("");
  Client c = Connect(&nameless);
  v1::CheckExemptionRequest q;
  q.set_person_id(PersonId(1));
  v1::CheckExemptionResponse r;
  grpc::Status s = c.lookup->CheckExemption(Ctx().get(), q, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("common name"));
}

// The identity attack: a client certificate that is also a CA mints one with
// the operator's CN and presents it with itself as the chain. The handshake
// accepts that chain; the server must not.
TEST_F(TlsTest, LeafFromAClientIntermediateIsRefusedAndNothingIsAudited) {
  TestCa intermediate("reporter-2", ca_);
  Credential minted = intermediate.Client("ops-1");
  Client c = Connect(&minted);
  for (const RpcCall& r : EveryRpc()) {
    grpc::Status s = r.call(c, 1);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << server::RpcName(r.rpc) << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("client certificate refused"));
  }
  EXPECT_THAT(AuditLines(), ElementsAre()) << "a refused identity was audited";
  EXPECT_EQ(Entries(1), 0);
  std::filesystem::remove_all(BackupDest());
}

TEST_F(TlsTest, ClientCertificateThatIsACaIsRefused) {
  // The client CA signed it, its CN is in the authz file, but it is a CA.
  TestCa client_ca_cert("ops-1", ca_);
  Credential itself = client_ca_cert.Itself();
  Client c = Connect(&itself);
  grpc::Status s = EveryRpc()[5].call(c, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("itself a CA certificate"));
  EXPECT_THAT(AuditLines(), ElementsAre());
}

TEST_F(TlsTest, SubjectWithTwoCommonNamesIsRefused) {
  Credential two = ca_.ClientWithCns({"ops-1", "stranger"});
  Client c = Connect(&two);
  grpc::Status s = EveryRpc()[5].call(c, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("2 common names"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("ops-1")));
  EXPECT_THAT(AuditLines(), ElementsAre());
}

TEST_F(TlsTest, EmptyAuthzFileIsRefusedOnReloadAndTheTableStays) {
  WriteAuthz("# everyone removed\n\n");
  absl::StatusOr<size_t> n = server_->ReloadAuthz();
  ASSERT_FALSE(n.ok()) << *n;
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(n.status().message()),
              HasSubstr("authz_file " + authz_path_ + ": no client certificate line"));
  Client ops = As("ops-1");
  EXPECT_TRUE(EveryRpc()[5].call(ops, 0).ok());
}

TEST_F(TlsTest, ReloadPutsANewTableInForceAndRefusesAMalformedOne) {
  Client stranger = As("stranger");
  Client rep = As("reporter-1");
  const RpcCall get_ledger = EveryRpc()[5];
  ASSERT_EQ(get_ledger.rpc, Rpc::kGetLedger);
  EXPECT_EQ(get_ledger.call(stranger, 0).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // reporter-1 has a stream open across the reload.
  auto stream_ctx = Ctx();
  auto stream = rep.reporting->StreamCoPayments(stream_ctx.get());
  v1::SubmitCoPaymentsResponse answer;
  ASSERT_TRUE(stream->Write(Batch({Item("before", kOwnProvider, 1)})));
  ASSERT_TRUE(stream->Read(&answer));
  EXPECT_EQ(answer.results(0).outcome(), v1::ACCEPTED);

  // The stranger becomes an operator; reporter-1 is revoked.
  WriteAuthz("stranger operator\nops-1 operator\n");
  absl::StatusOr<size_t> n = server_->ReloadAuthz();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);
  EXPECT_TRUE(get_ledger.call(stranger, 0).ok());
  // The open stream's next message is checked against the new table.
  stream->Write(Batch({Item("after", kOwnProvider, 2)}));
  EXPECT_FALSE(stream->Read(&answer));
  grpc::Status ended = stream->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::PERMISSION_DENIED) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr("'reporter-1' is not in the authz file"));
  EXPECT_EQ(Entries(1), 1);
  EXPECT_EQ(Entries(2), 0);
  v1::SubmitCoPaymentsResponse r;
  grpc::Status s =
      rep.reporting->SubmitCoPayments(Ctx().get(), Batch({Item("r1", kOwnProvider, 1)}), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // A malformed file is refused with its line number; the table stays.
  WriteAuthz("ops-1 operator\n# fine so far\nstranger superuser\n");
  n = server_->ReloadAuthz();
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("line 3: unknown role 'superuser'"));
  EXPECT_TRUE(get_ledger.call(stranger, 0).ok());
  EXPECT_EQ(rep.reporting->SubmitCoPayments(Ctx().get(), Batch({Item("r1", kOwnProvider, 1)}), &r)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace frikort::testutil
