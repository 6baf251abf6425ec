// OtlpSink's configuration from the standard OTEL_* variables (resolve_otlp_options): the
// endpoints, headers and resource attributes (k=v lists, %-decoded), protocol,
// compression, service name; options given in code win; a bad value is a ConfigError
// naming the variable, never a crash. And a sink configured only by the environment,
// against a local receiver.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <strobe/serialize/otlp_sink.hpp>
#include <strobe/strobe.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "otlp_collector.hpp"
#include "otlp_decode.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using strobe::serialize::OtlpSinkOptions;
using strobe::serialize::resolve_otlp_options;
using strobe::serialize::otlp::Compression;
using strobe::serialize::otlp::Protocol;

const char* const kVariables[] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL",     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES"};

// Each test starts from an environment without OTEL_* variables and leaves none behind.
class OtlpEnv : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* v : kVariables) ::unsetenv(v);
  }
  static void set(const char* name, const char* value) { ::setenv(name, value, 1); }
  // The ConfigError's message, or "" when it resolves.
  static std::string error_of(OtlpSinkOptions o = {}) {
    try {
      (void)resolve_otlp_options(std::move(o));
    } catch (const strobe::ConfigError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(OtlpEnv, DefaultsWithoutVariables) {
  const OtlpSinkOptions o = resolve_otlp_options({});
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(o.protocol, Protocol::protobuf);
  EXPECT_EQ(o.compression, Compression::none);
  EXPECT_TRUE(o.headers.empty());
  EXPECT_TRUE(o.resource_attributes.empty());
  EXPECT_EQ(o.service_name, "");
}

TEST_F(OtlpEnv, EndpointGetsV1TracesTheTracesEndpointIsTakenAsItIs) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
  EXPECT_EQ(resolve_otlp_options({}).endpoint, "http://collector:4318/v1/traces");
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/base/");
  EXPECT_EQ(resolve_otlp_options({}).endpoint, "https://collector:4318/base/v1/traces");
  set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9999/custom/path");
  EXPECT_EQ(resolve_otlp_options({}).endpoint, "http://other:9999/custom/path");
  OtlpSinkOptions given;
  given.endpoint = "http://given:1/v1/traces";
  EXPECT_EQ(resolve_otlp_options(given).endpoint, "http://given:1/v1/traces") << "code wins";
  given.read_environment = false;
  given.endpoint.clear();
  EXPECT_EQ(resolve_otlp_options(given).endpoint, "http://127.0.0.1:4318/v1/traces") << "environment ignored";
}

TEST_F(OtlpEnv, HeadersAreKeyValueListsPercentDecoded) {
  set("OTEL_EXPORTER_OTLP_HEADERS", " Authorization=Bearer%20t0ken , x-tenant = blue,,x-eq=a%3Db ");
  OtlpSinkOptions given;
  given.headers = {{"X-Tenant", "red"}};
  const OtlpSinkOptions o = resolve_otlp_options(given);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"X-Tenant", "red"}, {"Authorization", "Bearer t0ken"}, {"x-eq", "a=b"}};
  EXPECT_EQ(o.headers, want) << "a name given in code wins, whatever its case";
  set("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "only=traces");
  EXPECT_EQ(resolve_otlp_options({}).headers, (std::vector<std::pair<std::string, std::string>>{{"only", "traces"}}));
}

TEST_F(OtlpEnv, ProtocolCompressionServiceAndResource) {
  set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
  set("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
  set("OTEL_SERVICE_NAME", "checkout");
  set("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=search%2Franking");
  OtlpSinkOptions o = resolve_otlp_options({});
  EXPECT_EQ(o.protocol, Protocol::json);
  EXPECT_EQ(o.compression, Compression::gzip);
  EXPECT_EQ(o.service_name, "checkout");
  ASSERT_EQ(o.resource_attributes.size(), 2u);
  EXPECT_EQ(o.resource_attributes[0].key, "deployment.environment");
  EXPECT_EQ(o.resource_attributes[0].value.s, "prod");
  EXPECT_EQ(o.resource_attributes[1].value.s, "search/ranking");
  set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf");
  EXPECT_EQ(resolve_otlp_options({}).protocol, Protocol::protobuf) << "the traces variable first";
  OtlpSinkOptions given;
  given.protocol = Protocol::json;
  given.compression = Compression::none;
  given.service_name = "mine";
  o = resolve_otlp_options(given);
  EXPECT_EQ(o.protocol, Protocol::json);
  EXPECT_EQ(o.compression, Compression::none);
  EXPECT_EQ(o.service_name, "mine");
}

TEST_F(OtlpEnv, BadValuesAreConfigErrorsNamingTheVariable) {
  struct Case {
    const char* variable;
    const char* value;
    const char* says;
  };
  for (const Case& c : {Case{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "'grpc' is not supported"},
                        Case{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http", "not supported"},
                        Case{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "'zstd' is not supported"},
                        Case{"OTEL_EXPORTER_OTLP_HEADERS", "novalue", "is not key=value"},
                        Case{"OTEL_EXPORTER_OTLP_HEADERS", "=v", "is not key=value"},
                        Case{"OTEL_EXPORTER_OTLP_HEADERS", "k=%zz", "two hex digits"},
                        Case{"OTEL_EXPORTER_OTLP_HEADERS", "k=abc%4", "two hex digits"},
                        Case{"OTEL_EXPORTER_OTLP_HEADERS", "k%0A=v", "line break"},
                        Case{"OTEL_RESOURCE_ATTRIBUTES", "a=1,b", "is not key=value"},
                        Case{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "not an http:// or https:// URL"},
                        Case{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/v1/traces", "not an http:// or https:// URL"}}) {
    SCOPED_TRACE(std::string(c.variable) + "=" + c.value);
    clear();
    set(c.variable, c.value);
    const std::string e = error_of();
    EXPECT_NE(e.find(c.says), std::string::npos) << e;
    if (std::string(c.says) != "line break") EXPECT_EQ(e.rfind(c.variable, 0), 0u) << e;
    // The sink refuses to start the same way, before anything runs.
    EXPECT_THROW(strobe::serialize::OtlpSink{}, strobe::ConfigError);
  }
  clear();
  OtlpSinkOptions bad;
  bad.batch_spans = 0;
  EXPECT_NE(error_of(bad), "");
  bad = {};
  bad.endpoint = "localhost:4318";
  EXPECT_NE(error_of(bad).find("not an http"), std::string::npos);
}

TEST_F(OtlpEnv, ASinkConfiguredByTheEnvironmentOnly) {
  strobe::test::Collector collector({strobe::test::Reply{}}, 30s, true);
  const std::string base = collector.endpoint().substr(0, collector.endpoint().size() - std::string("/v1/traces").size());
  set("OTEL_EXPORTER_OTLP_ENDPOINT", base.c_str());
  set("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc");
  set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
  set("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
  set("OTEL_SERVICE_NAME", "from-env");
  set("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,service.name=overridden");
  {
    auto otlp = std::make_shared<strobe::serialize::OtlpSink>();
    strobe::Recorder recorder({.service_name = "from-config", .sinks = {otlp}});
    {
      auto root = strobe::trace("job");
      auto child = strobe::span("step");
    }
    recorder.flush();
    EXPECT_EQ(otlp->stats().spans_sent, 2u);
  }
  collector.stop();
  ASSERT_EQ(collector.requests().size(), 1u);
  const strobe::test::Request& r = collector.requests()[0];
  EXPECT_EQ(r.target, "/v1/traces");
  EXPECT_EQ(r.headers.count("authorization") ? r.headers.at("authorization") : "", "Bearer abc");
  EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "", "application/json");
  EXPECT_EQ(r.headers.count("content-encoding") ? r.headers.at("content-encoding") : "", "gzip");
  const strobe::test::TempDir dir;
  const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path);
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  ASSERT_EQ(got.requests.size(), 1u);
  const std::string& res = got.requests[0].resource;
  EXPECT_NE(res.find(R"(["service.name",{"s":"from-env"}])"), std::string::npos)
      << "OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES over the recorder's: " << res;
  EXPECT_NE(res.find(R"(["deployment.environment",{"s":"staging"}])"), std::string::npos) << res;
  EXPECT_NE(res.find(R"(["telemetry.sdk.name",{"s":"strobe"}])"), std::string::npos) << res;
  EXPECT_NE(res.find(R"(["telemetry.sdk.version",{"s":"0.1.0"}])"), std::string::npos) << res;
  EXPECT_NE(res.find(R"(["host.name",)"), std::string::npos) << res;
  EXPECT_NE(res.find(R"(["process.pid",{"i":")" + std::to_string(::getpid()) + "\"}]"), std::string::npos) << res;
  EXPECT_EQ(got.spans.size(), 2u);
}

}  // namespace
