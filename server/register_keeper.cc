#include "server/register_keeper.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"
#include "storage/pg_store.h"

namespace frikort::server {
namespace {

constexpr char kStandby[] =
    "standby: another frikortd holds the writer lease; this one serves once it has the lease";

std::string Since(absl::Time start) {
  return absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)));
}

}  // namespace

RegisterKeeper::RegisterKeeper(RegisterSlot* slot, KeeperOptions options)
    : slot_(slot), options_(std::move(options)) {}

RegisterKeeper::~RegisterKeeper() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  Drop(absl::UnavailableError("frikortd is shutting down"));
}

absl::Status RegisterKeeper::Start() {
  out_since_ = absl::Now();
  absl::Status failure;
  if (TryOpen(&failure, /*first=*/true) == Attempt::kFailed) return failure;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "frikort-keeper");
    Loop();
  });
  return absl::OkStatus();
}

RegisterKeeper::Attempt RegisterKeeper::TryOpen(absl::Status* failure, bool first) {
  uint64_t gen = 0;
  {
    absl::MutexLock l(&mu_);
    gen = ++gen_;
  }
  KeeperOptions::LostFn on_lost = [this, gen](const absl::Status& s) {
    absl::MutexLock l(&mu_);
    if (gen != gen_ || lost_gen_ == gen) return;
    lost_gen_ = gen;
    lost_ = s;
  };
  absl::StatusOr<std::unique_ptr<storage::Register>> reg = options_.open(std::move(on_lost));
  if (reg.ok()) {
    slot_->Swap(std::shared_ptr<storage::Register>(*std::move(reg)));
    last_failure_.clear();
    log::Log(
        log::Level::kInfo, "register_open",
        absl::StrCat("took the writer lease and opened the register ", Since(out_since_),
                     " after it was last out of service: serving"),
        {{"out_of_service_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - out_since_))}});
    return Attempt::kOpened;
  }
  const bool standby = storage::IsLeaseHeldElsewhere(reg.status());
  *failure = standby ? absl::UnavailableError(kStandby) : reg.status();
  // Calls answer why there is no register (never the DSN: statuses of the
  // store leave it out).
  slot_->Swap(nullptr, standby ? absl::UnavailableError(kStandby)
                               : absl::UnavailableError(absl::StrCat(
                                     "the register is not open: ", reg.status().message(),
                                     "; frikortd tries again by itself")));
  const std::string message(failure->message());
  // The first refusal other than standby is the caller's to report.
  if (message != last_failure_ && (standby || !first)) {
    last_failure_ = message;
    log::Log(standby ? log::Level::kInfo : log::Level::kWarning,
             standby ? "standby" : "register_open_failed",
             standby ? message
                     : absl::StrCat("cannot open the register: ", message, "; trying again every ",
                                    absl::FormatDuration(options_.retry)));
  }
  return standby ? Attempt::kStandby : Attempt::kFailed;
}

void RegisterKeeper::Loop() {
  for (;;) {
    std::shared_ptr<storage::Register> reg = slot_->Current();
    absl::Status lost;
    {
      absl::MutexLock l(&mu_);
      const absl::Duration wait = reg != nullptr ? options_.watch : options_.retry;
      if (reg != nullptr) {
        mu_.AwaitWithTimeout(absl::Condition(this, &RegisterKeeper::Woken), wait);
      } else {
        mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
      }
      if (stop_) return;
      if (reg != nullptr && lost_gen_ == gen_) lost = lost_;
    }
    if (reg == nullptr) {
      absl::Status failure;
      TryOpen(&failure, /*first=*/false);
      continue;
    }
    if (lost.ok()) lost = reg->Health();
    reg.reset();
    // A register failed on damaged data stays failed closed; a lost
    // connection or lease is a failover: open it again.
    if (lost.ok() || lost.code() != absl::StatusCode::kUnavailable) continue;
    log::Log(log::Level::kWarning, "register_lost",
             absl::StrCat("the register lost its store (", lost.message(),
                          "); health is NOT_SERVING and calls answer UNAVAILABLE while frikortd "
                          "reconnects and takes the writer lease again"));
    out_since_ = absl::Now();
    Drop(absl::UnavailableError(
        absl::StrCat("the register lost its store and is being opened again (", lost.message(),
                     "); send the call again shortly: what landed answers DUPLICATE")));
    absl::Status failure;
    TryOpen(&failure, /*first=*/false);
  }
}

void RegisterKeeper::Drop(absl::Status why) {
  std::shared_ptr<storage::Register> old = slot_->Swap(nullptr, std::move(why));
  // Destroyed here, never by a call's thread (which may be the register's
  // own, completing a change).
  while (old != nullptr && old.use_count() > 1) absl::SleepFor(absl::Milliseconds(5));
  old.reset();
}

}  // namespace frikort::server
