// End-to-end tests against the real frikortd binary ($FRIKORTD): kill -9 under
// load loses no acknowledged report, a second daemon cannot take a locked data
// folder, SIGTERM exits 0, startup refusals exit non-zero with one line, and
// with mutual TLS SIGHUP re-reads the authz file.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"
#include "tests/testing/certs.h"
#include "tests/testing/tamper.h"

namespace frikort::testutil {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class KillTest : public DaemonTest {
 protected:
  static void ExpectAllDuplicates(const v1::SubmitCoPaymentsResponse& response, int n) {
    ASSERT_EQ(response.results_size(), n);
    for (const v1::ReportResult& r : response.results()) EXPECT_EQ(r.outcome(), v1::DUPLICATE);
  }
};

v1::SubmitCoPaymentsRequest MakeBatch(int thread, int batch, int size) {
  v1::SubmitCoPaymentsRequest request;
  for (int i = 0; i < size; ++i) {
    CoPaymentSpec s;
    s.report_id = absl::StrCat("t", thread, "-b", batch, "-i", i);
    s.person_id = PersonId((thread * 7 + batch + i) % 6);
    s.amount_ore = 100 + i;
    // A fixed past day with rules, whatever today is.
    s.service_time = OsloTime(2025, 3, 1, 8) + absl::Minutes(batch % 600) + absl::Seconds(i);
    *request.add_co_payments() = MakeCoPayment(s);
  }
  return request;
}

TEST_F(KillTest, AcknowledgedReportsSurviveKill9) {
  Daemon* first = nullptr;
  auto channel = StartServing(&first);
  ASSERT_NE(channel, nullptr);

  absl::Mutex mu;
  std::vector<v1::SubmitCoPaymentsRequest> acked;  // guarded by mu
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      auto stub = v1::Reporting::NewStub(channel);
      for (int b = 0; b < 100000 && !stop.load(); ++b) {
        v1::SubmitCoPaymentsRequest request = MakeBatch(t, b, 25);
        v1::SubmitCoPaymentsResponse response;
        grpc::Status s = stub->SubmitCoPayments(Ctx(absl::Seconds(5)).get(), request, &response);
        if (!s.ok()) return;  // the daemon is gone
        bool all_accepted = response.results_size() == request.co_payments_size();
        for (const v1::ReportResult& r : response.results()) {
          all_accepted = all_accepted && r.outcome() == v1::ACCEPTED;
        }
        EXPECT_TRUE(all_accepted) << response.ShortDebugString().substr(0, 500);
        absl::MutexLock l(&mu);
        acked.push_back(request);
      }
    });
  }
  // Let the load run, then kill -9 while calls are in flight.
  const absl::Time deadline = absl::Now() + absl::Seconds(8);
  while (absl::Now() < deadline) {
    {
      absl::MutexLock l(&mu);
      if (acked.size() >= 150) break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  first->Signal(SIGKILL);
  stop = true;
  for (std::thread& c : clients) c.join();
  ASSERT_EQ(first->ExitCode(absl::Seconds(10)), -1000 - SIGKILL);
  ASSERT_GE(acked.size(), 10u) << "too little load before the kill";

  Daemon* second = nullptr;
  channel = StartServing(&second);
  ASSERT_NE(channel, nullptr);

  // Every acknowledged report is in its person's ledger exactly once.
  auto registry = v1::Registry::NewStub(channel);
  std::map<std::string, int> stored;  // report id -> times present
  for (int p = 0; p < 6; ++p) {
    v1::GetLedgerRequest request;
    request.set_person_id(PersonId(p));
    request.set_year(2025);
    v1::Ledger ledger;
    grpc::Status s = WholeLedger(registry.get(), request, &ledger);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const v1::LedgerEntry& e : ledger.entries()) ++stored[e.report_id()];
  }
  size_t acked_reports = 0;
  for (const v1::SubmitCoPaymentsRequest& batch : acked) {
    for (const v1::CoPayment& c : batch.co_payments()) {
      EXPECT_EQ(stored[c.report_id()], 1) << c.report_id();
      ++acked_reports;
    }
  }
  for (const auto& [id, count] : stored) EXPECT_LE(count, 1) << id;
  EXPECT_GE(stored.size(), acked_reports);
  std::cerr << "kill -9 after " << acked.size() << " acknowledged batches (" << acked_reports
            << " reports); " << stored.size() - acked_reports
            << " unacknowledged reports were stored too\n";

  // Resubmitting what was acknowledged changes nothing: every item DUPLICATE.
  auto reporting = v1::Reporting::NewStub(channel);
  for (const v1::SubmitCoPaymentsRequest& batch : acked) {
    v1::SubmitCoPaymentsResponse response;
    grpc::Status s = reporting->SubmitCoPayments(Ctx().get(), batch, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.results_size(), batch.co_payments_size());
    for (const v1::ReportResult& r : response.results()) {
      EXPECT_EQ(r.outcome(), v1::DUPLICATE) << r.report_id();
    }
  }

  second->Signal(SIGTERM);
  EXPECT_EQ(second->ExitCode(absl::Seconds(15)), 0) << second->Stderr();
}

TEST_F(KillTest, LockedDataDirSigtermAndRestart) {
  Daemon* first = nullptr;
  auto channel = StartServing(&first);
  ASSERT_NE(channel, nullptr);
  v1::SubmitCoPaymentsRequest batch = MakeBatch(9, 1, 3);
  Submit(channel, batch);

  // A second daemon on the same folder: refused with one line, non-zero.
  Daemon* second = Launch(Args());
  std::optional<int> code = second->ExitCode(absl::Seconds(15));
  ASSERT_TRUE(code.has_value()) << "the second frikortd kept running";
  EXPECT_NE(*code, 0);
  std::vector<std::string> lines = NonEmptyLines(second->Stderr());
  ASSERT_EQ(lines.size(), 1u) << second->Stderr();
  EXPECT_THAT(lines[0], StartsWith("frikortd: "));
  EXPECT_THAT(lines[0], HasSubstr("data_dir"));

  // The first one is unharmed, and SIGTERM stops it cleanly.
  HealthAnswer h = HealthCheck(channel, "");
  EXPECT_EQ(h.serving_status, 1);
  first->Signal(SIGTERM);
  EXPECT_EQ(first->ExitCode(absl::Seconds(15)), 0) << first->Stderr();

  // Restarted: the reports are there (resubmission is DUPLICATE).
  Daemon* third = nullptr;
  channel = StartServing(&third);
  ASSERT_NE(channel, nullptr);
  ExpectAllDuplicates(Submit(channel, batch), 3);
  third->Signal(SIGINT);
  EXPECT_EQ(third->ExitCode(absl::Seconds(15)), 0) << third->Stderr();
}

TEST_F(KillTest, VerifyCommand) {
  std::string report;
  EXPECT_EQ(RunVerify(&report), 1) << "no register yet";
  EXPECT_THAT(report, HasSubstr("holds no register"));
  EXPECT_FALSE(std::filesystem::exists(data_dir_)) << "verify must not create a register";

  Daemon* d = nullptr;
  auto channel = StartServing(&d);
  ASSERT_NE(channel, nullptr);
  Submit(channel, MakeBatch(1, 1, 20));
  // While the daemon holds the folder, verify refuses (one line, exit 1).
  EXPECT_EQ(RunVerify(&report), 1);
  EXPECT_THAT(report, HasSubstr("data_dir"));
  d->Signal(SIGTERM);
  ASSERT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();

  EXPECT_EQ(RunVerify(&report), 0) << report;
  EXPECT_THAT(report, HasSubstr("20 entries"));
  EXPECT_THAT(report, HasSubstr(": 0 violations"));

  ASSERT_TRUE(frikort::testing::DeleteFirstRecords(data_dir_, {"reports"}));
  EXPECT_EQ(RunVerify(&report), 3) << report;
  EXPECT_THAT(report, HasSubstr("violation: "));
  EXPECT_THAT(report, HasSubstr("no idempotency index"));
  EXPECT_THAT(report, HasSubstr(": 1 violation\n"));
}

TEST_F(KillTest, NonLoopbackWithoutTlsIsRefused) {
  ExpectRefused(Args("0.0.0.0:0"), 1, "loopback");
  EXPECT_FALSE(std::filesystem::exists(data_dir_)) << "refused, yet it touched the data folder";
}

TEST_F(KillTest, BusyPortIsRefused) {
  Daemon* first = Launch(Args());
  const int port = first->WaitListening(absl::Seconds(15));
  ASSERT_GT(port, 0) << first->Stderr();
  ExpectRefused(Args(absl::StrCat("127.0.0.1:", port), dir_ + "/other-data"), 1,
                "address already in use");
  first->Signal(SIGTERM);
  EXPECT_EQ(first->ExitCode(absl::Seconds(15)), 0) << first->Stderr();
}

TEST_F(KillTest, IncompleteTlsFlagsAreRefused) {
  std::vector<std::string> args = Args();
  args.push_back("--tls_cert=/nonexistent/cert.pem");
  ExpectRefused(args, 1, "tls_cert /nonexistent/cert.pem");
  EXPECT_FALSE(std::filesystem::exists(data_dir_)) << "refused, yet it touched the data folder";
}

// Certificates and files for a daemon with mutual TLS.
class TlsKillTest : public KillTest {
 protected:
  void SetUp() override {
    KillTest::SetUp();
    server_ = ca_.Server();
    ca_file_ = WriteFile(dir_, "ca.pem", ca_.cert_pem(), 0644);
    cert_file_ = WriteFile(dir_, "server.pem", server_.cert_pem, 0644);
    key_file_ = WriteFile(dir_, "server.key", server_.key_pem);
    authz_file_ = WriteFile(dir_, "authz.txt", "ops-1 operator\n", 0644);
  }

  std::vector<std::string> TlsArgs(const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = Args(listen);
    args.push_back("--tls_cert=" + cert_file_);
    args.push_back("--tls_key=" + key_file_);
    args.push_back("--tls_client_ca=" + ca_file_);
    args.push_back("--authz_file=" + authz_file_);
    return args;
  }

  testing::TestCa ca_{"Frikort e2e CA"};
  testing::Credential server_;
  std::string ca_file_, cert_file_, key_file_, authz_file_;
};

grpc::Status CheckExemption(const std::shared_ptr<grpc::Channel>& channel) {
  v1::CheckExemptionRequest request;
  request.set_person_id(PersonId(1));
  v1::CheckExemptionResponse response;
  return v1::Lookup::NewStub(channel)->CheckExemption(Ctx(absl::Seconds(5)).get(), request,
                                                      &response);
}

TEST_F(TlsKillTest, SighupReloadsTheAuthzFile) {
  // With TLS a non-loopback address is fine.
  Daemon* d = Launch(TlsArgs("0.0.0.0:0"));
  const int port = d->WaitListening(absl::Seconds(15));
  ASSERT_GT(port, 0) << d->Stderr();
  const std::string target = absl::StrCat("127.0.0.1:", port);
  testing::Credential ops = ca_.Client("ops-1");
  testing::Credential desk = ca_.Client("desk-1");
  auto ops_channel = testing::TlsChannel(target, ca_.cert_pem(), &ops);
  auto desk_channel = testing::TlsChannel(target, ca_.cert_pem(), &desk);
  EXPECT_EQ(HealthCheck(desk_channel, "").serving_status, 1) << d->Stderr();
  EXPECT_EQ(CheckExemption(desk_channel).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto plaintext = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  EXPECT_EQ(HealthCheck(plaintext, "", absl::Seconds(3)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);

  auto wait_for = [d](const std::string& text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline && !absl::StrContains(d->Stderr(), text)) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::StrContains(d->Stderr(), text);
  };
  WriteFile(dir_, "authz.txt", "ops-1 operator\ndesk-1 reception\n", 0644);
  d->Signal(SIGHUP);
  ASSERT_TRUE(wait_for("reloaded; client certificates: 2")) << d->Stderr();
  EXPECT_TRUE(CheckExemption(desk_channel).ok());

  // A malformed file: refused with its line number, the table stays.
  WriteFile(dir_, "authz.txt", "ops-1 operator\n# desk\ndesk-1 reception provider=*\n", 0644);
  d->Signal(SIGHUP);
  ASSERT_TRUE(wait_for("line 3: provider= applies only to the reporter role")) << d->Stderr();
  EXPECT_THAT(d->Stderr(), HasSubstr("the previous table stays in force"));
  EXPECT_TRUE(CheckExemption(desk_channel).ok());

  // Revoked by removing its line.
  WriteFile(dir_, "authz.txt", "ops-1 operator\n", 0644);
  d->Signal(SIGHUP);
  ASSERT_TRUE(wait_for("reloaded; client certificates: 1")) << d->Stderr();
  EXPECT_EQ(CheckExemption(desk_channel).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();
}

TEST_F(TlsKillTest, TlsStartupRefusals) {
  std::vector<std::string> args = TlsArgs();
  args.pop_back();  // no --authz_file
  ExpectRefused(args, 1, "authz_file: required with TLS");

  args = TlsArgs();
  args.back() =
      "--authz_file=" + WriteFile(dir_, "bad-authz.txt", "ops-1 operator\nops-2 root\n", 0644);
  ExpectRefused(args, 1, "line 2: unknown role 'root'");

  args = Args();
  args.push_back("--authz_file=" + authz_file_);
  ExpectRefused(args, 1, "given without TLS");

  args = TlsArgs();
  args[args.size() - 3] = "--tls_key=" + WriteFile(dir_, "open.key", server_.key_pem, 0644);
  ExpectRefused(args, 1, "chmod 600");

  args = TlsArgs();
  args[args.size() - 3] = "--tls_key=" + WriteFile(dir_, "other.key", ca_.Server().key_pem);
  ExpectRefused(args, 1, "does not belong");
  EXPECT_FALSE(std::filesystem::exists(data_dir_)) << "refused, yet it touched the data folder";
}

TEST_F(KillTest, PseudonymKeyReadableByOthersIsRefused) {
  const std::string key = WriteFile(dir_, "pseudonym.key", std::string(64, 'a') + "\n", 0640);
  std::vector<std::string> args = Args();
  args.push_back("--pseudonym_key_file=" + key);
  ExpectRefused(args, 1, "chmod 600");
  chmod(key.c_str(), 0600);
  Daemon* d = Launch(args);
  ASSERT_GT(d->WaitListening(absl::Seconds(15)), 0) << d->Stderr();
  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();
}

TEST_F(KillTest, MissingRulesFileIsRefused) {
  std::vector<std::string> args = Args();
  args.push_back(absl::StrCat("--rules_file=", dir_, "/no-such-rules.txt"));
  ExpectRefused(args, 1, "rules_file");
}

TEST_F(KillTest, CorruptRulesFileIsRefusedNamingTheLine) {
  const std::string rules = dir_ + "/rules.txt";
  {
    std::ofstream out(rules);
    out << "year 2025 tak1=3278 tak2=2165 minimum=0\n"
        << "year 2026 tak1=lots\n";
  }
  std::vector<std::string> args = Args();
  args.push_back("--rules_file=" + rules);
  ExpectRefused(args, 1, "line 2");
}

TEST_F(KillTest, PseudonymKeyFaultsAreRefused) {
  const std::string key = dir_ + "/pseudonym.key";
  std::vector<std::string> args = Args();
  args.push_back("--pseudonym_key_file=" + key);
  ExpectRefused(args, 1, "pseudonym_key_file");  // missing

  {
    std::ofstream out(key);
    out << std::string(64, 'a') << "\n";
  }
  std::filesystem::permissions(key, std::filesystem::perms::owner_read |
                                        std::filesystem::perms::owner_write |
                                        std::filesystem::perms::others_read);
  ExpectRefused(args, 1, "mode");  // readable by others

  std::filesystem::permissions(
      key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  Daemon* d = nullptr;
  auto channel = StartServing(&d, args);
  ASSERT_NE(channel, nullptr);
  v1::SubmitCoPaymentsRequest batch = MakeBatch(2, 2, 4);
  Submit(channel, batch);
  d->Signal(SIGTERM);
  ASSERT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();

  {
    std::ofstream out(key, std::ios::trunc);
    out << std::string(64, 'b') << "\n";
  }
  ExpectRefused(args, 1, "pseudonym key");  // another key than the register's
  {
    std::ofstream out(key, std::ios::trunc);
    out << std::string(64, 'a') << "\n";
  }
  // The right key again: nothing was lost or changed by the refusals.
  channel = StartServing(&d, args);
  ASSERT_NE(channel, nullptr);
  ExpectAllDuplicates(Submit(channel, batch), 4);
  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(15)), 0) << d->Stderr();
}

TEST_F(KillTest, UnusableDataDirIsRefused) {
  // A data folder that cannot be created (its parent is a file): root or not.
  const std::string file = dir_ + "/plain-file";
  { std::ofstream out(file); }
  ExpectRefused(Args("127.0.0.1:0", file + "/data"), 1, "data_dir");
}

TEST_F(KillTest, BadFlagsExitTwo) {
  std::vector<std::string> args = Args();
  args.push_back("--issuance_interval=banana");
  ExpectRefused(args, 2, "issuance_interval");

  args = Args();
  args.push_back("--no_such_flag=1");
  ExpectRefused(args, 2, "no_such_flag");

  args = Args();
  args.push_back("stray-argument");
  ExpectRefused(args, 2, "stray-argument");

  args = Args();
  args.push_back("--lookup_years_back=-1");
  ExpectRefused(args, 2, "lookup_years_back");

  args = Args("127.0.0.1");
  ExpectRefused(args, 2, "listen");
}

}  // namespace
}  // namespace frikort::testutil

namespace frikort::testutil {
namespace {

TEST_F(KillTest, SchedulerIssuesCardsByItself) {
  // A short interval: the daemon's own scheduler (first run at start, then
  // every second) must issue the card without any operator call.
  std::vector<std::string> args = Args();
  args.back() = "--issuance_interval=1s";
  Daemon* d = Launch(args);
  const int port = d->WaitListening(absl::Seconds(15));
  ASSERT_GT(port, 0) << d->Stderr();
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto reporting = v1::Reporting::NewStub(channel);
  CoPaymentSpec spec;
  spec.report_id = "over-the-cap";
  spec.person_id = PersonId(3);
  spec.amount_ore = 400000;  // 4000 NOK: above the 2025 cap of 3278 NOK
  spec.service_time = OsloTime(2025, 3, 1, 8);
  v1::SubmitCoPaymentsRequest request;
  *request.add_co_payments() = MakeCoPayment(spec);
  v1::SubmitCoPaymentsResponse response;
  ASSERT_TRUE(reporting->SubmitCoPayments(Ctx().get(), request, &response).ok());
  ASSERT_EQ(response.results(0).outcome(), v1::ACCEPTED);

  auto issuance = v1::Issuance::NewStub(channel);
  v1::ListFreeCardsResponse cards;
  v1::ListPayoutsResponse payouts;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    v1::ListFreeCardsRequest list;
    list.set_year(2025);
    ASSERT_TRUE(issuance->ListFreeCards(Ctx().get(), list, &cards).ok());
    if (cards.cards_size() > 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(cards.cards_size(), 1) << d->Stderr();
  EXPECT_EQ(cards.cards(0).person_id(), spec.person_id);
  EXPECT_EQ(cards.cards(0).valid_from(), "2025-03-01");
  EXPECT_EQ(cards.cards(0).valid_to(), "2025-12-31");
  v1::ListPayoutsRequest list;
  list.set_year(2025);
  ASSERT_TRUE(issuance->ListPayouts(Ctx().get(), list, &payouts).ok());
  ASSERT_EQ(payouts.payouts_size(), 1);
  EXPECT_EQ(payouts.payouts(0).amount_ore(), 400000 - 327800);
  // Later scheduled runs pay nothing twice.
  absl::SleepFor(absl::Milliseconds(2500));
  ASSERT_TRUE(issuance->ListPayouts(Ctx().get(), list, &payouts).ok());
  EXPECT_EQ(payouts.payouts_size(), 1);
  d->Signal(SIGTERM);
  EXPECT_EQ(d->ExitCode(absl::Seconds(15)), 0);
}

}  // namespace
}  // namespace frikort::testutil
