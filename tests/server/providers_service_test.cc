// frikort.v1.Providers through a real gRPC channel, under the deployed rules
// (direct settlement required from 2021): the registry's calls, their
// refusals, and a report's and a ledger entry's reason for not counting.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/ids.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ProvidersServiceTest : public ServerTest {
 protected:
  bool RequireAgreements() const override { return true; }

  grpc::Status Put(const std::string& id, const std::string& from, const std::string& to,
                   v1::PutProviderResponse* response) {
    v1::PutProviderRequest request;
    v1::Provider* p = request.mutable_provider();
    p->set_provider_id(id);
    p->set_name("Legekontoret");
    v1::Agreement* a = p->add_agreements();
    a->set_valid_from(from);
    a->set_valid_to(to);
    a->set_version("2021-1");
    return providers_->PutProvider(Ctx().get(), request, response);
  }

  const std::string person_ = PersonId(1);
  const absl::Time march_ = absl::FromUnixSeconds(1772359200);  // 2026-03-01 10:00 UTC
};

TEST_F(ProvidersServiceTest, AReportWithoutAnAgreementSaysWhyItDoesNotCount) {
  v1::ReportResult r = Report("r1", person_, 50000, march_);
  EXPECT_FALSE(r.counted());
  EXPECT_EQ(r.not_counted_reason(), v1::NO_DIRECT_SETTLEMENT);
  v1::Ledger ledger = Ledger(person_, 2026);
  ASSERT_EQ(ledger.entries_size(), 1);
  EXPECT_EQ(ledger.entries(0).not_counted_reason(), v1::NO_DIRECT_SETTLEMENT);

  v1::PutProviderResponse put;
  grpc::Status s = Put("1234567", "2026-01-01", "", &put);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(put.provider().provider_id(), "1234567");
  EXPECT_EQ(put.entries_reevaluated(), 1);
  EXPECT_EQ(put.entries_changed(), 1);
  EXPECT_EQ(put.ledgers_changed(), 1);
  EXPECT_EQ(put.cards_under_review(), 0);
  ledger = Ledger(person_, 2026);
  EXPECT_TRUE(ledger.entries(0).counted());
  EXPECT_EQ(ledger.entries(0).not_counted_reason(), v1::NOT_COUNTED_REASON_UNSPECIFIED);
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 50000);
}

TEST_F(ProvidersServiceTest, APracticeIdReachesTheLedger) {
  const std::string practice = frikort::testing::MakeOrgNumber(96400000);
  v1::PutProviderResponse put;
  ASSERT_TRUE(Put(practice, "2021-01-01", "", &put).ok());
  CoPaymentSpec spec;
  spec.report_id = "m1";
  spec.person_id = person_;
  spec.service_time = march_;
  spec.practice_id = practice;
  v1::ReportResult r = SubmitOne(spec);
  EXPECT_TRUE(r.counted()) << r.ShortDebugString();
  v1::Ledger ledger = Ledger(person_, 2026);
  ASSERT_EQ(ledger.entries_size(), 1);
  EXPECT_EQ(ledger.entries(0).practice_id(), practice);

  spec.report_id = "m2";
  spec.practice_id = "123";
  r = SubmitOne(spec);
  EXPECT_EQ(r.outcome(), v1::REJECTED);
  EXPECT_THAT(r.message(), StartsWith("practice_id: "));
}

TEST_F(ProvidersServiceTest, GetListAndRefusals) {
  v1::PutProviderResponse put;
  grpc::Status s = Put("1234567", "2026-02-01", "2026-01-31", &put);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("agreements[0].valid_to: "));
  s = Put("974760674", "2026-01-01", "", &put);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("provider_id: "));
  s = Put("1234567", "2009-01-01", "", &put);
  EXPECT_THAT(s.error_message(), HasSubstr("outside the years"));

  v1::GetProviderRequest get;
  get.set_provider_id("1234567");
  v1::Provider provider;
  s = providers_->GetProvider(Ctx().get(), get, &provider);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "a refused put stored nothing";

  ASSERT_TRUE(Put("1234567", "2026-01-01", "2026-03-31", &put).ok());
  ASSERT_TRUE(Put("7654321", "2025-01-01", "2025-12-31", &put).ok());
  s = providers_->GetProvider(Ctx().get(), get, &provider);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(provider.agreements_size(), 1);
  EXPECT_EQ(provider.agreements(0).valid_to(), "2026-03-31");
  EXPECT_EQ(provider.agreements(0).version(), "2021-1");

  v1::ListProvidersRequest list;
  v1::ListProvidersResponse listed;
  ASSERT_TRUE(providers_->ListProviders(Ctx().get(), list, &listed).ok());
  ASSERT_EQ(listed.providers_size(), 2);
  EXPECT_EQ(listed.providers(0).provider_id(), "1234567");
  list.set_in_force_on("2025-06-01");
  listed.Clear();
  ASSERT_TRUE(providers_->ListProviders(Ctx().get(), list, &listed).ok());
  ASSERT_EQ(listed.providers_size(), 1);
  EXPECT_EQ(listed.providers(0).provider_id(), "7654321");
  list.set_in_force_on("June");
  s = providers_->ListProviders(Ctx().get(), list, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), StartsWith("in_force_on: "));
}

}  // namespace
}  // namespace frikort::testutil
