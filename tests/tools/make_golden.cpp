// Writes tests/tools/data/golden.strobe: a small, byte-stable strobe file that the tool
// tests read (golden outputs of tree/stats/jsonl, OTLP and Chrome checks, damage cases).
// Every id, timestamp and string is fixed here, so the file only changes when this program
// or the file format does.
//
// Regenerate (then re-review and refreeze the golden outputs next to it):
//   cmake --build build --target tools_make_golden
//   ./build/tests/tools_make_golden tests/tools/data/golden.strobe
//   for c in tree stats; do ./build/tools/strobe $c tests/tools/data/golden.strobe \
//       > tests/tools/data/golden.$c.txt; done
//   ./build/tools/strobe export --format jsonl tests/tools/data/golden.strobe \
//       > tests/tools/data/golden.jsonl
//
// Contents (three traces in two batch frames, then the end frame):
//   batch 1  trace 1 "research-agent": agent root; plan with a log line and a custom-kind
//            child; three parallel retrievals on three threads (one group); an llm span
//            with model, tokens, input/output, an event and a child; a tool suspended and
//            resumed on another thread (two segments); a failed tool with error message
//            and data; an incomplete step.
//   batch 2  trace 2 "batch-job": a root whose tool threw, a zero-length one-shot span
//            touching its sibling, and drops before it.
//            trace 3 "long-runner": part 0 of a trace handed over before its root ended.

#include <strobe/serialize/writer.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

using namespace strobe;

namespace {

constexpr std::int64_t kStart = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z
constexpr std::int64_t kT0 = kStart + 1'000'000'000;
constexpr std::int64_t kUs = 1'000;
constexpr std::int64_t kMs = 1'000'000;
constexpr std::uint64_t kMain = 1001, kWorker1 = 1002, kWorker2 = 1003, kWorker3 = 1004;

Attribute attr(std::string key, std::int64_t v) {
  Attribute a{std::move(key), {}, false};
  a.value.type = AttrValue::Type::i64;
  a.value.i = v;
  return a;
}
Attribute attr(std::string key, double v) {
  Attribute a{std::move(key), {}, false};
  a.value.type = AttrValue::Type::f64;
  a.value.d = v;
  return a;
}
Attribute attr(std::string key, bool v) {
  Attribute a{std::move(key), {}, false};
  a.value.type = AttrValue::Type::boolean;
  a.value.i = v ? 1 : 0;
  return a;
}
Attribute attr(std::string key, const char* v) {
  Attribute a{std::move(key), {}, false};
  a.value.type = AttrValue::Type::string;
  a.value.s = v;
  return a;
}

SpanData span(std::uint64_t id, std::uint64_t parent, std::string name, Kind kind, std::int64_t start,
              std::int64_t end, std::uint64_t thread = kMain) {
  SpanData s;
  s.span_id = id;
  s.parent_id = parent;
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = start;
  s.end_ns = end;
  s.thread_id = thread;
  s.end_thread_id = thread;
  return s;
}

AssembledTrace research_agent() {
  AssembledTrace t;
  t.trace_id = TraceId{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  t.root_name = "research-agent";
  t.service_name = "golden-service";
  t.process_id = 4242;
  const std::uint64_t root = 0x0000000100000001, plan = 0x0000000100000002, score = 0x0000000100000003,
                      docs = 0x0000000200000001, web = 0x0000000300000001, kb = 0x0000000400000001,
                      llm = 0x0000000100000004, tokenize = 0x0000000100000005, wait0 = 0x0000000100000006,
                      fetch = 0x0000000100000007, wait1 = 0x0000000200000002, summarize = 0x0000000100000008;

  SpanData s = span(root, 0, "research-agent", Kind::agent, kT0, kT0 + 250 * kMs);
  s.flags = kSpanTraceRoot;
  s.tags = {"prod"};
  s.attrs = {attr("user", "alice"), attr("attempt", std::int64_t{1})};
  t.spans.push_back(s);

  s = span(plan, root, "make_plan", Kind::plan, kT0 + 1 * kMs, kT0 + 5 * kMs);
  s.events = {SpanEvent{"log", kT0 + 2 * kMs, {attr("message", "planning 3 lookups")}}};
  t.spans.push_back(s);

  s = span(score, plan, "score_plan", Kind::custom, kT0 + 2 * kMs, kT0 + 3 * kMs + 500 * kUs);
  s.kind_name = "heuristic";
  s.attrs = {attr("score", 0.75)};
  t.spans.push_back(s);

  s = span(docs, root, "search_docs", Kind::retrieval, kT0 + 6 * kMs, kT0 + 40 * kMs, kWorker1);
  s.group = 0;
  s.attrs = {attr("top_k", std::int64_t{5})};
  s.events = {SpanEvent{"cache_miss", kT0 + 7 * kMs, {attr("key", "docs:strobe"), attr("shard", std::int64_t{3})}}};
  t.spans.push_back(s);

  s = span(web, root, "search_web", Kind::retrieval, kT0 + 6 * kMs + 200 * kUs, kT0 + 35 * kMs, kWorker2);
  s.group = 0;
  s.attrs = {attr("top_k", std::int64_t{5}), attr("engine", "web")};
  t.spans.push_back(s);

  s = span(kb, root, "search_kb", Kind::retrieval, kT0 + 6 * kMs + 400 * kUs, kT0 + 45 * kMs, kWorker3);
  s.group = 0;
  s.attrs = {attr("top_k", std::int64_t{3}), attr("min_score", 0.5)};
  t.spans.push_back(s);

  s = span(llm, root, "generate_answer", Kind::llm, kT0 + 50 * kMs, kT0 + 150 * kMs);
  s.model = "gpt-4o-mini";
  s.has_tokens = true;
  s.tokens = TokenUsage{1200, 350, 800};
  s.input = "What is strobe?";
  s.output = "A span recorder for hot code.";
  s.tags = {"streaming"};
  s.attrs = {attr("temperature", 0.2), attr("stream", true)};
  s.events = {SpanEvent{"first_token", kT0 + 80 * kMs, {attr("latency_ms", std::int64_t{30})}}};
  t.spans.push_back(s);

  s = span(tokenize, llm, "tokenize", Kind::step, kT0 + 50 * kMs + 100 * kUs, kT0 + 50 * kMs + 912 * kUs);
  t.spans.push_back(s);

  s = span(wait0, root, "wait_approval", Kind::tool, kT0 + 151 * kMs, kT0 + 160 * kMs);
  s.flags = kSpanSuspended;
  s.segment_of = wait0;
  s.segment_index = 0;
  t.spans.push_back(s);

  s = span(fetch, root, "fetch_url", Kind::tool, kT0 + 165 * kMs, kT0 + 170 * kMs + 250 * kUs);
  s.status = Status::failed;
  s.error_message = "connection refused";
  s.error_data = R"({"url":"http://example.com/a","errno":111})";
  s.attrs = {attr("url", "http://example.com/a")};
  t.spans.push_back(s);

  s = span(wait1, root, "wait_approval", Kind::tool, kT0 + 200 * kMs, kT0 + 205 * kMs, kWorker1);
  s.segment_of = wait0;
  s.segment_index = 1;
  t.spans.push_back(s);

  s = span(summarize, root, "summarize", Kind::step, kT0 + 210 * kMs, kT0 + 250 * kMs);
  s.status = Status::incomplete;
  s.flags = kSpanIncomplete;
  s.end_thread_id = 0;
  t.spans.push_back(s);

  t.groups = {ParallelGroup{0, root, {docs, web, kb}, kT0 + 6 * kMs, kT0 + 45 * kMs, 3}};
  t.chains = {SegmentChain{wait0, {wait0, wait1}, 40 * kMs}};
  return t;
}

AssembledTrace batch_job() {
  AssembledTrace t;
  t.trace_id = TraceId{0x1111111111111111ULL, 0x2222222222222222ULL};
  t.root_name = "batch-job";
  t.service_name = "golden-service";
  t.process_id = 4242;
  t.drops_since_previous = DropCounts{1, 3};
  const std::int64_t t0 = kT0 + 2'000 * kMs;
  SpanData s = span(0x0000000100000010, 0, "batch-job", Kind::agent, t0, t0 + 30 * kMs);
  s.flags = kSpanTraceRoot;
  t.spans.push_back(s);
  s = span(0x0000000100000011, 0x0000000100000010, "load_rows", Kind::tool, t0 + 1 * kMs, t0 + 12 * kMs);
  s.attrs = {attr("rows", std::int64_t{1024})};
  t.spans.push_back(s);
  // Zero-length, at the instant load_rows ends (record_span with a zero duration).
  s = span(0x0000000100000013, 0x0000000100000010, "checkpoint", Kind::step, t0 + 12 * kMs, t0 + 12 * kMs);
  s.flags = kSpanOneShot;
  t.spans.push_back(s);
  s = span(0x0000000100000012, 0x0000000100000010, "write_rows", Kind::tool, t0 + 13 * kMs, t0 + 29 * kMs);
  s.status = Status::failed;
  s.flags = kSpanThrown;
  s.error_message = "std::runtime_error: disk full";
  t.spans.push_back(s);
  return t;
}

AssembledTrace long_runner() {
  AssembledTrace t;
  t.trace_id = TraceId{0x3333333333333333ULL, 0x4444444444444444ULL};
  t.root_name = "long-runner";
  t.service_name = "golden-service";
  t.process_id = 4242;
  t.part = 0;
  t.partial = true;
  const std::int64_t t0 = kT0 + 3'000 * kMs;
  SpanData s = span(0x0000000100000020, 0, "long-runner", Kind::agent, t0, t0 + 500 * kMs);
  s.status = Status::incomplete;
  s.flags = kSpanTraceRoot | kSpanIncomplete;
  s.end_thread_id = 0;
  t.spans.push_back(s);
  s = span(0x0000000100000021, 0x0000000100000020, "decode_step", Kind::action, t0 + 10 * kMs, t0 + 10 * kMs + 812);
  t.spans.push_back(s);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.strobe\n", argv[0]);
    return 2;
  }
  try {
    serialize::FileSinkOptions options;
    options.path = argv[1];
    serialize::FileSink sink(options);
    RecorderInfo info;
    info.service_name = "golden-service";
    info.host_name = "golden-host";
    info.process_id = 4242;
    info.start_ns = kStart;
    info.clock = "steady";
    info.ns_per_tick = 1.0;
    sink.open(info);
    sink.consume(research_agent());
    sink.flush();  // ends batch 1
    sink.consume(batch_job());
    sink.consume(long_runner());
    sink.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_golden: %s\n", e.what());
    return 1;
  }
  return 0;
}
