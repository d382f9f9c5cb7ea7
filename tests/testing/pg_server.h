// A PostgreSQL 15 server of the tests' own: initdb into a temporary folder,
// started with pg_ctl on a free loopback port (and a socket in that folder),
// trust authentication for the user `frikort`, stopped and removed when the
// fixture goes. PostgreSQL refuses to run as root, so when the tests run as
// root the folder is given to the `postgres` system user (or `nobody`) and
// initdb and pg_ctl run as that user.
//
// The binaries are Debian's postgresql-15 (/usr/lib/postgresql/15/bin), or
// the folder in $FRIKORT_PG_BIN. fsync is off: these servers hold test data
// only, and power loss is not what they test (synchronous_commit stays on).
//
// PgServer::Shared() is the one server of a test binary (started on first
// use); CreateDatabase gives each test an empty database of its own.
#ifndef FRIKORT_TESTS_TESTING_PG_SERVER_H_
#define FRIKORT_TESTS_TESTING_PG_SERVER_H_

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace frikort::testing {

class PgServer {
 public:
  // The server of this test binary, started on first use and stopped at
  // exit. Fails (with initdb's or pg_ctl's output) when it cannot start.
  static absl::StatusOr<PgServer*> Shared() {
    static absl::StatusOr<std::unique_ptr<PgServer>>* server =
        new absl::StatusOr<std::unique_ptr<PgServer>>(Start());
    static const int registered = std::atexit([] {
      if (server->ok()) server->value().reset();
    });
    (void)registered;
    if (!server->ok()) return server->status();
    return server->value().get();
  }

  static absl::StatusOr<std::unique_ptr<PgServer>> Start() {
    std::unique_ptr<PgServer> s(new PgServer());
    if (absl::Status st = s->Init(); !st.ok()) return st;
    return s;
  }

  ~PgServer() {
    if (running_) Stop().IgnoreError();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  int port() const { return port_; }
  // The connection string of database `db`.
  std::string Dsn(const std::string& db) const {
    return absl::StrCat("host=127.0.0.1 port=", port_, " user=frikort dbname=", db,
                        " connect_timeout=5");
  }

  // The database a connection string of Dsn() names.
  static std::string DatabaseOf(const std::string& dsn) {
    const size_t at = dsn.find("dbname=") + 7;
    return dsn.substr(at, dsn.find(' ', at) - at);
  }

  // A new, empty database; its connection string.
  absl::StatusOr<std::string> CreateDatabase() {
    static std::atomic<int> next{0};
    const std::string db = absl::StrCat("frikort_test_", next.fetch_add(1));
    if (absl::Status s = Execute("postgres", absl::StrCat("CREATE DATABASE ", db)); !s.ok()) {
      return s;
    }
    return Dsn(db);
  }

  // Runs `sql` in database `db` (for tests that prepare or damage a register).
  absl::Status Execute(const std::string& db, const std::string& sql) const {
    return ExecuteOn(Dsn(db), sql);
  }

  // Runs `sql` on the database `dsn` names; the first value of its first
  // row, if any, in `*value`.
  static absl::Status ExecuteOn(const std::string& dsn, const std::string& sql,
                                std::string* value = nullptr) {
    PGconn* conn = PQconnectdb(dsn.c_str());
    absl::Status status;
    if (PQstatus(conn) != CONNECTION_OK) {
      status = absl::UnavailableError(PQerrorMessage(conn));
    } else {
      PGresult* res = PQexec(conn, sql.c_str());
      const ExecStatusType st = PQresultStatus(res);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        status = absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn)));
      } else if (value != nullptr && PQntuples(res) > 0 && PQnfields(res) > 0) {
        *value = PQgetvalue(res, 0, 0);
      }
      PQclear(res);
    }
    PQfinish(conn);
    return status;
  }

  // Stops the server at once (no checkpoint, as a crash would) or starts it
  // again on the same port: for tests of a database that goes away.
  absl::Status Stop() {
    running_ = false;
    return Run({PgCtl(), "-D", Data(), "-m", "immediate", "-w", "stop"});
  }
  absl::Status Restart() {
    if (absl::Status s = Run({PgCtl(), "-D", Data(), "-l", dir_ + "/postgres.log", "-w", "-t", "60",
                              "-o", ServerOptions(), "start"});
        !s.ok()) {
      return s;
    }
    running_ = true;
    return absl::OkStatus();
  }

  // The folder of PostgreSQL's programs (initdb, pg_ctl, postgres).
  static std::string BinDir() {
    const char* env = std::getenv("FRIKORT_PG_BIN");
    return env != nullptr && env[0] != '\0' ? env : "/usr/lib/postgresql/15/bin";
  }
  // A port no one listens on now (the kernel's pick for port 0).
  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  // The user the servers run as: the `postgres` system user (or `nobody`)
  // when the tests run as root, else the tests' own.
  static absl::Status ServerUser(uid_t* uid, gid_t* gid) {
    if (geteuid() != 0) {
      *uid = geteuid();
      *gid = getegid();
      return absl::OkStatus();
    }
    const passwd* pw = getpwnam("postgres");
    if (pw == nullptr) pw = getpwnam("nobody");
    if (pw == nullptr) return absl::FailedPreconditionError("no postgres or nobody user");
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return absl::OkStatus();
  }

  // Starts argv as uid/gid when the tests run as root (else as the tests'
  // user), its output in the file `log`; with `detach`, in a session of its
  // own in the root folder (a server the caller stops itself). Its pid, or -1.
  static pid_t SpawnAs(uid_t uid, gid_t gid, std::vector<std::string> args, const std::string& log,
                       bool detach) {
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) return -1;
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const bool drop = geteuid() == 0;
    const pid_t pid = fork();
    if (pid == 0) {  // child: only async-signal-safe calls until exec
      if (detach && (setsid() < 0 || chdir("/") != 0)) _exit(126);
      dup2(out, 1);
      dup2(out, 2);
      if (drop && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
        _exit(126);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out);
    return pid;
  }

 private:
  PgServer() = default;

  std::string PgCtl() const { return BinDir() + "/pg_ctl"; }
  std::string Data() const { return dir_ + "/data"; }
  std::string ServerOptions() const {
    return absl::StrCat("-p ", port_, " -k ", dir_,
                        " -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
                        " -c shared_buffers=32MB -c max_connections=200");
  }

  absl::Status Init() {
    if (absl::Status s = ServerUser(&uid_, &gid_); !s.ok()) return s;
    char tmpl[] = "/tmp/frikort-pg-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::UnavailableError("mkdtemp failed");
    dir_ = tmpl;
    if (geteuid() == 0 && chown(dir_.c_str(), uid_, gid_) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot chown ", dir_));
    }
    port_ = FreePort();
    if (port_ <= 0) return absl::UnavailableError("no free port");
    if (absl::Status s = Run({BinDir() + "/initdb", "-D", Data(), "-U", "frikort", "-A", "trust",
                              "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"});
        !s.ok()) {
      return s;
    }
    return Restart();
  }

  // Runs argv as the server's user, its output in the folder's log; the log
  // is the error when it fails.
  absl::Status Run(std::vector<std::string> args) const {
    const std::string log = dir_ + "/commands.log";
    const pid_t pid = SpawnAs(uid_, gid_, args, log, /*detach=*/false);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
      return absl::UnavailableError(absl::StrCat("cannot run ", args[0]));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return absl::UnavailableError(absl::StrCat(args[0], " failed: ", text.str()));
  }

  std::string dir_;
  int port_ = -1;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool running_ = false;
};

}  // namespace frikort::testing

#endif  // FRIKORT_TESTS_TESTING_PG_SERVER_H_
