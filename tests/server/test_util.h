// Helpers shared by the server integration tests (tests/server) and the
// end-to-end tests (tests/e2e): valid identifiers computed from their check
// digits, message builders, raw calls to the health and reflection services
// (their generated code is not installed), and an in-process server fixture.
#ifndef FRIKORT_TESTS_SERVER_TEST_UTIL_H_
#define FRIKORT_TESTS_SERVER_TEST_UTIL_H_

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/rules.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "jobs/issuance.h"
#include "server/server.h"
#include "storage/register.h"
#include "tests/testing/fault_fs.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::testutil {

namespace v1 = ::frikort::v1;

// ---- identifiers ------------------------------------------------------------

// Mod-11 check digit over `digits` with `weights`: 11 - sum mod 11, 11 -> 0,
// 10 -> -1 (no valid digit).
inline int Mod11(const std::string& digits, const std::vector<int>& weights) {
  int sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) sum += (digits[i] - '0') * weights[i];
  int k = 11 - sum % 11;
  if (k == 11) k = 0;
  return k == 10 ? -1 : k;
}

// Appends the two classic check digits to 9 digits; "" when either is 10.
inline std::string WithCheckDigits(const std::string& nine) {
  const int k1 = Mod11(nine, {3, 7, 6, 1, 8, 9, 4, 5, 2});
  if (k1 < 0) return "";
  const std::string ten = nine + static_cast<char>('0' + k1);
  const int k2 = Mod11(ten, {5, 4, 3, 2, 7, 6, 5, 4, 3, 2});
  if (k2 < 0) return "";
  return ten + static_cast<char>('0' + k2);
}

// A valid fødselsnummer born on `birth` (1900-1999: individual numbers
// 000-499); `day_offset` 40 gives a D-number, `month_offset` 40 an H-number
// (or synthetic id). The first individual number >= `individual` that gives
// valid check digits is used.
inline std::string MakePersonIdFor(absl::CivilDay birth, int individual = 0, int day_offset = 0,
                                   int month_offset = 0) {
  for (int ind = individual; ind < 500; ++ind) {
    const std::string nine = absl::StrFormat("%02d%02d%02d%03d", birth.day() + day_offset,
                                             birth.month() + month_offset, birth.year() % 100, ind);
    const std::string id = WithCheckDigits(nine);
    if (!id.empty()) return id;
  }
  return "";
}

// The n-th of many distinct valid fødselsnumre (n >= 0; distinct birth dates).
inline std::string PersonId(int n) { return MakePersonIdFor(absl::CivilDay(1960, 1, 1) + n, 100); }

// The same number with its last check digit changed: always invalid.
inline std::string WithBadCheckDigit(const std::string& id) {
  std::string bad = id;
  bad.back() = bad.back() == '9' ? '0' : static_cast<char>(bad.back() + 1);
  return bad;
}

// A valid 9-digit organisation number (weights 3 2 7 6 5 4 3 2), the n-th.
inline std::string OrgNumber(int n) {
  for (int base = 97300000 + n * 13;; ++base) {
    const std::string eight = absl::StrCat(base);
    const int k = Mod11(eight, {3, 2, 7, 6, 5, 4, 3, 2});
    if (k >= 0) return eight + static_cast<char>('0' + k);
  }
}

// ---- messages -----------------------------------------------------------------

inline absl::Time OsloTime(int y, int m, int d, int hh = 12, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), core::OsloTimeZone());
}

inline google::protobuf::Timestamp ToTs(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  ts.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(ts.seconds()))));
  return ts;
}

inline absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

struct CoPaymentSpec {
  std::string report_id;
  std::string person_id;
  int64_t amount_ore = 10000;
  absl::Time service_time;
  v1::ServiceCategory category = v1::PHYSICIAN;
  v1::PaymentStatus payment = v1::PAID;
  std::string provider_id = "1234567";  // an HPR number
  bool performed_abroad = false;
  int attributed_year = 0;
  std::string practice_id = {};
};

inline v1::CoPayment MakeCoPayment(const CoPaymentSpec& s) {
  v1::CoPayment c;
  c.set_report_id(s.report_id);
  c.set_provider_id(s.provider_id);
  c.set_practice_id(s.practice_id);
  c.set_person_id(s.person_id);
  *c.mutable_service_time() = ToTs(s.service_time);
  c.set_category(s.category);
  c.set_amount_ore(s.amount_ore);
  c.set_payment(s.payment);
  c.set_performed_abroad(s.performed_abroad);
  c.set_attributed_year(s.attributed_year);
  return c;
}

inline std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(20)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// GetLedger following its pages: the first page's schemes with the entries
// of every page, in service-time order.
inline grpc::Status WholeLedger(v1::Registry::Stub* stub, v1::GetLedgerRequest request,
                                v1::Ledger* ledger) {
  ledger->Clear();
  for (bool first = true;; first = false) {
    v1::Ledger page;
    grpc::Status s = stub->GetLedger(Ctx().get(), request, &page);
    if (!s.ok()) return s;
    if (first) {
      *ledger = page;
    } else {
      for (const v1::LedgerEntry& e : page.entries()) *ledger->add_entries() = e;
    }
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  ledger->clear_next_page_token();
  return grpc::Status::OK;
}

// ---- raw calls to services without installed generated code ---------------------

inline grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// Encodes a message whose only field is string field 1 (HealthCheckRequest).
inline std::string EncodeStringField(int field, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>((field << 3) | 2));
  size_t n = value.size();
  do {
    uint8_t byte = n & 0x7f;
    n >>= 7;
    if (n != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (n != 0);
  return out + value;
}

// A unary call of any `path` (a service without installed generated code,
// or none at all) with `request` as the message's bytes; the response's bytes
// go to `response` when given.
inline grpc::Status RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& path, const std::string& request,
                                 absl::Duration timeout, std::string* response = nullptr) {
  grpc::GenericStub stub(channel);
  auto ctx = Ctx(timeout);
  grpc::ByteBuffer request_buffer = ToByteBuffer(request);
  grpc::ByteBuffer response_buffer;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(ctx.get(), path, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status s) {
                   status = s;
                   done.Notify();
                 });
  done.WaitForNotification();
  if (status.ok() && response != nullptr) *response = FromByteBuffer(response_buffer);
  return status;
}

// grpc.health.v1.Health/Check: the ServingStatus number (1 SERVING,
// 2 NOT_SERVING; an empty response is 0 UNKNOWN), or the call's error.
struct HealthAnswer {
  grpc::Status status;
  int serving_status = -1;
};
inline HealthAnswer HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service,
                                absl::Duration timeout = absl::Seconds(5)) {
  HealthAnswer answer;
  std::string bytes;
  answer.status = RawUnaryCall(channel, "/grpc.health.v1.Health/Check",
                               EncodeStringField(1, service), timeout, &bytes);
  if (!answer.status.ok()) return answer;
  answer.serving_status = 0;
  if (bytes.size() >= 2 && bytes[0] == 0x08) answer.serving_status = bytes[1];
  return answer;
}

// grpc.reflection.v1alpha list_services: the raw response bytes (the service
// names appear in them as strings), or "" on failure.
inline std::string ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto ctx = Ctx(absl::Seconds(10));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(
      ctx.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto wait = [&cq](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) return false;
    return ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  std::string out;
  call->StartCall(reinterpret_cast<void*>(1));
  if (wait(1)) {
    // ServerReflectionRequest.list_services (field 7) = "*".
    call->Write(ToByteBuffer(EncodeStringField(7, "*")), reinterpret_cast<void*>(2));
    if (wait(2)) {
      grpc::ByteBuffer response;
      call->Read(&response, reinterpret_cast<void*>(3));
      if (wait(3)) out = FromByteBuffer(response);
    }
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  wait(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

inline std::string SourceDir() {
  const char* dir = getenv("FRIKORT_SOURCE_DIR");
  return dir == nullptr ? std::string() : std::string(dir);
}

inline std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return "";
  return std::string(buf.data());
}

// ---- in-process server fixture ----------------------------------------------------

// A register in a fresh temp dir (test secret, deploy/rules.txt, synthetic ids
// off), the issuance job, and a FrikortServer on 127.0.0.1:<ephemeral> with a
// real channel. The clock is a FakeClock at 2026-06-15T10:00:00Z (12:00 Oslo).
class ServerTest : public ::testing::Test {
 protected:
  static absl::Time StartTime() { return absl::FromUnixSeconds(1781517600); }

  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    ASSERT_EQ(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", StartTime(), absl::UTCTimeZone()),
              "2026-06-15T10:00:00Z");
    const std::string src = SourceDir();
    ASSERT_FALSE(src.empty()) << "FRIKORT_SOURCE_DIR is not set (run the tests with ctest)";
    absl::StatusOr<core::RulesTable> rules =
        RequireAgreements()
            ? frikort::testing::ReadRulesFile(src + "/deploy/rules.txt")
            : frikort::testing::ReadRulesFileWithoutAgreementRequirement(src + "/deploy/rules.txt");
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = std::make_unique<core::RulesTable>(*std::move(rules));
    clock_ = std::make_unique<core::FakeClock>(StartTime());
    dir_ = MakeTempDir("frikort-server-test-");
    ASSERT_FALSE(dir_.empty());
    OpenRegister();
    StartServer();
  }

  void TearDown() override {
    StopServer();
    job_.reset();
    reg_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  void OpenRegister() {
    storage::RegisterOptions options;
    options.data_dir = dir_ + "/data";
    options.secret = "test-secret-0123456789abcdef-0123456789abcdef";
    options.rules = rules_.get();
    options.clock = clock_.get();
    options.id_options.allow_synthetic = false;
    options.open_store = frikort::testing::RocksStoreOn(RegisterEnv());
    absl::StatusOr<std::unique_ptr<storage::Register>> reg = storage::Register::Open(options);
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = *std::move(reg);
    job_ = std::make_unique<jobs::IssuanceJob>(reg_.get(), clock_.get());
  }

  // Hooks for fixtures that serve differently (e.g. mutual TLS, a failing
  // disk): the register's RocksDB environment (nullptr = the default), the
  // options StartServer uses, and the channel the stubs below use.
  virtual rocksdb::Env* RegisterEnv() { return nullptr; }
  // Whether the rules keep deploy/rules.txt's direct-settlement requirement
  // (off for the tests of the other rules: rules_file.h).
  virtual bool RequireAgreements() const { return false; }
  virtual void ConfigureServer(server::ServerOptions* options) {}
  virtual std::shared_ptr<grpc::Channel> MakeChannel() {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                               grpc::InsecureChannelCredentials());
  }

  void StartServer() {
    server::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.lookup_years_back = 2;
    ConfigureServer(&options);
    server_ = std::make_unique<server::FrikortServer>(options, reg_.get(), job_.get(), rules_.get(),
                                                      clock_.get());
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_GT(server_->port(), 0);
    channel_ = MakeChannel();
    reporting_ = v1::Reporting::NewStub(channel_);
    lookup_ = v1::Lookup::NewStub(channel_);
    registry_ = v1::Registry::NewStub(channel_);
    issuance_ = v1::Issuance::NewStub(channel_);
    providers_ = v1::Providers::NewStub(channel_);
  }

  void StopServer() {
    if (server_ != nullptr) server_->Shutdown(absl::Now() + absl::Seconds(5));
    server_.reset();
  }

  // ---- call helpers (each with a deadline, so a bug fails instead of hanging)

  grpc::Status Submit(const std::vector<v1::CoPayment>& items,
                      v1::SubmitCoPaymentsResponse* response) {
    v1::SubmitCoPaymentsRequest request;
    for (const v1::CoPayment& c : items) *request.add_co_payments() = c;
    return reporting_->SubmitCoPayments(Ctx().get(), request, response);
  }

  // Submits one co-payment and returns its result (a failed call fails the test).
  v1::ReportResult SubmitOne(const v1::CoPayment& item) {
    v1::SubmitCoPaymentsResponse response;
    grpc::Status s = Submit({item}, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.results_size(), 1);
    if (response.results_size() != 1) return v1::ReportResult();
    return response.results(0);
  }
  v1::ReportResult SubmitOne(const CoPaymentSpec& spec) { return SubmitOne(MakeCoPayment(spec)); }
  // Submits one co-payment that the test expects to be ACCEPTED.
  v1::ReportResult Report(const std::string& id, const std::string& person, int64_t amount,
                          absl::Time when, v1::ServiceCategory category = v1::PHYSICIAN,
                          v1::PaymentStatus payment = v1::PAID) {
    CoPaymentSpec s;
    s.report_id = id;
    s.person_id = person;
    s.amount_ore = amount;
    s.service_time = when;
    s.category = category;
    s.payment = payment;
    v1::ReportResult r = SubmitOne(s);
    EXPECT_EQ(r.outcome(), v1::ACCEPTED) << r.ShortDebugString();
    return r;
  }

  v1::ReportResult UpdatePayment(const std::string& provider, const std::string& report,
                                 int payment, grpc::Status* status = nullptr) {
    v1::UpdatePaymentRequest request;
    request.set_provider_id(provider);
    request.set_report_id(report);
    request.set_payment(static_cast<v1::PaymentStatus>(payment));
    v1::ReportResult result;
    grpc::Status s = reporting_->UpdatePayment(Ctx().get(), request, &result);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return result;
  }

  v1::ReportResult Cancel(const std::string& provider, const std::string& report,
                          const std::string& reason = "wrong patient") {
    v1::CancelCoPaymentRequest request;
    request.set_provider_id(provider);
    request.set_report_id(report);
    request.set_reason(reason);
    v1::ReportResult result;
    grpc::Status s = reporting_->CancelCoPayment(Ctx().get(), request, &result);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return result;
  }

  grpc::Status GetLedger(const std::string& person, int year, v1::Ledger* ledger) {
    v1::GetLedgerRequest request;
    request.set_person_id(person);
    request.set_year(year);
    return WholeLedger(registry_.get(), request, ledger);
  }

  v1::Ledger Ledger(const std::string& person, int year) {
    v1::Ledger ledger;
    grpc::Status s = GetLedger(person, year, &ledger);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return ledger;
  }

  grpc::Status Check(const std::string& person, const std::string& date,
                     v1::ServiceCategory category, v1::CheckExemptionResponse* response) {
    v1::CheckExemptionRequest request;
    request.set_person_id(person);
    request.set_date(date);
    request.set_category(category);
    return lookup_->CheckExemption(Ctx().get(), request, response);
  }

  // The one exemption answer of a single-scheme lookup.
  v1::SchemeExemption CheckOne(const std::string& person, const std::string& date,
                               v1::ServiceCategory category = v1::SERVICE_CATEGORY_UNSPECIFIED) {
    v1::CheckExemptionResponse response;
    grpc::Status s = Check(person, date, category, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.exemptions_size(), 1);
    if (response.exemptions_size() < 1) return v1::SchemeExemption();
    return response.exemptions(0);
  }

  grpc::Status SetReservation(const std::string& person, bool reserved,
                              v1::SetReservationResponse* response = nullptr) {
    v1::SetReservationRequest request;
    request.set_person_id(person);
    request.set_reserved(reserved);
    v1::SetReservationResponse local;
    return registry_->SetReservation(Ctx().get(), request, response ? response : &local);
  }

  grpc::Status RunIssuance(const std::string& as_of, bool dry_run, v1::IssuanceRun* run) {
    v1::RunIssuanceRequest request;
    request.set_as_of(as_of);
    request.set_dry_run(dry_run);
    return issuance_->RunIssuance(Ctx(absl::Seconds(60)).get(), request, run);
  }

  std::unique_ptr<core::RulesTable> rules_;
  std::unique_ptr<core::FakeClock> clock_;
  std::string dir_;
  std::unique_ptr<storage::Register> reg_;
  std::unique_ptr<jobs::IssuanceJob> job_;
  std::unique_ptr<server::FrikortServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Reporting::Stub> reporting_;
  std::unique_ptr<v1::Lookup::Stub> lookup_;
  std::unique_ptr<v1::Registry::Stub> registry_;
  std::unique_ptr<v1::Issuance::Stub> issuance_;
  std::unique_ptr<v1::Providers::Stub> providers_;
};

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_SERVER_TEST_UTIL_H_
