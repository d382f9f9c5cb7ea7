// Lookups read in batches: the Batcher itself, and the register over a store
// whose reads are round trips (Store::remote(), as PostgreSQL's): concurrent
// CheckExemptionAsync calls share their reads, each is answered as alone,
// logged once, and a failure reaches exactly the lookups it concerns.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/batcher.h"
#include "storage/register.h"
#include "tests/testing/fixture.h"
#include "tests/testing/ids.h"
#include "tests/testing/mem_store.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MemStore;
using ::frikort::testing::PersonN;

TEST(BatcherTest, EveryItemIsHandledOrRefusedOnceInBatchesNoLargerThanTheLimit) {
  absl::Mutex mu;
  std::map<int, int> seen;
  size_t largest = 0;
  int refused = 0;
  {
    Batcher<int> b(
        "test-batcher", 3, 7,
        [&](std::vector<int> batch) {
          absl::MutexLock l(&mu);
          largest = std::max(largest, batch.size());
          for (int i : batch) ++seen[i];
        },
        [&](std::vector<int> batch) {
          absl::MutexLock l(&mu);
          refused += static_cast<int>(batch.size());
          for (int i : batch) ++seen[i];
        });
    b.Start();
    std::vector<std::thread> adders;
    for (int t = 0; t < 4; ++t) {
      adders.emplace_back([&b, t] {
        for (int i = 0; i < 500; ++i) b.Add(t * 1000 + i);
      });
    }
    for (std::thread& t : adders) t.join();
  }  // the destructor refuses what is still queued
  ASSERT_EQ(seen.size(), 2000u);
  for (const auto& [item, times] : seen) EXPECT_EQ(times, 1) << item;
  EXPECT_LE(largest, 7u);
  EXPECT_LT(refused, 2000);
}

TEST(BatcherTest, WhatArrivesWhileTheThreadsAreBusyIsTakenTogether) {
  absl::Notification release;
  std::atomic<int> entered{0};
  absl::Mutex mu;
  std::vector<size_t> sizes;
  size_t total = 0;
  Batcher<int> b(
      "test-batcher", 2, 100,
      [&](std::vector<int> batch) {
        if (entered.fetch_add(1) < 2) release.WaitForNotification();
        absl::MutexLock l(&mu);
        sizes.push_back(batch.size());
        total += batch.size();
      },
      [](std::vector<int>) { ADD_FAILURE() << "refused"; });
  b.Start();
  b.Add(0);
  while (entered.load() < 1) std::this_thread::yield();
  b.Add(1);
  while (entered.load() < 2) std::this_thread::yield();
  for (int i = 2; i < 52; ++i) b.Add(i);  // both threads are held
  release.Notify();
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(
      +[](size_t* n) { return *n == 52; }, &total));
  // 2 batches of one, then the 50 that waited in one batch, or two had a
  // thread taken some between two Adds.
  EXPECT_LE(sizes.size(), 4u);
}

TEST(BatcherTest, StoppingRefusesWhatWasNotTakenAndEverythingAddedAfter) {
  std::vector<int> handled, refused;
  std::thread::id refusing_thread;
  Batcher<int> b(
      "test-batcher", 2, 10,
      [&](std::vector<int> batch) { handled.insert(handled.end(), batch.begin(), batch.end()); },
      [&](std::vector<int> batch) {
        refused.insert(refused.end(), batch.begin(), batch.end());
        refusing_thread = std::this_thread::get_id();
      });
  b.Add(4);  // never started: stays queued
  b.Add(5);
  b.Stop();
  EXPECT_EQ(refused, (std::vector<int>{4, 5}));
  b.Add(6);
  EXPECT_EQ(refused, (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(refusing_thread, std::this_thread::get_id());
  b.Start();  // a stopped batcher starts no threads
  b.Add(7);
  EXPECT_EQ(refused.back(), 7);
  EXPECT_TRUE(handled.empty());
}

// An in-memory store that says its reads are round trips, counts the
// ledger reads, can hold them until released, and can fail them.
class RemoteStore : public MemStore {
 public:
  using MemStore::MemStore;
  bool remote() const override { return true; }
  absl::Status MultiGet(
      Table t, absl::Span<const absl::string_view> keys, bool sorted,
      const std::function<void(size_t, const absl::string_view*)>& found) override {
    if (t == Table::kLedgers) {
      ++ledger_reads;
      ledger_keys += static_cast<int>(keys.size());
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](bool* held) { return !*held; }, &held_));
      if (!read_failure_.ok()) return read_failure_;
      for (absl::string_view k : keys) {
        if (k == poisoned_) return absl::DataLossError("damaged page");
      }
    }
    if (t == Table::kPersons) {
      absl::MutexLock l(&mu_);
      if (!person_failure_.ok()) return person_failure_;
    }
    return MemStore::MultiGet(t, keys, sorted, found);
  }
  // A ledger read that includes `key` fails as a damaged page would.
  void Poison(const std::string& key) {
    absl::MutexLock l(&mu_);
    poisoned_ = key;
  }
  void FailPersonReads(absl::Status s) {
    absl::MutexLock l(&mu_);
    person_failure_ = std::move(s);
  }
  void Hold(bool held) {
    absl::MutexLock l(&mu_);
    held_ = held;
  }
  void FailReads(absl::Status s) {
    absl::MutexLock l(&mu_);
    read_failure_ = std::move(s);
  }
  // Replaces the ledger record under `key` with bytes that are no record.
  void DamageLedger(const std::string& key) {
    const std::string junk = "\xff\xff\xff";
    WriteSet w;
    w.tables[static_cast<int>(Table::kLedgers)].push_back({key, &junk});
    ASSERT_TRUE(Commit(w).ok());
  }

  std::atomic<int> ledger_reads{0};
  std::atomic<int> ledger_keys{0};

 private:
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status read_failure_ ABSL_GUARDED_BY(mu_);
  absl::Status person_failure_ ABSL_GUARDED_BY(mu_);
  std::string poisoned_ ABSL_GUARDED_BY(mu_);
};

class RemoteLookupTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(frikort::testing::LoadZoneAndRules(&rules_)); }
  std::unique_ptr<Register> Open(bool remote) {
    RegisterOptions o;
    o.secret = std::string(32, 'm');
    o.rules = &rules_;
    o.clock = &clock_;
    o.open_store = [this,
                    remote](const RegisterOptions&) -> absl::StatusOr<std::unique_ptr<Store>> {
      if (!remote) return std::make_unique<MemStore>();
      auto store = std::make_unique<RemoteStore>();
      store_ = store.get();
      return store;
    };
    auto r = Register::Open(o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  // Persons 0..n-1: every third over the cap, every fifth of those reserved.
  void Fill(Register& reg, int n) {
    std::vector<core::CoPaymentInput> items;
    for (int p = 0; p < n; ++p) {
      items.push_back(frikort::testing::PaidPhysicianReport(absl::StrCat("r", p), PersonN(p),
                                                            absl::CivilDay(2024, 3, 1),
                                                            p % 3 == 0 ? 400000 : 5000));
    }
    ASSERT_TRUE(reg.Submit(std::move(items)).ok());
    for (int p = 0; p < n; p += 15) ASSERT_TRUE(reg.SetReservation(PersonN(p), true).ok());
  }
  // A remote register holding Fill(n); null (and a failure) if it did not open.
  std::unique_ptr<Register> OpenRemoteFilled(int n) {
    std::unique_ptr<Register> reg = Open(/*remote=*/true);
    if (reg != nullptr) Fill(*reg, n);
    return reg;
  }
  // Fill, with person `p`'s report first; the key of its ledger (then the
  // only one in the store), "" if that failed.
  std::string FillKnowingLedgerOf(Register& reg, int n, int p) {
    auto r = reg.Submit({frikort::testing::PaidPhysicianReport(absl::StrCat("r", p), PersonN(p),
                                                               absl::CivilDay(2024, 3, 1), 5000)});
    const auto ledgers = store_->tables()[static_cast<int>(Table::kLedgers)];
    if (!r.ok() || ledgers.size() != 1) return "";
    Fill(reg, n);
    return ledgers.begin()->first;
  }
  // n lookups started together (of persons 0..n-1 on 2024-06-01), answered.
  std::vector<absl::StatusOr<std::vector<SchemeExemption>>> LookUp(
      Register& reg, int n, const std::function<void()>& started = nullptr) {
    std::vector<absl::StatusOr<std::vector<SchemeExemption>>> out(n);
    absl::BlockingCounter answered(n);
    for (int p = 0; p < n; ++p) {
      reg.CheckExemptionAsync(PersonN(p), absl::CivilDay(2024, 6, 1), core::Category::kUnspecified,
                              "desk-1", [&, p](absl::StatusOr<std::vector<SchemeExemption>> r) {
                                out[p] = std::move(r);
                                answered.DecrementCount();
                              });
    }
    if (started) started();
    answered.Wait();
    return out;
  }
  int Logged(Register& reg, int n) {
    int total = 0;
    for (int p = 0; p < n; ++p) {
      auto page = reg.ListLookups(PersonN(p), 100, "");
      EXPECT_TRUE(page.ok()) << page.status();
      if (page.ok()) total += static_cast<int>(page->items.size());
    }
    return total;
  }

  core::RulesTable rules_;
  core::FakeClock clock_{
      absl::FromCivil(absl::CivilSecond(2024, 12, 1, 12, 0, 0), absl::UTCTimeZone())};
  RemoteStore* store_ = nullptr;  // owned by the remote register
};

std::string Describe(const absl::StatusOr<std::vector<SchemeExemption>>& r) {
  if (!r.ok()) return r.status().ToString();
  std::string out;
  for (const SchemeExemption& x : *r) {
    absl::StrAppend(&out, static_cast<int>(x.scheme), ":", static_cast<int>(x.status), ":",
                    x.valid_from ? absl::FormatCivilTime(*x.valid_from) : "-", ":",
                    x.valid_to ? absl::FormatCivilTime(*x.valid_to) : "-", " ");
  }
  return out;
}

TEST_F(RemoteLookupTest, ConcurrentLookupsShareReadsAndAreAnsweredAsAlone) {
  constexpr int kPersons = 60;
  std::unique_ptr<Register> local = Open(/*remote=*/false);
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(local, nullptr);
  ASSERT_NE(remote, nullptr);
  Fill(*local, kPersons);
  Fill(*remote, kPersons);
  const auto expected = LookUp(*local, kPersons);
  // The readers' first reads wait until every lookup is queued.
  store_->Hold(true);
  const int reads_before = store_->ledger_reads;
  const auto got = LookUp(*remote, kPersons, [&] { store_->Hold(false); });
  int granted = 0;
  for (int p = 0; p < kPersons; ++p) {
    ASSERT_TRUE(got[p].ok()) << p << ": " << got[p].status();
    EXPECT_EQ(Describe(got[p]), Describe(expected[p])) << "person " << p;
    for (const SchemeExemption& x : *got[p])
      granted += x.status != core::ExemptionStatus::kNotExempt;
  }
  // Over the cap and not reserved: persons 3, 6, 9, 12, 18, ... (0, 15, 30, 45 reserved).
  EXPECT_EQ(granted, kPersons / 3 - kPersons / 15);
  // At most one read per reader while held, then what waited in a few.
  const int reads = store_->ledger_reads - reads_before;
  EXPECT_LE(reads, 12) << "lookups were not read together";
  EXPECT_GE(store_->ledger_keys, kPersons);
  EXPECT_EQ(Logged(*remote, kPersons), kPersons);
}

TEST_F(RemoteLookupTest, APersonAskedSeveralTimesInOneBatchGetsEachAnswerAndRecord) {
  constexpr int kPersons = 12;
  std::unique_ptr<Register> remote = OpenRemoteFilled(kPersons);
  ASSERT_NE(remote, nullptr);
  const auto alone = LookUp(*remote, kPersons);
  const int logged_before = Logged(*remote, kPersons);
  // Every person three times, all queued before the first read.
  store_->Hold(true);
  std::vector<absl::StatusOr<std::vector<SchemeExemption>>> got(3 * kPersons);
  absl::BlockingCounter answered(3 * kPersons);
  for (int i = 0; i < 3 * kPersons; ++i) {
    remote->CheckExemptionAsync(PersonN(i % kPersons), absl::CivilDay(2024, 6, 1),
                                core::Category::kUnspecified, "desk-1",
                                [&, i](absl::StatusOr<std::vector<SchemeExemption>> r) {
                                  got[i] = std::move(r);
                                  answered.DecrementCount();
                                });
  }
  store_->Hold(false);
  answered.Wait();
  for (int i = 0; i < 3 * kPersons; ++i) {
    ASSERT_TRUE(got[i].ok()) << i << ": " << got[i].status();
    EXPECT_EQ(Describe(got[i]), Describe(alone[i % kPersons])) << "lookup " << i;
  }
  EXPECT_EQ(Logged(*remote, kPersons) - logged_before, 3 * kPersons);
}

TEST_F(RemoteLookupTest, ADamagedLedgerFailsItsOwnLookupOnly) {
  constexpr int kPersons = 20;
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(remote, nullptr);
  const std::string key = FillKnowingLedgerOf(*remote, kPersons, 4);
  ASSERT_FALSE(key.empty());
  store_->DamageLedger(key);
  const int logged_before = Logged(*remote, kPersons);
  store_->Hold(true);
  const auto got = LookUp(*remote, kPersons, [&] { store_->Hold(false); });
  for (int p = 0; p < kPersons; ++p) {
    if (p == 4) {
      EXPECT_EQ(got[p].status().code(), absl::StatusCode::kDataLoss) << got[p].status();
      EXPECT_EQ(got[p].status().message(), "damaged record in ledgers");
    } else {
      EXPECT_TRUE(got[p].ok()) << p << ": " << got[p].status();
    }
  }
  // Every answered lookup logged; the failed one not.
  EXPECT_EQ(Logged(*remote, kPersons) - logged_before, kPersons - 1);
}

TEST_F(RemoteLookupTest, AReadThatFailsOverOneLedgerFailsThatLookupOnly) {
  constexpr int kPersons = 20;
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(remote, nullptr);
  const std::string key = FillKnowingLedgerOf(*remote, kPersons, 7);
  ASSERT_FALSE(key.empty());
  // Any read that includes person 7's ledger fails, as a damaged page of
  // the table would fail the whole statement.
  store_->Poison(key);
  store_->Hold(true);
  const auto got = LookUp(*remote, kPersons, [&] { store_->Hold(false); });
  for (int p = 0; p < kPersons; ++p) {
    if (p == 7) {
      EXPECT_EQ(got[p].status().code(), absl::StatusCode::kDataLoss) << got[p].status();
    } else {
      EXPECT_TRUE(got[p].ok()) << p << ": " << got[p].status();
    }
  }
  EXPECT_EQ(Logged(*remote, kPersons), kPersons - 1);
}

TEST_F(RemoteLookupTest, AFailedPersonReadFailsOnlyTheLookupsThatNeedIt) {
  constexpr int kPersons = 30;
  std::unique_ptr<Register> remote = OpenRemoteFilled(kPersons);
  ASSERT_NE(remote, nullptr);
  store_->FailPersonReads(absl::InternalError("person read failed"));
  store_->Hold(true);
  const auto got = LookUp(*remote, kPersons, [&] { store_->Hold(false); });
  int failed = 0;
  for (int p = 0; p < kPersons; ++p) {
    // Over the cap (every third person): a ledger grants, so the person
    // record (the opt-out) must be read.
    if (p % 3 == 0) {
      EXPECT_EQ(got[p].status().code(), absl::StatusCode::kInternal) << p << got[p].status();
      ++failed;
    } else {
      EXPECT_TRUE(got[p].ok()) << p << ": " << got[p].status();
    }
  }
  EXPECT_EQ(failed, kPersons / 3);
  EXPECT_EQ(Logged(*remote, kPersons), kPersons - kPersons / 3);
}

TEST_F(RemoteLookupTest, ALostConnectionFailsEveryLookupOfItsBatchAndLogsNone) {
  constexpr int kPersons = 30;
  std::unique_ptr<Register> remote = OpenRemoteFilled(kPersons);
  ASSERT_NE(remote, nullptr);
  store_->FailReads(absl::UnavailableError("connection lost"));
  const auto got = LookUp(*remote, kPersons);
  for (int p = 0; p < kPersons; ++p) {
    EXPECT_EQ(got[p].status().code(), absl::StatusCode::kUnavailable) << p;
  }
  store_->FailReads(absl::OkStatus());
  EXPECT_EQ(Logged(*remote, kPersons), 0);
  // The register serves again once the store does.
  const auto again = LookUp(*remote, kPersons);
  for (int p = 0; p < kPersons; ++p) EXPECT_TRUE(again[p].ok()) << p;
  EXPECT_EQ(Logged(*remote, kPersons), kPersons);
}

TEST_F(RemoteLookupTest, ClosingRefusesLookupsNotYetReadAndFinishesTheOthers) {
  constexpr int kPersons = 40;
  std::unique_ptr<Register> remote = OpenRemoteFilled(kPersons);
  ASSERT_NE(remote, nullptr);
  store_->Hold(true);
  absl::Mutex mu;
  int ok = 0, refused = 0;
  auto done = [&](absl::StatusOr<std::vector<SchemeExemption>> r) {
    absl::MutexLock l(&mu);
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
      EXPECT_EQ(r.status().message(), "register is shutting down");
      ++refused;
    }
  };
  // One lookup for each reader, each held in its read; the rest queue.
  int p = 0;
  for (int reading = 1; reading <= 4; ++reading) {
    const int reads = store_->ledger_reads;
    remote->CheckExemptionAsync(PersonN(p++), absl::CivilDay(2024, 6, 1),
                                core::Category::kUnspecified, "desk-1", done);
    while (store_->ledger_reads == reads) std::this_thread::yield();
  }
  for (; p < kPersons; ++p) {
    remote->CheckExemptionAsync(PersonN(p), absl::CivilDay(2024, 6, 1),
                                core::Category::kUnspecified, "desk-1", done);
  }
  // Closing refuses the queued ones at once, while the reads still hang.
  std::thread closer([&] { remote.reset(); });
  {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == kPersons - 4; }, &refused));
    EXPECT_EQ(ok, 0);
  }
  store_->Hold(false);
  closer.join();
  absl::MutexLock l(&mu);
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(refused, kPersons - 4);
}

}  // namespace
}  // namespace frikort::storage
