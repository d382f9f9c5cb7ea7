// frikortd --copy_register: moves the register in --data_dir (RocksDB) into
// the empty PostgreSQL database of --postgres_dsn (storage/copy_register.h),
// verifies the copy and prints what it copied.
#ifndef FRIKORT_SERVER_COPY_COMMAND_H_
#define FRIKORT_SERVER_COPY_COMMAND_H_

#include <cstdio>

#include "server/daemon.h"

namespace frikort::server {

// Copies, verifies and prints to `out` one line of rows per table and the
// verification's summary. Returns the exit code: kExitOk, kExitViolations
// when the copy verifies with violations, kExitBadFlags without
// --store=postgres, kExitStartupFailed (one line on stderr) when refused or
// failed.
int CopyRegisterCommand(const DaemonOptions& options, std::FILE* out);

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_COPY_COMMAND_H_
