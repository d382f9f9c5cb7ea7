// Key layout of the register's column families. Integers are fixed-width and
// big-endian (signed ones with the sign bit flipped) so that RocksDB's byte
// order is the domain's order: a person's entries of a year sort by service
// time, due markers by year, cards by issue date, lookups newest first.
//
//   persons   pseudonym(32)                                    -> records::Person
//   entries   pseudonym(32) year(2) time(8) plen(1) provider report_id
//                                                              -> records::Entry
//   reports   plen(1) provider report_id                       -> records::ReportIndex
//   ledgers   pseudonym(32) year(2) scheme(1)                  -> records::Ledger
//   due       year(2) pseudonym(32) scheme(1)                  -> empty
//   cards     year(2) issued_on(4) pseudonym(32) scheme(1)     -> records::CardIndex
//   payouts   'Y' year(2) run(8) pseudonym(32) scheme(1)       -> records::Payout
//             'R' run(8) year(2) pseudonym(32) scheme(1)       -> records::Payout
//             'P' pseudonym(32) year(2) run(8) scheme(1)       -> records::Payout
//   audit     pseudonym(32) ~time(8) seq(8)                    -> records::Lookup
//   providers 'P' provider                                     -> records::Provider
//             'E' plen(1) provider year(2) entry key           -> empty (the provider's or
//                                                                 practice's entries)
//   meta      name                                             -> value
#ifndef FRIKORT_STORAGE_KEYS_H_
#define FRIKORT_STORAGE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/types.h"

namespace frikort::storage::keys {

inline void PutU8(std::string* s, uint8_t v) { s->push_back(static_cast<char>(v)); }
inline void PutU16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v));
}
inline void PutU32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutI64(std::string* s, int64_t v) {
  PutU64(s, static_cast<uint64_t>(v) ^ (uint64_t{1} << 63));
}
inline void PutI32(std::string* s, int32_t v) {
  PutU32(s, static_cast<uint32_t>(v) ^ (uint32_t{1} << 31));
}
inline uint64_t GetU(absl::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}
inline int64_t GetI64(absl::string_view s, size_t pos) {
  return static_cast<int64_t>(GetU(s, pos, 8) ^ (uint64_t{1} << 63));
}
inline int32_t GetI32(absl::string_view s, size_t pos) {
  return static_cast<int32_t>(static_cast<uint32_t>(GetU(s, pos, 4)) ^ (uint32_t{1} << 31));
}

inline std::string PersonYear(absl::string_view pseudonym, int year) {
  std::string k(pseudonym.data(), pseudonym.size());
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}

inline std::string Entry(absl::string_view pseudonym, int year, int64_t service_us,
                         absl::string_view provider, absl::string_view report_id) {
  std::string k = PersonYear(pseudonym, year);
  PutI64(&k, service_us);
  PutU8(&k, static_cast<uint8_t>(provider.size()));
  k.append(provider.data(), provider.size());
  k.append(report_id.data(), report_id.size());
  return k;
}

inline std::string Report(absl::string_view provider, absl::string_view report_id) {
  std::string k;
  PutU8(&k, static_cast<uint8_t>(provider.size()));
  k.append(provider.data(), provider.size());
  k.append(report_id.data(), report_id.size());
  return k;
}

inline std::string Ledger(absl::string_view pseudonym, int year, core::Scheme scheme) {
  std::string k = PersonYear(pseudonym, year);
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}

inline std::string Due(int year, absl::string_view pseudonym, core::Scheme scheme) {
  std::string k;
  PutU16(&k, static_cast<uint16_t>(year));
  k.append(pseudonym.data(), pseudonym.size());
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}
inline constexpr size_t kDueKeySize = 2 + 32 + 1;

inline std::string CardPrefix(int year) {
  std::string k;
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}
inline std::string CardPrefix(int year, int64_t issued_day) {
  std::string k = CardPrefix(year);
  PutI32(&k, static_cast<int32_t>(issued_day));
  return k;
}
inline std::string Card(int year, int64_t issued_day, absl::string_view pseudonym,
                        core::Scheme scheme) {
  std::string k = CardPrefix(year, issued_day);
  k.append(pseudonym.data(), pseudonym.size());
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}

inline std::string PayoutByYearPrefix(int year) {
  std::string k = "Y";
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}
inline std::string PayoutByYear(int year, uint64_t run, absl::string_view pseudonym,
                                core::Scheme scheme) {
  std::string k = PayoutByYearPrefix(year);
  PutU64(&k, run);
  k.append(pseudonym.data(), pseudonym.size());
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}
inline std::string PayoutByRunPrefix(uint64_t run) {
  std::string k = "R";
  PutU64(&k, run);
  return k;
}
inline std::string PayoutByRunPrefix(uint64_t run, int year) {
  std::string k = PayoutByRunPrefix(run);
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}
inline std::string PayoutByRun(uint64_t run, int year, absl::string_view pseudonym,
                               core::Scheme scheme) {
  std::string k = PayoutByRunPrefix(run, year);
  k.append(pseudonym.data(), pseudonym.size());
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}

// A person's payouts of a year, in run order (the person's own view).
inline std::string PayoutByPersonPrefix(absl::string_view pseudonym, int year) {
  std::string k = "P";
  k.append(pseudonym.data(), pseudonym.size());
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}
inline std::string PayoutByPerson(absl::string_view pseudonym, int year, uint64_t run,
                                  core::Scheme scheme) {
  std::string k = PayoutByPersonPrefix(pseudonym, year);
  PutU64(&k, run);
  PutU8(&k, static_cast<uint8_t>(scheme));
  return k;
}

inline std::string Audit(absl::string_view pseudonym, int64_t time_us, uint64_t seq) {
  std::string k(pseudonym.data(), pseudonym.size());
  PutU64(&k, ~static_cast<uint64_t>(time_us));
  PutU64(&k, seq);
  return k;
}

inline std::string ProviderRecord(absl::string_view provider) {
  std::string k = "P";
  k.append(provider.data(), provider.size());
  return k;
}
inline constexpr char kProviderRecordPrefix[] = "P";
inline std::string ProviderEntriesPrefix(absl::string_view provider, int year) {
  std::string k = "E";
  PutU8(&k, static_cast<uint8_t>(provider.size()));
  k.append(provider.data(), provider.size());
  PutU16(&k, static_cast<uint16_t>(year));
  return k;
}
inline std::string ProviderEntry(absl::string_view provider, int year,
                                 absl::string_view entry_key) {
  std::string k = ProviderEntriesPrefix(provider, year);
  k.append(entry_key.data(), entry_key.size());
  return k;
}

// The smallest key greater than every key starting with `prefix` (empty if
// none exists, i.e. the prefix is all 0xff).
inline std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(prefix.back());
    if (c != 0xff) {
      ++c;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

}  // namespace frikort::storage::keys

#endif  // FRIKORT_STORAGE_KEYS_H_
