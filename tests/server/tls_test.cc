// Mutual TLS and authorization against an in-process server: certificates are
// made here (tests/testing/certs.h). Every role against every RPC, the
// reporter's provider binding (whole batch, also on the stream), a CN not in
// the authz file, a certificate from another CA, none at all, plaintext, the
// identity rules (no intermediate, no CA, one CN), the reload, the
// per-caller call limit, and the audit logs.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/authz.h"
#include "tests/server/test_util.h"
#include "tests/testing/certs.h"
#include "tests/testing/citizen_tokens.h"
#include "tests/testing/id_scan.h"

namespace frikort::testutil {
namespace {

using ::frikort::server::Rpc;
using ::frikort::testing::Credential;
using ::frikort::testing::TestCa;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOwnProvider[] = "1234567";
constexpr char kOtherProvider[] = "7654321";
constexpr char kMunicipality[] = "Oslo kommune legevakt";

constexpr char kAuthz[] = R"(# test clients
reporter-1 reporter provider=1234567
"Oslo kommune legevakt" reporter provider=*
desk-1 reception
ops-1 operator
portal-1 citizen-portal
)";

// One client identity's channel and stubs.
struct Client {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Reporting::Stub> reporting;
  std::unique_ptr<v1::Lookup::Stub> lookup;
  std::unique_ptr<v1::Registry::Stub> registry;
  std::unique_ptr<v1::Issuance::Stub> issuance;
  std::unique_ptr<v1::Operations::Stub> operations;
  std::unique_ptr<v1::Citizen::Stub> citizen;
  std::string person_token;  // a valid token of PersonId(7)
  std::unique_ptr<v1::Providers::Stub> providers;
};

// Where an operator's backup in these tests goes (removed after).
std::string BackupDest() {
  return (std::filesystem::temp_directory_path() / absl::StrCat("frikort_tls_backup_", getpid()))
      .string();
}

v1::CoPayment Item(const std::string& report, const std::string& provider, int person) {
  CoPaymentSpec s;
  s.report_id = report;
  s.provider_id = provider;
  s.person_id = PersonId(person);
  s.amount_ore = 25000;
  s.service_time = OsloTime(2026, 3, 1, 9);
  return MakeCoPayment(s);
}

v1::SubmitCoPaymentsRequest Batch(const std::vector<v1::CoPayment>& items) {
  v1::SubmitCoPaymentsRequest request;
  for (const v1::CoPayment& c : items) *request.add_co_payments() = c;
  return request;
}

// Sends `messages` on one stream, each answered before the next is sent; the
// answers read go to `answers`. The stream's final status.
grpc::Status Stream(Client& c, const std::vector<v1::SubmitCoPaymentsRequest>& messages,
                    std::vector<v1::SubmitCoPaymentsResponse>* answers = nullptr) {
  auto ctx = Ctx();
  auto stream = c.reporting->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsResponse answer;
  for (const v1::SubmitCoPaymentsRequest& m : messages) {
    if (!stream->Write(m) || !stream->Read(&answer)) break;
    if (answers != nullptr) answers->push_back(answer);
  }
  stream->WritesDone();
  while (stream->Read(&answer)) {
    if (answers != nullptr) answers->push_back(answer);
  }
  return stream->Finish();
}

class TlsTest : public ServerTest {
 protected:
  void SetUp() override {
    sec_dir_ = MakeTempDir("frikort-tls-test-");
    ASSERT_FALSE(sec_dir_.empty());
    authz_path_ = sec_dir_ + "/authz.txt";
    WriteAuthz(kAuthz);
    server_cred_ = ca_.Server();
    for (const char* cn :
         {"reporter-1", kMunicipality, "desk-1", "ops-1", "portal-1", "stranger"}) {
      creds_[cn] = ca_.Client(cn);
    }
    ServerTest::SetUp();
  }
  void TearDown() override {
    ServerTest::TearDown();
    std::filesystem::remove_all(sec_dir_);
  }

  void ConfigureServer(server::ServerOptions* options) override {
    options->tls.cert_pem = server_cred_.cert_pem;
    options->tls.key_pem = server_cred_.key_pem;
    options->tls.client_ca_pem = ca_.cert_pem();
    options->authz_file = authz_path_;
    options->max_calls_per_caller = max_calls_;
    const std::string jwks = sec_dir_ + "/jwks.json";
    frikort::testing::WriteJwksFile(jwks, {&token_key_});
    options->citizen_jwks_file = jwks;
    options->citizen_token_issuer = frikort::testing::kTestIssuer;
    options->citizen_token_audience = frikort::testing::kTestAudience;
    options->audit = [this](const std::string& line) {
      absl::MutexLock l(&audit_mu_);
      audit_.push_back(line);
    };
  }
  // The fixture's own stubs (Ledger(), ...) are the operator's.
  std::shared_ptr<grpc::Channel> MakeChannel() override {
    return testing::TlsChannel(Target(), ca_.cert_pem(), &creds_.at("ops-1"));
  }

  std::string Target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  void WriteAuthz(const std::string& text) {
    std::ofstream out(authz_path_, std::ios::trunc);
    out << text;
  }

  Client Connect(const Credential* cred) {
    return Connect(testing::TlsChannel(Target(), ca_.cert_pem(), cred));
  }
  Client As(const std::string& cn) {
    Client c = Connect(&creds_.at(cn));
    c.person_token = token_key_.Sign(frikort::testing::ValidClaims(PersonId(7), clock_->Now()));
    return c;
  }
  static Client Connect(std::shared_ptr<grpc::Channel> channel) {
    Client c;
    c.channel = std::move(channel);
    c.reporting = v1::Reporting::NewStub(c.channel);
    c.lookup = v1::Lookup::NewStub(c.channel);
    c.registry = v1::Registry::NewStub(c.channel);
    c.issuance = v1::Issuance::NewStub(c.channel);
    c.operations = v1::Operations::NewStub(c.channel);
    c.citizen = v1::Citizen::NewStub(c.channel);
    c.providers = v1::Providers::NewStub(c.channel);
    return c;
  }

  std::vector<std::string> AuditLines() {
    absl::MutexLock l(&audit_mu_);
    return audit_;
  }

  // Stores (as the operator) `provider` with one agreement period.
  void PutAgreement(const std::string& provider, const std::string& from, const std::string& to) {
    v1::PutProviderRequest q;
    q.mutable_provider()->set_provider_id(provider);
    q.mutable_provider()->set_name("Legekontoret");
    v1::Agreement* a = q.mutable_provider()->add_agreements();
    a->set_valid_from(from);
    a->set_valid_to(to);
    v1::PutProviderResponse r;
    grpc::Status s = providers_->PutProvider(Ctx().get(), q, &r);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Entries in the person's 2026 ledger (read as the operator).
  int Entries(int person) { return Ledger(PersonId(person), 2026).entries_size(); }

  TestCa ca_{"Frikort test CA"};
  frikort::testing::TokenKey token_key_ = frikort::testing::TokenKey::Ec("tls-test");
  Credential server_cred_;
  std::map<std::string, Credential> creds_;
  std::string sec_dir_;
  std::string authz_path_;
  int max_calls_ = 100;
  absl::Mutex audit_mu_;
  std::vector<std::string> audit_ ABSL_GUARDED_BY(audit_mu_);
};

// One valid call per RPC; `n` keeps report ids apart between callers.
struct RpcCall {
  Rpc rpc;
  std::function<grpc::Status(Client&, int n)> call;
};

std::vector<RpcCall> EveryRpc() {
  const std::string person = PersonId(7);
  return {
      {Rpc::kSubmitCoPayments,
       [](Client& c, int n) {
         v1::SubmitCoPaymentsResponse r;
         return c.reporting->SubmitCoPayments(
             Ctx().get(), Batch({Item(absl::StrCat("u", n), kOwnProvider, 1)}), &r);
       }},
      {Rpc::kStreamCoPayments,
       [](Client& c, int n) {
         return Stream(c, {Batch({Item(absl::StrCat("s", n), kOwnProvider, 1)})});
       }},
      {Rpc::kUpdatePayment,
       [](Client& c, int n) {
         v1::UpdatePaymentRequest q;
         q.set_provider_id(kOwnProvider);
         q.set_report_id(absl::StrCat("u", n));
         q.set_payment(v1::PAID);
         v1::ReportResult r;
         return c.reporting->UpdatePayment(Ctx().get(), q, &r);
       }},
      {Rpc::kCancelCoPayment,
       [](Client& c, int n) {
         v1::CancelCoPaymentRequest q;
         q.set_provider_id(kOwnProvider);
         q.set_report_id(absl::StrCat("s", n));
         v1::ReportResult r;
         return c.reporting->CancelCoPayment(Ctx().get(), q, &r);
       }},
      {Rpc::kCheckExemption,
       [person](Client& c, int) {
         v1::CheckExemptionRequest q;
         q.set_person_id(person);
         v1::CheckExemptionResponse r;
         return c.lookup->CheckExemption(Ctx().get(), q, &r);
       }},
      {Rpc::kGetLedger,
       [person](Client& c, int) {
         v1::GetLedgerRequest q;
         q.set_person_id(person);
         q.set_year(2026);
         v1::Ledger r;
         return c.registry->GetLedger(Ctx().get(), q, &r);
       }},
      {Rpc::kSetReservation,
       [person](Client& c, int) {
         v1::SetReservationRequest q;
         q.set_person_id(person);
         v1::SetReservationResponse r;
         return c.registry->SetReservation(Ctx().get(), q, &r);
       }},
      {Rpc::kListLookups,
       [person](Client& c, int) {
         v1::ListLookupsRequest q;
         q.set_person_id(person);
         v1::ListLookupsResponse r;
         return c.registry->ListLookups(Ctx().get(), q, &r);
       }},
      {Rpc::kRunIssuance,
       [](Client& c, int) {
         v1::RunIssuanceRequest q;
         q.set_dry_run(true);
         v1::IssuanceRun r;
         return c.issuance->RunIssuance(Ctx().get(), q, &r);
       }},
      {Rpc::kListFreeCards,
       [](Client& c, int) {
         v1::ListFreeCardsRequest q;
         q.set_year(2026);
         v1::ListFreeCardsResponse r;
         return c.issuance->ListFreeCards(Ctx().get(), q, &r);
       }},
      {Rpc::kListPayouts,
       [](Client& c, int) {
         v1::ListPayoutsRequest q;
         q.set_year(2026);
         v1::ListPayoutsResponse r;
         return c.issuance->ListPayouts(Ctx().get(), q, &r);
       }},
      {Rpc::kBackup,
       [](Client& c, int) {
         v1::BackupRequest q;
         q.set_dest(BackupDest());
         v1::BackupResponse r;
         return c.operations->Backup(Ctx().get(), q, &r);
       }},
      {Rpc::kGetMyOverview,
       [](Client& c, int) {
         auto ctx = Ctx();
         ctx->AddMetadata("authorization", "Bearer " + c.person_token);
         v1::GetMyOverviewRequest q;
         v1::MyOverview r;
         return c.citizen->GetMyOverview(ctx.get(), q, &r);
       }},
      {Rpc::kListMyLookups,
       [](Client& c, int) {
         auto ctx = Ctx();
         ctx->AddMetadata("authorization", "Bearer " + c.person_token);
         v1::ListMyLookupsRequest q;
         v1::ListLookupsResponse r;
         return c.citizen->ListMyLookups(ctx.get(), q, &r);
       }},
      {Rpc::kPutProvider,
       [](Client& c, int) {
         v1::PutProviderRequest q;
         q.mutable_provider()->set_provider_id(kOwnProvider);
         q.mutable_provider()->set_name("Legekontoret");
         q.mutable_provider()->add_agreements()->set_valid_from("2026-01-01");
         v1::PutProviderResponse r;
         return c.providers->PutProvider(Ctx().get(), q, &r);
       }},
      {Rpc::kGetProvider,
       [](Client& c, int) {
         v1::GetProviderRequest q;
         q.set_provider_id(kOwnProvider);
         v1::Provider r;
         return c.providers->GetProvider(Ctx().get(), q, &r);
       }},
      {Rpc::kListProviders,
       [](Client& c, int) {
         v1::ListProvidersRequest q;
         v1::ListProvidersResponse r;
         return c.providers->ListProviders(Ctx().get(), q, &r);
       }},
  };
}

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

TEST_F(TlsTest, ReporterIsBoundToItsProvidersWholeBatch) {
  Client rep = As("reporter-1");
  v1::SubmitCoPaymentsResponse r;
  // One foreign item among its own: the whole batch is refused, nothing stored.
  grpc::Status s = rep.reporting->SubmitCoPayments(
      Ctx().get(),
      Batch({Item("a1", kOwnProvider, 1), Item("a2", kOtherProvider, 2),
             Item("a3", kOwnProvider, 3)}),
      &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments[1].provider_id"));
  EXPECT_THAT(s.error_message(), HasSubstr(kOtherProvider));
  EXPECT_EQ(r.results_size(), 0);
  EXPECT_EQ(Entries(1), 0);
  EXPECT_EQ(Entries(2), 0);
  EXPECT_EQ(Entries(3), 0);

  // Its own provider only: accepted.
  ASSERT_TRUE(
      rep.reporting
          ->SubmitCoPayments(Ctx().get(),
                             Batch({Item("a1", kOwnProvider, 1), Item("a3", kOwnProvider, 3)}), &r)
          .ok());
  ASSERT_EQ(r.results_size(), 2);
  EXPECT_EQ(r.results(0).outcome(), v1::ACCEPTED);
  EXPECT_EQ(Entries(1), 1);

  // The municipality (provider=*) reports for any physician.
  Client municipality = As(kMunicipality);
  ASSERT_TRUE(municipality.reporting
                  ->SubmitCoPayments(Ctx().get(), Batch({Item("m1", kOtherProvider, 2)}), &r)
                  .ok());
  EXPECT_EQ(r.results(0).outcome(), v1::ACCEPTED);

  // Updating or cancelling another provider's report is refused too.
  v1::CancelCoPaymentRequest cancel;
  cancel.set_provider_id(kOtherProvider);
  cancel.set_report_id("m1");
  v1::ReportResult result;
  s = rep.reporting->CancelCoPayment(Ctx().get(), cancel, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("provider_id"));
  v1::UpdatePaymentRequest update;
  update.set_provider_id(kOtherProvider);
  update.set_report_id("m1");
  update.set_payment(v1::PAID);
  s = rep.reporting->UpdatePayment(Ctx().get(), update, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::Ledger ledger = Ledger(PersonId(2), 2026);
  ASSERT_EQ(ledger.entries_size(), 1);
  EXPECT_FALSE(ledger.entries(0).cancelled());

  // The provider may cancel its own.
  cancel.set_provider_id(kOwnProvider);
  cancel.set_report_id("a1");
  ASSERT_TRUE(rep.reporting->CancelCoPayment(Ctx().get(), cancel, &result).ok());
  EXPECT_EQ(result.outcome(), v1::ACCEPTED) << result.ShortDebugString();
}

// A provider_id that is no provider number (here a national id) is refused
// without being repeated: not to the client, not in the audit log. A provider
// number is named as before (above).
TEST_F(TlsTest, ADenialDoesNotRepeatAProviderIdThatIsNoProviderNumber) {
  Client rep = As("reporter-1");
  const std::string id = PersonId(12);
  v1::SubmitCoPaymentsResponse r;
  grpc::Status s = rep.reporting->SubmitCoPayments(
      Ctx().get(), Batch({Item("b1", kOwnProvider, 1), Item("b2", id, 2)}), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments[1].provider_id"));
  EXPECT_THAT(s.error_message(), HasSubstr("11 characters"));
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(s.error_message())) << s.error_message();

  v1::CancelCoPaymentRequest cancel;
  cancel.set_provider_id(id);
  cancel.set_report_id("b1");
  v1::ReportResult result;
  s = rep.reporting->CancelCoPayment(Ctx().get(), cancel, &result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("provider_id"));
  EXPECT_TRUE(frikort::testing::HasNoIdLikeRun(s.error_message())) << s.error_message();
  EXPECT_EQ(Stream(rep, {Batch({Item("b3", id, 3)})}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  const std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), 3u) << ::testing::PrintToString(lines);
  for (const std::string& line : lines) {
    EXPECT_THAT(line, HasSubstr("\"audit\":\"denied\",\"caller\":\"reporter-1\""));
    EXPECT_THAT(line, Not(HasSubstr(id)));
    EXPECT_THAT(line, Not(HasSubstr("<id>"))) << "described, not redacted: " << line;
  }
}

TEST_F(TlsTest, ForeignProviderOnTheStreamFailsThatMessageAndStoresNothingOfIt) {
  Client rep = As("reporter-1");
  std::vector<v1::SubmitCoPaymentsResponse> answers;
  grpc::Status s = Stream(rep,
                          {Batch({Item("s1", kOwnProvider, 1)}),
                           Batch({Item("s2", kOwnProvider, 2), Item("s3", kOtherProvider, 3)}),
                           Batch({Item("s4", kOwnProvider, 4)})},
                          &answers);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments[1].provider_id"));
  ASSERT_EQ(answers.size(), 1u);  // the message before it was answered
  EXPECT_EQ(answers[0].results(0).outcome(), v1::ACCEPTED);
  EXPECT_EQ(Entries(1), 1);
  EXPECT_EQ(Entries(2), 0);
  EXPECT_EQ(Entries(3), 0);
  EXPECT_EQ(Entries(4), 0);  // nothing after the refused message is read
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

TEST_F(TlsTest, ConcurrentCallsPerCallerAreLimited) {
  StopServer();
  max_calls_ = 2;
  StartServer();
  PutAgreement(kOwnProvider, "2026-01-01", "");  // its lookups need it
  Client rep = As("reporter-1");
  // Two open streams, each with an answered message: two calls in flight.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<
      grpc::ClientReaderWriter<v1::SubmitCoPaymentsRequest, v1::SubmitCoPaymentsResponse>>>
      streams;
  for (int i = 0; i < 2; ++i) {
    contexts.push_back(Ctx());
    streams.push_back(rep.reporting->StreamCoPayments(contexts.back().get()));
    v1::SubmitCoPaymentsResponse answer;
    ASSERT_TRUE(streams.back()->Write(Batch({Item(absl::StrCat("open", i), kOwnProvider, 1)})));
    ASSERT_TRUE(streams.back()->Read(&answer));
  }
  // A third call by the same caller is refused; another caller is not.
  const RpcCall check = EveryRpc()[4];
  ASSERT_EQ(check.rpc, Rpc::kCheckExemption);
  grpc::Status s = check.call(rep, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("'reporter-1' already has 2 calls in flight"));
  Client desk = As("desk-1");
  EXPECT_TRUE(check.call(desk, 0).ok());

  // A stream that has ended has given its slot back before its status: the
  // caller may call again at once, call after call.
  streams[0]->WritesDone();
  ASSERT_TRUE(streams[0]->Finish().ok());
  for (int i = 0; i < 20; ++i) {
    s = check.call(rep, 0);
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }

  // A cancelled stream gives its slot back once the server sees the cancel.
  contexts[1]->TryCancel();
  EXPECT_EQ(streams[1]->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool both_free = false;
  while (!both_free && absl::Now() < deadline) {
    auto held_ctx = Ctx();
    auto held = rep.reporting->StreamCoPayments(held_ctx.get());
    v1::SubmitCoPaymentsResponse answer;
    if (held->Write(Batch({Item("again", kOwnProvider, 1)})) && held->Read(&answer)) {
      both_free = check.call(rep, 0).ok();
    }
    held->WritesDone();
    while (held->Read(&answer)) {
    }
    held->Finish();
    if (!both_free) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(both_free) << "the cancelled stream still holds its slot";
}

TEST_F(TlsTest, LookupByAReporterNeedsAnAgreementInForceToday) {
  auto lookup = [](Client& c) {
    v1::CheckExemptionRequest q;
    q.set_person_id(PersonId(9));
    v1::CheckExemptionResponse r;
    return c.lookup->CheckExemption(Ctx().get(), q, &r);
  };
  Client reporter = As("reporter-1");
  grpc::Status s = lookup(reporter);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("no direct-settlement agreement is in force"));
  // Reception systems and provider=* enterprises are not bound by it.
  Client desk = As("desk-1");
  EXPECT_TRUE(lookup(desk).ok());
  Client municipality = As(kMunicipality);
  EXPECT_TRUE(lookup(municipality).ok());

  PutAgreement(kOwnProvider, "2026-01-01", "");  // today is 2026-06-15
  EXPECT_TRUE(lookup(reporter).ok());
  PutAgreement(kOwnProvider, "2026-01-01", "2026-06-14");
  s = lookup(reporter);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Reporting itself does not need the agreement: the register decides what counts.
  v1::SubmitCoPaymentsResponse r;
  EXPECT_TRUE(
      reporter.reporting->SubmitCoPayments(Ctx().get(), Batch({Item("x1", kOwnProvider, 9)}), &r)
          .ok());
}

TEST_F(TlsTest, LookupLogNamesTheCertificate) {
  const std::string person = PersonId(9);
  for (const std::string cn : {"desk-1", kMunicipality}) {
    Client c = As(cn);
    v1::CheckExemptionRequest q;
    q.set_person_id(person);
    v1::CheckExemptionResponse r;
    ASSERT_TRUE(c.lookup->CheckExemption(Ctx().get(), q, &r).ok()) << cn;
    clock_->Advance(absl::Minutes(1));
  }
  v1::ListLookupsRequest q;
  q.set_person_id(person);
  v1::ListLookupsResponse r;
  ASSERT_TRUE(registry_->ListLookups(Ctx().get(), q, &r).ok());
  std::vector<std::string> callers;
  for (const v1::LookupRecord& l : r.lookups()) callers.push_back(l.caller());
  EXPECT_THAT(callers, ElementsAre(kMunicipality, "desk-1"));  // newest first
}

TEST_F(TlsTest, OperatorCallsAreAuditedWithoutNationalIds) {
  const std::string person = PersonId(11);
  ASSERT_TRUE(SetReservation(person, true).ok());
  v1::Ledger ledger;
  ASSERT_TRUE(GetLedger(person, 2026, &ledger).ok());
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", true, &run).ok());
  Client stranger = As("stranger");
  EXPECT_FALSE(EveryRpc()[5].call(stranger, 0).ok());

  const std::string pseudonym = reg_->AuditPseudonym(person);
  ASSERT_EQ(pseudonym.size(), 58u);  // base32 in groups (storage/register_impl.h)
  std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  const std::string who = "\"audit\":\"operator_call\",\"caller\":\"ops-1\",";
  EXPECT_THAT(lines[0], HasSubstr(who + "\"rpc\":\"frikort.v1.Registry/SetReservation\"," +
                                  "\"person\":\"" + pseudonym + "\"}"));
  EXPECT_THAT(lines[1], HasSubstr(who + "\"rpc\":\"frikort.v1.Registry/GetLedger\"," +
                                  "\"person\":\"" + pseudonym + "\"}"));
  EXPECT_THAT(lines[2], HasSubstr(who + "\"rpc\":\"frikort.v1.Issuance/RunIssuance\"}"));
  EXPECT_THAT(lines[3], HasSubstr("\"audit\":\"denied\",\"caller\":\"stranger\","
                                  "\"rpc\":\"frikort.v1.Registry/GetLedger\",\"reason\":"));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ContainsRegex("^\\{\"time\":\"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z\","));
    EXPECT_THAT(line, Not(HasSubstr(person)));
  }
}

TEST_F(TlsTest, ABackdatedRunIsAuditedWithItsRealDate) {
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("2026-06-01", false, &run).ok());
  EXPECT_EQ(run.as_of(), "2026-06-01");                      // the decision date stays as asked
  ASSERT_TRUE(RunIssuance("", false, &run).ok());            // today's: not backdated
  ASSERT_TRUE(RunIssuance("2026-05-01", true, &run).ok());   // dry: decides nothing
  ASSERT_TRUE(RunIssuance("2026-06-15", false, &run).ok());  // today, named
  std::vector<std::string> backdated;
  for (const std::string& line : AuditLines()) {
    if (absl::StrContains(line, "backdated")) backdated.push_back(line);
  }
  ASSERT_EQ(backdated.size(), 1u) << ::testing::PrintToString(AuditLines());
  EXPECT_THAT(backdated[0], HasSubstr("\"audit\":\"backdated_run\",\"caller\":\"ops-1\","
                                      "\"rpc\":\"frikort.v1.Issuance/RunIssuance\","
                                      "\"as_of\":\"2026-06-01\",\"decided_on\":\"2026-06-15\"}"));
}

// Limits that hold in development mode as well.
class LimitsTest : public ServerTest {};

TEST_F(LimitsTest, AFullBatchFitsAndALargerMessageIsRefused) {
  // The largest batch with the longest report ids, every item rejected with a
  // message: request and answer both fit the 4 MiB limit.
  v1::SubmitCoPaymentsRequest full;
  for (int i = 0; i < server::kMaxBatchItems; ++i) {
    v1::CoPayment c = Item(absl::StrCat(std::string(58, 'r'), "-", 10000 + i), kOwnProvider, 1);
    c.set_person_id(WithBadCheckDigit(PersonId(i % 50)));
    *full.add_co_payments() = c;
  }
  ASSERT_EQ(full.co_payments(0).report_id().size(), 64u);
  v1::SubmitCoPaymentsResponse r;
  grpc::Status s = reporting_->SubmitCoPayments(Ctx(absl::Seconds(60)).get(), full, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(r.results_size(), server::kMaxBatchItems);
  EXPECT_EQ(r.results(0).outcome(), v1::REJECTED);
  EXPECT_LT(r.ByteSizeLong(), 4u << 20);

  v1::SubmitCoPaymentsRequest huge = Batch({Item("big", kOwnProvider, 1)});
  huge.mutable_co_payments(0)->set_report_id(std::string(5 << 20, 'x'));
  s = reporting_->SubmitCoPayments(Ctx().get(), huge, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

TEST_F(LimitsTest, ACallPastItsDeadlineStoresNothing) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() - absl::Seconds(1)));
  v1::SubmitCoPaymentsResponse r;
  grpc::Status s =
      reporting_->SubmitCoPayments(ctx.get(), Batch({Item("late", kOwnProvider, 1)}), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(Ledger(PersonId(1), 2026).entries_size(), 0);
}

}  // namespace
}  // namespace frikort::testutil
