// The authz file parser, the authorizer's decisions per role and RPC, the
// provider binding, the per-caller call limiter and the audit line format.
#include "server/authz.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/audit.h"
#include "server/gate.h"
#include "tests/server/test_util.h"

namespace frikort::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

constexpr char kGoodFile[] = R"(# Frikort clients
reporter-1 reporter provider=1234567,7654321   # a practitioner system
"Oslo kommune legevakt" reporter provider=*
desk-1 reception

ops-1 operator
gp-desk reporter,reception provider=42
all-in-one reporter,reception,operator,citizen-portal provider=*
)";

TEST(AuthzTableTest, ParsesRolesProvidersCommentsAndQuotedNames) {
  absl::StatusOr<AuthzTable> table = AuthzTable::Parse(kGoodFile);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 6u);

  const Principal* r = table->Find("reporter-1");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->roles, static_cast<RoleSet>(Role::kReporter));
  EXPECT_FALSE(r->any_provider);
  EXPECT_THAT(r->providers, UnorderedElementsAre("1234567", "7654321"));
  EXPECT_TRUE(r->MayReportFor("7654321"));
  EXPECT_FALSE(r->MayReportFor("1111111"));
  EXPECT_FALSE(r->MayReportFor(""));

  const Principal* municipality = table->Find("Oslo kommune legevakt");
  ASSERT_NE(municipality, nullptr);
  EXPECT_TRUE(municipality->any_provider);
  EXPECT_TRUE(municipality->MayReportFor("974760673"));

  const Principal* desk = table->Find("desk-1");
  ASSERT_NE(desk, nullptr);
  EXPECT_EQ(desk->roles, static_cast<RoleSet>(Role::kReception));
  EXPECT_FALSE(desk->MayReportFor("1234567"));

  const Principal* both = table->Find("gp-desk");
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(FormatRoles(both->roles), "reporter,reception");
  EXPECT_EQ(FormatRoles(table->Find("all-in-one")->roles),
            "reporter,reception,operator,citizen-portal");

  EXPECT_EQ(table->Find("nobody"), nullptr);
  EXPECT_EQ(table->Find("Oslo"), nullptr);
  EXPECT_EQ(table->Find("desk-1 "), nullptr);
}

TEST(AuthzTableTest, EmptyFileAndWindowsLineEndingsAreFine) {
  absl::StatusOr<AuthzTable> empty = AuthzTable::Parse("# nobody yet\n\n");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size(), 0u);
  absl::StatusOr<AuthzTable> crlf = AuthzTable::Parse("ops-1 operator\r\ndesk-1 reception\r\n");
  ASSERT_TRUE(crlf.ok()) << crlf.status();
  EXPECT_NE(crlf->Find("desk-1"), nullptr);
}

TEST(AuthzTableTest, MalformedLinesAreRefusedWithTheirNumber) {
  struct Case {
    std::string text;
    std::string want;  // "line N: ..." fragment
  };
  const std::vector<Case> cases = {
      {"ops-1 admin", "line 1: unknown role 'admin'"},
      {"ops-1 operator\n\n# x\nrep reporter", "line 4: the reporter role needs provider="},
      {"desk reception provider=1234567", "line 1: provider= applies only to the reporter role"},
      {"ops operator extra", "line 1: unexpected 'extra'"},
      {"rep reporter provider=1 extra", "line 1: unexpected 'extra'"},
      {"rep reporter provider=12x4", "line 1: provider '12x4'"},
      {"rep reporter provider=123456789", "line 1: provider '123456789'"},  // bad mod-11
      {"rep reporter provider=", "line 1: provider ''"},
      {"rep reporter provider=*,1234567", "line 1: provider=* stands alone"},
      {"lonely", "line 1: CN 'lonely' has no role"},
      {"ops reporter,,operator provider=*", "line 1: unknown role ''"},
      {"ops operator\ndesk reception\nops reception", "line 3: CN 'ops' is already on line 1"},
      {"\"Oslo kommune reporter provider=*", "line 1: no closing '\"'"},
      {"\"Oslo kommune\"operator", "line 1: a space must follow the quoted CN"},
      {"\"\" operator", "line 1: empty CN"},
      {"a\"b operator", "line 1: a CN with '\"' must be quoted whole"},
      {"dev:ipv4:127.0.0.1:5000 operator", "line 1: CN 'dev:ipv4:127.0.0.1:5000'"},
      {std::string(300, 'x') + " operator", "line 1: CN of 300 bytes"},
      {"\"tab\there\" operator", "line 1: the CN holds a control character"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<AuthzTable> table = AuthzTable::Parse(c.text);
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(table.status().message()), StartsWith(c.want)) << c.text;
  }
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testutil::MakeTempDir("frikort-authz-test-");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/authz.txt";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(AuthorizerTest, DevelopmentModeAllowsEverything) {
  Authorizer authz;
  EXPECT_FALSE(authz.enforcing());
  for (Rpc rpc : kAllRpcs) {
    absl::StatusOr<std::shared_ptr<const Principal>> p = authz.Authorize("dev:ipv4:1.2.3.4", rpc);
    ASSERT_TRUE(p.ok()) << RpcName(rpc);
    EXPECT_TRUE((*p)->MayReportFor("1234567"));
  }
}

TEST_F(AuthorizerTest, EachRoleGetsExactlyItsServices) {
  Write(kGoodFile);
  Authorizer authz;
  ASSERT_EQ(authz.LoadFile(path_).value_or(0), 6u);
  EXPECT_TRUE(authz.enforcing());
  // The contract, written out: reporter = Reporting + Lookup, reception =
  // Lookup, operator = Registry + Issuance + Providers.
  const std::vector<Rpc> reporting = {Rpc::kSubmitCoPayments, Rpc::kStreamCoPayments,
                                      Rpc::kUpdatePayment, Rpc::kCancelCoPayment};
  const std::vector<Rpc> operating = {Rpc::kGetLedger,   Rpc::kSetReservation, Rpc::kListLookups,
                                      Rpc::kRunIssuance, Rpc::kListFreeCards,  Rpc::kListPayouts,
                                      Rpc::kPutProvider, Rpc::kGetProvider,    Rpc::kListProviders};
  auto allowed = [&](const std::string& cn, Rpc rpc) {
    absl::StatusOr<std::shared_ptr<const Principal>> p = authz.Authorize(cn, rpc);
    if (!p.ok()) {
      EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied) << cn;
      EXPECT_THAT(std::string(p.status().message()), HasSubstr(cn));
    }
    return p.ok();
  };
  for (Rpc rpc : reporting) {
    EXPECT_TRUE(allowed("reporter-1", rpc)) << RpcName(rpc);
    EXPECT_FALSE(allowed("desk-1", rpc)) << RpcName(rpc);
    EXPECT_FALSE(allowed("ops-1", rpc)) << RpcName(rpc);
    EXPECT_FALSE(IsOperatorRpc(rpc));
  }
  EXPECT_TRUE(allowed("reporter-1", Rpc::kCheckExemption));
  EXPECT_TRUE(allowed("desk-1", Rpc::kCheckExemption));
  EXPECT_FALSE(allowed("ops-1", Rpc::kCheckExemption));
  for (Rpc rpc : operating) {
    EXPECT_FALSE(allowed("reporter-1", rpc)) << RpcName(rpc);
    EXPECT_FALSE(allowed("desk-1", rpc)) << RpcName(rpc);
    EXPECT_TRUE(allowed("ops-1", rpc)) << RpcName(rpc);
    EXPECT_TRUE(IsOperatorRpc(rpc));
  }
  for (Rpc rpc : {Rpc::kGetMyOverview, Rpc::kListMyLookups}) {  // citizen-portal only
    for (const char* cn : {"reporter-1", "desk-1", "ops-1"}) EXPECT_FALSE(allowed(cn, rpc)) << cn;
    EXPECT_FALSE(IsOperatorRpc(rpc));
  }
  for (Rpc rpc : kAllRpcs) {
    EXPECT_TRUE(allowed("all-in-one", rpc)) << RpcName(rpc);
    EXPECT_FALSE(allowed("stranger", rpc)) << RpcName(rpc);
  }
  absl::StatusOr<std::shared_ptr<const Principal>> denied =
      authz.Authorize("desk-1", Rpc::kGetLedger);
  EXPECT_EQ(denied.status().message(),
            "caller 'desk-1' (reception) may not call frikort.v1.Registry/GetLedger: that needs "
            "the operator role");
  EXPECT_EQ(authz.Authorize("", Rpc::kCheckExemption).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthorizerTest, AMalformedReloadKeepsTheTableInForce) {
  Write("ops-1 operator\n");
  Authorizer authz;
  ASSERT_TRUE(authz.LoadFile(path_).ok());
  absl::StatusOr<std::shared_ptr<const Principal>> held = authz.Authorize("ops-1", Rpc::kGetLedger);
  ASSERT_TRUE(held.ok());

  Write("ops-1 operator\nnew-1 reception\nbroken reporter\n");
  absl::StatusOr<size_t> reload = authz.LoadFile(path_);
  ASSERT_FALSE(reload.ok());
  EXPECT_THAT(std::string(reload.status().message()), HasSubstr(path_));
  EXPECT_THAT(std::string(reload.status().message()), HasSubstr("line 3"));
  EXPECT_TRUE(authz.Authorize("ops-1", Rpc::kGetLedger).ok());
  EXPECT_FALSE(authz.Authorize("new-1", Rpc::kCheckExemption).ok());

  // A good file replaces the table; a principal taken before stays valid.
  Write("new-1 reception\n");
  EXPECT_EQ(authz.LoadFile(path_).value_or(0), 1u);
  EXPECT_TRUE(authz.Authorize("new-1", Rpc::kCheckExemption).ok());
  EXPECT_EQ(authz.Authorize("ops-1", Rpc::kGetLedger).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*held)->cn, "ops-1");

  std::filesystem::remove(path_);
  EXPECT_FALSE(authz.LoadFile(path_).ok());
  EXPECT_TRUE(authz.Authorize("new-1", Rpc::kCheckExemption).ok());
}

TEST(CheckProvidersTest, NamesTheFirstForeignItem) {
  absl::StatusOr<AuthzTable> table = AuthzTable::Parse(kGoodFile);
  ASSERT_TRUE(table.ok());
  const Principal& rep = *table->Find("reporter-1");
  v1::SubmitCoPaymentsRequest request;
  request.add_co_payments()->set_provider_id("1234567");
  request.add_co_payments()->set_provider_id("7654321");
  EXPECT_TRUE(CheckProviders(rep, request.co_payments()).ok());
  request.add_co_payments()->set_provider_id("9999999");
  request.add_co_payments()->set_provider_id("8888888");
  absl::Status s = CheckProviders(rep, request.co_payments());
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), StartsWith("co_payments[2].provider_id: caller "
                                                   "'reporter-1' may not report for provider "
                                                   "'9999999'"));
  EXPECT_TRUE(CheckProviders(*table->Find("Oslo kommune legevakt"), request.co_payments()).ok());
  EXPECT_TRUE(CheckProvider(rep, "7654321").ok());
  EXPECT_EQ(CheckProvider(rep, "9999999").code(), absl::StatusCode::kPermissionDenied);
}

TEST(CallLimiterTest, CountsPerCallerAndReleasesOnce) {
  CallLimiter limiter(2);
  absl::StatusOr<CallTicket> a = limiter.Acquire("rep");
  absl::StatusOr<CallTicket> b = limiter.Acquire("rep");
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<CallTicket> c = limiter.Acquire("rep");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("'rep' already has 2 calls"));
  EXPECT_TRUE(limiter.Acquire("desk").ok());  // another caller is not affected
  EXPECT_EQ(limiter.InFlight("desk"), 0);     // released when the ticket died

  CallTicket moved = *std::move(a);
  CallTicket again = std::move(moved);
  EXPECT_EQ(limiter.InFlight("rep"), 2);
  { CallTicket gone = std::move(again); }
  EXPECT_EQ(limiter.InFlight("rep"), 1);
  EXPECT_TRUE(limiter.Acquire("rep").ok());

  CallLimiter unlimited(0);
  std::vector<CallTicket> many;
  for (int i = 0; i < 1000; ++i) many.push_back(*unlimited.Acquire("x"));
  EXPECT_EQ(unlimited.InFlight("x"), 0);  // nothing is counted without a limit
}

TEST(AuditLineTest, IsOneJsonObjectWithEscapedStrings) {
  const std::string line = FormatAuditLine({.time = absl::FromUnixMillis(1781517600123),
                                            .event = "denied",
                                            .caller = "Evil \"CN\"\n\\",
                                            .rpc = "frikort.v1.Registry/GetLedger",
                                            .person = "",
                                            .reason = "no",
                                            .dest = ""});
  EXPECT_EQ(line,
            "{\"time\":\"2026-06-15T10:00:00.123Z\",\"audit\":\"denied\",\"caller\":\"Evil "
            "\\\"CN\\\"\\n\\\\\",\"rpc\":\"frikort.v1.Registry/GetLedger\",\"reason\":\"no\"}");
  EXPECT_THAT(FormatAuditLine({.time = absl::UnixEpoch(),
                               .event = "operator_call",
                               .caller = "ops",
                               .rpc = "r",
                               .person = "abcd",
                               .reason = "",
                               .dest = ""}),
              HasSubstr(",\"person\":\"abcd\"}"));
}

}  // namespace
}  // namespace frikort::server
