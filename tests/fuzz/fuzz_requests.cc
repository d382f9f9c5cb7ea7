// Fuzz target: the request checks of every RPC of the public API
// (server/requests.h), the code the handlers in server/services.cc run before
// they touch the register. Each input is parsed as each request message in
// turn (ParseFromArray, as gRPC does; a message it does not parse as is
// skipped) and checked with the server's settings: the rules of
// deploy/rules.txt, synthetic ids off and on, a fixed today. Co-payments are
// also converted (FromProto) and validated against the rules
// (core::ValidateCoPayment), as the register does with each item.
//
// Beyond "no crash, no undefined behaviour", it checks:
// - a refusal is InvalidArgument, starts with the name of a field of that
//   message, and never echoes the person id;
// - allowing synthetic ids never refuses what production accepts;
// - what is accepted is in range: batch sizes, payment and category numbers,
//   reason length, page sizes, years the rules cover, dates (which re-format
//   to the text given) in the lookup window or not after today;
// - a validated co-payment is consistent: amount within bounds, not in the
//   future, a year with rules, the scheme the rules give its category;
// - a service time given outside the timestamps' range is refused as "out of
//   range", never as "not given"; an answer echoes a report id of at most 64
//   characters, and none longer;
// - GetLedger refuses a negative page size.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/calendar.h"
#include "core/copayment.h"
#include "core/national_id.h"
#include "core/rules.h"
#include "core/types.h"
#include "frikort/v1/frikort.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "server/convert.h"
#include "server/requests.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/testing/oslo.h"
#include "tests/testing/rules_file.h"

namespace frikort::fuzz {
namespace {

namespace v1 = ::frikort::v1;
using server::CheckRequest;

constexpr core::PersonIdOptions kProduction = {.allow_synthetic = false};
constexpr core::PersonIdOptions kSynthetic = {.allow_synthetic = true};
constexpr int kLookupYearsBack = 2;  // the server's default

struct Settings {
  core::RulesTable rules;
  absl::CivilDay today;
  absl::Time now;
};

const Settings* settings = nullptr;

// A refusal names one of `fields` first ("person_id: ...").
void CheckRefusal(const absl::Status& status, std::initializer_list<absl::string_view> fields,
                  absl::string_view person_id = "") {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  bool named = false;
  for (absl::string_view field : fields) {
    named = named || absl::StartsWith(status.message(), absl::StrCat(field, ": "));
  }
  FUZZ_CHECK(named);
  CheckNoIdEcho(status, person_id);
}

bool ValidId(absl::string_view person_id, const core::PersonIdOptions& options) {
  return core::ParsePersonId(person_id, options).ok();
}

bool YearHasRules(int year) { return settings->rules.ForYear(year) != nullptr; }

// An optional date that was accepted: absent exactly when not given, and
// otherwise the date the text says.
void CheckOptionalDate(const std::optional<absl::CivilDay>& day, const std::string& text) {
  FUZZ_CHECK(day.has_value() == !text.empty());
  if (day.has_value()) FUZZ_CHECK(core::FormatDate(*day) == text);
}

// Runs `check` on the input parsed as Message, if it parses as one.
template <typename Message, typename Check>
void ForMessage(const uint8_t* data, size_t size, Check check) {
  Message message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return;
  check(message);
}

void CheckCoPayment(const v1::CoPayment& proto, const core::CoPaymentInput& input,
                    const core::PersonIdOptions& options) {
  FUZZ_CHECK(input.report_id == proto.report_id() && input.person_id == proto.person_id());
  FUZZ_CHECK(input.amount == proto.amount_ore());
  // A service time given but out of range is told apart from one not given.
  FUZZ_CHECK(input.service_time_out_of_range ==
             (proto.has_service_time() && !input.service_time.has_value()));
  // The answer repeats a report id only within the contract's 64 characters.
  storage::ReportResult result;
  result.report_id = input.report_id;
  v1::ReportResult answer;
  server::ToProto(result, &answer);
  FUZZ_CHECK(answer.report_id().size() <= server::kMaxEchoedReportIdBytes);
  FUZZ_CHECK(answer.report_id() ==
             (input.report_id.size() <= server::kMaxEchoedReportIdBytes ? input.report_id : ""));
  const core::Validation v =
      core::ValidateCoPayment(input, settings->rules, options, settings->now);
  if (!v.ok()) {
    FUZZ_CHECK(!v.message.empty());
    if (v.reason == core::RejectReason::kInvalidServiceTime) {
      FUZZ_CHECK(absl::StartsWith(v.message, input.service_time_out_of_range
                                                 ? "service_time: out of range"
                                                 : "service_time: "));
      FUZZ_CHECK(input.service_time_out_of_range ||
                 !absl::StartsWith(v.message, "service_time: out of range"));
    }
    // An amount out of range is repeated as the number it was sent as; every
    // other refusal must not carry the id.
    const bool echoes_amount = v.reason == core::RejectReason::kInvalidAmount;
    CheckRefusal(absl::InvalidArgumentError(v.message),
                 {"report_id", "provider_id", "practice_id", "person_id", "service_time",
                  "category", "amount", "payment", "attributed_year"},
                 echoes_amount ? "" : input.person_id);
    return;
  }
  const core::ValidatedCoPayment& c = v.value;
  FUZZ_CHECK(c.person.digits == input.person_id);
  FUZZ_CHECK(c.amount > 0 && c.amount <= core::kMaxAmountOre);
  FUZZ_CHECK(input.service_time.has_value() && c.service_time == *input.service_time);
  FUZZ_CHECK(c.service_time <= settings->now + core::kClockSkewAllowance);
  FUZZ_CHECK(c.service_date == core::OsloDate(c.service_time));
  FUZZ_CHECK(c.year == core::OsloYear(c.service_time) ||
             (c.category == core::Category::kPrescription && c.year == input.attributed_year &&
              c.year == core::OsloYear(c.service_time) + 1));
  FUZZ_CHECK(YearHasRules(c.year));
  FUZZ_CHECK(settings->rules.SchemeFor(c.year, c.category).value_or(core::Scheme::kUnspecified) ==
             c.scheme);
  FUZZ_CHECK(static_cast<int>(c.payment) == input.payment && input.payment >= 1 &&
             input.payment <= core::kMaxPayment);
  // Synthetic ids only widen what is accepted.
  if (!c.person.synthetic) {
    FUZZ_CHECK(core::ValidateCoPayment(input, settings->rules, kProduction, settings->now).ok());
  }
}

void CheckSubmit(const v1::SubmitCoPaymentsRequest& request) {
  const absl::Status status = CheckRequest(request);
  const int n = request.co_payments_size();
  FUZZ_CHECK(status.ok() == (n >= 1 && n <= server::kMaxBatchItems));
  if (!status.ok()) {
    CheckRefusal(status, {"co_payments"});
    return;
  }
  const std::vector<core::CoPaymentInput> inputs = server::ToInputs(request);
  FUZZ_CHECK(static_cast<int>(inputs.size()) == n);
  for (int i = 0; i < n; ++i) {
    CheckCoPayment(request.co_payments(i), inputs[i], kSynthetic);
  }
}

void CheckUpdatePayment(const v1::UpdatePaymentRequest& request) {
  const absl::StatusOr<core::Payment> payment = CheckRequest(request);
  const int number = static_cast<int>(request.payment());
  FUZZ_CHECK(payment.ok() == (number >= 0 && number <= core::kMaxPayment));
  if (payment.ok()) {
    FUZZ_CHECK(static_cast<int>(*payment) == number);
  } else {
    CheckRefusal(payment.status(), {"payment"});
  }
}

void CheckCancel(const v1::CancelCoPaymentRequest& request) {
  const absl::Status status = CheckRequest(request, kProduction);
  FUZZ_CHECK(status.ok() == (request.reason().size() <= server::kMaxCancelReasonBytes &&
                             !core::HoldsPersonId(request.reason(), kProduction)));
  if (!status.ok()) CheckRefusal(status, {"reason"});
}

void CheckExemption(const v1::CheckExemptionRequest& request) {
  const absl::CivilDay today = settings->today;
  absl::StatusOr<server::ExemptionQuery> production =
      CheckRequest(request, kProduction, today, kLookupYearsBack);
  absl::StatusOr<server::ExemptionQuery> synthetic =
      CheckRequest(request, kSynthetic, today, kLookupYearsBack);
  if (production.ok()) FUZZ_CHECK(synthetic.ok());
  for (const auto* query : {&production, &synthetic}) {
    if (!query->ok()) {
      CheckRefusal(query->status(), {"person_id", "date", "category"}, request.person_id());
      continue;
    }
    const server::ExemptionQuery& q = **query;
    FUZZ_CHECK(ValidId(request.person_id(), kSynthetic));
    FUZZ_CHECK(q.date.year() >= today.year() - kLookupYearsBack && q.date.year() <= today.year());
    if (request.date().empty()) {
      FUZZ_CHECK(q.date == today);
    } else {
      FUZZ_CHECK(core::FormatDate(q.date) == request.date());
    }
    FUZZ_CHECK(static_cast<int>(q.category) == static_cast<int>(request.category()));
    FUZZ_CHECK(static_cast<int>(q.category) >= 0 &&
               static_cast<int>(q.category) <= core::kMaxCategory);
  }
}

void CheckGetLedger(const v1::GetLedgerRequest& request) {
  const absl::Status production = CheckRequest(request, kProduction, settings->rules);
  const absl::Status synthetic = CheckRequest(request, kSynthetic, settings->rules);
  if (production.ok()) FUZZ_CHECK(synthetic.ok());
  for (const absl::Status& status : {production, synthetic}) {
    if (!status.ok()) CheckRefusal(status, {"person_id", "year", "page_size"}, request.person_id());
  }
  if (synthetic.ok()) {
    FUZZ_CHECK(ValidId(request.person_id(), kSynthetic) && YearHasRules(request.year()) &&
               request.page_size() >= 0);
  }
}

void CheckSetReservation(const v1::SetReservationRequest& request) {
  const absl::Status production = CheckRequest(request, kProduction);
  const absl::Status synthetic = CheckRequest(request, kSynthetic);
  FUZZ_CHECK(production.ok() == ValidId(request.person_id(), kProduction));
  FUZZ_CHECK(synthetic.ok() == ValidId(request.person_id(), kSynthetic));
  for (const absl::Status& status : {production, synthetic}) {
    if (!status.ok()) CheckRefusal(status, {"person_id"}, request.person_id());
  }
}

void CheckListLookups(const v1::ListLookupsRequest& request) {
  const absl::Status production = CheckRequest(request, kProduction);
  const absl::Status synthetic = CheckRequest(request, kSynthetic);
  if (production.ok()) FUZZ_CHECK(synthetic.ok());
  for (const absl::Status& status : {production, synthetic}) {
    if (!status.ok()) CheckRefusal(status, {"person_id", "page_size"}, request.person_id());
  }
  if (synthetic.ok()) {
    FUZZ_CHECK(ValidId(request.person_id(), kSynthetic) && request.page_size() >= 0);
  }
}

void CheckRunIssuance(const v1::RunIssuanceRequest& request) {
  const absl::StatusOr<std::optional<absl::CivilDay>> as_of =
      CheckRequest(request, settings->today);
  if (!as_of.ok()) {
    CheckRefusal(as_of.status(), {"as_of"});
    return;
  }
  CheckOptionalDate(*as_of, request.as_of());
  if (as_of->has_value()) FUZZ_CHECK(**as_of <= settings->today);
}

void CheckListFreeCards(const v1::ListFreeCardsRequest& request) {
  const absl::StatusOr<std::optional<absl::CivilDay>> issued_on =
      CheckRequest(request, settings->rules);
  if (!issued_on.ok()) {
    CheckRefusal(issued_on.status(), {"year", "page_size", "issued_on"});
    return;
  }
  FUZZ_CHECK(YearHasRules(request.year()) && request.page_size() >= 0);
  CheckOptionalDate(*issued_on, request.issued_on());
}

void CheckListPayouts(const v1::ListPayoutsRequest& request) {
  const absl::Status status = CheckRequest(request, settings->rules);
  if (!status.ok()) {
    CheckRefusal(status, {"run_id, year", "year", "page_size"});
    return;
  }
  FUZZ_CHECK(!request.run_id().empty() || request.year() != 0);
  FUZZ_CHECK(request.year() == 0 || YearHasRules(request.year()));
  FUZZ_CHECK(request.page_size() >= 0);
}

}  // namespace
}  // namespace frikort::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  using frikort::fuzz::Settings;
  // The parser logs every string that is not UTF-8, which is most inputs:
  // millions of lines a minute that slow the fuzzer and fill the log.
  google::protobuf::SetLogHandler(nullptr);
  if (absl::Status s = frikort::testing::LoadOsloTimeZone(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    std::abort();
  }
  absl::StatusOr<frikort::core::RulesTable> rules =
      frikort::testing::ReadRulesFile(FRIKORT_RULES_FILE);
  if (!rules.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rules.status().message()).c_str());
    std::abort();
  }
  // A fixed "now" keeps every run reproducible from its input alone.
  const absl::CivilDay today(2024, 6, 15);
  frikort::fuzz::settings = new Settings{*std::move(rules), today,
                                         frikort::core::OsloStartOfDay(today) + absl::Hours(12)};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace v1 = ::frikort::v1;
  using frikort::fuzz::ForMessage;
  ForMessage<v1::SubmitCoPaymentsRequest>(data, size, frikort::fuzz::CheckSubmit);
  ForMessage<v1::UpdatePaymentRequest>(data, size, frikort::fuzz::CheckUpdatePayment);
  ForMessage<v1::CancelCoPaymentRequest>(data, size, frikort::fuzz::CheckCancel);
  ForMessage<v1::CheckExemptionRequest>(data, size, frikort::fuzz::CheckExemption);
  ForMessage<v1::GetLedgerRequest>(data, size, frikort::fuzz::CheckGetLedger);
  ForMessage<v1::SetReservationRequest>(data, size, frikort::fuzz::CheckSetReservation);
  ForMessage<v1::ListLookupsRequest>(data, size, frikort::fuzz::CheckListLookups);
  ForMessage<v1::RunIssuanceRequest>(data, size, frikort::fuzz::CheckRunIssuance);
  ForMessage<v1::ListFreeCardsRequest>(data, size, frikort::fuzz::CheckListFreeCards);
  ForMessage<v1::ListPayoutsRequest>(data, size, frikort::fuzz::CheckListPayouts);
  return 0;
}
