// Damages a closed register behind its back, as a buggy tool or a bad disk
// might, so that tests can check that Verify finds it.
#ifndef FRIKORT_TESTS_TESTING_TAMPER_H_
#define FRIKORT_TESTS_TESTING_TAMPER_H_

#include <memory>
#include <string>
#include <vector>

#include "rocksdb/db.h"

namespace frikort::testing {

// The register's column families by name (storage/keys.h order).
inline const std::vector<std::string>& RegisterColumnFamilies() {
  static const std::vector<std::string> names = {"default", "persons",  "entries", "reports",
                                                 "ledgers", "due",      "cards",   "payouts",
                                                 "audit",   "providers"};
  return names;
}

// Deletes the first record of each named column family of the register in
// `dir` (which must not be open). Returns false if the database could not be
// opened or a family was empty.
inline bool DeleteFirstRecords(const std::string& dir, const std::vector<std::string>& families) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const std::string& name : RegisterColumnFamilies()) {
    descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(rocksdb::DBOptions(), dir, descs, &handles, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  bool ok = true;
  for (const std::string& family : families) {
    for (size_t i = 0; i < descs.size(); ++i) {
      if (descs[i].name != family) continue;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
      it->SeekToFirst();
      ok = ok && it->Valid() && db->Delete(rocksdb::WriteOptions(), handles[i], it->key()).ok();
    }
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  return ok;
}

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_TAMPER_H_
