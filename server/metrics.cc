#include "server/metrics.h"

#include <exception>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/address.h"
#include "frikort/v1/operations.pb.h"
#include "google/protobuf/descriptor.h"
#include "prometheus/collectable.h"
#include "prometheus/gauge.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "server/server.h"

namespace frikort::server {
namespace {

// From 0.5 ms to 10 s: lookups sit at the low end, large batches and issuance
// runs at the high end.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

constexpr absl::string_view kLookupMethod = "/frikort.v1.Lookup/CheckExemption";

// The methods the RPC metrics name ("frikort.v1.Lookup/CheckExemption"): every
// method of the contract's services (read from its descriptors, so a method
// added to the .proto files is named without a change here), and health and
// reflection. Any other path a client sends is counted as "unknown": a label
// per path would let clients grow /metrics without bound and put their own
// text (a national id, say) into it.
const absl::flat_hash_set<std::string>& ContractMethods() {
  static const auto* methods = [] {
    auto* m = new absl::flat_hash_set<std::string>{
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    };
    for (const google::protobuf::FileDescriptor* file :
         {v1::SubmitCoPaymentsRequest::descriptor()->file(),
          v1::BackupRequest::descriptor()->file()}) {
      for (int s = 0; s < file->service_count(); ++s) {
        const google::protobuf::ServiceDescriptor* service = file->service(s);
        for (int i = 0; i < service->method_count(); ++i) {
          m->insert(absl::StrCat(service->full_name(), "/", service->method(i)->name()));
        }
      }
    }
    return m;
  }();
  return *methods;
}

prometheus::MetricFamily Gauge(const char* name, const char* help, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = prometheus::MetricType::Gauge;
  f.metric.emplace_back();
  f.metric.back().gauge.value = value;
  return f;
}

// Times one call from its arrival to its status. (The report outcomes are
// counted by the handlers, which have the answers as messages:
// StreamCoPayments' are bytes here, the method being raw.)
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(Metrics* metrics, absl::string_view method)
      : metrics_(metrics), method_(method), lookup_(method == kLookupMethod), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      metrics_->RecordRpc(absl::string_view(method_).substr(1), code, absl::Now() - start_);
      if (lookup_ && code == grpc::StatusCode::OK) metrics_->RecordLookup();
    }
    methods->Proceed();
  }

 private:
  Metrics* const metrics_;
  const std::string method_;
  const bool lookup_;
  const absl::Time start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    return new MetricsInterceptor(metrics_, method != nullptr && method[0] == '/' ? method : "/?");
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

// The register's gauges, read when scraped.
class Metrics::StorageCollector final : public prometheus::Collectable {
 public:
  explicit StorageCollector(storage::Register* reg) : reg_(reg) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    if (reg_ == nullptr) return {};
    return {
        Gauge("frikort_rocksdb_size_bytes",
              "Approximate size of the register: table files plus memtables.",
              static_cast<double>(reg_->ApproximateSizeBytes())),
        Gauge("frikort_rocksdb_pending_compaction_bytes",
              "Bytes RocksDB estimates compaction still has to rewrite.",
              static_cast<double>(reg_->PendingCompactionBytes())),
        Gauge("frikort_register_healthy",
              "1 while the register serves, 0 after a failed write (fail closed).",
              reg_->Health().ok() ? 1 : 0),
    };
  }

 private:
  storage::Register* const reg_;
};

Metrics::Metrics(storage::Register* reg)
    : registry_(std::make_shared<prometheus::Registry>()),
      storage_(std::make_shared<StorageCollector>(reg)),
      reports_(prometheus::BuildCounter()
                   .Name("frikort_reports_total")
                   .Help("Co-payments answered by SubmitCoPayments and StreamCoPayments, by "
                         "outcome.")
                   .Register(*registry_)),
      accepted_(reports_.Add({{"outcome", "accepted"}})),
      duplicates_(reports_.Add({{"outcome", "duplicate"}})),
      rejected_(reports_.Add({{"outcome", "rejected"}})),
      without_agreement_(prometheus::BuildCounter()
                             .Name("frikort_reports_without_agreement_total")
                             .Help("Co-payments accepted but not counted: neither provider nor "
                                   "practice held an agreement on direct settlement in force.")
                             .Register(*registry_)
                             .Add({})),
      lookups_(prometheus::BuildCounter()
                   .Name("frikort_lookups_total")
                   .Help("CheckExemption lookups answered.")
                   .Register(*registry_)
                   .Add({})),
      cards_issued_(prometheus::BuildCounter()
                        .Name("frikort_cards_issued_total")
                        .Help("Free cards issued by issuance runs (dry runs excluded).")
                        .Register(*registry_)
                        .Add({})),
      payouts_(prometheus::BuildCounter()
                   .Name("frikort_payouts_total")
                   .Help("Refund payouts decided by issuance runs.")
                   .Register(*registry_)
                   .Add({})),
      payout_ore_(prometheus::BuildCounter()
                      .Name("frikort_payout_ore_total")
                      .Help("Sum of refund payouts, in øre.")
                      .Register(*registry_)
                      .Add({})),
      past_deadline_(prometheus::BuildCounter()
                         .Name("frikort_cards_past_deadline_total")
                         .Help("Cards issued more than 21 days after the cap was reached.")
                         .Register(*registry_)
                         .Add({})),
      runs_(prometheus::BuildCounter()
                .Name("frikort_issuance_runs_total")
                .Help("Issuance runs finished (dry runs excluded).")
                .Register(*registry_)
                .Add({})),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("frikort_rpc_duration_seconds")
                        .Help("Time from a call's arrival to its status, by method (a stream: "
                              "its whole life).")
                        .Register(*registry_)),
      rpcs_(prometheus::BuildCounter()
                .Name("frikort_rpcs_total")
                .Help("Calls finished, by method and status code.")
                .Register(*registry_)) {}

Metrics::~Metrics() { StopServing(); }

absl::StatusOr<int> Metrics::Serve(const std::string& listen) {
  if (exposer_ != nullptr) return absl::FailedPreconditionError("metrics: Serve called twice");
  absl::StatusOr<core::HostPort> hp = core::SplitHostPort(listen, "metrics_listen");
  if (!hp.ok()) return hp.status();
  try {
    // civetweb's syntax is the same HOST:PORT / [V6]:PORT; one thread is
    // plenty for a scrape every few seconds.
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot serve on ", listen, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(storage_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) {
    exposer_.reset();
    return absl::UnavailableError(absl::StrCat("metrics_listen: cannot serve on ", listen));
  }
  return ports[0];
}

void Metrics::StopServing() { exposer_.reset(); }

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : storage_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::RecordReportResults(const v1::SubmitCoPaymentsResponse& response) {
  double accepted = 0, duplicates = 0, rejected = 0, without_agreement = 0;
  for (const v1::ReportResult& r : response.results()) {
    switch (r.outcome()) {
      case v1::ACCEPTED:
        ++accepted;
        if (r.not_counted_reason() == v1::NO_DIRECT_SETTLEMENT) ++without_agreement;
        break;
      case v1::DUPLICATE:
        ++duplicates;
        break;
      default:
        ++rejected;
        break;
    }
  }
  if (accepted > 0) accepted_.Increment(accepted);
  if (without_agreement > 0) without_agreement_.Increment(without_agreement);
  if (duplicates > 0) duplicates_.Increment(duplicates);
  if (rejected > 0) rejected_.Increment(rejected);
}

void Metrics::RecordLookup() { lookups_.Increment(); }

void Metrics::RecordRun(const jobs::RunSummary& s) {
  if (s.dry_run) return;
  runs_.Increment();
  cards_issued_.Increment(static_cast<double>(s.cards_issued));
  payouts_.Increment(static_cast<double>(s.payouts));
  payout_ore_.Increment(static_cast<double>(s.payout_total));
  past_deadline_.Increment(static_cast<double>(s.cards_past_deadline));
}

void Metrics::RecordRpc(absl::string_view method, grpc::StatusCode code, absl::Duration took) {
  const std::string m(ContractMethods().contains(method) ? method : kUnknownMethod);
  rpc_duration_.Add({{"method", m}}, LatencyBuckets()).Observe(absl::ToDoubleSeconds(took));
  rpcs_
      .Add({{"method", m}, {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}})
      .Increment();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
Metrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

}  // namespace frikort::server
