// The register's provider registry: PutProvider (store, then re-evaluate in
// chunks on the writer), GetProvider and ListProviders (reads of the
// committed state).
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "storage/keys.h"
#include "storage/register_impl.h"

namespace frikort::storage::internal {
namespace {

// The marker of a re-evaluation not yet finished: written in the same commit
// as the provider record, deleted after the last chunk. Its value is
// "<provider id>:<year>,<year>...".
constexpr absl::string_view kReevaluationPrefix = "reevaluate/";

absl::Status ParseProvider(absl::string_view value, rec::Provider* p) {
  if (!p->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("damaged record in ", TableName(Table::kProviders)));
  }
  return absl::OkStatus();
}

}  // namespace

void RegisterImpl::EnqueueApply(size_t weight, absl::AnyInvocable<void(Records&)> apply,
                                absl::AnyInvocable<void(absl::Status) &&> done) {
  Op op;
  op.weight = std::max<size_t>(1, weight);
  op.apply = [apply = std::move(apply)](Overlay& o) mutable {
    Records r(o);
    apply(r);
  };
  op.complete = std::move(done);
  pipeline_->Enqueue(std::move(op));
}

std::shared_ptr<PendingApply> RegisterImpl::Enqueue(size_t weight,
                                                    absl::AnyInvocable<void(Records&)> apply) {
  auto pending = std::make_shared<PendingApply>();
  EnqueueApply(weight, std::move(apply), [pending](absl::Status s) {
    pending->status = std::move(s);
    pending->done.Notify();
  });
  return pending;
}

absl::StatusOr<ProviderChange> RegisterImpl::PutProvider(const core::ProviderInput& in) {
  if (absl::Status s = pipeline_->status(); !s.ok()) return s;
  absl::StatusOr<core::ProviderRecord> record = core::ValidateProvider(in, rules_);
  if (!record.ok()) return record.status();
  auto change = std::make_shared<ProviderChange>();
  change->provider = *record;
  auto years = std::make_shared<std::vector<int>>();
  const std::string marker =
      absl::StrCat(kReevaluationPrefix, absl::ToUnixMicros(clock_.Now()), "-", ++reevaluation_seq_);
  auto stored = Enqueue(1, [this, years, marker, p = *record](Records& r) {
    *years = machine_.ApplyPutProvider(r, p);
    if (!years->empty()) {
      r.overlay().Put(Table::kMeta, marker, absl::StrCat(p.id, ":", absl::StrJoin(*years, ",")));
    }
  });
  stored->done.WaitForNotification();
  if (!stored->status.ok()) return stored->status;
  if (years->empty()) return *change;
  if (absl::Status s = ReevaluateYears(record->id, *years, change); !s.ok()) return s;
  auto cleared = Enqueue(1, [marker](Records& r) { r.overlay().Delete(Table::kMeta, marker); });
  cleared->done.WaitForNotification();
  if (!cleared->status.ok()) return cleared->status;
  return *change;
}

absl::Status RegisterImpl::ReevaluateYears(const std::string& provider_id,
                                           const std::vector<int>& years,
                                           std::shared_ptr<ProviderChange> change) {
  // Each chunk ends where a person's entries end, so a person's entries of a
  // year are decided again together. The next chunk is read while the one
  // before is applied; entries reported meanwhile were decided under the new
  // record already.
  std::shared_ptr<PendingApply> in_flight;
  for (int year : years) {
    const std::string prefix = keys::ProviderEntriesPrefix(provider_id, year);
    ScanRange range;
    range.prefix = prefix;
    bool more = true;
    while (more) {
      std::vector<EntryKey> chunk;
      std::string next;
      absl::Status s =
          store_->Scan(Table::kProviders, range, [&](absl::string_view key, absl::string_view) {
            const absl::string_view entry_key = key.substr(prefix.size());
            if (chunk.size() >= StateMachine::kReevaluateChunk &&
                EntryOwner(entry_key) != EntryOwner(chunk.back())) {
              next.assign(key.data(), key.size());
              return false;
            }
            chunk.emplace_back(entry_key);
            return true;
          });
      if (!s.ok()) return s;
      more = !next.empty();
      range.start = std::move(next);
      if (in_flight != nullptr) {
        in_flight->done.WaitForNotification();
        if (!in_flight->status.ok()) return in_flight->status;
        in_flight.reset();
      }
      if (chunk.empty()) continue;
      const size_t weight = chunk.size();
      in_flight = Enqueue(weight, [this, change, chunk = std::move(chunk)](Records& r) {
        machine_.ApplyReevaluate(r, chunk, change.get());
      });
    }
  }
  if (in_flight != nullptr) {
    in_flight->done.WaitForNotification();
    return in_flight->status;
  }
  return absl::OkStatus();
}

absl::Status RegisterImpl::ResumeReevaluations() {
  std::vector<std::pair<std::string, std::string>> markers;
  ScanRange range;
  range.prefix = std::string(kReevaluationPrefix);
  absl::Status s = store_->Scan(Table::kMeta, range, [&](absl::string_view k, absl::string_view v) {
    markers.emplace_back(std::string(k), std::string(v));
    return true;
  });
  if (!s.ok()) return s;
  for (const auto& [key, value] : markers) {
    const std::string marker = key;  // a lambda below captures it
    std::vector<absl::string_view> parts = absl::StrSplit(value, absl::MaxSplits(':', 1));
    std::vector<int> years;
    bool ok = parts.size() == 2 && core::ValidateProviderId(parts[0]).ok();
    for (absl::string_view y : absl::StrSplit(parts.size() == 2 ? parts[1] : "", ',')) {
      int year = 0;
      ok = ok && absl::SimpleAtoi(y, &year);
      years.push_back(year);
    }
    if (!ok) {
      return absl::DataLossError("a damaged re-evaluation marker in the register's meta table");
    }
    auto change = std::make_shared<ProviderChange>();
    if (s = ReevaluateYears(std::string(parts[0]), years, change); !s.ok()) return s;
    auto cleared = Enqueue(1, [marker](Records& r) { r.overlay().Delete(Table::kMeta, marker); });
    cleared->done.WaitForNotification();
    if (!cleared->status.ok()) return cleared->status;
  }
  return absl::OkStatus();
}

absl::StatusOr<core::ProviderRecord> RegisterImpl::GetProvider(absl::string_view provider_id) {
  if (absl::Status s = pipeline_->status(); !s.ok()) return s;
  if (absl::Status s = core::ValidateProviderId(provider_id); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> value =
      store_->Get(Table::kProviders, keys::ProviderRecord(provider_id));
  if (!value.ok()) return value.status();
  if (!value->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("provider_id: the registry has no provider ", provider_id));
  }
  rec::Provider p;
  if (absl::Status s = ParseProvider(**value, &p); !s.ok()) return s;
  return FromProviderRecord(p);
}

absl::StatusOr<Page<core::ProviderRecord>> RegisterImpl::ListProviders(
    std::optional<absl::CivilDay> in_force_on, int page_size, absl::string_view page_token) {
  if (absl::Status s = pipeline_->status(); !s.ok()) return s;
  Page<core::ProviderRecord> page;
  absl::StatusOr<std::string> token =
      ScanPage(Table::kProviders, keys::kProviderRecordPrefix, page_token, page_size,
               [&](absl::string_view, absl::string_view value) {
                 rec::Provider p;
                 if (absl::Status s = ParseProvider(value, &p); !s.ok()) return s;
                 core::ProviderRecord record = FromProviderRecord(p);
                 if (!in_force_on.has_value() || core::InForce(record.agreements, *in_force_on)) {
                   page.items.push_back(std::move(record));
                 }
                 return absl::OkStatus();
               });
  if (!token.ok()) return token.status();
  page.next_page_token = *std::move(token);
  return page;
}

}  // namespace frikort::storage::internal
