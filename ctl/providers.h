// frikortctl's provider registry commands: `providers import FILE.csv` (one
// row per agreement period, a provider's rows put as one record), `providers
// list` and `provider ID`.
//
// The import's CSV has a header naming the columns provider_id, name,
// valid_from and optionally valid_to and version, in any order. Each
// provider's rows become one PutProvider call; a row that cannot be read, or
// a provider the server refuses, is listed (`line N: provider ID: rejected:
// why`) and never stops the others. Ends with a summary line.
#ifndef FRIKORT_CTL_PROVIDERS_H_
#define FRIKORT_CTL_PROVIDERS_H_

#include <ostream>
#include <string>

#include "ctl/options.h"
#include "frikort/v1/frikort.grpc.pb.h"

namespace frikort::ctl {

// Returns the exit code (kExitRejectedRows when some rows were rejected); a
// failure of the whole import is one line in *error.
int ImportProviders(const std::string& path, const Options& options,
                    v1::Providers::StubInterface* stub, std::ostream& out, std::string* error);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_PROVIDERS_H_
