// The files in deploy/ checked with the validators Debian has: systemd-analyze
// verify for the unit, Patroni's --validate-config and etcd's flag list for
// the Patroni example, YAML and JSON parsers for the Kubernetes, Envoy,
// Prometheus and Grafana files (Envoy itself is not packaged), and what each
// file must say: the Envoy transcoder's services exist in the descriptor set
// the build makes, every metric a dashboard or alert uses is one frikortd
// exports, and the container's runtime packages cover the binaries' libraries.
// The validators are in deploy/debian-packages.txt: a missing one fails.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "server/authz.h"
#include "server/metrics.h"
#include "tests/e2e/daemon.h"
#include "tests/server/test_util.h"

namespace frikort::testutil {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

struct CommandResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` with sh; the words in it are the test's own, never input.
CommandResult Shell(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Deploy(const std::string& path) { return absl::StrCat(SourceDir(), "/deploy/", path); }

// Debian's python3 with python3-yaml (not whatever python3 is first on PATH).
constexpr char kPython[] = "/usr/bin/python3";

// Every YAML document in `path`, as protobuf Values (through JSON).
std::vector<Value> LoadYaml(const std::string& path) {
  CommandResult r = Shell(
      absl::StrCat(kPython,
                   " -c 'import json, sys, yaml; "
                   "print(json.dumps({\"docs\": list(yaml.safe_load_all(open(sys.argv[1])))}))' ",
                   path));
  EXPECT_EQ(r.code, 0) << path << ": " << r.output;
  Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.output, &parsed).ok()) << r.output;
  std::vector<Value> docs;
  for (const Value& v : parsed.fields().at("docs").list_value().values()) docs.push_back(v);
  return docs;
}

// The value at a path of keys ("a.b.c"); a null Value if absent.
Value At(const Value& root, absl::string_view path) {
  Value v = root;
  for (absl::string_view key : absl::StrSplit(path, '.')) {
    if (!v.has_struct_value()) return Value();
    auto it = v.struct_value().fields().find(std::string(key));
    if (it == v.struct_value().fields().end()) return Value();
    Value next = it->second;  // (a copy: it points into v)
    v = std::move(next);
  }
  return v;
}

// The elements of the list at `path` (copies; empty if absent).
std::vector<Value> List(const Value& root, absl::string_view path) {
  Value list = At(root, path);
  return std::vector<Value>(list.list_value().values().begin(), list.list_value().values().end());
}

// Every value (recursively) in `v` that is a string.
void Strings(const Value& v, std::vector<std::string>* out) {
  if (v.has_string_value()) out->push_back(v.string_value());
  if (v.has_list_value()) {
    for (const Value& e : v.list_value().values()) Strings(e, out);
  }
  if (v.has_struct_value()) {
    for (const auto& [k, e] : v.struct_value().fields()) Strings(e, out);
  }
}

// The frikort_* metric names a PromQL expression uses (histogram series
// suffixes removed).
std::set<std::string> MetricsIn(const std::string& expr) {
  std::set<std::string> names;
  static const std::regex kName("frikort_[a-z_]+");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName);
       it != std::sregex_iterator(); ++it) {
    std::string name = it->str();
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      if (absl::EndsWith(name, suffix) && absl::EndsWith(name, "_seconds" + std::string(suffix))) {
        name.resize(name.size() - std::strlen(suffix));
      }
    }
    names.insert(name);
  }
  return names;
}

void ExpectKnownMetrics(const std::string& expr, const std::string& where) {
  const std::set<std::string> known(std::begin(server::kMetricNames),
                                    std::end(server::kMetricNames));
  for (const std::string& name : MetricsIn(expr)) {
    EXPECT_TRUE(known.count(name) > 0) << where << ": unknown metric " << name << " in " << expr;
  }
}

// The example roles are a file frikortd accepts.
void ExpectAuthzConfigMap(const Value& configmap) {
  const Value data = At(configmap, "data");
  auto file = data.struct_value().fields().find("authz.txt");
  ASSERT_NE(file, data.struct_value().fields().end());
  absl::StatusOr<server::AuthzTable> table = server::AuthzTable::Parse(file->second.string_value());
  EXPECT_TRUE(table.ok()) << table.status();
}

// The flags given to frikortd are flags it has (each appears in its --help).
void ExpectFrikortdFlags(const Value& container) {
  CommandResult help = Shell(absl::StrCat(FrikortdPath(), " --helpfull"));
  std::vector<std::string> args;
  Strings(At(container, "args"), &args);
  ASSERT_FALSE(args.empty());
  for (const std::string& a : args) {
    const std::string name(absl::StripPrefix(a.substr(0, a.find('=')), "--"));
    EXPECT_THAT(help.output, HasSubstr(absl::StrCat("-", name, " ("))) << a;
  }
}

TEST(DeployTest, SystemdUnitVerifies) {
  ASSERT_TRUE(fs::exists("/usr/bin/systemd-analyze"))
      << "systemd-analyze is missing: deploy/install.sh installs it (package systemd)";
  std::ifstream in(Deploy("systemd/frikortd.service"));
  std::stringstream unit;
  unit << in.rdbuf();
  // systemd-analyze checks that ExecStart's binary exists: point it at the
  // one just built (the installed path is /usr/bin/frikortd).
  ASSERT_THAT(unit.str(), HasSubstr("ExecStart=/usr/bin/frikortd "));
  const std::string dir = MakeTempDir("frikort-unit-");
  const std::string path = dir + "/frikortd.service";
  std::ofstream(path) << absl::StrReplaceAll(
      unit.str(),
      {{"ExecStart=/usr/bin/frikortd ", absl::StrCat("ExecStart=", FrikortdPath(), " ")}});
  CommandResult r = Shell(absl::StrCat("SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ", path));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "") << "warnings from systemd-analyze verify";
  for (const char* hardening :
       {"DynamicUser=yes", "NoNewPrivileges=yes", "StateDirectory=frikort", "ProtectSystem=strict",
        "CapabilityBoundingSet=\n", "LoadCredential=pseudonym.key:"}) {
    EXPECT_THAT(unit.str(), HasSubstr(hardening));
  }
  fs::remove_all(dir);
}

TEST(DeployTest, KubernetesManifests) {
  std::vector<Value> docs = LoadYaml(Deploy("kubernetes/frikort.yaml"));
  std::vector<std::string> kinds;
  const Value* sts = nullptr;
  const Value* authz = nullptr;
  for (const Value& d : docs) {
    kinds.push_back(At(d, "kind").string_value());
    if (At(d, "kind").string_value() == "StatefulSet") sts = &d;
    if (At(d, "kind").string_value() == "ConfigMap") authz = &d;
  }
  EXPECT_THAT(kinds, UnorderedElementsAre("ConfigMap", "Service", "Service", "StatefulSet"));
  ASSERT_NE(authz, nullptr);
  ExpectAuthzConfigMap(*authz);
  ASSERT_NE(sts, nullptr);
  EXPECT_EQ(At(*sts, "spec.replicas").number_value(), 1);
  EXPECT_EQ(List(*sts, "spec.volumeClaimTemplates").size(), 1u);
  EXPECT_TRUE(At(*sts, "spec.template.spec.securityContext.runAsNonRoot").bool_value());
  const std::vector<Value> containers = List(*sts, "spec.template.spec.containers");
  ASSERT_FALSE(containers.empty());
  const Value& container = containers[0];
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    std::vector<std::string> command;
    Strings(At(container, absl::StrCat(probe, ".exec.command")), &command);
    ASSERT_FALSE(command.empty()) << probe;
    EXPECT_EQ(command.front(), "/usr/bin/frikortctl") << probe;
    EXPECT_EQ(command.back(), "health") << probe;
  }
  std::vector<std::string> secrets;
  for (const Value& v : List(*sts, "spec.template.spec.volumes")) {
    if (At(v, "secret.secretName").has_string_value()) {
      secrets.push_back(At(v, "secret.secretName").string_value());
    }
  }
  EXPECT_THAT(secrets,
              UnorderedElementsAre("frikort-tls", "frikort-probe-tls", "frikort-pseudonym-key"));
  ExpectFrikortdFlags(container);
}

// The variant with the register in PostgreSQL: two replicas (on different
// nodes) against every database machine, no volume, the key and the
// database password from Secrets, and only readiness asking for SERVING (a
// standby answers NOT_SERVING and must not be restarted for it).
TEST(DeployTest, KubernetesPostgresVariant) {
  std::vector<Value> docs = LoadYaml(Deploy("kubernetes/frikort-postgres.yaml"));
  std::map<std::string, Value> by_kind;
  for (const Value& d : docs) by_kind[At(d, "kind").string_value()] = d;
  ASSERT_EQ(docs.size(), by_kind.size());
  ASSERT_EQ(by_kind.size(), 4u);
  ExpectAuthzConfigMap(by_kind["ConfigMap"]);
  ASSERT_EQ(by_kind.count("Service"), 1u);
  EXPECT_EQ(At(by_kind["PodDisruptionBudget"], "spec.maxUnavailable").number_value(), 1);
  const Value& deployment = by_kind["Deployment"];
  EXPECT_EQ(At(deployment, "spec.replicas").number_value(), 2);
  EXPECT_EQ(At(deployment,
               "spec.template.spec.affinity.podAntiAffinity."
               "requiredDuringSchedulingIgnoredDuringExecution")
                .list_value()
                .values_size(),
            1);
  EXPECT_TRUE(At(deployment, "spec.template.spec.securityContext.runAsNonRoot").bool_value());
  const std::vector<Value> containers = List(deployment, "spec.template.spec.containers");
  ASSERT_EQ(containers.size(), 1u);
  const Value& container = containers[0];
  ExpectFrikortdFlags(container);
  std::map<std::string, std::string> flags;
  std::vector<std::string> args;
  Strings(At(container, "args"), &args);
  for (const std::string& a : args) {
    const size_t eq = a.find('=');
    flags[a.substr(0, eq)] = eq == std::string::npos ? "" : a.substr(eq + 1);
  }
  EXPECT_EQ(flags["--store"], "postgres");
  EXPECT_EQ(flags.count("--data_dir"), 0u);
  const std::string dsn = flags["--postgres_dsn"];
  EXPECT_THAT(dsn, HasSubstr("target_session_attrs=read-write"));
  std::string hosts = dsn.substr(dsn.find("host=") + 5);
  hosts = hosts.substr(0, hosts.find(' '));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(hosts, ',')).size(), 3u) << dsn;
  EXPECT_THAT(dsn, Not(HasSubstr("password"))) << "the password belongs in a Secret";
  // The key file is in the mount of the key's Secret.
  std::map<std::string, std::string> secret_of_volume;
  for (const Value& v : List(deployment, "spec.template.spec.volumes")) {
    secret_of_volume[At(v, "name").string_value()] = At(v, "secret.secretName").string_value();
  }
  std::string key_mount;
  for (const Value& m : List(container, "volumeMounts")) {
    if (secret_of_volume[At(m, "name").string_value()] == "frikort-pseudonym-key") {
      key_mount = At(m, "mountPath").string_value();
    }
  }
  ASSERT_FALSE(key_mount.empty());
  EXPECT_THAT(flags["--pseudonym_key_file"], ::testing::StartsWith(key_mount + "/"));
  std::map<std::string, std::string> env_secrets;
  for (const Value& e : List(container, "env")) {
    env_secrets[At(e, "name").string_value()] = At(e, "valueFrom.secretKeyRef.name").string_value();
  }
  EXPECT_EQ(env_secrets["PGPASSWORD"], "frikort-postgres");
  std::vector<std::string> readiness;
  Strings(At(container, "readinessProbe.exec.command"), &readiness);
  ASSERT_FALSE(readiness.empty());
  EXPECT_EQ(readiness.front(), "/usr/bin/frikortctl");
  EXPECT_EQ(readiness.back(), "health");
  for (const char* probe : {"startupProbe", "livenessProbe"}) {
    EXPECT_FALSE(At(container, absl::StrCat(probe, ".exec")).has_struct_value())
        << probe << " would restart the standby, which is NOT_SERVING by design";
    EXPECT_EQ(At(container, absl::StrCat(probe, ".tcpSocket.port")).string_value(), "grpc");
  }
}

// KEY=VALUE lines (no comments, no blanks) of an environment file.
std::map<std::string, std::string> EnvFile(const std::string& path) {
  std::ifstream in(path);
  std::map<std::string, std::string> vars;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    EXPECT_NE(eq, std::string::npos) << line;
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return vars;
}

// The Patroni example: strict synchronous mode over a three-member etcd,
// timings Patroni accepts, a bootstrap script that is there and parses, and
// Patroni's own validator finding nothing but that the example's machines
// are not this one (they are moved onto loopback, where nothing listens).
TEST(DeployTest, PatroniExample) {
  const std::string config = Deploy("patroni/patroni.yml");
  std::vector<Value> docs = LoadYaml(config);
  ASSERT_EQ(docs.size(), 1u);
  const Value& p = docs[0];
  const Value dcs = At(p, "bootstrap.dcs");
  EXPECT_TRUE(At(dcs, "synchronous_mode").bool_value());
  EXPECT_TRUE(At(dcs, "synchronous_mode_strict").bool_value());
  EXPECT_GE(At(dcs, "ttl").number_value(),
            At(dcs, "loop_wait").number_value() + 2 * At(dcs, "retry_timeout").number_value());
  EXPECT_EQ(At(dcs, "postgresql.parameters.synchronous_commit").string_value(), "on");
  const std::vector<std::string> etcd_hosts =
      absl::StrSplit(At(p, "etcd3.hosts").string_value(), ',');
  EXPECT_EQ(etcd_hosts.size(), 3u);

  const std::string script = At(p, "bootstrap.post_bootstrap").string_value();
  const std::string local_script = Deploy("patroni/" + fs::path(script).filename().string());
  ASSERT_TRUE(fs::exists(local_script)) << script;
  EXPECT_TRUE((fs::status(local_script).permissions() & fs::perms::owner_exec) != fs::perms::none);
  CommandResult sh = Shell(absl::StrCat("sh -n ", local_script));
  EXPECT_EQ(sh.code, 0) << sh.output;

  ASSERT_TRUE(fs::exists("/usr/bin/patroni")) << "patroni is missing (deploy/debian-packages.txt)";
  const std::string dir = MakeTempDir("frikort-patroni-");
  CommandResult moved =
      Shell(absl::StrCat("sed 's/10\\.0\\.0\\./127.0.0./g' ", config, " > ", dir, "/patroni.yml"));
  ASSERT_EQ(moved.code, 0) << moved.output;
  CommandResult validated = Shell(absl::StrCat("patroni --validate-config ", dir, "/patroni.yml"));
  for (absl::string_view line : absl::StrSplit(validated.output, '\n', absl::SkipEmpty())) {
    EXPECT_THAT(std::string(line), HasSubstr("is not reachable")) << validated.output;
  }
  fs::remove_all(dir);

  // etcd: every variable is one of its flags, and its three members are the
  // machines Patroni is given.
  ASSERT_TRUE(fs::exists("/usr/bin/etcd")) << "etcd is missing (deploy/debian-packages.txt)";
  const std::map<std::string, std::string> env = EnvFile(Deploy("patroni/etcd.env"));
  CommandResult help = Shell("/usr/bin/etcd --help");
  for (const auto& [name, value] : env) {
    ASSERT_TRUE(absl::StartsWith(name, "ETCD_")) << name;
    std::string flag = absl::AsciiStrToLower(name.substr(5));
    absl::StrReplaceAll({{"_", "-"}}, &flag);
    EXPECT_THAT(help.output, HasSubstr(absl::StrCat("--", flag, " "))) << name;
  }
  std::set<std::string> members, clients;
  for (absl::string_view member : absl::StrSplit(env.at("ETCD_INITIAL_CLUSTER"), ',')) {
    members.insert(std::string(member.substr(0, member.find('='))));
    std::string host(member.substr(member.find("//") + 2));
    clients.insert(host.substr(0, host.find(':')) + ":2379");
  }
  EXPECT_EQ(members.size(), 3u);
  EXPECT_TRUE(members.count(env.at("ETCD_NAME")) > 0);
  EXPECT_EQ(clients, std::set<std::string>(etcd_hosts.begin(), etcd_hosts.end()));
}

TEST(DeployTest, EnvoyTranscodesLookupAndReportingFromTheDescriptorSet) {
  std::vector<Value> docs = LoadYaml(Deploy("envoy/envoy.yaml"));
  ASSERT_EQ(docs.size(), 1u);
  std::vector<std::string> all;
  Strings(docs[0], &all);
  EXPECT_THAT(all, Contains("envoy.filters.http.grpc_json_transcoder"));
  const Value listener = List(docs[0], "static_resources.listeners").at(0);
  const Value hcm = List(List(listener, "filter_chains").at(0), "filters").at(0);
  const Value transcoder = List(hcm, "typed_config.http_filters").at(0);
  std::vector<std::string> services;
  Strings(At(transcoder, "typed_config.services"), &services);
  EXPECT_THAT(services, UnorderedElementsAre("frikort.v1.Lookup", "frikort.v1.Reporting"));
  EXPECT_EQ(At(transcoder, "typed_config.proto_descriptor").string_value(),
            "/etc/envoy/frikort.pb");

  // The descriptor set the build makes holds those services, with imports.
  const std::string set_path = BinaryPath("FRIKORT_DESCRIPTOR_SET", "frikort.pb");
  ASSERT_FALSE(set_path.empty()) << "no frikort.pb: set FRIKORT_DESCRIPTOR_SET or build it";
  std::ifstream in(set_path, std::ios::binary);
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromIstream(&in)) << set_path;
  std::set<std::string> in_set, files;
  for (const auto& file : set.file()) {
    files.insert(file.name());
    for (const auto& s : file.service()) in_set.insert(absl::StrCat(file.package(), ".", s.name()));
  }
  for (const std::string& s : services) EXPECT_TRUE(in_set.count(s) > 0) << s;
  EXPECT_TRUE(files.count("google/protobuf/timestamp.proto") > 0) << "imports not included";
}

TEST(DeployTest, PrometheusConfigAndRules) {
  std::vector<Value> config = LoadYaml(Deploy("prometheus/prometheus.yml"));
  ASSERT_EQ(config.size(), 1u);
  const Value job = List(config[0], "scrape_configs").at(0);
  EXPECT_EQ(At(job, "job_name").string_value(), "frikort");
  EXPECT_EQ(At(job, "metrics_path").string_value(), "/metrics");
  std::vector<std::string> targets;
  Strings(At(job, "static_configs"), &targets);
  EXPECT_THAT(targets, Contains("frikort:9464"));
  std::vector<std::string> rule_files;
  Strings(At(config[0], "rule_files"), &rule_files);
  ASSERT_EQ(rule_files.size(), 1u);

  std::vector<Value> rules = LoadYaml(Deploy("prometheus/" + rule_files[0]));
  ASSERT_EQ(rules.size(), 1u);
  int checked = 0;
  for (const Value& group : List(rules[0], "groups")) {
    for (const Value& rule : List(group, "rules")) {
      ExpectKnownMetrics(At(rule, "expr").string_value(), At(rule, "alert").string_value());
      ++checked;
    }
  }
  EXPECT_GE(checked, 3);
}

TEST(DeployTest, GrafanaDashboard) {
  std::ifstream in(Deploy("grafana/frikort-dashboard.json"));
  std::stringstream json;
  json << in.rdbuf();
  Struct dashboard;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &dashboard).ok());
  Value root;
  *root.mutable_struct_value() = dashboard;
  std::string titles;
  for (const Value& panel : List(root, "panels")) {
    absl::StrAppend(&titles, At(panel, "title").string_value(), "\n");
    for (const Value& target : List(panel, "targets")) {
      ExpectKnownMetrics(At(target, "expr").string_value(), At(panel, "title").string_value());
    }
  }
  for (const char* wanted :
       {"Ingest rate", "Lookup latency", "Cards issued", "Cards past deadline", "RocksDB size"}) {
    EXPECT_THAT(titles, HasSubstr(wanted));
  }
}

// The server's malloc is jemalloc's, for every library it loads (glibc's
// arenas were a sixth of an issuance run's CPU): the dynamic linker's own
// account of where libc's and OpenSSL's calls to malloc go.
TEST(DeployTest, ServerMallocIsJemalloc) {
  const std::string binary = FrikortdPath();
  ASSERT_FALSE(binary.empty());
  CommandResult run = Shell(absl::StrCat("LD_DEBUG=bindings ", binary, " --version 2>&1"));
  ASSERT_EQ(run.code, 0) << run.output;
  int to_jemalloc = 0;
  for (absl::string_view line : absl::StrSplit(run.output, '\n')) {
    if (!absl::StrContains(line, "normal symbol `malloc'")) continue;
    EXPECT_THAT(std::string(line), HasSubstr("libjemalloc.so"));
    if (absl::StrContains(line, "libjemalloc.so")) ++to_jemalloc;
  }
  EXPECT_GT(to_jemalloc, 0) << run.output.substr(0, 2000);
}

TEST(DeployTest, ContainerRuntimePackagesCoverTheBinariesLibraries) {
  std::ifstream in(Deploy("Containerfile"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string file = text.str();
  const size_t runtime = file.find("FROM debian:bookworm-slim");
  ASSERT_NE(runtime, std::string::npos);
  std::set<std::string> words;
  for (absl::string_view w :
       absl::StrSplit(file.substr(runtime), absl::ByAnyChar(" \n\\"), absl::SkipEmpty())) {
    words.insert(std::string(w));
  }
  // Part of every Debian image: the C and C++ runtimes.
  const std::set<std::string> base = {"libc6", "libstdc++6", "libgcc-s1"};
  // The libraries the binaries load, and for each the paths dpkg may know it
  // by (its package installed it under /lib or /usr/lib).
  std::map<std::string, std::vector<std::string>> libs;
  for (const std::string& binary : {FrikortdPath(), BinaryPath("FRIKORTCTL", "frikortctl")}) {
    ASSERT_FALSE(binary.empty());
    CommandResult ldd = Shell(absl::StrCat("ldd ", binary));
    ASSERT_EQ(ldd.code, 0) << ldd.output;
    for (absl::string_view line : absl::StrSplit(ldd.output, '\n')) {
      const size_t arrow = line.find("=> /");
      if (arrow == absl::string_view::npos) continue;
      std::string lib(line.substr(arrow + 3));
      lib = lib.substr(0, lib.find(' '));
      const std::string real = fs::canonical(lib).string();
      libs[lib] = {lib, real, std::string(absl::StripPrefix(lib, "/usr")),
                   std::string(absl::StripPrefix(real, "/usr"))};
    }
  }
  ASSERT_FALSE(libs.empty());
  std::string paths;
  for (const auto& [lib, candidates] : libs) {
    for (const std::string& c : candidates) absl::StrAppend(&paths, " ", c);
  }
  // One dpkg call: "package:arch: path" per path it knows.
  CommandResult owners = Shell(absl::StrCat("dpkg -S", paths));
  std::map<std::string, std::string> package_of;
  for (absl::string_view line : absl::StrSplit(owners.output, '\n')) {
    const size_t sep = line.find(": /");
    if (sep == absl::string_view::npos) continue;
    absl::string_view package = line.substr(0, sep);
    package = package.substr(0, package.find_first_of(":,"));
    package_of[std::string(line.substr(sep + 2))] = std::string(package);
  }
  for (const auto& [lib, candidates] : libs) {
    std::string package;
    for (const std::string& c : candidates) {
      if (package.empty() && package_of.count(c) > 0) package = package_of[c];
    }
    ASSERT_FALSE(package.empty()) << "no Debian package owns " << lib << "\n" << owners.output;
    EXPECT_TRUE(words.count(package) > 0 || base.count(package) > 0)
        << "the binaries need " << lib << " from " << package
        << ", which the Containerfile's runtime stage does not install";
  }
}

}  // namespace
}  // namespace frikort::testutil
