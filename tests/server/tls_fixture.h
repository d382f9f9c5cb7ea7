// Shared by the mutual-TLS tests (tests/server/tls_*_test.cc): an in-process
// server with TLS, an authz file and a citizen token key, the certificates of
// every role (tests/testing/certs.h), one client's stubs per identity, and the
// audit lines the server writes.
#ifndef FRIKORT_TESTS_SERVER_TLS_FIXTURE_H_
#define FRIKORT_TESTS_SERVER_TLS_FIXTURE_H_

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

using ::frikort::server::Rpc;
using ::frikort::testing::Credential;
using ::frikort::testing::TestCa;

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
inline std::string BackupDest() {
  return (std::filesystem::temp_directory_path() / absl::StrCat("frikort_tls_backup_", getpid()))
      .string();
}

inline v1::CoPayment Item(const std::string& report, const std::string& provider, int person) {
  CoPaymentSpec s;
  s.report_id = report;
  s.provider_id = provider;
  s.person_id = PersonId(person);
  s.amount_ore = 25000;
  s.service_time = OsloTime(2026, 3, 1, 9);
  return MakeCoPayment(s);
}

inline v1::SubmitCoPaymentsRequest Batch(const std::vector<v1::CoPayment>& items) {
  v1::SubmitCoPaymentsRequest request;
  for (const v1::CoPayment& c : items) *request.add_co_payments() = c;
  return request;
}

// Sends `messages` on one stream, each answered before the next is sent; the
// answers read go to `answers`. The stream's final status.
inline grpc::Status Stream(Client& c, const std::vector<v1::SubmitCoPaymentsRequest>& messages,
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

inline std::vector<RpcCall> EveryRpc() {
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

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_SERVER_TLS_FIXTURE_H_
