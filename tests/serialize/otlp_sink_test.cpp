// OtlpSink against a local receiver (otlp_collector.hpp on 127.0.0.1): every request
// decodes with the official generated code (otlp_decode.hpp) and the spans received equal
// those of the file export of the same run; a receiver down, then up: nothing lost
// within the queue, the rest counted and told to the receiver; 429 with Retry-After; a
// receiver that takes the request and never answers: flush and shutdown keep their
// deadline, the drainer and the sink thread go on.

#include <gtest/gtest.h>
#include <strobe/serialize/otlp.hpp>
#include <strobe/serialize/otlp_sink.hpp>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "otlp_collector.hpp"
#include "otlp_decode.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using strobe::serialize::OtlpSink;
using strobe::serialize::OtlpSinkOptions;
using strobe::serialize::otlp::Compression;
using strobe::serialize::otlp::Protocol;
using strobe::test::Collector;
using strobe::test::Reply;
using strobe::test::Request;

// Every shape the mapping knows: GenAI kinds, a model call with messages and tokens,
// attributes of each type, events and log lines, a failure with data, a suspended and
// resumed segment (a link), span links (to this trace and to a remote caller's), a span on
// another thread, a custom kind.
void agent_workload(int traces) {
  for (int t = 0; t < traces; ++t) {
    auto run = strobe::trace("research-agent", {{"attempt", t}, {"user", "alice"}});
    {
      auto plan = strobe::span("make_plan", strobe::Kind::plan);
      plan.log("planning 3 lookups").attr("score", 0.75).attr("fast", true);
    }
    {
      auto llm = strobe::span("generate_answer", strobe::Kind::llm);
      llm.model("gpt-4o-mini").input("What is \"strobe\"?\n").output("A span recorder.").tag("streaming");
      llm.tokens({.input = 12, .output = 34, .cached_input = 5});
      llm.event("first_token", {{"latency_ms", 30}});
    }
    {
      auto tool = strobe::span("fetch_url", strobe::Kind::tool);
      tool.error("connection refused", R"({"errno":111})");
    }
    {
      auto wait = strobe::span("wait_approval", strobe::Kind::tool);
      const strobe::SuspendToken token = wait.suspend();
      std::thread([&token] {
        auto next = strobe::resume(token);
        next.attr("approved", true);
      }).join();
    }
    strobe::Context planned;
    std::thread([ctx = strobe::current(), &planned] {
      strobe::ContextScope adopt(ctx);
      auto s = strobe::span("search_docs", strobe::Kind::retrieval, {{"source", "db"}, {"top_k", 5}});
      planned = s.context();
    }).join();
    {
      auto rank = strobe::span("rank_results", strobe::Kind::step);  // span links: this trace, a caller's
      rank.link(planned).link(strobe::Context::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    }
    {
      auto lookup = strobe::span("lookup", "vector-db");
    }
  }
}

// `strobe export --format otlp` of a file: the JSON writer over the traces read back.
std::string file_export(const std::string& path) {
  strobe::serialize::Reader reader(path);
  const strobe::serialize::otlp::Resource resource = strobe::serialize::otlp::resource_of(reader.info());
  strobe::serialize::otlp::RequestWriter w(Protocol::json);
  std::string out;
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(path)) {
    w.begin_trace(t);
    w.begin(resource);
    for (std::size_t i = 0; i < t.spans.size(); ++i) w.add(i);
    w.end();
    out.append(w.data());
    out.push_back('\n');
  }
  return out;
}

std::multiset<std::string> span_ids_of_file(const std::string& path) {
  std::multiset<std::string> ids;
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(path))
    for (const strobe::SpanData& s : t.spans) ids.insert(strobe::to_hex(s.span_id));
  return ids;
}

std::multiset<std::string> span_ids_of(const std::multiset<std::string>& canonical) {
  std::multiset<std::string> ids;
  for (const std::string& s : canonical) {
    const std::size_t at = s.find(R"("spanId":")");
    ids.insert(at == std::string::npos ? "<none>" : s.substr(at + 10, 16));
  }
  return ids;
}

std::string header(const Request& r, const char* name) { return r.headers.count(name) ? r.headers.at(name) : "<none>"; }

OtlpSinkOptions options_for(const std::string& endpoint) {
  OtlpSinkOptions o;
  o.endpoint = endpoint;
  o.read_environment = false;
  return o;
}

// A port with nobody listening (a collector bound it, then closed it).
int free_port() {
  Collector probe({});
  const int port = probe.port();
  probe.stop();
  return port;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds within = 30s) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST(OtlpSink, LiveExportEqualsTheFileExportOfTheSameRun) {
  struct Case {
    Protocol protocol;
    Compression compression;
    const char* content_type;
    std::size_t batch_spans, batch_bytes;  // several batches, a trace split across two
  };
  for (const Case c : {Case{Protocol::protobuf, Compression::none, "application/x-protobuf", 7, 4u << 20},
                       Case{Protocol::protobuf, Compression::gzip, "application/x-protobuf", 8192, 1024},
                       Case{Protocol::json, Compression::gzip, "application/json", 7, 4u << 20},
                       Case{Protocol::json, Compression::none, "application/json", 8192, 2048}}) {
    SCOPED_TRACE(std::string(c.content_type) + (c.compression == Compression::gzip ? " gzip" : "") + ", batches of " +
                 std::to_string(c.batch_spans) + " spans, " + std::to_string(c.batch_bytes) + " bytes");
    const strobe::test::TempDir dir;
    const std::string path = (dir.path / "run.strobe").string();
    Collector collector({Reply{}}, 60s, /*repeat_last=*/true);
    OtlpSink::Stats stats;
    strobe::Stats recorded;
    strobe::serialize::FileSink::Counters written;
    {
      auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
      OtlpSinkOptions o = options_for(collector.endpoint());
      o.protocol = c.protocol;
      o.compression = c.compression;
      o.batch_spans = c.batch_spans;
      o.batch_bytes = c.batch_bytes;
      auto otlp = std::make_shared<OtlpSink>(o);
      {
        strobe::Recorder recorder({.service_name = "otlp-test", .sinks = {file, otlp}});
        agent_workload(12);
        recorder.flush();
        recorded = recorder.stats();
      }
      stats = otlp->stats();
      file->close();
      written = file->counters();
    }
    EXPECT_EQ(recorded.sink_errors, 0u);
    EXPECT_EQ(written.spans, stats.spans_queued) << "both sinks got the same spans";
    collector.stop();
    EXPECT_EQ(stats.spans_dropped, 0u);
    EXPECT_EQ(stats.spans_sent, stats.spans_queued);
    EXPECT_GT(stats.batches_sent, 1u);
    ASSERT_FALSE(collector.requests().empty());
    for (const Request& r : collector.requests()) {
      EXPECT_EQ(r.method, "POST");
      EXPECT_EQ(r.target, "/v1/traces");
      EXPECT_EQ(header(r, "content-type"), c.content_type);
      EXPECT_EQ(header(r, "content-encoding"), c.compression == Compression::gzip ? "gzip" : "<none>");
    }
    const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path);
    EXPECT_EQ(got.errors, std::vector<std::string>{});
    ASSERT_EQ(got.requests.size(), collector.requests().size());
    for (std::size_t i = 0; i < got.requests.size(); ++i)
      if (c.compression == Compression::none && got.requests[i].spans > 1)
        EXPECT_LE(collector.requests()[i].body.size(), c.batch_bytes) << "request " << i << " of " << got.requests[i].spans << " spans";
    for (const strobe::test::DecodedRequest& r : got.requests) {
      EXPECT_NE(r.resource.find(R"(["service.name",{"s":"otlp-test"}])"), std::string::npos) << r.resource;
      EXPECT_NE(r.resource.find(R"(["telemetry.sdk.language",{"s":"cpp"}])"), std::string::npos) << r.resource;
      EXPECT_NE(r.resource.find(R"(["process.pid",)"), std::string::npos) << r.resource;
      EXPECT_EQ(r.resource.find("strobe.spans_dropped"), std::string::npos) << "nothing was dropped";
    }
    const strobe::test::Decoded exported = strobe::test::decode_export_lines(file_export(path), dir.path);
    EXPECT_EQ(exported.errors, std::vector<std::string>{});
    EXPECT_EQ(exported.spans.size(), stats.spans_queued);
    EXPECT_EQ(strobe::test::span_difference(got.spans, exported.spans), "");
    EXPECT_EQ(span_ids_of(got.spans), span_ids_of_file(path));
    std::size_t remote_links = 0;
    for (const std::string& span : got.spans) remote_links += span.find("4bf92f3577b34da6a3ce929d0e0e4736") != std::string::npos;
    EXPECT_EQ(remote_links, 12u) << "each trace's rank_results links to the remote caller's span";
  }
}

// A request larger than libcurl's 2 MiB upload buffer: its spans are written into that
// buffer as libcurl reads the body, so one span is cut across two reads; what arrives
// equals the file export.
TEST(OtlpSink, ARequestLargerThanTheUploadBufferArrivesWhole) {
  const strobe::test::TempDir dir;
  const std::string path = (dir.path / "run.strobe").string();
  Collector collector({Reply{}}, 60s, /*repeat_last=*/true);
  OtlpSink::Stats stats;
  {
    auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
    OtlpSinkOptions o = options_for(collector.endpoint());
    o.batch_spans = 1 << 16;
    o.batch_bytes = 32u << 20;
    o.batch_delay = 60s;  // one batch, sent by the flush
    auto otlp = std::make_shared<OtlpSink>(o);
    {
      strobe::Recorder recorder({.service_name = "otlp-test", .sinks = {file, otlp}});
      for (int t = 0; t < 24; ++t) {
        auto root = strobe::trace("request", {{"attempt", t}});
        for (int i = 0; i < 1000; ++i) auto s = strobe::span("decode_token", strobe::Kind::step);
        auto odd = strobe::span("with_extras", strobe::Kind::tool, {{"i", t}});  // not a template's
        std::this_thread::sleep_for(5ms);  // the drainer keeps up: few spans dropped at the rings
      }
      recorder.flush();
    }
    stats = otlp->stats();
    file->close();
  }
  collector.stop();
  EXPECT_EQ(stats.spans_dropped, 0u);
  EXPECT_EQ(stats.spans_sent, stats.spans_queued);  // the recorder's rings may have dropped some of the burst
  ASSERT_FALSE(collector.requests().empty());
  std::size_t largest = 0;
  for (const Request& r : collector.requests()) largest = std::max(largest, r.body.size());
  EXPECT_GT(largest, std::size_t{2} << 20) << collector.requests().size() << " requests";
  const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path);
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  const strobe::test::Decoded exported = strobe::test::decode_export_lines(file_export(path), dir.path);
  EXPECT_EQ(exported.errors, std::vector<std::string>{});
  EXPECT_EQ(got.spans.size(), stats.spans_queued);
  EXPECT_EQ(strobe::test::span_difference(got.spans, exported.spans), "");
}

// Without a recorder: plain values given to consume(), a resumed segment and an event
// among them; what arrives is what the JSON writer makes of the same trace.
TEST(OtlpSink, ConsumeOfPlainValuesWithoutARecorder) {
  strobe::AssembledTrace t;
  t.trace_id = strobe::TraceId{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  t.root_name = "agent";
  for (std::uint64_t i = 1; i <= 4; ++i) {
    strobe::SpanData s;
    s.span_id = i;
    s.parent_id = i == 1 ? 0 : 1;
    s.name = i == 1 ? "agent" : "wait";
    s.kind = i == 1 ? strobe::Kind::agent : strobe::Kind::tool;
    s.start_ns = 1'767'225'600'000'000'000 + static_cast<std::int64_t>(i) * 1000;
    s.end_ns = s.start_ns + 500;
    s.thread_id = 7;
    if (i >= 3) {
      s.segment_of = 2;
      s.segment_index = static_cast<std::uint32_t>(i - 2);
    }
    s.events.push_back(strobe::SpanEvent{"tick", s.start_ns + 1, {strobe::Attribute{"n", {.i = 1}, false}}});
    t.spans.push_back(s);
  }
  t.chains.push_back(strobe::SegmentChain{2, {2, 3, 4}, 10});
  t.thread_names.push_back(strobe::ThreadName{7, "worker-7"});
  Collector collector({Reply{}}, 30s, true);
  {
    OtlpSink sink(options_for(collector.endpoint()));
    sink.open(strobe::RecorderInfo{.service_name = "plain", .host_name = "h", .process_id = 42});
    sink.consume(t);
    sink.flush();
    EXPECT_EQ(sink.stats().spans_sent, 4u);
  }
  collector.stop();
  strobe::serialize::otlp::RequestWriter w(Protocol::json);
  w.begin_trace(t);
  w.begin(strobe::serialize::otlp::Resource{});
  for (std::size_t i = 0; i < t.spans.size(); ++i) w.add(i);
  w.end();
  const strobe::test::TempDir dir;
  const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path);
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  ASSERT_EQ(got.requests.size(), 1u);
  EXPECT_NE(got.requests[0].resource.find(R"(["process.pid",{"i":"42"}])"), std::string::npos) << got.requests[0].resource;
  const strobe::test::Decoded want = strobe::test::decode_export_lines(std::string(w.data()) + "\n", dir.path);
  EXPECT_EQ(strobe::test::span_difference(got.spans, want.spans), "");
  std::size_t links = 0;
  for (const std::string& span : got.spans) links += span.find(R"("strobe.link.type")") != std::string::npos;
  EXPECT_EQ(links, 2u) << "segments 1 and 2 link to the one each resumes";
}

// Ten spans a trace.
void small_traces(int traces) {
  for (int t = 0; t < traces; ++t) {
    auto root = strobe::trace("job");
    for (int i = 0; i < 9; ++i) auto s = strobe::span("step", strobe::Kind::step, {{"i", i}});
  }
}

TEST(OtlpSink, AReceiverDownThenUpGetsWhatTheQueueHeldAndHearsOfTheRest) {
  const int port = free_port();
  OtlpSinkOptions o = options_for("http://127.0.0.1:" + std::to_string(port) + "/v1/traces");
  o.queue_spans = 400;
  o.batch_delay = 5ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.export_timeout = 120s;
  o.flush_timeout = 100ms;
  auto otlp = std::make_shared<OtlpSink>(o);
  strobe::Recorder recorder({.sinks = {otlp}});

  // Down for 10 s: 300 spans, within the queue, retried all along.
  small_traces(30);
  recorder.flush();
  std::this_thread::sleep_for(10s);
  EXPECT_EQ(otlp->stats().spans_sent, 0u);
  EXPECT_EQ(otlp->stats().spans_queued, 300u);
  EXPECT_EQ(otlp->stats().spans_dropped, 0u);
  EXPECT_GT(otlp->stats().retries, 0u) << "it kept trying";
  {
    Collector up({Reply{}}, 60s, true, port);
    EXPECT_TRUE(eventually([&] { return otlp->stats().spans_sent == 300; })) << otlp->stats().spans_sent;
    up.stop();
    EXPECT_EQ(otlp->stats().spans_dropped, 0u) << "nothing lost within the queue's capacity";
  }

  // Down again: 1,000 spans, more than the queue holds.
  small_traces(100);
  recorder.flush();
  const OtlpSink::Stats down = otlp->stats();
  const std::uint64_t queued = down.spans_queued - 300;
  EXPECT_GT(queued, 0u);
  EXPECT_LE(queued, 400u);
  EXPECT_EQ(down.spans_dropped, 1000 - queued);
  EXPECT_EQ(down.spans_dropped_queue_full, down.spans_dropped);
  Collector up({Reply{}}, 60s, true, port);
  EXPECT_TRUE(eventually([&] { return otlp->stats().spans_sent == 300 + queued; })) << otlp->stats().spans_sent;
  // The next batch tells the receiver what was dropped.
  small_traces(1);
  recorder.flush();
  EXPECT_TRUE(eventually([&] { return otlp->stats().spans_sent == 310 + queued; }));
  up.stop();
  const OtlpSink::Stats after = otlp->stats();
  EXPECT_EQ(after.spans_sent + after.spans_dropped, 1310u) << "every span sent or counted";
  const strobe::test::TempDir dir;
  const strobe::test::Decoded got = strobe::test::decode_requests(up.requests(), dir.path);
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  ASSERT_FALSE(got.requests.empty());
  EXPECT_NE(got.requests.back().resource.find(R"(["strobe.spans_dropped",{"i":")" + std::to_string(after.spans_dropped) + "\"}]"),
            std::string::npos)
      << got.requests.back().resource;
}

// Spans the recorder lost (its rings full) reach the receiver as a count in the resource.
TEST(OtlpSink, TheRecordersDropsAreToldInTheResource) {
  Collector collector({Reply{}}, 30s, true);
  auto otlp = std::make_shared<OtlpSink>(options_for(collector.endpoint()));
  strobe::Stats stats;
  {
    strobe::Recorder recorder({.ring_capacity = 64, .drain_interval = std::chrono::milliseconds(50), .sinks = {otlp}});
    {
      auto root = strobe::trace("burst");
      for (int i = 0; i < 5000; ++i) STROBE_SPAN(s, "step", strobe::Kind::step);
    }
    recorder.flush();
    small_traces(1);  // a batch after the drops were counted
    recorder.flush();
    stats = recorder.stats();
  }
  collector.stop();
  const std::uint64_t lost = stats.spans_dropped + stats.sink_spans_dropped;
  ASSERT_GT(lost, 0u) << "a 64-record ring under a 5,000-span burst drops";
  const strobe::test::TempDir dir;
  const strobe::test::Decoded got = strobe::test::decode_requests(collector.requests(), dir.path);
  EXPECT_EQ(got.errors, std::vector<std::string>{});
  ASSERT_FALSE(got.requests.empty());
  EXPECT_NE(got.requests.back().resource.find(R"(["strobe.recorder.spans_dropped",{"i":")" + std::to_string(lost) + "\"}]"),
            std::string::npos)
      << got.requests.back().resource;
}

TEST(OtlpSink, A429WithRetryAfterIsHonoured) {
  Collector collector({Reply{429, "{}", {{"Retry-After", "1"}}}, Reply{}}, 30s, true);
  OtlpSinkOptions o = options_for(collector.endpoint());
  o.backoff_initial = 10ms;
  auto otlp = std::make_shared<OtlpSink>(o);
  {
    strobe::Recorder recorder({.sinks = {otlp}});
    small_traces(1);
    recorder.flush();
  }
  EXPECT_TRUE(eventually([&] { return otlp->stats().spans_sent == 10; }));
  collector.stop();
  const OtlpSink::Stats s = otlp->stats();
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(s.requests, 2u);
  EXPECT_EQ(s.spans_dropped, 0u);
  ASSERT_EQ(collector.requests().size(), 2u);
  EXPECT_EQ(collector.requests()[0].body, collector.requests()[1].body) << "a retry resends the same batch";
  // Retry-After: 1 means a second, not the 10 ms backoff.
  EXPECT_GE(collector.requests()[1].received - collector.requests()[0].received, 900ms);
}

TEST(OtlpSink, A400DropsTheBatchWithoutRetrying) {
  Collector collector({Reply{400, R"({"message":"bad"})"}, Reply{}}, 30s, true);
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  OtlpSinkOptions o = options_for(collector.endpoint());
  o.on_error = [&](const std::string& line) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(line);
  };
  auto otlp = std::make_shared<OtlpSink>(o);
  {
    strobe::Recorder recorder({.sinks = {otlp}});
    small_traces(1);
    recorder.flush();
  }
  EXPECT_TRUE(eventually([&] { return otlp->stats().batches_failed == 1; }));
  const OtlpSink::Stats s = otlp->stats();
  EXPECT_EQ(s.requests, 1u);
  EXPECT_EQ(s.spans_dropped, 10u);
  EXPECT_EQ(s.spans_sent, 0u);
  EXPECT_NE(s.last_error.find("HTTP 400"), std::string::npos) << s.last_error;
  std::lock_guard lock(errors_mutex);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("dropped a batch of 10 spans"), std::string::npos) << errors[0];
}

// A 200 whose ExportTraceServiceResponse has a partial_success: counted and said.
TEST(OtlpSink, APartialSuccessIsCountedAsRejected) {
  for (const std::string& reply : {std::string("\x0a\x0c\x08\x03\x12\x08", 6) + "bad attr",
                                   std::string(R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"bad attr"}})")}) {
    SCOPED_TRACE(reply[0] == '{' ? "JSON" : "protobuf");
    Collector collector({Reply{200, reply}}, 30s, true);
    auto otlp = std::make_shared<OtlpSink>(options_for(collector.endpoint()));
    {
      strobe::Recorder recorder({.sinks = {otlp}});
      small_traces(1);
      recorder.flush();
    }
    collector.stop();
    const OtlpSink::Stats s = otlp->stats();
    EXPECT_EQ(s.spans_sent, 10u);
    EXPECT_EQ(s.spans_rejected, 3u);
    EXPECT_EQ(s.retries, 0u);
    EXPECT_NE(s.last_error.find("rejected 3 of 10 spans: bad attr"), std::string::npos) << s.last_error;
  }
}

// The receiver takes each request and never answers. Recorder::flush() waits no longer
// than flush_timeout, nor does the sink's destructor; the drainer and the sink thread go
// on: a FileSink in the same recorder gets every span, nothing is dropped on the way.
TEST(OtlpSink, AReceiverThatNeverAnswersHoldsUpNeitherTheDrainerNorTheFlush) {
  Collector collector({Reply{.hang = true}}, 60s, true);
  const strobe::test::TempDir dir;
  const std::string path = (dir.path / "run.strobe").string();
  constexpr int kTraces = 200, kSpansPerTrace = 1000;
  OtlpSinkOptions o = options_for(collector.endpoint());
  o.flush_timeout = 300ms;
  o.request_timeout = 60s;
  o.export_timeout = 60s;
  auto otlp = std::make_shared<OtlpSink>(o);
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  // The same work without the OtlpSink first, for the figures printed below.
  std::chrono::steady_clock::duration baseline_took{};
  strobe::Stats baseline;
  {
    auto alone = std::make_shared<strobe::serialize::FileSink>(
        strobe::serialize::FileSinkOptions{.path = (dir.path / "alone.strobe").string()});
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait, .service_name = "alone", .sinks = {alone}});
    const auto r0 = std::chrono::steady_clock::now();
    for (int t = 0; t < kTraces; ++t) {
      auto root = strobe::trace("job");
      for (int i = 1; i < kSpansPerTrace; ++i) STROBE_SPAN(s, "step", strobe::Kind::step);
    }
    baseline_took = std::chrono::steady_clock::now() - r0;
    recorder.flush();
    baseline = recorder.stats();
  }
  strobe::Stats stats;
  std::chrono::steady_clock::duration flush_took{}, recording_took{};
  {
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait, .service_name = "hang", .sinks = {file, otlp}});
    const auto r0 = std::chrono::steady_clock::now();
    for (int t = 0; t < kTraces; ++t) {
      auto root = strobe::trace("job");
      for (int i = 1; i < kSpansPerTrace; ++i) STROBE_SPAN(s, "step", strobe::Kind::step);
    }
    recording_took = std::chrono::steady_clock::now() - r0;
    const auto t0 = std::chrono::steady_clock::now();
    recorder.flush();
    flush_took = std::chrono::steady_clock::now() - t0;
    stats = recorder.stats();
  }
  // The figures of this run, for the record (no assertion on speed): the hot path's wall
  // time per span and the drainer's CPU per span while the receiver hangs.
  const double n = double(kTraces) * kSpansPerTrace;
  std::printf("with the receiver hanging: hot path %.1f ns/span (wall, wait policy), drainer %.1f ns/span (CPU), "
              "flush %.0f ms; without OtlpSink: %.1f, %.1f\n",
              std::chrono::duration<double, std::nano>(recording_took).count() / n, double(stats.drainer_cpu_ns) / n,
              std::chrono::duration<double, std::milli>(flush_took).count(),
              std::chrono::duration<double, std::nano>(baseline_took).count() / n, double(baseline.drainer_cpu_ns) / n);
  EXPECT_GE(collector.request_count(), 1u) << "the receiver took a request";
  EXPECT_LT(flush_took, 300ms + 5s) << "flush keeps its deadline";
  EXPECT_EQ(stats.records_dropped, 0u);
  EXPECT_EQ(stats.sink_spans_dropped, 0u) << "the sink thread never waited on the receiver";
  EXPECT_EQ(stats.spans_assembled, std::uint64_t{kTraces} * kSpansPerTrace);
  const OtlpSink::Stats before = otlp->stats();
  EXPECT_EQ(before.spans_sent, 0u);
  EXPECT_EQ(before.spans_queued, std::uint64_t{kTraces} * kSpansPerTrace);
  const auto t0 = std::chrono::steady_clock::now();
  otlp.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms + 5s) << "the destructor keeps flush_timeout";
  file->close();
  EXPECT_EQ(span_ids_of_file(path).size(), std::size_t{kTraces} * kSpansPerTrace);
  collector.stop();
}

}  // namespace
