// Shared by the Reporting service tests (tests/server/reporting_*_test.cc): a
// real gRPC channel to an in-process server, a valid co-payment to vary, and
// the check of a rejection (reason, field named, nothing stored).
#ifndef FRIKORT_TESTS_SERVER_REPORTING_FIXTURE_H_
#define FRIKORT_TESTS_SERVER_REPORTING_FIXTURE_H_

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {

class ReportingTest : public ServerTest {
 protected:
  // A valid PAID physician co-payment of 100 NOK on 1 June 2026.
  CoPaymentSpec Valid(const std::string& report_id, const std::string& person) {
    CoPaymentSpec s;
    s.report_id = report_id;
    s.person_id = person;
    s.amount_ore = 10000;
    s.service_time = OsloTime(2026, 6, 1, 9, 30);
    return s;
  }

  // Submits `spec`, expects REJECTED with `reason` and a message naming
  // `field`, and that the person's 2026 ledger stays empty.
  void ExpectRejected(const v1::CoPayment& item, v1::RejectReason reason,
                      const std::string& field) {
    v1::ReportResult r = SubmitOne(item);
    EXPECT_EQ(r.outcome(), v1::REJECTED) << r.ShortDebugString();
    EXPECT_EQ(r.reason(), reason) << r.ShortDebugString();
    // Echoed within the contract's 64 characters, else left empty.
    EXPECT_EQ(r.report_id(), item.report_id().size() <= 64 ? item.report_id() : "");
    EXPECT_FALSE(r.counted());
    EXPECT_THAT(r.message(), ::testing::HasSubstr(field));
    v1::Ledger ledger;
    if (GetLedger(item.person_id(), 2026, &ledger).ok()) {
      EXPECT_THAT(ledger.entries(), ::testing::SizeIs(0)) << "a rejected report was stored";
      for (const v1::SchemeLedger& s : ledger.schemes()) EXPECT_EQ(s.counted_total_ore(), 0);
    }
  }
  void ExpectRejected(const CoPaymentSpec& spec, v1::RejectReason reason,
                      const std::string& field) {
    ExpectRejected(MakeCoPayment(spec), reason, field);
  }
};

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_SERVER_REPORTING_FIXTURE_H_
