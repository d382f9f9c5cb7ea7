// The register's lookup log: newest first and paged, flushed and fresh
// records, pseudonyms, its own database (moved there once, never recreated)
// and asynchronous lookups.
#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/backup.h"
#include "storage/crypto.h"
#include "storage/keys.h"
#include "storage/records.pb.h"
#include "storage/register.h"
#include "storage/register_impl.h"
#include "storage/secret.h"
#include "tests/storage/register_fixture.h"
#include "tests/testing/fixture.h"
#include "tests/testing/id_scan.h"
#include "tests/testing/ids.h"
#include "tests/testing/oslo.h"
#include "tests/testing/tamper.h"

namespace frikort::storage {
namespace {

using core::Category;

TEST_F(RegisterTest, LookupsAreLoggedNewestFirstAndPaged) {
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1 + i), Category::kUnspecified,
                                     absl::StrCat("desk", i))
                    .ok());
  }
  auto p1 = reg_->ListLookups(alice_, 3, "");
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->items.size(), 3u);
  EXPECT_EQ(p1->items[0].caller, "desk4");
  EXPECT_EQ(p1->items[2].caller, "desk2");
  ASSERT_FALSE(p1->next_page_token.empty());
  // A lookup made between pages does not disturb the next page.
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 7, 1), Category::kUnspecified, "late")
          .ok());
  auto p2 = reg_->ListLookups(alice_, 3, p1->next_page_token);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->items.size(), 2u);
  EXPECT_EQ(p2->items[0].caller, "desk1");
  EXPECT_EQ(p2->items[1].caller, "desk0");
  EXPECT_TRUE(p2->next_page_token.empty());
  EXPECT_EQ(reg_->ListLookups(alice_, 3, "garbage!").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(reg_->ListLookups(bob_, 3, "")->items.empty());
}

// The log's memtable is unsorted (appended per lookup, sorted when flushed or
// listed): a listing merges it with table files, in order, one person only.
TEST_F(RegisterTest, LookupLogListsFlushedAndFreshRecordsInOrder) {
  auto look = [&](const std::string& who, int i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(reg_->CheckExemption(who, absl::CivilDay(2024, 6, 1), Category::kUnspecified,
                                     absl::StrCat(who == alice_ ? "a" : "b", i))
                    .ok());
  };
  for (int i = 0; i < 3; ++i) {
    look(bob_, i);
    look(alice_, i);
  }
  Reopen();  // the first three are now in a table file
  for (int i = 3; i < 6; ++i) {
    look(alice_, i);
    look(bob_, i);
  }
  std::vector<std::string> callers = AllLookupCallers(alice_, 2);
  EXPECT_EQ(callers, (std::vector<std::string>{"a5", "a4", "a3", "a2", "a1", "a0"}));
}

// The audit log names a person by the pseudonym in base32 (RFC 4648,
// lowercase, unpadded) in groups of eight: a scanner for national ids never
// finds a run of 11 digits in it, whatever the person.
TEST_F(RegisterTest, AuditPseudonymsHoldNoRunOfElevenDigits) {
  EXPECT_EQ(internal::PseudonymText(""), "");
  EXPECT_EQ(internal::PseudonymText("f"), "my");
  EXPECT_EQ(internal::PseudonymText("foobar"), "mzxw6ytb-oi");
  EXPECT_EQ(internal::PseudonymText(std::string(10, '\xff')), "77777777-77777777");
  EXPECT_EQ(reg_->AuditPseudonym(alice_),
            internal::PseudonymText(Crypto::Create(kSecret)->Pseudonym(alice_)));
  EXPECT_EQ(reg_->AuditPseudonym("not an id"), "");
  int id_like = 0, other_form = 0;
  std::string example;
  for (int n = 0; n < 400; ++n) {
    const std::string text = reg_->AuditPseudonym(frikort::testing::PersonN(n));
    if (!frikort::testing::HasNoIdLikeRun(text)) {
      ++id_like;
      example = text;
    }
    if (!::testing::Value(text, ::testing::MatchesRegex("([a-z2-7]{8}-){6}[a-z2-7]{4}"))) {
      ++other_form;
    }
  }
  EXPECT_EQ(other_form, 0);
  EXPECT_EQ(id_like, 0) << "for example " << example;
}

// A register created before the lookup log had a database of its own kept
// the log in its `audit` family: opening it moves those records over, once.
TEST_F(RegisterTest, OldLookupLogMovesToItsOwnDatabaseOnce) {
  const std::string pseudonym = Crypto::Create(kSecret)->Pseudonym(alice_);
  ASSERT_EQ(pseudonym.size(), kPseudonymBytes);
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "new").ok());
  reg_.reset();
  constexpr size_t kAuditFamily = 8;
  auto with_old_family =
      [&](const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& fn) {
        std::vector<rocksdb::ColumnFamilyDescriptor> descs;
        for (const std::string& name : testing::RegisterColumnFamilies()) {
          descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
        }
        std::vector<rocksdb::ColumnFamilyHandle*> handles;
        rocksdb::DB* db = nullptr;
        ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, descs, &handles, &db).ok());
        fn(db, handles[kAuditFamily]);
        for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
        delete db;
      };
  // A register of schema 1, its lookup log in the `audit` family: records
  // as the old register wrote them, a second apart, more than two of the
  // move's steps (10,000 each). (The one lookup made above, already in the
  // new database, is what a move cut short by a crash leaves behind.)
  constexpr int kOld = 25000;
  with_old_family([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit) {
    ASSERT_EQ(testing::RegisterColumnFamilies()[kAuditFamily], "audit");
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "schema_version", "1").ok());
    rocksdb::WriteBatch batch;
    for (int i = 0; i < kOld; ++i) {
      storage::records::Lookup record;
      record.set_time_us(absl::ToUnixMicros(clock_.Now() - absl::Seconds(kOld + 10 - i)));
      record.set_caller(absl::StrCat("old-", i));
      record.set_date(core::DayNumber(absl::CivilDay(2024, 5, 1)));
      batch.Put(audit, keys::Audit(pseudonym, record.time_us(), 1000 + i),
                record.SerializeAsString());
    }
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  });
  Reopen();
  Reopen();  // a second open finds nothing left to move
  std::vector<std::string> callers = AllLookupCallers(alice_, 1000);
  ASSERT_EQ(callers.size(), kOld + 1u);
  EXPECT_EQ(callers[0], "new");
  EXPECT_EQ(callers[1], absl::StrCat("old-", kOld - 1));
  EXPECT_EQ(callers[kOld], "old-0");
  reg_.reset();
  with_old_family([&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* audit) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), audit));
    it->SeekToFirst();
    EXPECT_FALSE(it->Valid()) << "the old family still holds records";
  });
}

// The lookup log has a memtable budget of its own: when a batch feed leaves
// the register's memtables near their shared budget, the lookups that follow
// must not each flush the log's (small) memtable to a table file of its own.
TEST_F(RegisterTest, LookupsAfterAFeedDoNotFlushTheLookupLogEach) {
  reg_.reset();
  RegisterOptions small = Options(kSecret);
  small.write_buffer_bytes = 4 << 20;
  auto r = Register::Open(small);
  ASSERT_TRUE(r.ok()) << r.status();
  reg_ = *std::move(r);
  std::vector<core::CoPaymentInput> batch;
  for (int i = 0; i < 10000; ++i) {
    batch.push_back(Report(absl::StrCat("feed-", i), frikort::testing::PersonN(i),
                           absl::CivilDay(2024, 3, 1), 10000));
  }
  auto fed = reg_->Submit(std::move(batch));
  ASSERT_TRUE(fed.ok()) << fed.status();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified,
                                     absl::StrCat("desk-", i))
                    .ok());
    absl::SleepFor(absl::Milliseconds(10));  // desks ask one by one
  }
  reg_.reset();  // closing waits for any flush under way
  int tables = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / internal::kLookupLogDir)) {
    tables += e.path().extension() == ".sst";
  }
  EXPECT_LE(tables, 1);
}

// From schema 2 a register without its lookup-log folder (copied or
// restored without it) is refused, not given a new empty log.
TEST_F(RegisterTest, MissingLookupLogIsRefusedNotRecreated) {
  ASSERT_TRUE(
      reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kUnspecified, "d").ok());
  reg_.reset();
  std::filesystem::remove_all(dir_ / internal::kLookupLogDir);
  auto r = Register::Open(Options(kSecret));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("lookup-log, which is missing"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / internal::kLookupLogDir));
}

TEST_F(RegisterTest, AsyncLookupsAnswerLikeSyncOnesAndAreLoggedFirst) {
  SubmitOne(Report("big", alice_, absl::CivilDay(2024, 3, 1), 400000));
  auto sync = reg_->CheckExemption(alice_, absl::CivilDay(2024, 6, 1), Category::kPhysician, "s");
  ASSERT_TRUE(sync.ok());
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        absl::Notification done;
        reg_->CheckExemptionAsync(
            alice_, absl::CivilDay(2024, 6, 1), Category::kPhysician, absl::StrCat("t", t),
            [&](absl::StatusOr<std::vector<SchemeExemption>> got) {
              // Logged before answered: the log holds at least this lookup.
              const int n = answered.fetch_add(1) + 1;
              auto log = reg_->ListLookups(alice_, 1000, "");
              if (!got.ok() || got->size() != sync->size() ||
                  (*got)[0].status != (*sync)[0].status || !log.ok() ||
                  static_cast<int>(log->items.size()) < std::min(n + 1, 1000)) {
                ++wrong;
              }
              done.Notify();
            });
        done.WaitForNotification();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered, kThreads * kEach);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ((*sync)[0].status, core::ExemptionStatus::kCapReached);
  auto log = reg_->ListLookups(alice_, 1000, "");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->items.size(), 1u + kThreads * kEach);
  // A bad id is refused before anything is logged.
  absl::Status bad;
  reg_->CheckExemptionAsync(
      "123", absl::CivilDay(2024, 6, 1), Category::kPhysician, "x",
      [&](absl::StatusOr<std::vector<SchemeExemption>> got) { bad = got.status(); });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frikort::storage
