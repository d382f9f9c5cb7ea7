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

TEST(BatcherTest, EveryItemIsHandledOnceInBatchesNoLargerThanTheLimit) {
  absl::Mutex mu;
  std::map<int, int> seen;
  size_t largest = 0;
  {
    Batcher<int> b("test-batcher", 3, 7, [&](std::vector<int> batch) {
      absl::MutexLock l(&mu);
      largest = std::max(largest, batch.size());
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
  }  // the destructor hands over what is still queued
  ASSERT_EQ(seen.size(), 2000u);
  for (const auto& [item, times] : seen) EXPECT_EQ(times, 1) << item;
  EXPECT_LE(largest, 7u);
  EXPECT_GE(largest, 1u);
}

TEST(BatcherTest, WhatArrivesWhileTheThreadsAreBusyIsTakenTogether) {
  absl::Notification release;
  std::atomic<int> entered{0};
  absl::Mutex mu;
  std::vector<size_t> sizes;
  {
    Batcher<int> b("test-batcher", 2, 100, [&](std::vector<int> batch) {
      if (entered.fetch_add(1) < 2) release.WaitForNotification();
      absl::MutexLock l(&mu);
      sizes.push_back(batch.size());
    });
    b.Start();
    b.Add(0);
    while (entered.load() < 1) std::this_thread::yield();
    b.Add(1);
    while (entered.load() < 2) std::this_thread::yield();
    for (int i = 2; i < 52; ++i) b.Add(i);  // both threads are held
    release.Notify();
  }
  size_t total = 0;
  for (size_t s : sizes) total += s;
  EXPECT_EQ(total, 52u);
  // 2 batches of one, then the 50 that waited in at most two batches.
  EXPECT_LE(sizes.size(), 4u);
}

TEST(BatcherTest, ItemsOfABatcherNeverStartedAreHandledByItsDestructor) {
  std::vector<int> handled;
  {
    Batcher<int> b("test-batcher", 2, 10, [&](std::vector<int> batch) {
      handled.insert(handled.end(), batch.begin(), batch.end());
    });
    b.Add(4);
    b.Add(5);
  }
  EXPECT_EQ(handled, (std::vector<int>{4, 5}));
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
    }
    return MemStore::MultiGet(t, keys, sorted, found);
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
  // Over the cap and not reserved: persons 3, 6, 9, 12, 18, ... (15, 30, 45 reserved).
  EXPECT_EQ(granted, kPersons / 3 - kPersons / 15);
  // At most one read per reader while held, then what waited in a few.
  const int reads = store_->ledger_reads - reads_before;
  EXPECT_LE(reads, 12) << "lookups were not read together";
  EXPECT_GE(store_->ledger_keys, kPersons);
  EXPECT_EQ(Logged(*remote, kPersons), kPersons);
}

TEST_F(RemoteLookupTest, ADamagedLedgerFailsItsOwnLookupOnly) {
  constexpr int kPersons = 20;
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(remote, nullptr);
  // Person 4 first: its ledger is then the only one in the store.
  ASSERT_TRUE(remote
                  ->Submit({frikort::testing::PaidPhysicianReport(
                      "r4", PersonN(4), absl::CivilDay(2024, 3, 1), 5000)})
                  .ok());
  const auto ledgers = store_->tables()[static_cast<int>(Table::kLedgers)];
  ASSERT_EQ(ledgers.size(), 1u);
  Fill(*remote, kPersons);
  store_->DamageLedger(ledgers.begin()->first);
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

TEST_F(RemoteLookupTest, AFailedReadFailsEveryLookupOfItsBatchAndLogsNone) {
  constexpr int kPersons = 30;
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(remote, nullptr);
  Fill(*remote, kPersons);
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

TEST_F(RemoteLookupTest, LookupsQueuedWhenTheRegisterClosesAreAnswered) {
  constexpr int kPersons = 40;
  std::unique_ptr<Register> remote = Open(/*remote=*/true);
  ASSERT_NE(remote, nullptr);
  Fill(*remote, kPersons);
  store_->Hold(true);
  std::atomic<int> answered{0};
  for (int p = 0; p < kPersons; ++p) {
    remote->CheckExemptionAsync(PersonN(p), absl::CivilDay(2024, 6, 1),
                                core::Category::kUnspecified, "desk-1",
                                [&](absl::StatusOr<std::vector<SchemeExemption>>) { ++answered; });
  }
  store_->Hold(false);
  remote.reset();
  EXPECT_EQ(answered.load(), kPersons);
}

}  // namespace
}  // namespace frikort::storage
