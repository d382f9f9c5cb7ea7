// A Patroni cluster of the tests' own on loopback: one etcd member and three
// Patroni nodes, each with its own PostgreSQL 15 data folder, port and REST
// API port, all in one temporary folder and on free ports (never the
// machine's own etcd or PostgreSQL services). Synchronous mode is strict (a
// commit returns only once a standby has it) and the timings are short (ttl
// 10 s, loop_wait 1 s, retry_timeout 4 s) so a failover takes seconds.
//
// etcd, Patroni and PostgreSQL run as the user PgServer runs its servers as
// (`postgres` when the tests run as root). Start() returns once a leader and
// a synchronous standby answer on the REST API and the database `frikort`
// (owned by the role `frikort`, trust authentication on loopback) exists.
// KillLeader() is the loss of the leader's machine: kill -9 of its Patroni
// and of its postmaster with every child. The destructor kills what is left
// and removes the folder, also when a test failed half-way.
#ifndef FRIKORT_TESTS_TESTING_PATRONI_CLUSTER_H_
#define FRIKORT_TESTS_TESTING_PATRONI_CLUSTER_H_

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/pg_server.h"

namespace frikort::testing {

class PatroniCluster {
 public:
  static constexpr int kNodes = 3;

  static absl::StatusOr<std::unique_ptr<PatroniCluster>> Start() {
    std::unique_ptr<PatroniCluster> c(new PatroniCluster());
    if (absl::Status s = c->Init(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), "\n", c->Logs()));
    }
    return c;
  }

  ~PatroniCluster() {
    for (int i = 0; i < kNodes; ++i) KillNode(i);
    Reap(&etcd_pid_);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // The register's connection string: every node, the writable one chosen.
  std::string Dsn() const {
    std::vector<std::string> hosts(kNodes, "127.0.0.1");
    std::vector<int> ports;
    for (const Node& n : nodes_) ports.push_back(n.pg_port);
    return absl::StrCat("host=", absl::StrJoin(hosts, ","), " port=", absl::StrJoin(ports, ","),
                        " user=frikort dbname=frikort target_session_attrs=read-write"
                        " connect_timeout=3");
  }

  // The node that runs as primary holding the leader key (GET /primary
  // answers 200), waiting up to `timeout` for one.
  absl::StatusOr<int> Leader(absl::Duration timeout) const {
    return WaitFor("/primary", -1, timeout);
  }

  // Waits until a node other than `leader` is the synchronous standby.
  absl::Status WaitSyncStandby(int leader, absl::Duration timeout) const {
    return WaitFor("/sync", leader, timeout).status();
  }

  // kill -9 of the leader's Patroni and PostgreSQL (every process of it);
  // the node that was the leader.
  absl::StatusOr<int> KillLeader() {
    absl::StatusOr<int> leader = Leader(absl::Seconds(1));
    if (!leader.ok()) return leader.status();
    KillNode(*leader);
    return *leader;
  }

  // Runs `sql` as the superuser in database `db` on `node`.
  absl::Status Execute(int node, const std::string& db, const std::string& sql) const {
    return PgServer::ExecuteOn(absl::StrCat("host=127.0.0.1 port=", nodes_[node].pg_port,
                                            " user=postgres connect_timeout=5 dbname=", db),
                               sql);
  }

  // The last lines of every log, for a failure message.
  std::string Logs() const {
    std::string out;
    std::vector<std::string> files = {"etcd.log"};
    for (int i = 0; i < kNodes; ++i) files.push_back(absl::StrCat("patroni", i, ".log"));
    for (const std::string& f : files) {
      std::ifstream in(dir_ + "/" + f);
      std::stringstream text;
      text << in.rdbuf();
      std::string s = text.str();
      if (s.size() > 1500) s = s.substr(s.size() - 1500);
      absl::StrAppend(&out, "== ", f, "\n", s, "\n");
    }
    return out;
  }

 private:
  struct Node {
    int pg_port = -1;
    int api_port = -1;
    pid_t patroni_pid = -1;
  };

  PatroniCluster() = default;

  absl::Status Init() {
    if (absl::Status s = PgServer::ServerUser(&uid_, &gid_); !s.ok()) return s;
    char tmpl[] = "/tmp/frikort-patroni-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::UnavailableError("mkdtemp failed");
    dir_ = tmpl;
    if (geteuid() == 0 && chown(dir_.c_str(), uid_, gid_) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot chown ", dir_));
    }
    std::set<int> taken;
    auto port = [&taken]() {
      int p = -1;
      while (p <= 0 || taken.count(p) > 0) p = PgServer::FreePort();
      taken.insert(p);
      return p;
    };
    const int etcd_port = port(), peer_port = port();
    etcd_ = absl::StrCat("127.0.0.1:", etcd_port);
    const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port);
    etcd_pid_ =
        Spawn({"/usr/bin/etcd", "--name=frikort-test", "--data-dir=" + dir_ + "/etcd",
               "--listen-client-urls=http://" + etcd_, "--advertise-client-urls=http://" + etcd_,
               "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
               "--initial-cluster=frikort-test=" + peer},
              "etcd.log");
    if (etcd_pid_ < 0) return absl::UnavailableError("cannot start etcd");
    nodes_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) {
      nodes_[i].pg_port = port();
      nodes_[i].api_port = port();
    }
    for (int i = 0; i < kNodes; ++i) {
      const std::string config = absl::StrCat(dir_, "/patroni", i, ".yml");
      std::ofstream(config) << Config(i);
      if (geteuid() == 0 && chown(config.c_str(), uid_, gid_) != 0) {
        return absl::UnavailableError(absl::StrCat("cannot chown ", config));
      }
      nodes_[i].patroni_pid =
          Spawn({"/usr/bin/patroni", config}, absl::StrCat("patroni", i, ".log"));
      if (nodes_[i].patroni_pid < 0) return absl::UnavailableError("cannot start patroni");
    }
    // Three initdb and base backups on a busy machine: give them time.
    absl::StatusOr<int> leader = Leader(absl::Seconds(120));
    if (!leader.ok()) return leader.status();
    if (absl::Status s = WaitSyncStandby(*leader, absl::Seconds(90)); !s.ok()) return s;
    if (absl::Status s = Execute(*leader, "postgres", "CREATE ROLE frikort LOGIN"); !s.ok()) {
      return s;
    }
    if (absl::Status s = Execute(*leader, "postgres", "CREATE DATABASE frikort OWNER frikort");
        !s.ok()) {
      return s;
    }
    // libpq tries no further host once one refuses the database, so every
    // standby must have replayed it before the multi-host string is used.
    for (int i = 0; i < kNodes; ++i) {
      absl::Status s;
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (!(s = Execute(i, "frikort", "SELECT 1")).ok() && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(100));
      }
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::string Config(int i) const {
    const Node& n = nodes_[i];
    const std::string home = absl::StrCat(dir_, "/node", i);
    return absl::StrCat(
        "scope: frikort-test\nname: node", i,
        "\nlog:\n  level: INFO\n"
        "restapi:\n  listen: 127.0.0.1:",
        n.api_port, "\n  connect_address: 127.0.0.1:", n.api_port, "\netcd3:\n  hosts: ", etcd_,
        "\nbootstrap:\n  dcs:\n    ttl: 10\n    loop_wait: 1\n    retry_timeout: 4\n"
        "    maximum_lag_on_failover: 1048576\n"
        "    synchronous_mode: true\n    synchronous_mode_strict: true\n"
        "    postgresql:\n      use_pg_rewind: true\n      parameters:\n"
        "        wal_log_hints: 'on'\n        max_wal_senders: 10\n"
        "        max_replication_slots: 10\n        max_connections: 100\n"
        "        shared_buffers: 32MB\n"
        // Test data only: no flush to disk. Replication stays synchronous.
        "        fsync: 'off'\n        full_page_writes: 'off'\n"
        "  initdb:\n    - encoding: UTF8\n    - locale: C\n    - auth: trust\n"
        "postgresql:\n  listen: 127.0.0.1:",
        n.pg_port, "\n  connect_address: 127.0.0.1:", n.pg_port, "\n  data_dir: ", home,
        "/data\n  bin_dir: ", PgServer::BinDir(), "\n  pgpass: ", home,
        ".pgpass\n"
        "  parameters:\n    unix_socket_directories: ",
        dir_,
        "\n  authentication:\n    superuser:\n      username: postgres\n"
        "    replication:\n      username: postgres\n"
        "  pg_hba:\n    - local all all trust\n    - host all all 127.0.0.1/32 trust\n"
        "    - host replication all 127.0.0.1/32 trust\n");
  }

  // Starts argv as the servers' user, detached, output to `log` in the
  // folder; its pid, or -1.
  pid_t Spawn(std::vector<std::string> args, const std::string& log) const {
    return PgServer::SpawnAs(uid_, gid_, std::move(args), dir_ + "/" + log, /*detach=*/true);
  }

  // kill -9 of a node's Patroni, then of its postmaster and every child of
  // that (all at once, as when the machine goes).
  void KillNode(int i) {
    Reap(&nodes_[i].patroni_pid);
    std::ifstream in(absl::StrCat(dir_, "/node", i, "/data/postmaster.pid"));
    std::string first;
    int postmaster = 0;
    if (!std::getline(in, first) || !absl::SimpleAtoi(first, &postmaster) || postmaster <= 1) {
      return;
    }
    // (The file outlives a killed postmaster: the pid must still be it.)
    std::ifstream cmdline(absl::StrCat("/proc/", postmaster, "/cmdline"));
    std::string command((std::istreambuf_iterator<char>(cmdline)), {});
    if (command.find(dir_) == std::string::npos) return;
    std::vector<pid_t> group = {postmaster};
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      int pid = 0;
      if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      // pid (comm) state ppid ...: the fields after the last ')'.
      const size_t close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
      int ppid = 0;
      if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) && ppid == postmaster) {
        group.push_back(pid);
      }
    }
    for (pid_t pid : group) kill(pid, SIGKILL);
  }

  // kill -9 of a child of the test and waiting for it.
  static void Reap(pid_t* pid) {
    if (*pid <= 0) return;
    kill(*pid, SIGKILL);
    int status = 0;
    waitpid(*pid, &status, 0);
    *pid = -1;
  }

  // The first node (other than `skip`) whose REST API answers `path` with
  // 200, polled until `timeout`.
  absl::StatusOr<int> WaitFor(const std::string& path, int skip, absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    do {
      for (int i = 0; i < kNodes; ++i) {
        if (i != skip && nodes_[i].patroni_pid > 0 && HttpStatus(nodes_[i].api_port, path) == 200) {
          return i;
        }
      }
      absl::SleepFor(absl::Milliseconds(200));
    } while (absl::Now() < deadline);
    return absl::DeadlineExceededError(absl::StrCat(
        "no Patroni node answered GET ", path, " with 200 within ", absl::FormatDuration(timeout)));
  }

  // The status code of GET `path` on the loopback port, or -1.
  static int HttpStatus(int port, const std::string& path) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    int code = -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string request =
          absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
      char buf[64] = {};
      if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(request.size()) &&
          recv(fd, buf, sizeof buf - 1, MSG_WAITALL) > 12) {
        // "HTTP/1.0 200 OK"
        if (!absl::SimpleAtoi(std::string(buf + 9, 3), &code)) code = -1;
      }
    }
    close(fd);
    return code;
  }

  std::string dir_;
  std::string etcd_;  // host:port of its client URL
  pid_t etcd_pid_ = -1;
  std::vector<Node> nodes_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_PATRONI_CLUSTER_H_
