// Mutual TLS against an in-process server: a reporter is bound to its
// providers (whole batch, also on the stream) and looks up only under an
// agreement in force.
#include <string>
#include <vector>

#include "tests/server/tls_fixture.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

}  // namespace
}  // namespace frikort::testutil
