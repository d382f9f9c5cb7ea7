// frikort_bench, part "memory": frikortd's peak RSS after a large fill.
#include <sys/wait.h>

#include <csignal>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "tests/bench/bench.h"

namespace frikort::bench {

void Memory(const char* argv0) {
  std::string bin = absl::GetFlag(FLAGS_frikortd);
  if (bin.empty()) bin = (std::filesystem::path(argv0).parent_path() / "frikortd").string();
  const int64_t n = absl::GetFlag(FLAGS_memory_entries);
  TempDir dir("memory");
  const int port = 20000 + getpid() % 20000;
  const std::string listen = absl::StrCat("127.0.0.1:", port);
  pid_t pid = fork();
  if (pid == 0) {
    const std::string data = absl::StrCat("--data_dir=", dir.path.string());
    const std::string l = absl::StrCat("--listen=", listen);
    const std::string rules = absl::StrCat("--rules_file=", absl::GetFlag(FLAGS_rules_file));
    execl(bin.c_str(), bin.c_str(), l.c_str(), data.c_str(), rules.c_str(), "--issuance_interval=0",
          "--block_cache_mb=64", "--write_buffer_mb=32", nullptr);
    _exit(127);
  }
  auto channel = grpc::CreateChannel(listen, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(20)))) {
    kill(pid, SIGKILL);
    Stack::Die(absl::UnavailableError("frikortd did not start"));
  }
  std::printf("memory: frikortd --block_cache_mb=64 --write_buffer_mb=32, %lld entries\n",
              static_cast<long long>(n));
  const auto persons = MakeIds(std::max<int64_t>(1, n / 5));
  auto stub = v1::Reporting::NewStub(channel);
  double secs = TimedParallel(2, n, [&](int, int64_t lo, int64_t hi) {
    grpc::ClientContext ctx;
    auto rw = stub->StreamCoPayments(&ctx);
    std::thread reader([&] {
      v1::SubmitCoPaymentsResponse resp;
      while (rw->Read(&resp)) {
      }
    });
    for (int64_t b = lo; b < hi; b += 1000) {
      v1::SubmitCoPaymentsRequest req;
      for (int64_t i = b; i < std::min<int64_t>(hi, b + 1000); ++i) {
        *req.add_co_payments() = MakeCoPayment(persons[i % persons.size()], i, 100);
      }
      rw->Write(req);
    }
    rw->WritesDone();
    reader.join();
    rw->Finish();
  });
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line, hwm = "?", rss = "?";
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmHWM:")) hwm = line.substr(6);
    if (absl::StartsWith(line, "VmRSS:")) rss = line.substr(6);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  PrintRow("fill rate (StreamCoPayments, 2 streams)", n / secs, "reports/s");
  std::printf("  frikortd peak RSS (VmHWM): %s; RSS at end: %s\n",
              std::string(absl::StripAsciiWhitespace(hwm)).c_str(),
              std::string(absl::StripAsciiWhitespace(rss)).c_str());
}

}  // namespace frikort::bench
