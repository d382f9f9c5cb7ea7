// The group overlay on its own, over an in-memory store, without threads:
// reads of its own writes, reads through the group before it, merged scans
// and marker walks, the write set it hands to the commit, and poisoning.
#include "storage/overlay.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/records.pb.h"
#include "tests/testing/mem_store.h"

namespace frikort::storage {
namespace {

using ::frikort::testing::MemStore;
using ::testing::ElementsAre;
using ::testing::Pair;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

void Commit(MemStore& store, const Overlay& o) { ASSERT_TRUE(store.Commit(o.Writes()).ok()); }

void Seed(MemStore& store, Table t, const std::vector<std::string>& keys) {
  Overlay o(&store, kNow, nullptr);
  for (const auto& k : keys) o.Put(t, k, "v" + k);
  Commit(store, o);
}

std::vector<std::pair<std::string, std::string>> ScanAll(Overlay& o, Table t,
                                                         absl::string_view prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  o.Scan(t, prefix, [&](absl::string_view k, absl::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
  });
  return out;
}

TEST(OverlayTest, ReadsItsOwnWritesAndReadsAKeyFromTheStoreOnce) {
  MemStore store;
  Seed(store, Table::kPersons, {"a"});
  Overlay o(&store, kNow, nullptr);
  const int before = store.gets();
  EXPECT_EQ(o.Get(Table::kPersons, "a"), "va");
  EXPECT_EQ(o.Get(Table::kPersons, "a"), "va");
  EXPECT_EQ(store.gets() - before, 1) << "a key read twice is read from the store once";
  o.Put(Table::kPersons, "a", "new");
  o.Delete(Table::kPersons, "b");
  EXPECT_EQ(o.Get(Table::kPersons, "a"), "new");
  EXPECT_EQ(o.Get(Table::kPersons, "b"), std::nullopt);
  EXPECT_EQ(o.writes(), 2u);
  // Tables are apart: the same key elsewhere is another record.
  EXPECT_EQ(o.Get(Table::kLedgers, "a"), std::nullopt);
}

TEST(OverlayTest, ReadsFallThroughTheGroupBeingCommitted) {
  MemStore store;
  Seed(store, Table::kLedgers, {"k1"});
  auto parent = std::make_shared<Overlay>(&store, kNow, nullptr);
  parent->Put(Table::kLedgers, "k2", "from-parent");
  parent->Delete(Table::kLedgers, "k1");
  Overlay child(&store, kNow, parent);
  EXPECT_EQ(child.Get(Table::kLedgers, "k2"), "from-parent");
  EXPECT_EQ(child.Get(Table::kLedgers, "k1"), std::nullopt) << "the parent's delete is seen";
  // What the child only read is not its write.
  EXPECT_EQ(child.writes(), 0u);
  for (const auto& t : child.Writes().tables) EXPECT_TRUE(t.empty());
}

TEST(OverlayTest, ScanMergesStoreParentAndOwnWritesInKeyOrder) {
  MemStore store;
  Seed(store, Table::kEntries, {"p1", "p3", "p5", "q1"});
  auto parent = std::make_shared<Overlay>(&store, kNow, nullptr);
  parent->Put(Table::kEntries, "p2", "par");
  parent->Delete(Table::kEntries, "p3");
  Overlay o(&store, kNow, parent);
  o.Put(Table::kEntries, "p4", "own");
  o.Put(Table::kEntries, "p3", "back");
  o.Delete(Table::kEntries, "p5");
  EXPECT_THAT(ScanAll(o, Table::kEntries, "p"), ElementsAre(Pair("p1", "vp1"), Pair("p2", "par"),
                                                            Pair("p3", "back"), Pair("p4", "own")));
}

TEST(OverlayTest, KeysAfterMergesAndSkipsDeletedMarkers) {
  MemStore store;
  Seed(store, Table::kDue, {"b", "d", "f", "h"});
  auto parent = std::make_shared<Overlay>(&store, kNow, nullptr);
  parent->Put(Table::kDue, "c", "");
  parent->Delete(Table::kDue, "d");
  Overlay o(&store, kNow, parent);
  o.Put(Table::kDue, "e", "");
  o.Delete(Table::kDue, "f");
  o.Put(Table::kDue, "i", "");
  EXPECT_THAT(o.KeysAfter(Table::kDue, "", 100), ElementsAre("b", "c", "e", "h", "i"));
  EXPECT_THAT(o.KeysAfter(Table::kDue, "b", 2), ElementsAre("c", "e"));
  EXPECT_THAT(o.KeysAfter(Table::kDue, "c", 2), ElementsAre("e", "h"))
      << "deleted markers do not use up the limit";
  EXPECT_THAT(o.KeysAfter(Table::kDue, "h", 5), ElementsAre("i"));
  EXPECT_TRUE(o.KeysAfter(Table::kDue, "i", 5).empty());
  EXPECT_TRUE(o.KeysAfter(Table::kDue, "", 0).empty());
}

TEST(OverlayTest, WritesAreEachTablesKeysInOrderWithDeletes) {
  MemStore store;
  Overlay o(&store, kNow, nullptr);
  o.Put(Table::kCards, "z", "1");
  o.Put(Table::kCards, "a", "2");
  o.Delete(Table::kCards, "m");
  o.Put(Table::kCards, "a", "3");  // written twice, written once
  const WriteSet w = o.Writes();
  const auto& cards = w.tables[static_cast<int>(Table::kCards)];
  ASSERT_EQ(cards.size(), 3u);
  EXPECT_EQ(cards[0].key, "a");
  ASSERT_NE(cards[0].value, nullptr);
  EXPECT_EQ(*cards[0].value, "3");
  EXPECT_EQ(cards[1].key, "m");
  EXPECT_EQ(cards[1].value, nullptr);
  EXPECT_EQ(cards[2].key, "z");
  Commit(store, o);
  Overlay after(&store, kNow, nullptr);
  EXPECT_EQ(after.Get(Table::kCards, "a"), "3");
  EXPECT_EQ(after.Get(Table::kCards, "m"), std::nullopt);
}

TEST(OverlayTest, PrefetchBatchesTheKeysNotYetHeld) {
  MemStore store;
  Seed(store, Table::kLedgers, {"a", "b", "c"});
  Overlay o(&store, kNow, nullptr);
  o.Put(Table::kLedgers, "b", "held");
  const int gets = store.gets(), batches = store.multi_gets();
  o.Prefetch(Table::kLedgers, {"c", "a", "b", "x", "a"});
  EXPECT_EQ(store.multi_gets() - batches, 1);
  EXPECT_EQ(o.Get(Table::kLedgers, "a"), "va");
  EXPECT_EQ(o.Get(Table::kLedgers, "b"), "held");
  EXPECT_EQ(o.Get(Table::kLedgers, "x"), std::nullopt);
  EXPECT_EQ(store.gets(), gets) << "prefetched keys are answered without a read";
}

TEST(OverlayTest, ADamagedRecordPoisonsTheGroup) {
  MemStore store;
  Seed(store, Table::kPersons, {"p"});
  Overlay o(&store, kNow, nullptr);
  records::Ledger l;
  o.Put(Table::kLedgers, "l", "\xff\xff\xff");  // not a Ledger encoding
  EXPECT_FALSE(o.GetMsg(Table::kLedgers, "l", &l));
  EXPECT_EQ(o.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(o.status().message()), ::testing::HasSubstr("ledgers"));
  // The first failure stays.
  o.Fail(absl::UnavailableError("later"));
  EXPECT_EQ(o.status().code(), absl::StatusCode::kDataLoss);
}

TEST(OverlayDeathTest, UseOffTheBuildingThreadCrashes) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  MemStore store;
  Overlay o(&store, kNow, nullptr);
  o.Put(Table::kPersons, "a", "1");  // the building thread may
  EXPECT_DEATH(
      {
        std::thread other([&] { o.Put(Table::kPersons, "b", "2"); });
        other.join();
      },
      "off the thread that builds it");
}

}  // namespace
}  // namespace frikort::storage
