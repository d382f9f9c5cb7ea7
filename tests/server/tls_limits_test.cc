// The server's limits: concurrent calls per caller (over mutual TLS), the
// message size and the call deadline.
#include <memory>
#include <string>
#include <vector>

#include "tests/server/tls_fixture.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;

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
