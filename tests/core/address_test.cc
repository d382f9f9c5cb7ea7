// Network addresses as text: HOST:PORT splitting and the loopback check.
#include "core/address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace frikort::core {
namespace {

using ::testing::HasSubstr;

TEST(AddressTest, Loopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.3.4"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("LocalHost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("::"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("example.com"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
}

TEST(AddressTest, SplitsHostAndPort) {
  absl::StatusOr<HostPort> hp = SplitHostPort("127.0.0.1:50051", "listen");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, "50051");
  hp = SplitHostPort("[::1]:0", "listen");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, "0");
  hp = SplitHostPort("frikort.example:443", "--server");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "frikort.example");
}

TEST(AddressTest, RefusalsNameTheFieldAndTheReason) {
  EXPECT_THAT(SplitHostPort("no-port", "listen").status().message(),
              HasSubstr("listen: 'no-port' is not HOST:PORT or [IPV6]:PORT: no ':PORT'"));
  EXPECT_THAT(SplitHostPort("[::1:5", "metrics_listen").status().message(),
              HasSubstr("metrics_listen: '[::1:5' is not HOST:PORT or [IPV6]:PORT: no closing"));
  EXPECT_THAT(SplitHostPort("[::1]5", "x").status().message(), HasSubstr("no ':PORT' after ']'"));
  EXPECT_THAT(SplitHostPort("::1:5", "x").status().message(),
              HasSubstr("an IPv6 host must be in brackets"));
  EXPECT_THAT(SplitHostPort(":5", "x").status().message(), HasSubstr("empty host"));
  for (const char* bad : {"h:", "h:65536", "h:-1", "h:123456", "h:8o"}) {
    EXPECT_THAT(SplitHostPort(bad, "x").status().message(),
                HasSubstr("the port must be a number from 0 to 65535"))
        << bad;
  }
}

}  // namespace
}  // namespace frikort::core
