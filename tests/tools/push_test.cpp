// `strobe push` against a scripted OTLP/HTTP collector running in the test
// (otlp_collector.hpp): the request (method, path, content type, a TracesData body with
// every span), retries of transient failures, partial success reported, permanent failures
// not retried, batching by --batch-bytes, and a body large enough for curl to ask
// "Expect: 100-continue". Protobuf (the default) and gzip bodies are decoded with the
// official generated code (otlp_decode.hpp) and must hold the spans of the file export.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "otlp_collector.hpp"
#include "otlp_decode.hpp"
#include "run_tool.hpp"

namespace {

using namespace std::chrono_literals;
using strobe::test::Collector;
using strobe::test::golden;
using strobe::test::Reply;
using strobe::test::Request;
using strobe::test::span_ids_of;
using strobe::test::run_tool;

const std::string kGolden = golden("golden.strobe");

std::multiset<std::string> golden_span_ids() {
  std::multiset<std::string> ids;
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(kGolden))
    for (const strobe::SpanData& s : t.spans) {
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(s.span_id));
      ids.insert(hex);
    }
  return ids;
}

TEST(Push, PostsOneTracesDataWithEverySpanToV1Traces) {
  Collector collector({Reply{200, "{}"}});
  const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint(), "--protocol", "http/json"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(collector.requests().size(), 1u);
  const Request& req = collector.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/traces");
  EXPECT_EQ(req.version, "HTTP/1.1");
  EXPECT_EQ(req.headers.count("content-type") ? req.headers.at("content-type") : "", "application/json");
  const std::vector<std::string> ids = span_ids_of(req.body);
  EXPECT_EQ(std::multiset<std::string>(ids.begin(), ids.end()), golden_span_ids());
  EXPECT_EQ(r.out, "pushed 18 spans in 1 requests to " + collector.endpoint() + " (0 retries, 0 spans rejected)\n");
}

TEST(Push, ExtraHeadersAreSent) {
  Collector collector({Reply{200, "{}"}});
  const strobe::test::Run r = run_tool(
      {"push", kGolden, "--endpoint", collector.endpoint(), "-H", "Authorization: Bearer t0ken", "--header", "X-Tenant: blue"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 1u);
  const auto& h = collector.requests()[0].headers;
  EXPECT_EQ(h.count("authorization") ? h.at("authorization") : "", "Bearer t0ken");
  EXPECT_EQ(h.count("x-tenant") ? h.at("x-tenant") : "", "blue");
}

TEST(Push, RetriesA503ThenSucceeds) {
  Collector collector({Reply{503, R"({"message":"overloaded"})"}, Reply{200, "{}"}});
  const strobe::test::Run r =
      run_tool({"push", kGolden, "--endpoint", collector.endpoint(), "--backoff-ms", "10"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 2u);
  EXPECT_EQ(collector.requests()[0].body, collector.requests()[1].body) << "a retry resends the same body";
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find("HTTP 503"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("retrying"), std::string::npos) << lines[0];
  EXPECT_NE(r.out.find("pushed 18 spans in 2 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(1 retries"), std::string::npos) << r.out;
}

// A partial success loses spans at the collector: said on stderr and in the summary
// (accepted and rejected), and the exit status is 5, not 0.
TEST(Push, ReportsPartialSuccessAndExitsFive) {
  Collector collector({Reply{200, R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad attr"}})"}});
  const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint()});
  collector.stop();
  ASSERT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_EQ(r.out.find("pushed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" accepted, 2 spans rejected by the collector"), std::string::npos) << r.out;
  ASSERT_EQ(collector.requests().size(), 1u);
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find("2 spans rejected"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("bad attr"), std::string::npos) << lines[0];
  EXPECT_NE(r.out.find("2 spans rejected"), std::string::npos) << r.out;
}

TEST(Push, A400IsNotRetriedAndExitsFiveWithOneLine) {
  // A second reply is scripted so that a wrong retry would be seen, not refused.
  Collector collector({Reply{400, R"({"message":"invalid span"})"}, Reply{200, "{}"}});
  const strobe::test::Run r =
      run_tool({"push", kGolden, "--endpoint", collector.endpoint(), "--backoff-ms", "10"});
  collector.stop();
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_EQ(collector.requests().size(), 1u) << "400 is permanent: no retry";
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("strobe: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("HTTP 400"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("invalid span"), std::string::npos) << lines[0];
}

TEST(Push, GivesUpAfterTheRetriesWithExitFive) {
  Collector collector({Reply{503, "{}"}, Reply{503, "{}"}, Reply{503, "{}"}});
  const strobe::test::Run r = run_tool(
      {"push", kGolden, "--endpoint", collector.endpoint(), "--retries", "2", "--backoff-ms", "10"});
  collector.stop();
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_EQ(collector.requests().size(), 3u);
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 3u) << r.err;  // two "retrying" lines, then the failure
  EXPECT_NE(lines[2].find("after 3 attempt(s)"), std::string::npos) << lines[2];
}

TEST(Push, NobodyListeningExitsFive) {
  int port = 0;
  {
    Collector closed({});  // binds a free port, then closes it
    port = std::stoi(closed.endpoint().substr(std::string("http://127.0.0.1:").size()));
  }
  const strobe::test::Run r =
      run_tool({"push", kGolden, "--endpoint", "http://127.0.0.1:" + std::to_string(port) + "/v1/traces", "--retries",
                "1", "--backoff-ms", "10", "--timeout", "5"});
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  const auto lines = r.err_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("failed after 2 attempt(s)"), std::string::npos) << r.err;
}

TEST(Push, SmallBatchBytesSplitsIntoSeveralBoundedRequests) {
  constexpr std::size_t kBatchBytes = 1024;
  Collector collector(std::vector<Reply>(40, Reply{200, "{}"}), 10s);
  const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint(), "--protocol", "http/json",
                                        "--batch-bytes", std::to_string(kBatchBytes)});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_GT(collector.requests().size(), 2u);
  std::multiset<std::string> all;
  for (const Request& req : collector.requests()) {
    const std::vector<std::string> ids = span_ids_of(req.body);
    EXPECT_FALSE(ids.empty()) << "an empty request";
    all.insert(ids.begin(), ids.end());
    // A body holding a single span may exceed the limit (a span cannot be split).
    if (ids.size() > 1) EXPECT_LE(req.body.size(), kBatchBytes) << "a body of " << ids.size() << " spans";
  }
  EXPECT_EQ(all, golden_span_ids());
  EXPECT_NE(r.out.find("pushed 18 spans in " + std::to_string(collector.requests().size()) + " requests"),
            std::string::npos)
      << r.out;
}

// A body over 1 MiB: curl may ask "Expect: 100-continue" first; the whole body arrives.
TEST(Push, LargeBodyArrivesWhole) {
  const strobe::test::TempDir dir;
  const std::string path = dir / "large.strobe";
  {
    strobe::serialize::FileSink sink(strobe::serialize::FileSinkOptions{path});
    strobe::AssembledTrace t;
    t.trace_id = strobe::TraceId{7, 7};
    t.root_name = "bulk";
    for (std::uint64_t i = 0; i < 2000; ++i) {
      strobe::SpanData s;
      s.span_id = i + 1;
      s.parent_id = i == 0 ? 0 : 1;
      s.name = i == 0 ? "bulk" : "item";
      s.start_ns = 1'767'225'600'000'000'000 + static_cast<std::int64_t>(i) * 1000;
      s.end_ns = s.start_ns + (i == 0 ? 3'000'000 : 500);
      s.input = std::string(1000, static_cast<char>('a' + i % 26));
      t.spans.push_back(s);
    }
    sink.consume(t);
  }
  Collector collector({Reply{200, "{}"}});
  const strobe::test::Run r = run_tool({"push", path, "--endpoint", collector.endpoint(), "--protocol", "http/json"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 1u);
  const Request& req = collector.requests()[0];
  EXPECT_GT(req.body.size(), std::size_t{1} << 21);
  EXPECT_EQ(span_ids_of(req.body).size(), 2000u);
  if (req.headers.count("expect")) EXPECT_TRUE(req.sent_continue);
}

// ---- protobuf (the default) and gzip, decoded with the official generated code ----

// The golden file's spans as `strobe export --format otlp` writes them, canonical.
std::multiset<std::string> exported_spans(const std::filesystem::path& dir) {
  const strobe::test::Run e = run_tool({"export", "--format", "otlp", kGolden});
  EXPECT_EQ(e.exit_status, 0) << e.describe();
  const strobe::test::Decoded d = strobe::test::decode_export_lines(e.out, dir);
  EXPECT_EQ(d.errors, std::vector<std::string>{});
  EXPECT_EQ(d.spans.size(), 18u);
  return d.spans;
}

std::string header(const Request& r, const char* name) { return r.headers.count(name) ? r.headers.at(name) : "<none>"; }

TEST(Push, DefaultIsProtobufThatDecodesToTheSpansOfTheFileExport) {
  const strobe::test::TempDir dir;
  Collector collector({Reply{200, "{}"}});
  const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint()});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 1u);
  const Request& req = collector.requests()[0];
  EXPECT_EQ(header(req, "content-type"), "application/x-protobuf");
  EXPECT_EQ(header(req, "content-encoding"), "<none>");
  const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path());
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  ASSERT_EQ(got.requests.size(), 1u);
  EXPECT_NE(got.requests[0].resource.find(R"(["service.name",{"s":"golden-service"}])"), std::string::npos)
      << got.requests[0].resource;
  EXPECT_NE(got.requests[0].resource.find(R"(["telemetry.sdk.name",{"s":"strobe"}])"), std::string::npos)
      << got.requests[0].resource;
  const std::multiset<std::string> want = exported_spans(dir.path());
  EXPECT_EQ(strobe::test::span_difference(got.spans, want), "");
  EXPECT_EQ(r.out, "pushed 18 spans in 1 requests to " + collector.endpoint() + " (0 retries, 0 spans rejected)\n");
}

// Every request of a split push, gzip'd, protobuf and JSON: each decodes, and together
// they hold every span of the file export once.
TEST(Push, GzipBodiesInSeveralRequestsDecodeToTheSpansOfTheFileExport) {
  for (const char* protocol : {"http/protobuf", "http/json"}) {
    SCOPED_TRACE(protocol);
    const strobe::test::TempDir dir;
    Collector collector(std::vector<Reply>(40, Reply{200, "{}"}), 10s);
    const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint(), "--protocol", protocol,
                                          "--compression", "gzip", "--batch-bytes", "1024"});
    collector.stop();
    ASSERT_EQ(r.exit_status, 0) << r.describe();
    ASSERT_GT(collector.requests().size(), 2u);
    for (const Request& req : collector.requests()) {
      EXPECT_EQ(header(req, "content-encoding"), "gzip");
      EXPECT_EQ(header(req, "content-type"), std::string(protocol) == "http/json" ? "application/json" : "application/x-protobuf");
      ASSERT_GE(req.body.size(), 2u);
      EXPECT_EQ(req.body.substr(0, 2), "\x1f\x8b") << "a gzip member";
    }
    const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path());
    EXPECT_EQ(got.errors, std::vector<std::string>{});
    EXPECT_EQ(got.requests.size(), collector.requests().size());
    const std::multiset<std::string> want = exported_spans(dir.path());
    EXPECT_EQ(strobe::test::span_difference(got.spans, want), "");
  }
}

// ExportTraceServiceResponse{partial_success{rejected_spans: 2, error_message: "bad attr"}}.
TEST(Push, ReportsAProtobufPartialSuccess) {
  const std::string response = std::string("\x0a\x0c\x08\x02\x12\x08", 6) + "bad attr";
  Collector collector({Reply{200, response}});
  const strobe::test::Run r = run_tool({"push", kGolden, "--endpoint", collector.endpoint()});
  collector.stop();
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_NE(r.out.find(" accepted, 2 spans rejected by the collector"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("bad attr"), std::string::npos) << r.err;
}

TEST(Push, AnUnknownProtocolOrCompressionIsABadArgument) {
  EXPECT_EQ(run_tool({"push", kGolden, "--endpoint", "http://127.0.0.1:9/v1/traces", "--protocol", "grpc"}).exit_status, 2);
  EXPECT_EQ(run_tool({"push", kGolden, "--endpoint", "http://127.0.0.1:9/v1/traces", "--compression", "zstd"}).exit_status, 2);
}

}  // namespace

// The OTEL_* variables an SDK reads fill in what the flags leave unset.
class PushEnvironment : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
                          "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_SERVICE_NAME",
                          "OTEL_RESOURCE_ATTRIBUTES"})
      ::unsetenv(v);
  }
};

TEST_F(PushEnvironment, EndpointHeadersProtocolAndResourceComeFromTheVariables) {
  Collector collector({Reply{200, "{}"}});
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ("http://127.0.0.1:" + std::to_string(collector.port())).c_str(), 1);
  ::setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=blue,authorization=Bearer%20env", 1);
  ::setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
  ::setenv("OTEL_SERVICE_NAME", "from-env", 1);
  ::setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging", 1);
  const strobe::test::Run r = run_tool({"push", kGolden, "-H", "Authorization: Bearer flag"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 1u);
  const Request& req = collector.requests()[0];
  EXPECT_EQ(req.target, "/v1/traces");  // appended to OTEL_EXPORTER_OTLP_ENDPOINT
  EXPECT_EQ(header(req, "content-type"), "application/json");
  EXPECT_EQ(header(req, "x-tenant"), "blue");
  EXPECT_EQ(header(req, "authorization"), "Bearer flag");  // a flag wins over the variable
  rapidjson::Document d;
  d.Parse(req.body.c_str());
  ASSERT_FALSE(d.HasParseError());
  std::map<std::string, std::string> resource;
  for (const auto& a : d["resourceSpans"][0]["resource"]["attributes"].GetArray())
    if (a["value"].HasMember("stringValue")) resource[a["key"].GetString()] = a["value"]["stringValue"].GetString();
  EXPECT_EQ(resource["service.name"], "from-env");
  EXPECT_EQ(resource["deployment.environment"], "staging");
  const std::vector<std::string> ids = span_ids_of(req.body);
  EXPECT_EQ(std::multiset<std::string>(ids.begin(), ids.end()), golden_span_ids());
}

TEST_F(PushEnvironment, TracesEndpointIsUsedAsItIsAndFlagsWin) {
  Collector collector({Reply{200, "{}"}});
  ::setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ("http://127.0.0.1:" + std::to_string(collector.port()) + "/custom").c_str(), 1);
  ::setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
  const strobe::test::Run r = run_tool({"push", kGolden, "--protocol", "http/protobuf"});
  collector.stop();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(collector.requests().size(), 1u);
  EXPECT_EQ(collector.requests()[0].target, "/custom");
  EXPECT_EQ(header(collector.requests()[0], "content-type"), "application/x-protobuf");
}

TEST_F(PushEnvironment, NoEndpointAnywhereOrABadVariableIsABadArgument) {
  strobe::test::Run r = run_tool({"push", kGolden});
  EXPECT_EQ(r.exit_status, 2) << r.describe();
  EXPECT_NE(r.err.find("OTEL_EXPORTER_OTLP_ENDPOINT"), std::string::npos) << r.err;
  ::setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
  ::setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
  r = run_tool({"push", kGolden});
  EXPECT_EQ(r.exit_status, 2) << r.describe();
  EXPECT_NE(r.err.find("OTEL_EXPORTER_OTLP_PROTOCOL"), std::string::npos) << r.err;
}
