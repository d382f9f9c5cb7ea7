#include "ctl/options.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "core/calendar.h"

namespace frikort::ctl {
namespace {

constexpr absl::Duration kDefaultCallTimeout = absl::Seconds(30);

}  // namespace

std::unique_ptr<grpc::ClientContext> CallContext(const Options& options, bool long_running) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  absl::Duration timeout = options.timeout;
  if (timeout == absl::ZeroDuration() && !long_running) timeout = kDefaultCallTimeout;
  if (timeout > absl::ZeroDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

std::string CallError(absl::string_view command, const grpc::Status& s) {
  return absl::StrCat(command, ": ", OneLine(s.error_message()), " (",
                      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ")");
}

std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(absl::StripAsciiWhitespace(text), {{"\r", " "}, {"\n", " "}});
}

absl::Status UseOsloTimeZone() {
  absl::TimeZone oslo;
  if (absl::LoadTimeZone("Europe/Oslo", &oslo)) return core::SetOsloTimeZone(oslo);
  return absl::FailedPreconditionError("cannot load time zone Europe/Oslo: is tzdata installed?");
}

}  // namespace frikort::ctl
