// Mutual TLS against an in-process server: the lookup log and the operator
// audit name the certificate and never a national id.
#include <string>
#include <vector>

#include "tests/server/tls_fixture.h"

namespace frikort::testutil {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(TlsTest, LookupLogNamesTheCertificate) {
  const std::string person = PersonId(9);
  for (const std::string cn : {"desk-1", kMunicipality}) {
    Client c = As(cn);
    v1::CheckExemptionRequest q;
    q.set_person_id(person);
    v1::CheckExemptionResponse r;
    ASSERT_TRUE(c.lookup->CheckExemption(Ctx().get(), q, &r).ok()) << cn;
    clock_->Advance(absl::Minutes(1));
  }
  v1::ListLookupsRequest q;
  q.set_person_id(person);
  v1::ListLookupsResponse r;
  ASSERT_TRUE(registry_->ListLookups(Ctx().get(), q, &r).ok());
  std::vector<std::string> callers;
  for (const v1::LookupRecord& l : r.lookups()) callers.push_back(l.caller());
  EXPECT_THAT(callers, ElementsAre(kMunicipality, "desk-1"));  // newest first
}

TEST_F(TlsTest, OperatorCallsAreAuditedWithoutNationalIds) {
  const std::string person = PersonId(11);
  ASSERT_TRUE(SetReservation(person, true).ok());
  v1::Ledger ledger;
  ASSERT_TRUE(GetLedger(person, 2026, &ledger).ok());
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("", true, &run).ok());
  Client stranger = As("stranger");
  EXPECT_FALSE(EveryRpc()[5].call(stranger, 0).ok());

  const std::string pseudonym = reg_->AuditPseudonym(person);
  ASSERT_EQ(pseudonym.size(), 58u);  // base32 in groups (storage/register_impl.h)
  std::vector<std::string> lines = AuditLines();
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  const std::string who = "\"audit\":\"operator_call\",\"caller\":\"ops-1\",";
  EXPECT_THAT(lines[0], HasSubstr(who + "\"rpc\":\"frikort.v1.Registry/SetReservation\"," +
                                  "\"person\":\"" + pseudonym + "\"}"));
  EXPECT_THAT(lines[1], HasSubstr(who + "\"rpc\":\"frikort.v1.Registry/GetLedger\"," +
                                  "\"person\":\"" + pseudonym + "\"}"));
  EXPECT_THAT(lines[2], HasSubstr(who + "\"rpc\":\"frikort.v1.Issuance/RunIssuance\"}"));
  EXPECT_THAT(lines[3], HasSubstr("\"audit\":\"denied\",\"caller\":\"stranger\","
                                  "\"rpc\":\"frikort.v1.Registry/GetLedger\",\"reason\":"));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ContainsRegex("^\\{\"time\":\"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z\","));
    EXPECT_THAT(line, Not(HasSubstr(person)));
  }
}

TEST_F(TlsTest, ABackdatedRunIsAuditedWithItsRealDate) {
  v1::IssuanceRun run;
  ASSERT_TRUE(RunIssuance("2026-06-01", false, &run).ok());
  EXPECT_EQ(run.as_of(), "2026-06-01");                      // the decision date stays as asked
  ASSERT_TRUE(RunIssuance("", false, &run).ok());            // today's: not backdated
  ASSERT_TRUE(RunIssuance("2026-05-01", true, &run).ok());   // dry: decides nothing
  ASSERT_TRUE(RunIssuance("2026-06-15", false, &run).ok());  // today, named
  std::vector<std::string> backdated;
  for (const std::string& line : AuditLines()) {
    if (absl::StrContains(line, "backdated")) backdated.push_back(line);
  }
  ASSERT_EQ(backdated.size(), 1u) << ::testing::PrintToString(AuditLines());
  EXPECT_THAT(backdated[0], HasSubstr("\"audit\":\"backdated_run\",\"caller\":\"ops-1\","
                                      "\"rpc\":\"frikort.v1.Issuance/RunIssuance\","
                                      "\"as_of\":\"2026-06-01\",\"decided_on\":\"2026-06-15\"}"));
}

}  // namespace
}  // namespace frikort::testutil
