#include "storage/secret.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace frikort::storage {

absl::StatusOr<std::string> LoadSecret(const std::string& key_file) {
  struct stat st;
  if (stat(key_file.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("pseudonym key file ", key_file, " does not exist"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("pseudonym key file ", key_file, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("pseudonym key file ", key_file, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "pseudonym key file %s has mode %04o: it must not be accessible by group or others "
        "(chmod 600)",
        key_file, st.st_mode & 07777));
  }
  std::ifstream in(key_file, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("pseudonym key file ", key_file, " cannot be read"));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string secret(absl::StripAsciiWhitespace(buf.str()));
  if (secret.size() < kMinSecretBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("pseudonym key file ", key_file, " holds ", secret.size(),
                     " bytes; at least 32 are required (e.g. openssl rand -hex 32)"));
  }
  return secret;
}

absl::StatusOr<std::string> LoadOrCreateDevSecret(const std::string& data_dir) {
  const std::string path = data_dir + "/pseudonym.key";
  auto loaded = LoadSecret(path);
  if (!absl::IsNotFound(loaded.status())) return loaded;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return absl::InternalError("RAND_bytes failed");
  const std::string hex =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(raw), sizeof raw)) +
      "\n";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create pseudonym key file ", path, ": ", std::strerror(errno)));
  }
  const bool ok =
      write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write pseudonym key file ", path));
  }
  return LoadSecret(path);
}

}  // namespace frikort::storage
