// RegisterKeeper: keeps a register in PostgreSQL open in a RegisterSlot for
// as long as frikortd runs, taking a failover as an expected event.
//
// - Standby: while another frikortd holds the writer lease the slot stays
//   empty (every call UNAVAILABLE "standby: ...", health NOT_SERVING) and the
//   keeper tries again every `retry`; once it has the lease it opens the
//   register (migrations, caches) and puts it in.
// - Lost store: when the register's store reports its connection or lease
//   lost (the store's on_lost), or the register's health turns UNAVAILABLE
//   (a failed commit: the groups in flight already failed UNAVAILABLE, and
//   whether a commit whose connection broke landed is left to the client's
//   resend and the idempotency index), the keeper takes the register out,
//   destroys it (every cached state with it) and opens a new one as above:
//   reconnecting, re-taking the lease, or standing by if another took it.
//   Other failures (damaged data) leave the register failed closed.
//
// Thread safety: Start, then the destructor, from one thread; the on_lost
// callbacks it hands out may be called from any thread.
#ifndef FRIKORT_SERVER_REGISTER_KEEPER_H_
#define FRIKORT_SERVER_REGISTER_KEEPER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/register_slot.h"
#include "storage/register.h"

namespace frikort::server {

struct KeeperOptions {
  using LostFn = std::function<void(const absl::Status&)>;
  // Opens the register; its store calls `on_lost` when it lost its
  // connection or lease. A refusal for which storage::IsLeaseHeldElsewhere
  // holds means: another frikortd writes, stand by.
  std::function<absl::StatusOr<std::unique_ptr<storage::Register>>(LostFn on_lost)> open;
  absl::Duration retry = absl::Seconds(1);         // between attempts to open
  absl::Duration watch = absl::Milliseconds(200);  // between looks at the register's health
};

class RegisterKeeper {
 public:
  // `slot` is borrowed and must outlive the keeper.
  RegisterKeeper(RegisterSlot* slot, KeeperOptions options);
  // Takes the register out of the slot and closes it (giving the lease up).
  ~RegisterKeeper();
  RegisterKeeper(const RegisterKeeper&) = delete;
  RegisterKeeper& operator=(const RegisterKeeper&) = delete;

  // The first attempt, on the calling thread, then the keeper's thread. Ok
  // when the register is open or another frikortd holds the lease (standby);
  // any other refusal (no database, another register's key, a newer schema)
  // is returned and nothing is started.
  absl::Status Start();

 private:
  enum class Attempt { kOpened, kStandby, kFailed };
  // `first`: Start's attempt, whose failure (other than standby) is not logged.
  Attempt TryOpen(absl::Status* failure, bool first);
  void Loop();
  // Takes the register out (calls then answer `why`) and destroys it once no
  // call holds it.
  void Drop(absl::Status why);
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || lost_gen_ == gen_; }

  RegisterSlot* const slot_;
  const KeeperOptions options_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t gen_ ABSL_GUARDED_BY(mu_) = 0;       // the open register's generation
  uint64_t lost_gen_ ABSL_GUARDED_BY(mu_) = 0;  // the last generation that reported a loss
  absl::Status lost_ ABSL_GUARDED_BY(mu_);      // what it reported
  // Only the keeper's thread (and Start before it) touch these.
  std::string last_failure_;  // logged once until it changes
  absl::Time out_since_;      // when the slot was last left empty
  std::thread thread_;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_REGISTER_KEEPER_H_
