// frikortctl import: streams the co-payments of a CSV file (ctl/csv.h) to
// frikort.v1.Reporting/StreamCoPayments in batches of options.batch_size,
// a few batches in flight, and reports every row the file or the server
// rejected, by line.
//
// Contract: prints on `out` each rejected row ("line N: ...", in line order)
// and one summary line (rows, accepted, duplicates, rejected and, after a
// failure, not answered); draws a progress bar on `progress` when
// options.progress. Returns kExitOk, kExitRejectedRows when some rows were
// rejected, or kExitFailed with one line in *error (file unreadable, bad
// header, the stream failed: rows not answered may be sent again, duplicates
// are safe).
#ifndef FRIKORT_CTL_IMPORT_H_
#define FRIKORT_CTL_IMPORT_H_

#include <ostream>
#include <string>

#include "ctl/options.h"
#include "frikort/v1/frikort.grpc.pb.h"

namespace frikort::ctl {

int Import(const std::string& path, const Options& options, v1::Reporting::StubInterface* stub,
           std::ostream& out, std::ostream& progress, std::string* error);

}  // namespace frikort::ctl

#endif  // FRIKORT_CTL_IMPORT_H_
