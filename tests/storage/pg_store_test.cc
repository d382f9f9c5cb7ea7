// The PostgreSQL store against a PostgreSQL 15 of the test's own
// (tests/testing/pg_server.h): byte order, batched reads, paged scans,
// atomic commits, snapshots, the lookup log, the schema version, and what a
// database that goes away looks like to the register.
#include "storage/pg_store.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pg_server.h"

namespace frikort::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using KV = std::vector<std::pair<std::string, std::string>>;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<frikort::testing::PgServer*> server = frikort::testing::PgServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    absl::StatusOr<std::string> dsn = server_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    db_ = frikort::testing::PgServer::DatabaseOf(dsn_);
  }

  std::unique_ptr<Store> Open(int page_rows = 1000) {
    PgStoreOptions o;
    o.dsn = dsn_;
    o.scan_page_rows = page_rows;
    absl::StatusOr<std::unique_ptr<Store>> s = OpenPgStore(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // A writer that does not renew its lease (as a paused or cut-off process).
  std::unique_ptr<Store> OpenPaused(absl::Duration lease_ttl) {
    PgStoreOptions o;
    o.dsn = dsn_;
    o.lease_ttl = lease_ttl;
    o.renew_lease = false;
    absl::StatusOr<std::unique_ptr<Store>> s = OpenPgStore(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  static absl::Status Put(Store* s, Table t, const KV& kvs) {
    WriteSet w;
    for (const auto& [k, v] : kvs) w.tables[static_cast<int>(t)].push_back({k, &v});
    return s->Commit(w);
  }

  static KV ScanAll(StoreReader* s, Table t, const ScanRange& range = {}) {
    KV out;
    absl::Status st = s->Scan(t, range, [&](absl::string_view k, absl::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  frikort::testing::PgServer* server_ = nullptr;
  std::string dsn_, db_;
};

TEST_F(PgStoreTest, KeysSortAsUnsignedBytes) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // Put in a different order than they sort, with bytes above 0x7f and NULs.
  const KV kvs = {{std::string("\xff", 1), "4"},
                  {std::string("\x80", 1), "3"},
                  {std::string("\x00\x01", 2), "1"},
                  {std::string("\x7f", 1), "2"},
                  {std::string("\xff\x00", 2), "5"}};
  ASSERT_TRUE(Put(store.get(), Table::kPersons, kvs).ok());
  std::vector<std::string> values;
  for (const auto& [k, v] : ScanAll(store.get(), Table::kPersons)) values.push_back(v);
  EXPECT_THAT(values, ElementsAre("1", "2", "3", "4", "5"));
  // Tables are apart.
  EXPECT_TRUE(ScanAll(store.get(), Table::kEntries).empty());
}

TEST_F(PgStoreTest, ScansWalkPagesWithinThePrefixFromTheStart) {
  auto store = Open(/*page_rows=*/3);
  ASSERT_NE(store, nullptr);
  KV kvs;
  for (int i = 0; i < 10; ++i) kvs.emplace_back(absl::StrCat("p\xff", i), absl::StrCat(i));
  kvs.emplace_back("p\xfe", "before");
  kvs.emplace_back("q", "after");
  ASSERT_TRUE(Put(store.get(), Table::kEntries, kvs).ok());

  KV within = ScanAll(store.get(), Table::kEntries, {.prefix = "p\xff", .start = ""});
  ASSERT_EQ(within.size(), 10u) << "pages of 3 rows, all of the prefix and nothing else";
  EXPECT_EQ(within.front().second, "0");
  EXPECT_EQ(within.back().second, "9");
  KV from = ScanAll(store.get(), Table::kEntries,
                    {.prefix = "p\xff",
                     .start = "p\xff"
                              "7"});
  ASSERT_EQ(from.size(), 3u);
  EXPECT_EQ(from.front().second, "7");

  // A visitor may stop, and may read the store while it scans.
  int seen = 0;
  ASSERT_TRUE(store
                  ->Scan(Table::kEntries, {.prefix = "p", .start = ""},
                         [&](absl::string_view k, absl::string_view) {
                           auto again = store->Get(Table::kEntries, k);
                           EXPECT_TRUE(again.ok() && again->has_value());
                           return ++seen < 5;
                         })
                  .ok());
  EXPECT_EQ(seen, 5);
}

TEST_F(PgStoreTest, MultiGetAnswersEveryKeyInItsPlace) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(store.get(), Table::kLedgers, {{"a", "1"}, {"c", "3"}}).ok());
  const std::vector<absl::string_view> keys = {"c", "b", "a", "c"};
  std::map<size_t, std::string> found;
  ASSERT_TRUE(store
                  ->MultiGet(Table::kLedgers, keys, /*sorted=*/false,
                             [&](size_t i, const absl::string_view* v) {
                               found[i] = v == nullptr ? "<none>" : std::string(*v);
                             })
                  .ok());
  EXPECT_EQ(found, (std::map<size_t, std::string>{{0, "3"}, {1, "<none>"}, {2, "1"}, {3, "3"}}));
}

TEST_F(PgStoreTest, CommitPutsAndDeletesAcrossTablesTogether) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(store.get(), Table::kDue, {{"d1", ""}, {"d2", ""}}).ok());
  const std::string v1 = "new", v2 = "card";
  WriteSet w;
  w.tables[static_cast<int>(Table::kDue)] = {{"d1", nullptr}, {"d2", &v1}};
  w.tables[static_cast<int>(Table::kCards)] = {{"c1", &v2}};
  ASSERT_TRUE(store->Commit(w).ok());
  EXPECT_EQ(ScanAll(store.get(), Table::kDue), (KV{{"d2", "new"}}));
  EXPECT_EQ(ScanAll(store.get(), Table::kCards), (KV{{"c1", "card"}}));
  auto absent = store->Get(Table::kDue, "d1");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());

  // The lookup log is not written by commits.
  WriteSet lookups;
  lookups.tables[static_cast<int>(Table::kLookups)] = {{"l", &v1}};
  EXPECT_EQ(store->Commit(lookups).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgStoreTest, ASnapshotKeepsTheStateItWasTakenAt) {
  auto store = Open(/*page_rows=*/2);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{"a", "1"}, {"b", "1"}, {"c", "1"}}).ok());
  std::unique_ptr<StoreReader> snap = store->Snapshot();
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{"a", "2"}, {"d", "2"}}).ok());
  EXPECT_EQ(ScanAll(snap.get(), Table::kPersons), (KV{{"a", "1"}, {"b", "1"}, {"c", "1"}}));
  EXPECT_EQ(ScanAll(store.get(), Table::kPersons).size(), 4u);
  auto old = snap->Get(Table::kPersons, "a");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->value_or(""), "1");
}

TEST_F(PgStoreTest, LookupsAppendedAndSyncedSurviveADatabaseCrash) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const KV records = {{"p1-0001", "lookup 1"}, {"p1-0002", "lookup 2"}};
  ASSERT_TRUE(store->AppendLookups(records).ok());
  EXPECT_EQ(ScanAll(store.get(), Table::kLookups), records) << "readable once appended";
  ASSERT_TRUE(store->SyncLookups().ok());
  ASSERT_TRUE(store->SyncLookups().ok()) << "nothing new: no statement";
  // An immediate stop is a crash: no checkpoint, WAL replayed at start.
  ASSERT_TRUE(server_->Stop().ok());
  ASSERT_TRUE(server_->Restart().ok());
  store.reset();
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(ScanAll(reopened.get(), Table::kLookups), records);
}

TEST_F(PgStoreTest, ALostDatabaseIsUnavailableAndComesBack) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string key(32, '\x42');  // a pseudonym-like key
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{key, "v"}}).ok());
  ASSERT_TRUE(server_->Stop().ok());
  absl::Status commit = Put(store.get(), Table::kPersons, {{key, "w"}});
  EXPECT_EQ(commit.code(), absl::StatusCode::kUnavailable) << commit;
  auto read = store->Get(Table::kPersons, key);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable) << read.status();
  EXPECT_THAT(std::string(commit.message()), Not(HasSubstr("BBBB")));
  EXPECT_THAT(std::string(commit.message()), Not(HasSubstr("\\x4242")));
  ASSERT_TRUE(server_->Restart().ok());
  // Connections are made again when next needed.
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{key, "x"}}).ok());
  auto again = store->Get(Table::kPersons, key);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->value_or(""), "x");
}

TEST_F(PgStoreTest, AnOldWriterCannotCommitAfterANewOneTookOver) {
  // The old writer stops renewing its lease, as a paused or cut-off process
  // would; the new one takes the lease over once it has expired.
  std::unique_ptr<Store> old_writer = OpenPaused(absl::Milliseconds(300));
  ASSERT_NE(old_writer, nullptr);
  ASSERT_TRUE(Put(old_writer.get(), Table::kPersons, {{"a", "old"}}).ok());
  PgStoreOptions o;
  o.dsn = dsn_;
  o.lease_ttl = absl::Milliseconds(300);
  o.lease_wait = absl::Seconds(10);
  auto new_writer = OpenPgStore(o);
  ASSERT_TRUE(new_writer.ok()) << new_writer.status();

  absl::Status late = Put(old_writer.get(), Table::kPersons, {{"a", "late"}, {"b", "late"}});
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable) << late;
  EXPECT_THAT(std::string(late.message()), HasSubstr("writer lease passed to another frikortd"));
  EXPECT_EQ(ScanAll(new_writer->get(), Table::kPersons), (KV{{"a", "old"}}))
      << "nothing of the fenced commit landed";
  EXPECT_TRUE(Put(new_writer->get(), Table::kPersons, {{"b", "new"}}).ok());
}

TEST_F(PgStoreTest, ALiveWriterKeepsItsLeaseUntilItCloses) {
  PgStoreOptions o;
  o.dsn = dsn_;
  o.lease_ttl = absl::Seconds(1);
  auto holder = OpenPgStore(o);  // renews every third of a second
  ASSERT_TRUE(holder.ok()) << holder.status();
  o.lease_wait = absl::Milliseconds(2500);  // past the lease's time: renewed
  auto second = OpenPgStore(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("held by another frikortd"));
  EXPECT_TRUE(IsLeaseHeldElsewhere(second.status())) << "a standby tells it from other refusals";
  holder->reset();  // closing gives the lease up: the next writer need not wait
  o.lease_wait = absl::ZeroDuration();
  auto next = OpenPgStore(o);
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST_F(PgStoreTest, ReadsStopWhenTheLeaseIsNoLongerKnownToBeHeld) {
  // A writer that stops renewing (paused, cut off) may have been replaced:
  // its reads could miss what the new one acknowledged, so it answers none.
  std::unique_ptr<Store> store = OpenPaused(absl::Milliseconds(300));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{"a", "1"}}).ok());
  ASSERT_TRUE(store->Get(Table::kPersons, "a").ok());
  absl::SleepFor(absl::Milliseconds(400));
  auto late = store->Get(Table::kPersons, "a");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  EXPECT_THAT(std::string(late.status().message()), HasSubstr("lease was not renewed in time"));
  EXPECT_EQ(store->Snapshot()->Get(Table::kPersons, "a").status().code(),
            absl::StatusCode::kUnavailable);
  // Nobody took the lease meanwhile: the next commit's fence extends it.
  ASSERT_TRUE(Put(store.get(), Table::kPersons, {{"b", "2"}}).ok());
  EXPECT_TRUE(store->Get(Table::kPersons, "a").ok());
}

TEST_F(PgStoreTest, AStoreOfThisProcessReclaimsItsLeaseAndTheOldOneIsToldItLostIt) {
  // The daemon drops a store that lost its connection and opens another; the
  // new one takes the lease still held under this process's name at once.
  PgStoreOptions o;
  o.dsn = dsn_;
  o.lease_ttl = absl::Milliseconds(600);  // renewed every 200 ms
  absl::Notification lost;
  absl::Status why;
  o.on_lost = [&](const absl::Status& s) {
    why = s;
    lost.Notify();
  };
  auto old_store = OpenPgStore(o);
  ASSERT_TRUE(old_store.ok()) << old_store.status();
  o.on_lost = nullptr;
  o.lease_ttl = absl::Seconds(6);
  o.lease_wait = absl::ZeroDuration();
  auto refused = OpenPgStore(o);
  ASSERT_FALSE(refused.ok()) << "without reclaim_own_lease the lease is another's";
  o.reclaim_own_lease = true;
  auto new_store = OpenPgStore(o);
  ASSERT_TRUE(new_store.ok()) << new_store.status();
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
  EXPECT_THAT(std::string(why.message()), HasSubstr("passed to another frikortd"));
  EXPECT_EQ(Put(old_store->get(), Table::kPersons, {{"a", "old"}}).code(),
            absl::StatusCode::kUnavailable)
      << "the old store is fenced";
  EXPECT_TRUE(Put(new_store->get(), Table::kPersons, {{"a", "new"}}).ok());
}

TEST_F(PgStoreTest, TheSchemaIsCreatedOnceAndANewerOneIsRefused) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Put(store.get(), Table::kMeta, {{"k", "kept"}}).ok());
  }
  {
    auto store = Open();  // opened again: the data stays
    ASSERT_NE(store, nullptr);
    auto v = store->Get(Table::kMeta, "k");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->value_or(""), "kept");
  }
  ASSERT_TRUE(
      server_
          ->Execute(db_, absl::StrCat("UPDATE frikort_schema SET version = ", kPgSchemaVersion + 1))
          .ok());
  PgStoreOptions o;
  o.dsn = dsn_;
  auto refused = OpenPgStore(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("newer than this frikortd's"));
}

TEST_F(PgStoreTest, AWrongDsnIsUnavailableWithoutThePassword) {
  PgStoreOptions o;
  o.dsn = absl::StrCat("host=127.0.0.1 port=", server_->port(),
                       " user=nobody_here password=s3cret-pw dbname=none connect_timeout=2");
  auto refused = OpenPgStore(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("s3cret-pw")));
  EXPECT_EQ(OpenPgStore(PgStoreOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PgStoreTest, BackupPointsToPostgresTools) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto b = store->Backup("/tmp/nowhere", "check");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("pg_basebackup"));
}

}  // namespace
}  // namespace frikort::storage
