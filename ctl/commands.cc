#include "ctl/commands.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "core/calendar.h"
#include "ctl/csv.h"
#include "ctl/format.h"
#include "ctl/import.h"
#include "ctl/providers.h"
#include "frikort/v1/frikort.grpc.pb.h"
#include "frikort/v1/operations.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"

namespace frikort::ctl {

const char kUsage[] =
    "frikortctl [--server=HOST:PORT] [--tls_ca=CA.pem [--tls_cert=C.pem --tls_key=K.pem]] "
    "COMMAND\n"
    "  import FILE.csv [--batch_size=1000]\n"
    "  lookup PERSON [--date=YYYY-MM-DD] [--category=NAME]\n"
    "  ledger PERSON --year=Y\n"
    "  reserve PERSON | unreserve PERSON\n"
    "  issue [--as-of=YYYY-MM-DD] [--dry-run]\n"
    "  cards --year=Y [--format=table|csv]\n"
    "  payouts --year=Y|--run=ID [--format=table|csv]\n"
    "  backup --dest=/ABSOLUTE/FOLDER/ON/THE/SERVER\n"
    "  providers import FILE.csv\n"
    "  providers list [--in-force-on=YYYY-MM-DD] [--format=table|csv]\n"
    "  provider ID\n"
    "  health   (exit 0 when grpc.health.v1 answers SERVING; for probes)";

namespace {

constexpr int kPageSize = 1000;

struct CommandSpec {
  const char* name;
  std::vector<const char*> operands;  // names, for the messages
  std::vector<const char*> flags;     // command-specific flags it takes
};

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {"import", {"FILE"}, {"batch_size"}},
      {"lookup", {"PERSON"}, {"date", "category"}},
      {"ledger", {"PERSON"}, {"year"}},
      {"reserve", {"PERSON"}, {}},
      {"unreserve", {"PERSON"}, {}},
      {"issue", {}, {"as_of", "dry_run"}},
      {"cards", {}, {"year", "format"}},
      {"payouts", {}, {"year", "run", "format"}},
      {"backup", {}, {"dest"}},
      {"health", {}, {}},
      {"providers import", {"FILE"}, {}},
      {"providers list", {}, {"in_force_on", "format"}},
      {"provider", {"ID"}, {}},
  };
  return *commands;
}

// "providers import FILE" is the command "providers import" with one operand.
std::vector<std::string> Normalized(std::vector<std::string> args) {
  if (args.size() >= 2 && args[0] == "providers") {
    args[0] = absl::StrCat(args[0], " ", args[1]);
    args.erase(args.begin() + 1);
  }
  return args;
}

// The flag spelled as the user may have typed it (--as-of for as_of).
std::string Spelled(absl::string_view flag) {
  return absl::StrCat("--", absl::StrReplaceAll(flag, {{"_", "-"}}));
}

// ---- listings ----

template <typename Item, typename Request, typename Response, typename Call, typename Items>
grpc::Status ListAll(const Options& options, Request request, Call call, Items items,
                     std::vector<Item>* out) {
  request.set_page_size(kPageSize);
  for (;;) {
    Response response;
    grpc::Status s = call(CallContext(options, false).get(), request, &response);
    if (!s.ok()) return s;
    for (const Item& i : items(response)) out->push_back(i);
    if (response.next_page_token().empty()) return grpc::Status::OK;
    request.set_page_token(response.next_page_token());
  }
}

int Finish(const grpc::Status& s, absl::string_view command, const std::string& text,
           std::ostream& out, std::ostream& err) {
  if (!s.ok()) {
    err << "frikortctl: " << CallError(command, s) << "\n";
    return kExitFailed;
  }
  out << text;
  return kExitOk;
}

// grpc.health.v1.Health/Check for the whole server (service ""), without its
// generated code (not installed): the request is field 1 = "" (gRPC refuses
// to send an empty buffer), and SERVING is field 1 = 1.
int Health(const std::shared_ptr<grpc::Channel>& channel, const Options& options, std::ostream& out,
           std::ostream& err) {
  grpc::GenericStub stub(channel);
  std::unique_ptr<grpc::ClientContext> ctx = CallContext(options, false);
  grpc::Slice service(std::string("\x0a\x00", 2));
  grpc::ByteBuffer request(&service, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    err << "frikortctl: " << CallError("health", status) << "\n";
    return kExitFailed;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  if (bytes == std::string("\x08\x01", 2)) {
    out << "SERVING\n";
    return kExitOk;
  }
  err << "frikortctl: health: the server is not serving\n";
  return kExitFailed;
}

}  // namespace

absl::Status CheckUsage(const std::vector<std::string>& raw_args, const Options& options) {
  const std::vector<std::string> args = Normalized(raw_args);
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "no command (import, lookup, ledger, reserve, unreserve, issue, cards, payouts, backup, "
        "providers import|list, provider, "
        "health)");
  }
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& c : Commands()) {
    if (args[0] == c.name) spec = &c;
  }
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command '", args[0],
        "' (import, lookup, ledger, reserve, unreserve, issue, cards, payouts, backup, health, "
        "providers import|list, provider)"));
  }
  const std::string cmd = spec->name;
  if (args.size() - 1 < spec->operands.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cmd, ": missing ", spec->operands[args.size() - 1]));
  }
  if (args.size() - 1 > spec->operands.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cmd, ": unexpected argument '", args[spec->operands.size() + 1], "'"));
  }
  for (const std::string& flag : options.given) {
    if (std::find_if(spec->flags.begin(), spec->flags.end(),
                     [&](const char* f) { return flag == f; }) == spec->flags.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(cmd, ": ", Spelled(flag), " does not apply to this command"));
    }
  }
  for (size_t i = 0; i < spec->operands.size(); ++i) {
    if (args[i + 1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", spec->operands[i], " is empty"));
    }
  }
  const bool needs_year = cmd == "ledger" || cmd == "cards";
  if (needs_year && options.year <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(cmd, ": --year=Y is required"));
  }
  if (options.given.count("year") > 0 && options.year <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(cmd, ": --year must be a year, e.g. 2025"));
  }
  if (cmd == "payouts" && options.year <= 0 && options.run.empty()) {
    return absl::InvalidArgumentError("payouts: give --year=Y, --run=ID or both");
  }
  if (cmd == "backup" && options.dest.empty()) {
    return absl::InvalidArgumentError(
        "backup: --dest=FOLDER is required (an absolute path on the server's host)");
  }
  if (cmd == "import" && (options.batch_size < 1 || options.batch_size > 10000)) {
    return absl::InvalidArgumentError("import: --batch_size must be between 1 and 10000");
  }
  if (cmd == "providers list" && !options.in_force_on.empty() &&
      !core::ParseDate(options.in_force_on, "--in-force-on").ok()) {
    return absl::InvalidArgumentError("providers list: --in-force-on must be a date, YYYY-MM-DD");
  }
  if (cmd == "cards" || cmd == "payouts" || cmd == "providers list") {
    if (absl::StatusOr<Format> f = ParseFormat(options.format); !f.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", f.status().message()));
    }
  }
  if (cmd == "lookup" && !options.category.empty()) {
    absl::StatusOr<v1::ServiceCategory> c = ParseCategoryName(options.category, "--category");
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(cmd, ": ", c.status().message()));
  }
  if (options.timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must not be negative");
  }
  return absl::OkStatus();
}

int Run(const std::vector<std::string>& raw_args, const Options& options,
        const std::shared_ptr<grpc::Channel>& channel, std::ostream& out, std::ostream& progress,
        std::ostream& err) {
  const std::vector<std::string> args = Normalized(raw_args);
  if (absl::Status s = CheckUsage(raw_args, options); !s.ok()) {
    err << "frikortctl: " << s.message() << "\n";
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  const std::string operand = args.size() > 1 ? args[1] : "";

  if (cmd == "import") {
    auto stub = v1::Reporting::NewStub(channel);
    std::string error;
    const int code = Import(operand, options, stub.get(), out, progress, &error);
    if (!error.empty()) err << "frikortctl: " << error << "\n";
    return code;
  }
  if (cmd == "lookup") {
    v1::CheckExemptionRequest request;
    request.set_person_id(operand);
    request.set_date(options.date);
    if (!options.category.empty()) {
      request.set_category(*ParseCategoryName(options.category, "--category"));
    }
    v1::CheckExemptionResponse response;
    grpc::Status s = v1::Lookup::NewStub(channel)->CheckExemption(CallContext(options, false).get(),
                                                                  request, &response);
    return Finish(s, cmd, s.ok() ? FormatExemptions(response) : "", out, err);
  }
  if (cmd == "ledger") {
    v1::GetLedgerRequest request;
    request.set_person_id(operand);
    request.set_year(options.year);
    request.set_page_size(kPageSize);
    // Every page repeats the schemes: the first page's are shown, with the
    // entries of all pages.
    v1::Ledger ledger;
    auto stub = v1::Registry::NewStub(channel);
    grpc::Status s;
    for (bool first = true;; first = false) {
      v1::Ledger page;
      s = stub->GetLedger(CallContext(options, false).get(), request, &page);
      if (!s.ok()) break;
      if (first) {
        ledger = page;
      } else {
        for (v1::LedgerEntry& e : *page.mutable_entries()) *ledger.add_entries() = std::move(e);
      }
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
    ledger.clear_next_page_token();
    return Finish(s, cmd, s.ok() ? FormatLedger(ledger) : "", out, err);
  }
  if (cmd == "reserve" || cmd == "unreserve") {
    v1::SetReservationRequest request;
    request.set_person_id(operand);
    request.set_reserved(cmd == "reserve");
    v1::SetReservationResponse response;
    grpc::Status s = v1::Registry::NewStub(channel)->SetReservation(
        CallContext(options, false).get(), request, &response);
    return Finish(s, cmd,
                  absl::StrCat(response.person_id(),
                               response.reserved() ? " is reserved\n" : " is not reserved\n"),
                  out, err);
  }
  if (cmd == "issue") {
    v1::RunIssuanceRequest request;
    request.set_as_of(options.as_of);
    request.set_dry_run(options.dry_run);
    v1::IssuanceRun response;
    grpc::Status s = v1::Issuance::NewStub(channel)->RunIssuance(CallContext(options, true).get(),
                                                                 request, &response);
    return Finish(s, cmd, s.ok() ? FormatRun(response) : "", out, err);
  }
  if (cmd == "cards") {
    auto stub = v1::Issuance::NewStub(channel);
    v1::ListFreeCardsRequest request;
    request.set_year(options.year);
    std::vector<v1::FreeCard> cards;
    grpc::Status s = ListAll<v1::FreeCard, v1::ListFreeCardsRequest, v1::ListFreeCardsResponse>(
        options, request,
        [&](grpc::ClientContext* c, const v1::ListFreeCardsRequest& r,
            v1::ListFreeCardsResponse* o) { return stub->ListFreeCards(c, r, o); },
        [](const v1::ListFreeCardsResponse& r) { return r.cards(); }, &cards);
    return Finish(s, cmd, s.ok() ? FormatCards(cards, *ParseFormat(options.format)) : "", out, err);
  }
  if (cmd == "payouts") {
    auto stub = v1::Issuance::NewStub(channel);
    v1::ListPayoutsRequest request;
    request.set_year(options.year);
    request.set_run_id(options.run);
    std::vector<v1::Payout> payouts;
    grpc::Status s = ListAll<v1::Payout, v1::ListPayoutsRequest, v1::ListPayoutsResponse>(
        options, request,
        [&](grpc::ClientContext* c, const v1::ListPayoutsRequest& r, v1::ListPayoutsResponse* o) {
          return stub->ListPayouts(c, r, o);
        },
        [](const v1::ListPayoutsResponse& r) { return r.payouts(); }, &payouts);
    return Finish(s, cmd, s.ok() ? FormatPayouts(payouts, *ParseFormat(options.format)) : "", out,
                  err);
  }
  if (cmd == "health") return Health(channel, options, out, err);
  if (cmd == "providers import") {
    auto stub = v1::Providers::NewStub(channel);
    std::string error;
    const int code = ImportProviders(operand, options, stub.get(), out, &error);
    if (!error.empty()) err << "frikortctl: " << error << "\n";
    return code;
  }
  if (cmd == "providers list") {
    auto stub = v1::Providers::NewStub(channel);
    v1::ListProvidersRequest request;
    request.set_in_force_on(options.in_force_on);
    std::vector<v1::Provider> providers;
    grpc::Status s = ListAll<v1::Provider, v1::ListProvidersRequest, v1::ListProvidersResponse>(
        options, request,
        [&](grpc::ClientContext* c, const v1::ListProvidersRequest& r,
            v1::ListProvidersResponse* o) { return stub->ListProviders(c, r, o); },
        [](const v1::ListProvidersResponse& r) { return r.providers(); }, &providers);
    return Finish(s, cmd, s.ok() ? FormatProviders(providers, *ParseFormat(options.format)) : "",
                  out, err);
  }
  if (cmd == "provider") {
    v1::GetProviderRequest request;
    request.set_provider_id(operand);
    v1::Provider response;
    grpc::Status s = v1::Providers::NewStub(channel)->GetProvider(CallContext(options, false).get(),
                                                                  request, &response);
    return Finish(s, cmd, s.ok() ? FormatProviders({response}, Format::kTable) : "", out, err);
  }
  // backup
  v1::BackupRequest request;
  request.set_dest(options.dest);
  v1::BackupResponse response;
  grpc::Status s = v1::Operations::NewStub(channel)->Backup(CallContext(options, true).get(),
                                                            request, &response);
  return Finish(s, cmd, s.ok() ? FormatBackup(response) : "", out, err);
}

}  // namespace frikort::ctl
