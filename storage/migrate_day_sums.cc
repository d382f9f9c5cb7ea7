#include "storage/migrate_day_sums.h"

#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ledger.h"
#include "storage/crypto.h"
#include "storage/keys.h"
#include "storage/records.h"
#include "storage/state_machine.h"

namespace frikort::storage {
namespace {

// Entries read before the persons seen so far are written in one commit (a
// person's entries are never split across commits).
constexpr size_t kEntriesPerCommit = 50000;

// What one person's entries say.
struct PersonSums {
  std::string pseudonym;
  std::map<int, int> entries_by_year;
  // (year, scheme) -> day sums: map order is the ledgers' key order.
  std::map<std::pair<int, int>, std::vector<core::DaySum>> sums;
};

// Reads `table`/`key` into `msg`; false when absent.
template <typename Msg>
absl::StatusOr<bool> Read(Store& store, Table table, const std::string& key, Msg* msg) {
  absl::StatusOr<std::optional<std::string>> got = store.Get(table, key);
  if (!got.ok()) return got.status();
  if (!got->has_value()) return false;
  if (!msg->ParseFromString(**got)) {
    return absl::DataLossError(
        absl::StrCat("migration day_sums: damaged ", TableName(table), " record"));
  }
  return true;
}

// Writes the persons' counts and their ledgers' day sums in one commit.
absl::Status WriteSums(Store& store, const std::vector<PersonSums>& persons) {
  std::deque<std::string> held;  // keys and values the write set borrows
  WriteSet w;
  auto put = [&](Table table, std::string key, const google::protobuf::MessageLite& msg) {
    held.push_back(std::move(key));
    const std::string& k = held.back();
    held.push_back(msg.SerializeAsString());
    w.tables[static_cast<int>(table)].push_back({k, &held.back()});
  };
  for (const PersonSums& p : persons) {
    rec::Person person;
    absl::StatusOr<bool> found = Read(store, Table::kPersons, p.pseudonym, &person);
    if (!found.ok()) return found.status();
    // Entries of a person the register does not hold: Verify reports them.
    if (*found) {
      person.clear_entries();
      for (const auto& [year, count] : p.entries_by_year) SetEntriesInYear(&person, year, count);
      put(Table::kPersons, p.pseudonym, person);
    }
    for (const auto& [ledger, sums] : p.sums) {
      const std::string key =
          keys::Ledger(p.pseudonym, ledger.first, static_cast<core::Scheme>(ledger.second));
      rec::Ledger l;
      found = Read(store, Table::kLedgers, key, &l);
      if (!found.ok()) return found.status();
      if (!*found) continue;
      SetDaySums(&l, sums);
      put(Table::kLedgers, key, l);
    }
  }
  if (w.empty()) return absl::OkStatus();
  return store.Commit(w);
}

}  // namespace

absl::Status MigrateDaySums(Store& store) {
  absl::StatusOr<std::optional<std::string>> done = store.Get(Table::kMeta, kDaySumsMigration);
  if (!done.ok()) return done.status();
  if (done->has_value()) return absl::OkStatus();

  ScanRange range;
  for (;;) {
    std::vector<PersonSums> persons;
    size_t entries = 0;
    bool more = false;
    absl::Status damaged;
    rec::Entry e;
    absl::Status s =
        store.Scan(Table::kEntries, range, [&](absl::string_view key, absl::string_view value) {
          const absl::string_view owner = EntryOwner(key);
          if (persons.empty() || persons.back().pseudonym != owner) {
            if (entries >= kEntriesPerCommit) {
              range.start = std::string(key);
              more = true;
              return false;
            }
            persons.push_back(PersonSums{std::string(owner), {}, {}});
          }
          ++entries;
          if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            damaged = absl::DataLossError("migration day_sums: damaged entry record");
            return false;
          }
          PersonSums& p = persons.back();
          ++p.entries_by_year[e.year()];
          // Every (year, scheme) met gets its sums written, empty ones too.
          std::vector<core::DaySum>& sums = p.sums[{e.year(), e.scheme()}];
          if (EntryCounts(e)) {
            core::AddToDay(&sums,
                           core::CountingDay(absl::FromUnixMicros(e.service_time_us()), e.year()),
                           e.amount_ore());
          }
          return true;
        });
    if (!s.ok()) return s;
    if (!damaged.ok()) return damaged;
    if (absl::Status w = WriteSums(store, persons); !w.ok()) return w;
    if (!more) break;
  }
  const std::string one = "1";
  WriteSet w;
  w.tables[static_cast<int>(Table::kMeta)].push_back({kDaySumsMigration, &one});
  return store.Commit(w);
}

}  // namespace frikort::storage
