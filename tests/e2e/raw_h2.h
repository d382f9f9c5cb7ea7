// RawH2: a deliberately rude HTTP/2 client over mutual TLS, for the bounds
// tests. It speaks just enough HTTP/2 to open gRPC streams and send the start
// of a message it never finishes (respecting flow control, so the server has
// no protocol error to close the connection for), answers SETTINGS and PING,
// and never reads what the server sends on a stream.
#ifndef FRIKORT_TESTS_E2E_RAW_H2_H_
#define FRIKORT_TESTS_E2E_RAW_H2_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/certs.h"

namespace frikort::testutil {

class RawH2 {
 public:
  RawH2() = default;
  RawH2(const RawH2&) = delete;
  RawH2& operator=(const RawH2&) = delete;
  ~RawH2() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }

  // TCP to 127.0.0.1:port, the TLS handshake with `cred` (ALPN h2), the
  // connection preface and an empty SETTINGS frame. False on any failure.
  bool Connect(int port, const testing::Credential& cred) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    timeval send_timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return false;
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof(kAlpn));
    if (!UsePem(cred)) return false;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      ERR_clear_error();
      return false;
    }
    std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    out += Frame(kSettings, 0, 0, "");
    return Write(out);
  }

  // Opens a stream for `path` whose one message declares `declared` bytes and
  // of which `send` bytes (prefix included) will be sent. Returns its id.
  uint32_t Open(const std::string& path, uint32_t declared, size_t send) {
    std::string body(send, 'x');
    body[0] = 0;  // not compressed
    for (int i = 0; i < 4; ++i) body[1 + i] = static_cast<char>(declared >> (24 - 8 * i));
    return OpenWithBody(path, std::move(body));
  }

  // Opens a stream for `path` that sends the whole `messages` (each one
  // already framed: a zero byte, its length in four bytes big-endian, its
  // bytes) as flow control allows, and never half-closes. Returns its id.
  uint32_t OpenWithBody(const std::string& path, std::string messages) {
    const uint32_t id = next_id_;
    next_id_ += 2;
    std::string block;
    for (const auto& [name, value] : {std::pair<std::string, std::string>{":method", "POST"},
                                      {":scheme", "https"},
                                      {":path", path},
                                      {":authority", "localhost"},
                                      {"content-type", "application/grpc"},
                                      {"te", "trailers"}}) {
      block += '\0';  // literal header field without indexing, new name
      block += static_cast<char>(name.size());
      block += name;
      block += static_cast<char>(value.size());
      block += value;
    }
    Stream& s = streams_[id];
    s.window = peer_initial_window_;
    s.body = std::move(messages);
    Write(Frame(kHeaders, kEndHeaders, id, block));
    return id;
  }

  // Sends what the windows allow and handles what arrives, until nothing has
  // happened for `quiet` or `timeout` has passed; calls `each` meanwhile.
  void Pump(absl::Duration quiet, absl::Duration timeout, const std::function<void()>& each = {}) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::Time last_progress = absl::Now();
    while (!closed_ && absl::Now() < deadline && absl::Now() - last_progress < quiet) {
      bool progress = SendSome();
      progress = ReadSome() || progress;
      if (progress) last_progress = absl::Now();
      if (each) each();
    }
  }

  bool closed() const { return closed_; }  // EOF or an error on the connection
  bool goaway() const { return goaway_; }  // the server sent GOAWAY
  size_t streams_ended() const {           // RST_STREAM or END_STREAM seen
    return static_cast<size_t>(std::count_if(streams_.begin(), streams_.end(),
                                             [](const auto& s) { return s.second.ended; }));
  }
  size_t bytes_sent() const { return bytes_sent_; }        // DATA payload, all streams
  size_t data_received() const { return data_received_; }  // DATA frames' bytes

 private:
  static constexpr uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPing = 6,
                           kGoaway = 7, kWindowUpdate = 8;
  static constexpr uint8_t kAck = 1, kEndStream = 1, kEndHeaders = 4;

  struct Stream {
    int64_t window = 65535;
    std::string body;
    size_t sent = 0;
    bool ended = false;
  };

  bool UsePem(const testing::Credential& cred) {
    BIO* cb = BIO_new_mem_buf(cred.cert_pem.data(), static_cast<int>(cred.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(cred.key_pem.data(), static_cast<int>(cred.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    const bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx_, cert) == 1 &&
                    SSL_CTX_use_PrivateKey(ctx_, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
  }

  static std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& body) {
    std::string f;
    const uint32_t n = static_cast<uint32_t>(body.size());
    f += static_cast<char>(n >> 16);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    for (int i = 0; i < 4; ++i) f += static_cast<char>(stream >> (24 - 8 * i));
    return f + body;
  }

  static uint32_t Be32(const std::string& s, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
    return v;
  }

  bool Write(const std::string& bytes) {
    if (closed_) return false;
    if (SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) {
      ERR_clear_error();
      closed_ = true;
      return false;
    }
    return true;
  }

  bool SendSome() {
    bool sent = false;
    for (auto& [id, s] : streams_) {
      while (!closed_ && !s.ended && s.sent < s.body.size() && s.window > 0 && conn_window_ > 0) {
        const size_t n =
            std::min<size_t>({16384, s.body.size() - s.sent, static_cast<size_t>(s.window),
                              static_cast<size_t>(conn_window_)});
        if (!Write(Frame(kData, 0, id, s.body.substr(s.sent, n)))) break;
        s.sent += n;
        s.window -= static_cast<int64_t>(n);
        conn_window_ -= static_cast<int64_t>(n);
        bytes_sent_ += n;
        sent = true;
      }
    }
    return sent;
  }

  // Reads for up to 20 ms; true if a frame arrived.
  bool ReadSome() {
    if (closed_) return false;
    timeval t{0, 20000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t));
    char buf[65536];
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) {
      const int err = SSL_get_error(ssl_, n);
      ERR_clear_error();
      if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno != EAGAIN)) {
        closed_ = true;
      } else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_SYSCALL) {
        closed_ = true;
      }
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    bool any = false;
    while (in_.size() >= 9) {
      const size_t len = (static_cast<uint8_t>(in_[0]) << 16) |
                         (static_cast<uint8_t>(in_[1]) << 8) | static_cast<uint8_t>(in_[2]);
      if (in_.size() < 9 + len) break;
      const uint8_t type = static_cast<uint8_t>(in_[3]);
      const uint8_t flags = static_cast<uint8_t>(in_[4]);
      const uint32_t stream = Be32(in_, 5) & 0x7fffffff;
      const std::string body = in_.substr(9, len);
      in_.erase(0, 9 + len);
      Handle(type, flags, stream, body);
      any = true;
    }
    return any;
  }

  void Handle(uint8_t type, uint8_t flags, uint32_t stream, const std::string& body) {
    auto it = streams_.find(stream);
    switch (type) {
      case kSettings:
        if ((flags & kAck) != 0) return;
        for (size_t i = 0; i + 6 <= body.size(); i += 6) {
          const int key = (static_cast<uint8_t>(body[i]) << 8) | static_cast<uint8_t>(body[i + 1]);
          if (key == 4) {  // SETTINGS_INITIAL_WINDOW_SIZE
            const int64_t v = Be32(body, i + 2);
            for (auto& [id, s] : streams_) s.window += v - peer_initial_window_;
            peer_initial_window_ = v;
          }
        }
        Write(Frame(kSettings, kAck, 0, ""));
        return;
      case kPing:
        if ((flags & kAck) == 0) Write(Frame(kPing, kAck, 0, body));
        return;
      case kWindowUpdate:
        if (body.size() < 4) return;
        if (stream == 0) {
          conn_window_ += Be32(body, 0) & 0x7fffffff;
        } else if (it != streams_.end()) {
          it->second.window += Be32(body, 0) & 0x7fffffff;
        }
        return;
      case kRstStream:
        if (it != streams_.end()) it->second.ended = true;
        return;
      case kData:
        data_received_ += body.size();
        [[fallthrough]];
      case kHeaders:
        if ((flags & kEndStream) != 0 && it != streams_.end()) it->second.ended = true;
        return;
      case kGoaway:
        goaway_ = true;
        return;
      default:
        return;
    }
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string in_;
  uint32_t next_id_ = 1;
  int64_t conn_window_ = 65535;
  int64_t peer_initial_window_ = 65535;
  std::map<uint32_t, Stream> streams_;
  size_t bytes_sent_ = 0;
  size_t data_received_ = 0;
  bool closed_ = false;
  bool goaway_ = false;
};

}  // namespace frikort::testutil

#endif  // FRIKORT_TESTS_E2E_RAW_H2_H_
