// End-to-end tests of the operators' tools: the real frikortctl ($FRIKORTCTL)
// against the real frikortd ($FRIKORTD): import with bad rows and again
// (duplicates), lookup, ledger, reservations, issuance, cards and payouts as
// CSV, backup and restore (the restored register answers like the original),
// metrics scraped over HTTP, and bad command lines (non-zero, one line).
//
// (Named frikortctl_test, not ctl_test: test targets are named after their
// file, and tests/server/ctl_test.cc holds the tool's unit tests.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"
#include "tests/testing/oslo.h"

namespace frikort::testutil {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct ToolResult {
  int code = -1;
  std::string out;
  std::string err;
};

// GET /metrics over a plain socket; the body, or "" on failure.
std::string HttpGetMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.") || !absl::StrContains(response, " 200 ") ||
      body == std::string::npos) {
    return "";
  }
  return response.substr(body + 4);
}

// The value of the sample `series` (name with labels, as printed), or -1.
double Sample(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return -1;
}

class FrikortctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(frikort::testing::LoadOsloTimeZone().ok());
    ASSERT_FALSE(FrikortdPath().empty()) << "no frikortd: set FRIKORTD";
    ASSERT_FALSE(CtlPath().empty()) << "no frikortctl: set FRIKORTCTL";
    ASSERT_FALSE(SourceDir().empty()) << "FRIKORT_SOURCE_DIR is not set";
    dir_ = MakeTempDir("frikort-ctl-e2e-");
    ASSERT_FALSE(dir_.empty());
    // Without the direct-settlement requirement: these tests' providers hold
    // no agreements (rules_file.h).
    auto rules = frikort::testing::WriteRulesFileWithoutAgreementRequirement(
        SourceDir() + "/deploy/rules.txt", dir_ + "/rules.txt");
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_file_ = *rules;
  }
  void TearDown() override {
    processes_.clear();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::string CtlPath() { return BinaryPath("FRIKORTCTL", "frikortctl"); }

  Daemon* Spawn(std::vector<std::string> args, const std::string& binary, bool capture_stdout) {
    const std::string base = absl::StrCat(dir_, "/proc-", processes_.size());
    processes_.push_back(std::make_unique<Daemon>(std::move(args), base + ".err", binary));
    Daemon* p = processes_.back().get();
    EXPECT_TRUE(p->Start(capture_stdout ? base + ".out" : ""));
    return p;
  }

  // Starts frikortd on `data_dir` with metrics on; sets port_ and
  // metrics_port_ (with JSON logs: port_ only).
  void StartDaemon(const std::string& data_dir, bool json_logs = false) {
    daemon_ = Spawn(
        {"--listen=127.0.0.1:0", absl::StrCat("--data_dir=", data_dir),
         absl::StrCat("--rules_file=", rules_file_), "--issuance_interval=0",
         "--metrics_listen=127.0.0.1:0", json_logs ? "--log_format=json" : "--log_format=text"},
        FrikortdPath(), false);
    if (json_logs) {
      const absl::Time deadline = absl::Now() + absl::Seconds(15);
      while (port_ == 0 && absl::Now() < deadline) {
        for (const std::string& line : NonEmptyLines(daemon_->Stderr())) {
          const std::string kAddress = "\"address\":\"127.0.0.1:";
          const size_t at = line.find(kAddress);
          if (at != std::string::npos) {
            const size_t from = at + kAddress.size();
            // A line that does not parse leaves port_ at 0: the loop looks on.
            if (!absl::SimpleAtoi(line.substr(from, line.find('"', from) - from), &port_)) {
              port_ = 0;
            }
          }
        }
        absl::SleepFor(absl::Milliseconds(20));
      }
      ASSERT_GT(port_, 0) << daemon_->Stderr();
      return;
    }
    port_ = daemon_->WaitListening(absl::Seconds(15));
    ASSERT_GT(port_, 0) << daemon_->Stderr();
    for (const std::string& line : NonEmptyLines(daemon_->Stderr())) {
      absl::string_view rest = line;
      if (absl::ConsumePrefix(&rest, "frikortd metrics on http://127.0.0.1:") &&
          absl::ConsumeSuffix(&rest, "/metrics")) {
        ASSERT_TRUE(absl::SimpleAtoi(rest, &metrics_port_)) << line;
      }
    }
    ASSERT_GT(metrics_port_, 0) << daemon_->Stderr();
  }

  void StopDaemon() {
    daemon_->Signal(SIGTERM);
    EXPECT_EQ(daemon_->ExitCode(absl::Seconds(15)), 0) << daemon_->Stderr();
  }

  // Runs frikortctl against the daemon (--server first) to its end.
  ToolResult Ctl(std::vector<std::string> args, bool with_server = true) {
    if (with_server) args.insert(args.begin(), absl::StrCat("--server=127.0.0.1:", port_));
    return RunToEnd(std::move(args), CtlPath());
  }
  ToolResult RunToEnd(std::vector<std::string> args, const std::string& binary) {
    const std::string out = absl::StrCat(dir_, "/proc-", processes_.size(), ".out");
    Daemon* p = Spawn(std::move(args), binary, true);
    ToolResult r;
    std::optional<int> code = p->ExitCode(absl::Seconds(60));
    r.code = code.value_or(-1);
    r.out = ReadFile(out);
    r.err = p->Stderr();
    return r;
  }

  std::string WriteCsv(const std::string& name, const std::vector<std::string>& rows) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << "report_id,provider_id,person_id,service_time,category,amount_ore,"
                           "payment\n"
                        << absl::StrJoin(rows, "\n") << "\n";
    return path;
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                               grpc::InsecureChannelCredentials());
  }

  // Reports for two people in March 2025: person 1 over the 2025 cap
  // (3278 NOK), person 2 below; one row with a bad id, one with a bad amount.
  std::string ReportsCsv() {
    return WriteCsv("reports.csv", {absl::StrCat("r1,1234567,", PersonId(1),
                                                 ",2025-03-01T08:00:00+01:00,"
                                                 "PHYSICIAN,400000,PAID"),
                                    absl::StrCat("r2,1234567,", PersonId(2),
                                                 ",2025-03-02 09:00,physician,"
                                                 "15000,PAID"),
                                    absl::StrCat("r3,1234567,", WithBadCheckDigit(PersonId(3)),
                                                 ",2025-03-02 09:00,PHYSICIAN,10000,PAID"),
                                    absl::StrCat("r4,1234567,", PersonId(4),
                                                 ",2025-03-02 09:00,LABORATORY,ten kroner,PAID")});
  }

  std::string dir_;
  std::string rules_file_;
  std::vector<std::unique_ptr<Daemon>> processes_;
  Daemon* daemon_ = nullptr;
  int port_ = 0;
  int metrics_port_ = 0;
};

TEST_F(FrikortctlTest, ImportLookupIssueAndPayouts) {
  StartDaemon(dir_ + "/data");
  const std::string csv = ReportsCsv();

  ToolResult r = Ctl({"import", csv});
  EXPECT_EQ(r.code, 3) << r.out << r.err;  // finished, with rejected rows
  std::vector<std::string> lines = NonEmptyLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[0], StartsWith("line 4: report r3: rejected INVALID_PERSON_ID: person_id"));
  EXPECT_THAT(lines[1], StartsWith("line 5: report r4: rejected: amount_ore: 'ten kroner'"));
  EXPECT_EQ(lines[2], csv + ": 4 rows: 2 accepted, 0 duplicates, 2 rejected");
  EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal

  // Safe to run again: what was stored is a duplicate now.
  r = Ctl({"import", csv});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.out, HasSubstr(": 4 rows: 0 accepted, 2 duplicates, 2 rejected"));
  // A clean file exits 0.
  r = Ctl({"import", WriteCsv("clean.csv", {absl::StrCat("r9,1234567,", PersonId(5),
                                                         ",2025-04-01 10:00,DENTAL,5000,PAID")})});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 rows: 1 accepted, 0 duplicates, 0 rejected"));

  r = Ctl({"lookup", PersonId(1), "--date=2025-06-01"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("TAK     CAP_REACHED  2025-03-01  2025-12-31"));

  r = Ctl({"issue", "--as-of=2025-06-01", "--dry-run"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("dry run as of 2025-06-01"));
  r = Ctl({"issue", "--as-of=2025-06-01"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("run run-000001 as of 2025-06-01\n"));
  lines = NonEmptyLines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(absl::StrSplit(lines[2], ' ', absl::SkipEmpty()),
              ElementsAre("1", "1", "1", "1", "72200", "0"));

  r = Ctl({"lookup", PersonId(1), "--date=2025-06-01", "--category=physician"});
  EXPECT_THAT(r.out, HasSubstr("TAK     EXEMPT  2025-03-01  2025-12-31"));

  r = Ctl({"payouts", "--year=2025", "--format=csv"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("person_id,year,scheme,amount_ore,run_id,created_on\n", PersonId(1),
                                ",2025,TAK,72200,run-000001,2025-06-01\n"));
  r = Ctl({"payouts", "--run=run-000001"});
  EXPECT_THAT(r.out, HasSubstr("1 payouts, 72200 øre"));
  r = Ctl({"cards", "--year=2025", "--format=csv"});
  EXPECT_EQ(r.out, absl::StrCat("person_id,year,scheme,valid_from,valid_to,issued_on,"
                                "basis_total_ore,under_review\n",
                                PersonId(1),
                                ",2025,TAK,2025-03-01,2025-12-31,2025-06-01,400000,"
                                "false\n"));

  r = Ctl({"ledger", PersonId(1), "--year=2025"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2025-03-01 08:00  r1"));
  EXPECT_THAT(r.out, HasSubstr("TAK     327800   400000       2025-03-01"));

  r = Ctl({"reserve", PersonId(2)});
  EXPECT_EQ(r.out, PersonId(2) + " is reserved\n");
  r = Ctl({"ledger", PersonId(2), "--year=2025"});
  EXPECT_THAT(r.out, HasSubstr("(reserved"));
  r = Ctl({"unreserve", PersonId(2)});
  EXPECT_EQ(r.out, PersonId(2) + " is not reserved\n");
  StopDaemon();
}

// Under the deployed rules (agreements required from 2021): reports of a
// provider the registry does not know do not count until `providers import`
// loads its agreement, the way an operator loads the registry after an upgrade.
TEST_F(FrikortctlTest, ProvidersImportTurnsReportsIntoCountedOnes) {
  rules_file_ = SourceDir() + "/deploy/rules.txt";
  StartDaemon(dir_ + "/data");
  ToolResult r = Ctl({"import", ReportsCsv()});
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  r = Ctl({"ledger", PersonId(1), "--year=2025"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("not counted: no direct-settlement agreement"));

  const std::string registry = absl::StrCat(dir_, "/registry.csv");
  std::ofstream(registry) << "provider_id,name,valid_from,valid_to,version\n"
                             "1234567,Legesenteret,2025-01-01,,v1\n"
                             "974760674,Wrong check digit,2025-01-01,,v1\n"
                             "7654321,Two,2025-01-01,2025-06-30,v1\n"
                             "7654321,Two,2025-06-01,,v2\n";
  r = Ctl({"providers", "import", registry});
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  std::vector<std::string> lines = NonEmptyLines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[0], StartsWith("line 3: provider (not a provider number): rejected: "
                                   "provider_id: "));
  EXPECT_THAT(lines[1], StartsWith("lines 4,5: provider 7654321: rejected: agreements: "));
  EXPECT_EQ(lines[2], absl::StrCat(registry,
                                   ": 4 rows, 3 providers: 1 stored, 3 rows rejected; 2 entries "
                                   "re-evaluated, 2 changed, 2 ledgers changed, 0 cards under "
                                   "review"));
  r = Ctl({"ledger", PersonId(1), "--year=2025"});
  EXPECT_THAT(r.out, Not(HasSubstr("not counted")));
  EXPECT_THAT(r.out, HasSubstr("TAK     327800   400000       2025-03-01"));

  r = Ctl({"providers", "list", "--format=csv", "--in-force-on=2025-03-01"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "provider_id,name,valid_from,valid_to,version\n1234567,Legesenteret,2025-01-01,,v1\n");
  r = Ctl({"provider", "7654321"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  StopDaemon();
}

TEST_F(FrikortctlTest, MetricsAreScrapedOverHttp) {
  StartDaemon(dir_ + "/data");
  const std::string before = HttpGetMetrics(metrics_port_);
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(Sample(before, "frikort_reports_total{outcome=\"accepted\"}"), 0);

  Ctl({"import", ReportsCsv()});
  Ctl({"import", ReportsCsv()});
  Ctl({"lookup", PersonId(1), "--date=2025-06-01"});
  Ctl({"lookup", PersonId(1), "--date=2025-06-02"});
  Ctl({"lookup", "123"});  // refused: an RPC, not a lookup answered
  Ctl({"issue", "--as-of=2025-06-01"});

  const std::string after = HttpGetMetrics(metrics_port_);
  // (A family with labels shows once a call has given it a series.)
  for (const char* name : server::kMetricNames) {
    EXPECT_THAT(after, HasSubstr(absl::StrCat("# TYPE ", name, " "))) << name;
  }
  EXPECT_EQ(Sample(after, "frikort_reports_total{outcome=\"accepted\"}"), 2);
  EXPECT_EQ(Sample(after, "frikort_reports_total{outcome=\"duplicate\"}"), 2);
  EXPECT_EQ(Sample(after, "frikort_reports_total{outcome=\"rejected\"}"), 2);  // the server's
  EXPECT_EQ(Sample(after, "frikort_lookups_total"), 2);
  EXPECT_EQ(Sample(after, "frikort_cards_issued_total"), 1);
  EXPECT_EQ(Sample(after, "frikort_payouts_total"), 1);
  EXPECT_EQ(Sample(after, "frikort_payout_ore_total"), 72200);
  EXPECT_EQ(Sample(after, "frikort_cards_past_deadline_total"), 1);  // reached 1 March
  EXPECT_EQ(Sample(after,
                   "frikort_rpc_duration_seconds_count{method=\"frikort.v1.Lookup/"
                   "CheckExemption\"}"),
            3);
  EXPECT_EQ(Sample(after,
                   "frikort_rpcs_total{code=\"INVALID_ARGUMENT\",method=\"frikort.v1."
                   "Lookup/CheckExemption\"}"),
            1);
  EXPECT_EQ(Sample(after,
                   "frikort_rpc_duration_seconds_count{method=\"frikort.v1.Reporting/"
                   "StreamCoPayments\"}"),
            2);
  EXPECT_GT(Sample(after, "frikort_rocksdb_size_bytes"), 0);
  EXPECT_GE(Sample(after, "frikort_rocksdb_pending_compaction_bytes"), 0);
  EXPECT_EQ(Sample(after, "frikort_register_healthy"), 1);
  StopDaemon();
}

// Everything a client can ask of the register about the people in `csv`, as text.
std::string Answers(const std::shared_ptr<grpc::Channel>& channel) {
  auto registry = v1::Registry::NewStub(channel);
  auto lookup = v1::Lookup::NewStub(channel);
  auto issuance = v1::Issuance::NewStub(channel);
  std::string out;
  for (int p : {1, 2, 3, 4, 5}) {
    v1::GetLedgerRequest request;
    request.set_person_id(PersonId(p));
    request.set_year(2025);
    v1::Ledger ledger;
    grpc::Status s = registry->GetLedger(Ctx().get(), request, &ledger);
    absl::StrAppend(&out, s.error_code(), " ", ledger.ShortDebugString(), "\n");
    v1::CheckExemptionRequest check;
    check.set_person_id(PersonId(p));
    check.set_date("2025-06-01");
    v1::CheckExemptionResponse exemption;
    s = lookup->CheckExemption(Ctx().get(), check, &exemption);
    absl::StrAppend(&out, s.error_code(), " ", exemption.ShortDebugString(), "\n");
  }
  v1::ListPayoutsRequest payouts_request;
  payouts_request.set_year(2025);
  v1::ListPayoutsResponse payouts;
  issuance->ListPayouts(Ctx().get(), payouts_request, &payouts);
  v1::ListFreeCardsRequest cards_request;
  cards_request.set_year(2025);
  v1::ListFreeCardsResponse cards;
  issuance->ListFreeCards(Ctx().get(), cards_request, &cards);
  absl::StrAppend(&out, payouts.ShortDebugString(), "\n", cards.ShortDebugString(), "\n");
  return out;
}

TEST_F(FrikortctlTest, BackupAndRestoreAnswerLikeTheOriginal) {
  const std::string data = dir_ + "/data";
  StartDaemon(data);
  Ctl({"import", ReportsCsv()});
  Ctl({"issue", "--as-of=2025-06-01"});
  Ctl({"reserve", PersonId(2)});
  const std::string original = Answers(Channel());

  ToolResult r = Ctl({"backup", absl::StrCat("--dest=", dir_, "/backups")});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(absl::StrCat("backup 1 in ", dir_, "/backups: ")));
  EXPECT_THAT(r.out, HasSubstr("pseudonym key is not in the backup"));
  // Written after the backup: not in the restored register.
  Ctl({"import", WriteCsv("later.csv", {absl::StrCat("late-1,1234567,", PersonId(5),
                                                     ",2025-04-01 10:00,DENTAL,5000,PAID")})});
  EXPECT_NE(Answers(Channel()), original);
  StopDaemon();
  EXPECT_FALSE(fs::exists(dir_ + "/backups/pseudonym.key"));

  const std::vector<std::string> rules = {absl::StrCat("--rules_file=", rules_file_)};
  auto restore = [&](const std::string& target, std::vector<std::string> extra) {
    std::vector<std::string> args = {absl::StrCat("--restore_from=", dir_, "/backups"),
                                     absl::StrCat("--data_dir=", target), rules[0]};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunToEnd(args, FrikortdPath());
  };

  // Development mode without the key: refused, and so is another key.
  r = restore(dir_ + "/nokey", {});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("restore needs the pseudonym key")));
  const std::string other_key = dir_ + "/other.key";
  std::ofstream(other_key) << std::string(64, 'a') << "\n";
  fs::permissions(other_key, fs::perms::owner_read | fs::perms::owner_write);
  r = restore(dir_ + "/otherkey", {absl::StrCat("--pseudonym_key_file=", other_key)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("pseudonym key does not match")));
  EXPECT_FALSE(fs::exists(dir_ + "/otherkey"));
  // Never over a register.
  r = restore(data, {});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("is not empty")));

  // With the key copied in (development mode), the restore succeeds and exits.
  const std::string restored = dir_ + "/restored";
  fs::create_directories(restored);
  fs::copy_file(data + "/pseudonym.key", restored + "/pseudonym.key");
  r = restore(restored, {});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(StartsWith("frikortd: restored backup 1 ")));

  StartDaemon(restored);
  EXPECT_EQ(Answers(Channel()), original);
  StopDaemon();
}

TEST_F(FrikortctlTest, DataFilesArePrivateToTheDaemonsUser) {
  // A permissive umask in the parent, inherited by frikortd: the daemon itself
  // must make what it writes private (reports, the WAL, the development key).
  const mode_t previous = umask(022);
  StartDaemon(dir_ + "/data");
  umask(previous);
  ToolResult r = Ctl({"import", ReportsCsv()});
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 accepted"));
  StopDaemon();

  int checked = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_ + "/data", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::perms perms = it->symlink_status().permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
        << it->path() << " is 0" << std::oct << static_cast<unsigned>(perms);
    ++checked;
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_GT(checked, 3);  // CURRENT, MANIFEST, a WAL or table, the key at least
  const fs::perms top = fs::status(dir_ + "/data").permissions();
  EXPECT_EQ(top & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST_F(FrikortctlTest, JsonLogsOneObjectPerLineAndNoIdInClear) {
  StartDaemon(dir_ + "/data", /*json_logs=*/true);
  ASSERT_EQ(Ctl({"import", ReportsCsv()}).code, 3);
  ASSERT_EQ(Ctl({"issue", "--as-of=2025-06-01"}).code, 0);
  StopDaemon();
  const std::string log = daemon_->Stderr();
  std::vector<std::string> events;
  for (const std::string& line : NonEmptyLines(log)) {
    google::protobuf::Struct entry;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &entry).ok()) << line;
    for (const char* key : {"time", "level", "event", "msg"}) {
      EXPECT_TRUE(entry.fields().contains(key)) << line;
    }
    events.push_back(entry.fields().at("event").string_value());
  }
  EXPECT_THAT(events, ::testing::IsSupersetOf(
                          {"listening", "metrics", "issuance_run", "shutting_down", "stopped"}));
  for (int p = 1; p <= 5; ++p) EXPECT_THAT(log, ::testing::Not(HasSubstr(PersonId(p))));
}

TEST_F(FrikortctlTest, BadArgumentsGiveOneLineAndNonZero) {
  StartDaemon(dir_ + "/data");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {{}, 2, "no command"},
      {{"frobnicate"}, 2, "unknown command 'frobnicate'"},
      {{"lookup"}, 2, "lookup: missing PERSON"},
      {{"lookup", PersonId(1), "extra"}, 2, "unexpected argument 'extra'"},
      {{"ledger", PersonId(1)}, 2, "--year=Y is required"},
      {{"lookup", PersonId(1), "--year=2025"}, 2, "--year does not apply"},
      {{"--no_such_flag=1", "issue"}, 2, "unknown flag --no_such_flag"},
      {{"cards", "--year=banana"}, 2, "year"},
      {{"payouts", "--year=2025", "--format=xml"}, 2, "--format: 'xml'"},
      {{"payouts"}, 2, "give --year=Y, --run=ID or both"},
      {{"lookup", PersonId(1), "--category=SURGERY"}, 2, "--category: 'SURGERY' is not one of"},
      {{"backup"}, 2, "--dest=FOLDER is required"},
      {{"lookup", "123"}, 1, "person_id"},
      {{"ledger", PersonId(1), "--year=1999"}, 1, "year: no rules for 1999"},
      {{"payouts", "--run=run-x"}, 1, "run_id"},
      {{"import", dir_ + "/no-such.csv"}, 1, "cannot read"},
      {{"backup", "--dest=relative/folder"}, 1, "absolute"},
  };
  for (const Case& c : cases) {
    ToolResult r = Ctl(c.args);
    const std::string what = absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.code, c.code) << what << "\n" << r.err;
    std::vector<std::string> lines = NonEmptyLines(r.err);
    ASSERT_EQ(lines.size(), 1u) << what << "\n" << r.err;
    EXPECT_THAT(lines[0], StartsWith("frikortctl: ")) << what;
    EXPECT_THAT(lines[0], HasSubstr(c.fragment)) << what;
    EXPECT_EQ(r.out, "") << what;
  }
  // Plaintext to a non-loopback address is refused before any connection.
  ToolResult r = Ctl({"--server=192.0.2.1:50051", "lookup", PersonId(1)}, false);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("is not a loopback address")));
  // A TLS file that is not there names the flag.
  r = Ctl({"--tls_ca=/no/such/ca.pem", "issue"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("--tls_ca /no/such/ca.pem")));
  // The probe command.
  r = Ctl({"health"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  StopDaemon();
  // No server: one line, non-zero.
  r = Ctl({"lookup", PersonId(1)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(HasSubstr("(UNAVAILABLE)")));
  r = Ctl({"health"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(NonEmptyLines(r.err), ElementsAre(StartsWith("frikortctl: health: ")));
}

}  // namespace
}  // namespace frikort::testutil
