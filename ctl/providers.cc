#include "ctl/providers.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/national_id.h"
#include "ctl/csv.h"

namespace frikort::ctl {
namespace {

enum Column { kId, kName, kFrom, kTo, kVersion, kNumColumns };
constexpr const char* kColumnNames[kNumColumns] = {"provider_id", "name", "valid_from", "valid_to",
                                                   "version"};

// One provider's rows, in file order.
struct Group {
  std::vector<int> lines;
  v1::Provider provider;
};

// The provider as a message may name it: the id when it is a provider
// number (a public number), else a description (the text could be anything,
// a national id included).
std::string Named(const std::string& id) {
  return core::ValidateProviderId(id).ok() ? absl::StrCat("provider ", id)
                                           : "provider (not a provider number)";
}

}  // namespace

int ImportProviders(const std::string& path, const Options& options,
                    v1::Providers::StubInterface* stub, std::ostream& out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = absl::StrCat("providers import: cannot read ", path, ": ", std::strerror(errno));
    return kExitFailed;
  }
  std::string line;
  int n = 0;
  int column_of[kNumColumns] = {-1, -1, -1, -1, -1};
  if (!std::getline(in, line)) {
    *error = absl::StrCat("providers import: ", path, ": no header row");
    return kExitFailed;
  }
  ++n;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  absl::StatusOr<std::vector<std::string>> header = SplitCsvRecord(line);
  if (!header.ok()) {
    *error = absl::StrCat("providers import: ", path, ": header: ", header.status().message());
    return kExitFailed;
  }
  for (size_t i = 0; i < header->size(); ++i) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace((*header)[i]));
    for (int c = 0; c < kNumColumns; ++c) {
      if (name == kColumnNames[c]) column_of[c] = static_cast<int>(i);
    }
  }
  for (int c : {kId, kName, kFrom}) {
    if (column_of[c] < 0) {
      *error = absl::StrCat("providers import: ", path, ": header: no column ", kColumnNames[c]);
      return kExitFailed;
    }
  }

  std::vector<std::string> rejected;
  int rows = 0;
  int rejected_rows = 0;
  std::map<std::string, Group> groups;
  std::vector<std::string> order;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    ++rows;
    absl::StatusOr<std::vector<std::string>> fields = SplitCsvRecord(line);
    if (!fields.ok() || fields->size() != header->size()) {
      ++rejected_rows;
      rejected.push_back(absl::StrCat(
          "line ", n, ": rejected: ",
          fields.ok() ? absl::StrCat(fields->size(), " fields, the header has ", header->size())
                      : std::string(fields.status().message())));
      continue;
    }
    auto field = [&](Column c) {
      return column_of[c] < 0 ? std::string()
                              : std::string(absl::StripAsciiWhitespace((*fields)[column_of[c]]));
    };
    const std::string id = field(kId);
    auto [it, added] = groups.try_emplace(id);
    Group& g = it->second;
    if (added) {
      order.push_back(id);
      g.provider.set_provider_id(id);
      g.provider.set_name(field(kName));
    }
    g.lines.push_back(n);
    if (!field(kFrom).empty() || !field(kTo).empty()) {
      v1::Agreement* a = g.provider.add_agreements();
      a->set_valid_from(field(kFrom));
      a->set_valid_to(field(kTo));
      a->set_version(field(kVersion));
    }
  }

  int stored = 0;
  int64_t reevaluated = 0, changed = 0, ledgers = 0, under_review = 0;
  for (const std::string& id : order) {
    const Group& g = groups[id];
    v1::PutProviderRequest request;
    *request.mutable_provider() = g.provider;
    v1::PutProviderResponse response;
    grpc::Status s = stub->PutProvider(CallContext(options, true).get(), request, &response);
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      rejected_rows += static_cast<int>(g.lines.size());
      rejected.push_back(absl::StrCat("line", g.lines.size() > 1 ? "s " : " ",
                                      absl::StrJoin(g.lines, ","), ": ", Named(id),
                                      ": rejected: ", OneLine(s.error_message())));
      continue;
    }
    if (!s.ok()) {
      *error = CallError("providers import", s);
      return kExitFailed;
    }
    ++stored;
    reevaluated += response.entries_reevaluated();
    changed += response.entries_changed();
    ledgers += response.ledgers_changed();
    under_review += response.cards_under_review();
  }
  for (const std::string& r : rejected) out << r << "\n";
  out << path << ": " << rows << " rows, " << order.size() << " providers: " << stored
      << " stored, " << rejected_rows << " rows rejected; " << reevaluated
      << " entries re-evaluated, " << changed << " changed, " << ledgers << " ledgers changed, "
      << under_review << " cards under review\n";
  return rejected_rows > 0 ? kExitRejectedRows : kExitOk;
}

}  // namespace frikort::ctl
