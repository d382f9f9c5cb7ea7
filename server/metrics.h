// Prometheus metrics of frikortd (prometheus-cpp): what the register did
// (reports by outcome, lookups, cards, payouts, cards past the deadline), how
// long each RPC took (a histogram per method of the contract, recorded by a
// gRPC server interceptor so no handler needs a hook; every other path a
// client calls is one "unknown" method), and the state of RocksDB (size,
// pending compaction bytes, health), read from the register at each scrape.
//
// Thread safety: every method may be called from any thread.
#ifndef FRIKORT_SERVER_METRICS_H_
#define FRIKORT_SERVER_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "frikort/v1/frikort.pb.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "jobs/issuance.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "storage/register.h"

namespace frikort::server {

// Every metric family name, for documentation and tests.
inline constexpr const char* kMetricNames[] = {
    "frikort_reports_total",
    "frikort_lookups_total",
    "frikort_cards_issued_total",
    "frikort_payouts_total",
    "frikort_payout_ore_total",
    "frikort_cards_past_deadline_total",
    "frikort_issuance_runs_total",
    "frikort_rpc_duration_seconds",
    "frikort_rpcs_total",
    "frikort_rocksdb_size_bytes",
    "frikort_rocksdb_pending_compaction_bytes",
    "frikort_register_healthy",
    "frikort_reports_without_agreement_total",
};

// The method label of every call to a path outside the contract (and health
// and reflection): unknown paths share one series, whatever a client sends.
inline constexpr char kUnknownMethod[] = "unknown";

class Metrics {
 public:
  // `reg` (not owned, may be null) is read at each scrape; it must outlive
  // the HTTP endpoint (StopServing, or the destructor).
  explicit Metrics(storage::Register* reg);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves GET /metrics on HOST:PORT ([IPV6]:PORT; port 0 picks a free one)
  // and returns the bound port. InvalidArgument for a malformed address,
  // Unavailable when it cannot be bound. Call once.
  absl::StatusOr<int> Serve(const std::string& listen);
  void StopServing();

  // The text exposition format, as GET /metrics answers.
  std::string Render() const;

  // The outcomes of one batch answer (SubmitCoPayments, a StreamCoPayments
  // message), counted by the handler that answers it.
  void RecordReportResults(const v1::SubmitCoPaymentsResponse& response);
  void RecordLookup();
  void RecordRun(const jobs::RunSummary& summary);
  // `method` is "frikort.v1.Lookup/CheckExemption"; one outside the contract
  // is counted as kUnknownMethod.
  void RecordRpc(absl::string_view method, grpc::StatusCode code, absl::Duration took);

  // For grpc::ServerBuilder::experimental().SetInterceptorCreators: times
  // every call and counts reports and lookups from the answers sent.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  class StorageCollector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<StorageCollector> storage_;
  prometheus::Family<prometheus::Counter>& reports_;
  prometheus::Counter& accepted_;
  prometheus::Counter& duplicates_;
  prometheus::Counter& rejected_;
  prometheus::Counter& without_agreement_;
  prometheus::Counter& lookups_;
  prometheus::Counter& cards_issued_;
  prometheus::Counter& payouts_;
  prometheus::Counter& payout_ore_;
  prometheus::Counter& past_deadline_;
  prometheus::Counter& runs_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_METRICS_H_
