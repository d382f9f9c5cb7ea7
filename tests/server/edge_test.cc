// Status codes at the edge that must not mislead: a request that does not
// parse, an answer that could not be sent, a ledger too long for one answer,
// a backup destination that is no folder, a service time out of range.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "server/unparsed.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class EdgeTest : public ServerTest {
 protected:
  void ConfigureServer(server::ServerOptions* options) override {
    options->metrics = &metrics_;
    options->audit = [this](const std::string& line) {
      absl::MutexLock l(&mu_);
      audit_.push_back(line);
    };
  }

  std::vector<std::string> Audit() {
    absl::MutexLock l(&mu_);
    return audit_;
  }

  // The count of frikort_rpcs_total for `method` and `code`; 0 when absent.
  std::string RpcSeries(absl::string_view method, absl::string_view code) const {
    for (absl::string_view line : absl::StrSplit(metrics_.Render(), '\n')) {
      if (absl::StartsWith(line, absl::StrCat("frikort_rpcs_total{code=\"", code, "\",method=\"",
                                              method, "\"}"))) {
        return std::string(line.substr(line.rfind(' ') + 1));
      }
    }
    return "0";
  }

  CoPaymentSpec Valid(const std::string& report_id, const std::string& person,
                      absl::Time when = OsloTime(2026, 3, 1, 9, 30)) {
    CoPaymentSpec s;
    s.report_id = report_id;
    s.person_id = person;
    s.amount_ore = 100;
    s.service_time = when;
    return s;
  }

  grpc::Status LedgerPage(const std::string& person, int page_size, const std::string& token,
                          v1::Ledger* page) {
    v1::GetLedgerRequest request;
    request.set_person_id(person);
    request.set_year(2026);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return registry_->GetLedger(Ctx().get(), request, page);
  }

  grpc::Status Backup(const std::string& dest) {
    auto stub = v1::Operations::NewStub(channel_);
    v1::BackupRequest request;
    request.set_dest(dest);
    v1::BackupResponse response;
    return stub->Backup(Ctx(absl::Seconds(60)).get(), request, &response);
  }

  server::Metrics metrics_{nullptr};
  absl::Mutex mu_;
  std::vector<std::string> audit_ ABSL_GUARDED_BY(mu_);
};

// ---- a request that does not parse ---------------------------------------------

TEST_F(EdgeTest, ARequestThatDoesNotParseIsInvalidArgumentNotUnimplemented) {
  // Field 1 (person_id, a string) holding bytes that are not UTF-8.
  const std::string bad_utf8 = std::string("\x0a\x02\xc3\x28", 4);
  const std::string garbage = std::string("\xff\xff\xff\xff\x0f", 5);
  const std::vector<std::string> paths = {
      "/frikort.v1.Registry/GetLedger",         "/frikort.v1.Lookup/CheckExemption",
      "/frikort.v1.Reporting/SubmitCoPayments", "/frikort.v1.Registry/SetReservation",
      "/frikort.v1.Issuance/ListPayouts",
  };
  for (const std::string& path : paths) {
    for (const std::string& body : {bad_utf8, garbage}) {
      grpc::Status s = RawUnaryCall(channel_, path, body, absl::Seconds(10));
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
      EXPECT_EQ(s.error_message(), server::kUnparsedRequestMessage) << path;
    }
  }
  // The metrics count what the client got.
  EXPECT_EQ(RpcSeries("frikort.v1.Registry/GetLedger", "INVALID_ARGUMENT"), "2");
  EXPECT_EQ(RpcSeries("frikort.v1.Registry/GetLedger", "UNIMPLEMENTED"), "0");
  // A method that does not exist is still UNIMPLEMENTED.
  EXPECT_EQ(RawUnaryCall(channel_, "/frikort.v1.Registry/NoSuch", bad_utf8, absl::Seconds(10))
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // And the server still serves.
  EXPECT_EQ(Ledger(PersonId(1), 2026).year(), 2026);
}

// A StreamCoPayments call whose messages are `bodies` as raw bytes, one at a
// time (each answer read before the next message is sent): how many answers
// came back before the stream ended, and its status.
struct RawStreamOutcome {
  int answers = 0;
  grpc::Status status;
};
RawStreamOutcome RawStream(const std::shared_ptr<grpc::Channel>& channel,
                           const std::vector<std::string>& bodies) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto ctx = Ctx(absl::Seconds(20));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(ctx.get(), "/frikort.v1.Reporting/StreamCoPayments", &cq);
  intptr_t tags = 0;
  // Starts one operation and waits for it; its ok.
  auto op = [&](const std::function<void(void*)>& start) {
    const intptr_t tag = ++tags;
    start(reinterpret_cast<void*>(tag));
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  RawStreamOutcome out;
  bool open = op([&](void* t) { call->StartCall(t); });
  for (const std::string& body : bodies) {
    if (!open) break;
    const grpc::ByteBuffer message = ToByteBuffer(body);
    grpc::ByteBuffer answer;
    open = op([&](void* t) { call->Write(message, t); }) &&
           op([&](void* t) { call->Read(&answer, t); });
    if (open) ++out.answers;
  }
  if (open) op([&](void* t) { call->WritesDone(t); });
  op([&](void* t) { call->Finish(&out.status, t); });
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

TEST_F(EdgeTest, AStreamMessageThatDoesNotParseEndsTheStreamAsInvalidArgument) {
  v1::SubmitCoPaymentsRequest first;
  *first.add_co_payments() = MakeCoPayment(Valid("stream-ok-1", PersonId(11)));
  // A request whose report_id (field 1 of CoPayment, inside field 1) is not
  // UTF-8, and bytes that are no message at all.
  const std::string bad_utf8 = EncodeStringField(1, std::string("\x0a\x02\xc3\x28", 4));
  const std::string garbage = std::string("\xff\xff\xff\xff\x0f", 5);
  for (const std::string& bad : {bad_utf8, garbage}) {
    RawStreamOutcome out =
        RawStream(channel_, {first.SerializeAsString(), bad, first.SerializeAsString()});
    // The message before it is answered; the stream then ends with the
    // reason, not OK as if the client had closed it.
    EXPECT_EQ(out.answers, 1);
    EXPECT_EQ(out.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(out.status.error_message(), server::kUnparsedRequestMessage);
  }
  // A stream of good messages still ends OK when the client closes it.
  RawStreamOutcome good = RawStream(channel_, {first.SerializeAsString()});
  EXPECT_EQ(good.answers, 1);
  EXPECT_TRUE(good.status.ok()) << good.status.error_message();
  EXPECT_EQ(RpcSeries("frikort.v1.Reporting/StreamCoPayments", "INVALID_ARGUMENT"), "2");
  // The answers' outcomes are counted (the stream's messages are raw bytes
  // to the interceptors; the handler counts them).
  const std::string metrics = metrics_.Render();
  EXPECT_THAT(metrics, HasSubstr("frikort_reports_total{outcome=\"accepted\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("frikort_reports_total{outcome=\"duplicate\"} 2\n"));
  // The first message was stored once.
  EXPECT_EQ(Ledger(PersonId(11), 2026).entries_size(), 1);
}

// ---- an answer that would be too large ---------------------------------------------

TEST_F(EdgeTest, LongReportIdsAreNotEchoedSoTheBatchAnswerFits) {
  // 9,999 report ids of 400 characters (refused: at most 64) beside one valid
  // report: echoed back with their messages, the answer would pass 4 MiB.
  v1::SubmitCoPaymentsRequest request;
  *request.add_co_payments() = MakeCoPayment(Valid("ok-1", PersonId(7)));
  for (int i = 1; i < 10000; ++i) {
    request.add_co_payments()->set_report_id(std::string(400, 'a' + i % 26));
  }
  ASSERT_LT(request.ByteSizeLong(), size_t{4} << 20);
  v1::SubmitCoPaymentsResponse response;
  grpc::Status s = reporting_->SubmitCoPayments(Ctx(absl::Seconds(60)).get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  ASSERT_THAT(response.results(), SizeIs(10000));
  EXPECT_EQ(response.results(0).outcome(), v1::ACCEPTED);
  EXPECT_EQ(response.results(0).report_id(), "ok-1");
  for (int i = 1; i < 10000; ++i) {
    EXPECT_EQ(response.results(i).reason(), v1::INVALID_REPORT_ID) << i;
    EXPECT_EQ(response.results(i).report_id(), "") << i;
  }
  EXPECT_LT(response.ByteSizeLong(), size_t{1} << 20);
  EXPECT_EQ(RpcSeries("frikort.v1.Reporting/SubmitCoPayments", "OK"), "1");
  EXPECT_THAT(Ledger(PersonId(7), 2026).entries(), SizeIs(1));
}

TEST_F(EdgeTest, AServiceTimeOutOfRangeSaysSo) {
  v1::CoPayment item = MakeCoPayment(Valid("far-1", PersonId(8)));
  item.mutable_service_time()->set_seconds(int64_t{1} << 40);  // after year 9999
  v1::ReportResult r = SubmitOne(item);
  EXPECT_EQ(r.reason(), v1::INVALID_SERVICE_TIME);
  EXPECT_THAT(r.message(), HasSubstr("service_time: out of range"));
  item.clear_service_time();
  EXPECT_EQ(SubmitOne(item).message(), "service_time: not given");
}

// ---- GetLedger in pages -------------------------------------------------------------

TEST_F(EdgeTest, GetLedgerPagesItsEntriesInServiceTimeOrder) {
  const std::string person = PersonId(9);
  // 1,001 entries sent newest first, so that storage order is not send order.
  std::vector<v1::CoPayment> items;
  for (int i = 1000; i >= 0; --i) {
    items.push_back(MakeCoPayment(
        Valid(absl::StrCat("p-", i), person, OsloTime(2026, 1, 1, 0, 0) + absl::Minutes(i))));
  }
  v1::SubmitCoPaymentsResponse submitted;
  ASSERT_TRUE(Submit(items, &submitted).ok());

  // The default page is 100 entries; the schemes come with every page.
  v1::Ledger first;
  ASSERT_TRUE(LedgerPage(person, 0, "", &first).ok());
  EXPECT_THAT(first.entries(), SizeIs(100));
  EXPECT_FALSE(first.next_page_token().empty());
  ASSERT_GT(first.schemes_size(), 0);
  // A page is at most 1,000 entries, whatever is asked.
  v1::Ledger big;
  ASSERT_TRUE(LedgerPage(person, 5000, "", &big).ok());
  EXPECT_THAT(big.entries(), SizeIs(1000));
  EXPECT_FALSE(big.next_page_token().empty());

  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::Ledger page;
    grpc::Status s = LedgerPage(person, 300, token, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(page.schemes_size(), first.schemes_size());
    EXPECT_EQ(page.schemes(0).counted_total_ore(), first.schemes(0).counted_total_ore());
    for (const v1::LedgerEntry& e : page.entries()) seen.push_back(e.report_id());
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 4);
  ASSERT_THAT(seen, SizeIs(1001));
  for (int i = 0; i <= 1000; ++i) EXPECT_EQ(seen[i], absl::StrCat("p-", i));

  // A token that is not one, or is another person's, is INVALID_ARGUMENT.
  v1::Ledger page;
  grpc::Status bad = LedgerPage(person, 10, "not a token!", &page);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("page_token"));
  Report("q-1", PersonId(10), 100, OsloTime(2026, 2, 1));
  EXPECT_EQ(LedgerPage(PersonId(10), 10, first.next_page_token(), &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LedgerPage(person, -1, "", &page).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ---- Backup destinations ---------------------------------------------------------

TEST_F(EdgeTest, BackupToWhatIsNoFolderIsRefusedBeforeAnythingIsWritten) {
  const std::string file = dir_ + "/a-file";
  std::ofstream(file) << "x";
  const std::string data = dir_ + "/data";
  const std::vector<std::string> refused = {
      "/dev/null",
      file,
      file + "/below",
      "/proc/self",
      "/proc/self/backups",
      dir_ + std::string("/with\0nul", 9),
      data,
      data + "/backups",
      dir_,  // holds the data folder
      "relative/path",
      "/" + std::string(5000, 'x'),
  };
  for (const std::string& dest : refused) {
    grpc::Status s = Backup(dest);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << dest.size() << " " << s.error_message();
    EXPECT_TRUE(absl::StartsWith(s.error_message(), "dest: ")) << s.error_message();
    EXPECT_LT(s.error_message().size(), 400u);
  }
  // Nothing was made on the way.
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/with"));
  EXPECT_FALSE(std::filesystem::exists(data + "/backups"));
  EXPECT_TRUE(std::filesystem::is_regular_file(file));

  // A folder outside the data folder is fine, and the audit names it.
  const std::string good = dir_ + "/backups/today";
  grpc::Status ok = Backup(good);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  bool named = false;
  bool long_cut = false;
  for (const std::string& line : Audit()) {
    if (absl::StrContains(line, "Backup") && absl::StrContains(line, "\"dest\":\"" + good + "\"")) {
      named = true;
    }
    if (absl::StrContains(line, "Backup") && absl::StrContains(line, "(5001 bytes)")) {
      long_cut = true;
      EXPECT_LT(line.size(), 1000u);
    }
  }
  EXPECT_TRUE(named);
  EXPECT_TRUE(long_cut);
}

}  // namespace
}  // namespace frikort::testutil
