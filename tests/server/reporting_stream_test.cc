// Reporting service through a real gRPC channel to an in-process server: the
// stream (order, duplicates across messages, bad messages, cancellation).
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

TEST_F(ReportingTest, StreamAnswersEveryMessageInOrder) {
  const int kMessages = 40;
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  std::vector<std::vector<std::string>> sent;
  // Write everything first (the server reads ahead and answers in order).
  std::thread writer([&] {
    for (int m = 0; m < kMessages; ++m) {
      v1::SubmitCoPaymentsRequest request;
      for (int i = 0; i <= m % 5; ++i) {
        CoPaymentSpec s = Valid(absl::StrCat("s-", m, "-", i), PersonId(100 + (m + i) % 7));
        if (i == 1) s.amount_ore = 0;  // some rejected items
        *request.add_co_payments() = MakeCoPayment(s);
      }
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  for (int m = 0; m < kMessages; ++m) {
    std::vector<std::string> ids;
    for (int i = 0; i <= m % 5; ++i) ids.push_back(absl::StrCat("s-", m, "-", i));
    sent.push_back(ids);
  }
  v1::SubmitCoPaymentsResponse response;
  int m = 0;
  while (stream->Read(&response)) {
    ASSERT_LT(m, kMessages);
    ASSERT_EQ(response.results_size(), static_cast<int>(sent[m].size())) << "message " << m;
    for (int i = 0; i < response.results_size(); ++i) {
      EXPECT_EQ(response.results(i).report_id(), sent[m][i]);
      EXPECT_EQ(response.results(i).outcome(), i == 1 ? v1::REJECTED : v1::ACCEPTED);
    }
    ++m;
  }
  writer.join();
  grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(m, kMessages);
  int stored = 0;
  for (int p = 0; p < 7; ++p) stored += Ledger(PersonId(100 + p), 2026).entries_size();
  int expected = 0;
  for (int k = 0; k < kMessages; ++k) expected += (k % 5 + 1) - (k % 5 >= 1 ? 1 : 0);
  EXPECT_EQ(stored, expected);
}

TEST_F(ReportingTest, StreamPingPongAndDuplicateAcrossMessages) {
  const std::string person = PersonId(30);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest request;
  *request.add_co_payments() = MakeCoPayment(Valid("pp-1", person));
  v1::SubmitCoPaymentsResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).outcome(), v1::ACCEPTED);
  ASSERT_TRUE(stream->Write(request));  // the same report again
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).outcome(), v1::DUPLICATE);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(1));
}

TEST_F(ReportingTest, StreamWithEmptyMessageFinishesInvalidArgument) {
  const std::string before = PersonId(31);
  const std::string after = PersonId(32);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest first;
  *first.add_co_payments() = MakeCoPayment(Valid("e-1", before));
  v1::SubmitCoPaymentsRequest empty;
  v1::SubmitCoPaymentsRequest third;
  *third.add_co_payments() = MakeCoPayment(Valid("e-3", after));
  stream->Write(first);
  stream->Write(empty);
  stream->Write(third);
  stream->WritesDone();
  v1::SubmitCoPaymentsResponse response;
  int responses = 0;
  while (stream->Read(&response)) {
    ++responses;
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).report_id(), "e-1");
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_EQ(responses, 1);  // the message before the bad one is answered
  EXPECT_THAT(Ledger(before, 2026).entries(), SizeIs(1));
  EXPECT_THAT(Ledger(after, 2026).entries(), SizeIs(0));  // nothing after it is read
}

TEST_F(ReportingTest, StreamWithOversizedMessageFinishesInvalidArgument) {
  const std::string person = PersonId(33);
  auto ctx = Ctx();
  auto stream = reporting_->StreamCoPayments(ctx.get());
  v1::SubmitCoPaymentsRequest big;
  for (int i = 0; i <= 10000; ++i) {
    *big.add_co_payments() = MakeCoPayment(Valid(absl::StrCat("o-", i), person));
  }
  stream->Write(big);
  stream->WritesDone();
  v1::SubmitCoPaymentsResponse response;
  EXPECT_FALSE(stream->Read(&response));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("co_payments"));
  EXPECT_THAT(Ledger(person, 2026).entries(), SizeIs(0));
}

TEST_F(ReportingTest, StreamCancelledByClientDoesNotHangTheServer) {
  const std::string person = PersonId(34);
  {
    grpc::ClientContext ctx;
    auto stream = reporting_->StreamCoPayments(&ctx);
    v1::SubmitCoPaymentsRequest request;
    for (int i = 0; i < 100; ++i) {
      *request.add_co_payments() = MakeCoPayment(Valid(absl::StrCat("x-", i), person));
    }
    for (int m = 0; m < 5; ++m) stream->Write(request);
    ctx.TryCancel();
    stream->Finish();
  }
  // The server keeps serving; Shutdown in TearDown must not hang either.
  EXPECT_EQ(SubmitOne(Valid("x-after", person)).outcome(), v1::ACCEPTED);
}

}  // namespace
}  // namespace frikort::testutil
