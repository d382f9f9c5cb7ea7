#include "storage/store.h"

namespace frikort::storage {

absl::string_view TableName(Table t) {
  static const char* const kNames[kNumTables] = {"meta",    "persons",  "entries", "reports",
                                                 "ledgers", "due",      "cards",   "payouts",
                                                 "lookups", "providers"};
  const int i = static_cast<int>(t);
  return i >= 0 && i < kNumTables ? kNames[i] : "unknown";
}

}  // namespace frikort::storage
