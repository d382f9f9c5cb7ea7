// StreamCoPayments' ordering and failure handling against a mock register
// whose submissions complete out of order and can fail: the real register
// completes in order, so only a mock exercises the reordering.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"
#include "tests/testing/mock_register.h"
#include "tests/testing/oslo.h"

namespace frikort::testutil {
namespace {

using ::frikort::testing::MockRegister;
using ::testing::HasSubstr;
using ::testing::NiceMock;

// Holds submissions until `batch` are pending (or 100 ms pass), then completes
// them newest first. Report id "fail" fails its submission with UNAVAILABLE;
// "short" answers one result too few. It answers the mock register's
// SubmitAsync; the register's other methods give the mock's default answers.
class Reorderer {
 public:
  explicit Reorderer(size_t batch) : batch_(batch), thread_([this] { Loop(); }) {}
  ~Reorderer() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  void Submit(std::vector<core::CoPaymentInput> items, storage::Register::SubmitDone done) {
    absl::MutexLock l(&mu_);
    pending_.emplace_back(std::move(items), std::move(done));
  }

 private:
  using Pending = std::pair<std::vector<core::CoPaymentInput>, storage::Register::SubmitDone>;

  void Loop() {
    while (true) {
      std::vector<Pending> work;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || pending_.size() >= batch_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
        if (stop_ && pending_.empty()) return;
        work.swap(pending_);
      }
      std::reverse(work.begin(), work.end());
      for (auto& [items, done] : work) {
        bool fail = false;
        bool short_answer = false;
        std::vector<storage::ReportResult> results;
        for (const core::CoPaymentInput& in : items) {
          fail = fail || in.report_id == "fail";
          short_answer = short_answer || in.report_id == "short";
          storage::ReportResult r;
          r.report_id = in.report_id;
          r.outcome = core::Outcome::kAccepted;
          results.push_back(r);
        }
        if (short_answer) results.pop_back();
        if (fail) {
          std::move(done)(absl::UnavailableError("register: disk gone"));
        } else {
          std::move(done)(std::move(results));
        }
      }
    }
  }

  const size_t batch_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class StreamOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    absl::StatusOr<core::RulesTable> rules =
        core::RulesTable::Parse("year 2026 tak=3278 minimum=0\n");
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = std::make_unique<core::RulesTable>(*std::move(rules));
    reorderer_ = std::make_unique<Reorderer>(4);
    reg_ = std::make_unique<NiceMock<MockRegister>>();
    ON_CALL(*reg_, SubmitAsync)
        .WillByDefault(
            [this](std::vector<core::CoPaymentInput> items, storage::Register::SubmitDone done) {
              reorderer_->Submit(std::move(items), std::move(done));
            });
    job_ = std::make_unique<jobs::IssuanceJob>(reg_.get(), &clock_);
    server::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    server_ = std::make_unique<server::FrikortServer>(options, reg_.get(), job_.get(), rules_.get(),
                                                      &clock_);
    ASSERT_TRUE(server_->Start().ok());
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::Reporting::NewStub(channel);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Now() + absl::Seconds(5));
    server_.reset();
    job_.reset();
    reg_.reset();
    reorderer_.reset();
  }

  static v1::SubmitCoPaymentsRequest Message(const std::vector<std::string>& ids) {
    v1::SubmitCoPaymentsRequest request;
    for (const std::string& id : ids) request.add_co_payments()->set_report_id(id);
    return request;
  }

  core::FakeClock clock_{absl::FromUnixSeconds(1781517600)};
  std::unique_ptr<core::RulesTable> rules_;
  std::unique_ptr<Reorderer> reorderer_;
  std::unique_ptr<NiceMock<MockRegister>> reg_;
  std::unique_ptr<jobs::IssuanceJob> job_;
  std::unique_ptr<server::FrikortServer> server_;
  std::unique_ptr<v1::Reporting::Stub> stub_;
};

TEST_F(StreamOrderTest, ResponsesFollowRequestOrderWhenTheRegisterAnswersOutOfOrder) {
  const int kMessages = 30;
  // One submission a message.
  EXPECT_CALL(*reg_, SubmitAsync).Times(kMessages);
  auto ctx = Ctx();
  auto stream = stub_->StreamCoPayments(ctx.get());
  std::thread writer([&] {
    for (int m = 0; m < kMessages; ++m) {
      if (!stream->Write(Message({absl::StrCat("m", m, "-a"), absl::StrCat("m", m, "-b")}))) {
        break;
      }
    }
    stream->WritesDone();
  });
  v1::SubmitCoPaymentsResponse response;
  int m = 0;
  while (stream->Read(&response)) {
    ASSERT_EQ(response.results_size(), 2);
    EXPECT_EQ(response.results(0).report_id(), absl::StrCat("m", m, "-a"));
    EXPECT_EQ(response.results(1).report_id(), absl::StrCat("m", m, "-b"));
    ++m;
  }
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(m, kMessages);
}

TEST_F(StreamOrderTest, RegisterFailureEndsTheStreamAfterTheEarlierAnswers) {
  auto ctx = Ctx();
  auto stream = stub_->StreamCoPayments(ctx.get());
  // Four messages are pending together and answered newest first: the failure
  // of the third arrives before the answers to the first two.
  stream->Write(Message({"one"}));
  stream->Write(Message({"two"}));
  stream->Write(Message({"fail"}));
  stream->Write(Message({"four"}));
  stream->WritesDone();
  std::vector<std::string> got;
  v1::SubmitCoPaymentsResponse response;
  while (stream->Read(&response)) got.push_back(response.results(0).report_id());
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("disk gone"));
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
}

TEST_F(StreamOrderTest, UnaryAnswerWithWrongCountIsInternal) {
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = stub_->SubmitCoPayments(Ctx().get(), Message({"a", "short"}), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  s = stub_->SubmitCoPayments(Ctx().get(), Message({"fail"}), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace frikort::testutil
