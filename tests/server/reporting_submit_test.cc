// Reporting service through a real gRPC channel to an in-process server: what
// an accepted report stores and counts, the batch limits, and the calls a
// shutdown cuts into.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/copayment.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/reporting_fixture.h"
#include "tests/server/test_util.h"
#include "tests/testing/id_scan.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST_F(ReportingTest, AcceptedReportIsStoredWithAllFields) {
  const std::string person = PersonId(1);
  CoPaymentSpec spec = Valid("r-1", person);
  spec.category = v1::LABORATORY;
  spec.amount_ore = 12345;
  spec.provider_id = OrgNumber(1);
  v1::CoPayment item = MakeCoPayment(spec);
  item.add_takst_codes("2ae");
  v1::ReportResult r = SubmitOne(item);
  EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.ShortDebugString();
  EXPECT_EQ(r.reason(), v1::REJECT_REASON_UNSPECIFIED);
  EXPECT_EQ(r.report_id(), "r-1");
  EXPECT_TRUE(r.counted());
  EXPECT_EQ(r.year(), 2026);
  EXPECT_EQ(r.scheme(), v1::TAK);

  v1::Ledger ledger = Ledger(person, 2026);
  EXPECT_EQ(ledger.person_id(), person);
  EXPECT_EQ(ledger.year(), 2026);
  EXPECT_FALSE(ledger.reserved());
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  const v1::LedgerEntry& e = ledger.entries(0);
  EXPECT_EQ(e.report_id(), "r-1");
  EXPECT_EQ(e.provider_id(), spec.provider_id);
  EXPECT_EQ(FromTs(e.service_time()), spec.service_time);
  EXPECT_EQ(e.category(), v1::LABORATORY);
  EXPECT_EQ(e.scheme(), v1::TAK);
  EXPECT_EQ(e.amount_ore(), 12345);
  EXPECT_EQ(e.payment(), v1::PAID);
  EXPECT_TRUE(e.counted());
  EXPECT_FALSE(e.cancelled());
  EXPECT_FALSE(e.performed_abroad());
  EXPECT_EQ(FromTs(e.received_time()), StartTime());
  EXPECT_FALSE(e.late());  // 14 days after 1 June is 15 June
  ASSERT_THAT(ledger.schemes(), SizeIs(1));
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 12345);
}

TEST_F(ReportingTest, LateReportIsAcceptedAndMarkedLate) {
  const std::string person = PersonId(2);
  CoPaymentSpec spec = Valid("late-1", person);
  spec.service_time = OsloTime(2026, 5, 1);
  EXPECT_EQ(SubmitOne(spec).outcome(), v1::ACCEPTED);
  v1::Ledger ledger = Ledger(person, 2026);
  ASSERT_THAT(ledger.entries(), SizeIs(1));
  EXPECT_TRUE(ledger.entries(0).late());
  EXPECT_TRUE(ledger.entries(0).counted());
}

TEST_F(ReportingTest, DNumberIsAccepted) {
  const std::string d_number = MakePersonIdFor(absl::CivilDay(1985, 3, 7), 0, /*day_offset=*/40);
  ASSERT_EQ(d_number.substr(0, 2), "47");
  EXPECT_EQ(SubmitOne(Valid("d-1", d_number)).outcome(), v1::ACCEPTED);
}

TEST_F(ReportingTest, WhatCountsAndWhatDoesNot) {
  const std::string person = PersonId(3);
  CoPaymentSpec invoiced = Valid("c-invoiced", person);
  invoiced.payment = v1::INVOICED;
  CoPaymentSpec unpaid = Valid("c-unpaid", person);
  unpaid.payment = v1::INVOICED_UNPAID;
  CoPaymentSpec exempt = Valid("c-exempt", person);
  exempt.payment = v1::EXEMPT_FRIKORT;
  CoPaymentSpec abroad = Valid("c-abroad", person);
  abroad.performed_abroad = true;
  CoPaymentSpec climate = Valid("c-climate", person);
  climate.category = v1::CLIMATE_TRAVEL;
  climate.performed_abroad = true;

  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit({MakeCoPayment(invoiced), MakeCoPayment(unpaid), MakeCoPayment(exempt),
                           MakeCoPayment(abroad), MakeCoPayment(climate)},
                          &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(5));
  const bool expect_counted[] = {true, false, false, false, true};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(response.results(i).outcome(), v1::ACCEPTED) << i;
    EXPECT_EQ(response.results(i).counted(), expect_counted[i]) << i;
  }
  v1::Ledger ledger = Ledger(person, 2026);
  EXPECT_THAT(ledger.entries(), SizeIs(5));
  ASSERT_THAT(ledger.schemes(), SizeIs(1));
  EXPECT_EQ(ledger.schemes(0).counted_total_ore(), 20000);
}

TEST_F(ReportingTest, EmptyBatchIsInvalidArgument) {
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit({}, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
}

TEST_F(ReportingTest, BatchOf10001IsInvalidArgumentAnd10000IsServed) {
  const std::string person = PersonId(24);
  std::vector<v1::CoPayment> items;
  for (int i = 0; i < 10000; ++i) {
    CoPaymentSpec s = Valid(absl::StrCat("big-", i), person);
    s.amount_ore = 0;  // rejected per item: cheap, and nothing is stored
    items.push_back(MakeCoPayment(s));
  }
  items.push_back(MakeCoPayment(Valid("big-10000", person)));  // valid, must not be stored
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = Submit(items, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_THAT(s.error_message(), HasSubstr("10001"));
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(0));

  items.erase(items.begin());  // 10,000 items, the last one valid
  response.Clear();
  s = Submit(items, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(10000));
  EXPECT_EQ(response.results(0).reason(), v1::INVALID_AMOUNT);
  EXPECT_EQ(response.results(9999).report_id(), "big-10000");
  EXPECT_EQ(response.results(9999).outcome(), v1::ACCEPTED);
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

TEST_F(ReportingTest, EveryAcknowledgedCallIsStoredWhenShutdownCutsIn) {
  const std::string person = PersonId(60);
  std::vector<std::string> acked;
  std::thread client([&] {
    for (int b = 0; b < 200; ++b) {
      std::vector<v1::CoPayment> items;
      for (int i = 0; i < 10; ++i) {
        CoPaymentSpec s = Valid(absl::StrCat("sd-", b, "-", i), person);
        s.amount_ore = 100;
        items.push_back(MakeCoPayment(s));
      }
      v1::SubmitCoPaymentsResponse response;
      grpc::Status st = Submit(items, &response);
      if (!st.ok()) break;
      for (const v1::ReportResult& r : response.results()) {
        if (r.outcome() == v1::ACCEPTED) acked.push_back(r.report_id());
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(150));
  StopServer();
  client.join();
  absl::StatusOr<storage::LedgerView> ledger = reg_->GetLedger(person, 2026);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  std::set<std::string> stored;
  for (const storage::Entry& e : ledger->entries) stored.insert(e.report_id);
  for (const std::string& id : acked) EXPECT_EQ(stored.count(id), 1u) << id;
  EXPECT_GE(stored.size(), acked.size());
}

}  // namespace
}  // namespace frikort::testutil
