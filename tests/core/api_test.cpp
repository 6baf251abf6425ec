// The public span API end to end: each reference example is recorded for real, assembled
// by a running Recorder, rendered with render_tree() and compared to the expected tree.

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::Attribute;
using strobe::AttrValue;
using strobe::Kind;
using strobe::SpanData;
using strobe::Status;
using strobe::test::render_tree;
using namespace std::chrono_literals;

strobe::Config config_for(const std::shared_ptr<strobe::MemorySink>& sink) {
  strobe::Config c;
  c.sinks = {sink};
  return c;
}

// "key:type=value" per attribute, so a wrong type or value shows up in the failure text.
std::string describe(const std::vector<Attribute>& attrs) {
  std::string out;
  for (const Attribute& a : attrs) {
    if (!out.empty()) out += ' ';
    out += a.key;
    switch (a.value.type) {
      case AttrValue::Type::i64: out += ":i64=" + std::to_string(a.value.i); break;
      case AttrValue::Type::f64: out += ":f64=" + std::to_string(a.value.d); break;
      case AttrValue::Type::boolean: out += a.value.i != 0 ? ":bool=true" : ":bool=false"; break;
      case AttrValue::Type::string: out += ":str=" + a.value.s; break;
    }
    if (a.truncated) out += "(truncated)";
  }
  return out;
}

const SpanData* find_span(const AssembledTrace& t, std::string_view name) {
  for (const SpanData& s : t.spans)
    if (s.name == name) return &s;
  return nullptr;
}

// The one trace the sink holds; fails the test (and returns an empty trace) otherwise.
AssembledTrace only_trace(const strobe::MemorySink& sink) {
  const std::vector<AssembledTrace> traces = sink.traces();
  EXPECT_EQ(traces.size(), 1u);
  return traces.empty() ? AssembledTrace{} : traces.front();
}

// STROBE_SPAN looks its call site's name up only when a recorder is active: the same
// site run first with none (a no-op) and then under one records its name and kind, in
// every form the macro takes.
TEST(Api, CallSiteSpanNamesItselfOnlyWhenRecording) {
  auto sink = std::make_shared<strobe::MemorySink>();
  auto record = [](int round) {
    STROBE_SPAN(step, "site.step", Kind::step, {{"round", round}});
    EXPECT_EQ(step.recording(), strobe::Recorder::active());
    {
      STROBE_SPAN(lookup, "site.lookup", "vector-db");
      STROBE_SPAN(plain, "site.plain");
      plain.attr("round", round);
    }
  };
  record(0);  // no recorder: every call is a no-op
  {
    strobe::Recorder recorder(config_for(sink));
    auto root = strobe::trace("site.root");
    record(1);
    record(2);
  }
  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent site.root\n"
            "  step site.step\n"
            "    custom:vector-db site.lookup\n"
            "      span site.plain\n"
            "  step site.step\n"
            "    custom:vector-db site.lookup\n"
            "      span site.plain\n");
  EXPECT_EQ(describe(t.spans[1].attrs), "round:i64=1");
  EXPECT_EQ(describe(t.spans[3].attrs), "round:i64=1");
}

// A STROBE_SPAN (and STROBE_NAME, STROBE_NEXT) whose name is known only at run time takes
// each call's name, not the first one the call site saw; a constant name beside it is
// still interned once.
TEST(Api, CallSiteSpanTakesANameKnownAtRunTime) {
  auto sink = std::make_shared<strobe::MemorySink>();
  {
    strobe::Recorder recorder(config_for(sink));
    auto root = strobe::trace("agent");
    for (const std::string tool : {"fetch_db", "fetch_api"}) {
      STROBE_SPAN(call, tool, Kind::tool);
      call.attr(STROBE_NAME(tool + ".rows"), 3);
      STROBE_NEXT(call, std::string_view(tool) == "fetch_db" ? "parse_db" : "parse_api");
    }
    for (const char* stage : {"plan", "act"}) {
      STROBE_SPAN(step, stage, "stage");
    }
  }
  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent agent\n"
            "  tool fetch_db\n"
            "  tool parse_db\n"
            "  tool fetch_api\n"
            "  tool parse_api\n"
            "  custom:stage plan\n"
            "  custom:stage act\n");
  EXPECT_EQ(describe(t.spans[1].attrs), "fetch_db.rows:i64=3");
  EXPECT_EQ(describe(t.spans[3].attrs), "fetch_api.rows:i64=3");
}

// start_span takes a string as span() does, and StartOptions in declaration order.
TEST(Api, StartSpanTakesAStringLikeSpan) {
  auto sink = std::make_shared<strobe::MemorySink>();
  {
    strobe::Recorder recorder(config_for(sink));
    auto root = strobe::trace("agent");
    const std::string name = "from_string";
    auto literal = strobe::start_span("literal", Kind::tool);
    literal.finish();
    auto owned = strobe::start_span(name, Kind::step, {.mark_as_current = true});
    auto view = strobe::start_span(std::string_view("view"));
    auto other = strobe::start_span("own_trace", Kind::agent,
                                    {.mark_as_current = false, .new_trace = true});
    EXPECT_NE(other.trace_id(), root.trace_id());
    EXPECT_EQ(view.parent_id(), owned.span_id());  // owned is current
  }
  std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 2u);
  const AssembledTrace& t = traces[0].root_name == "agent" ? traces[0] : traces[1];
  EXPECT_EQ(render_tree(t),
            "agent agent\n"
            "  tool literal\n"
            "  step from_string\n"
            "    span view\n");
}

TEST(Api, NestedSpansCarryTypedAttributesAndTimedEvents) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::trace("rag-agent", {{"user", "ada"}});
    STROBE_SPAN(plan, "analyze_query", Kind::plan);
    plan.attr("k", 3).attr("temperature", 0.25).attr("stream", true);
    plan.attr("query", "what is strobe?");
    plan.event("cache_miss", {{"key", "q:17"}, {"bytes", 512}});
    plan.event(STROBE_NAME("rewritten"), {{"changed", false}});
    {
      auto lookup = strobe::span("lookup", "vector-db", {{"top_k", 5}});
      lookup.event("hit", {{"score", 0.5}});
    }
    {
      STROBE_SPAN(gen, "generate", Kind::llm, {{"max_tokens", std::int64_t{1} << 40}});
    }
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent rag-agent\n"
            "  plan analyze_query\n"
            "    custom:vector-db lookup\n"
            "    llm generate\n");
  EXPECT_EQ(t.root_name, "rag-agent");
  EXPECT_FALSE(t.partial);
  ASSERT_EQ(t.spans.size(), 4u);

  EXPECT_EQ(describe(t.spans[0].attrs), "user:str=ada");
  const SpanData* plan = find_span(t, "analyze_query");
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(describe(plan->attrs),
            "k:i64=3 temperature:f64=0.250000 stream:bool=true query:str=what is strobe?");
  ASSERT_EQ(plan->events.size(), 2u);
  EXPECT_EQ(plan->events[0].name, "cache_miss");
  EXPECT_EQ(describe(plan->events[0].attrs), "key:str=q:17 bytes:i64=512");
  EXPECT_EQ(plan->events[1].name, "rewritten");
  EXPECT_EQ(describe(plan->events[1].attrs), "changed:bool=false");
  // Each event is stamped when it happens, inside its span.
  EXPECT_LE(plan->start_ns, plan->events[0].time_ns);
  EXPECT_LE(plan->events[0].time_ns, plan->events[1].time_ns);
  EXPECT_LE(plan->events[1].time_ns, plan->end_ns);

  const SpanData* lookup = find_span(t, "lookup");
  ASSERT_NE(lookup, nullptr);
  EXPECT_EQ(lookup->kind, Kind::custom);
  EXPECT_EQ(lookup->kind_name, "vector-db");
  EXPECT_EQ(describe(lookup->attrs), "top_k:i64=5");
  ASSERT_EQ(lookup->events.size(), 1u);
  EXPECT_EQ(describe(lookup->events[0].attrs), "score:f64=0.500000");
  EXPECT_EQ(describe(find_span(t, "generate")->attrs), "max_tokens:i64=1099511627776");

  // Children lie inside their parents.
  for (const SpanData& s : t.spans) {
    EXPECT_LE(s.start_ns, s.end_ns) << s.name;
    EXPECT_EQ(s.status, Status::ok) << s.name;
    EXPECT_EQ(s.group, -1) << s.name;
  }
  EXPECT_LE(t.spans[0].start_ns, plan->start_ns);
  EXPECT_LE(plan->end_ns, t.spans[0].end_ns);
  EXPECT_LE(lookup->end_ns, find_span(t, "generate")->start_ns);
}

// Three retrievals handed to three threads under one parent, all open at once: one
// parallel group of three with peak concurrency three.
TEST(Api, RetrievalsFannedOutToThreadsFormOneParallelGroup) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  std::uint64_t gather_id = 0;
  {
    auto run = strobe::trace("research-agent");
    {
      auto gather = strobe::span("gather", Kind::plan);
      gather_id = gather.span_id();
      const strobe::Context ctx = strobe::current();
      std::barrier all_open(3);
      std::vector<std::thread> workers;
      for (const char* name : {"fetch_web", "fetch_db", "fetch_docs"}) {
        workers.emplace_back([&, name] {
          strobe::ContextScope scope(ctx);
          auto fetch = strobe::span(name, Kind::retrieval, {{"source", name}});
          all_open.arrive_and_wait();
          std::this_thread::sleep_for(1ms);  // overlap by far more than any clock skew
        });
      }
      for (auto& w : workers) w.join();
    }
    auto answer = strobe::span("answer", Kind::llm);
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent research-agent\n"
            "  plan gather\n"
            "    || retrieval fetch_db\n"
            "    || retrieval fetch_docs\n"
            "    || retrieval fetch_web\n"
            "  llm answer\n");
  ASSERT_EQ(t.groups.size(), 1u);
  const strobe::ParallelGroup& g = t.groups[0];
  EXPECT_EQ(g.members.size(), 3u);
  EXPECT_EQ(g.peak_concurrency, 3u);
  EXPECT_EQ(g.parent_id, gather_id);
  for (std::uint64_t id : g.members) {
    auto it = std::find_if(t.spans.begin(), t.spans.end(),
                           [&](const SpanData& s) { return s.span_id == id; });
    ASSERT_NE(it, t.spans.end());
    EXPECT_EQ(it->parent_id, gather_id);
    EXPECT_EQ(it->group, 0);
    EXPECT_NE(it->thread_id, t.spans[0].thread_id) << it->name << " ran on the main thread";
    EXPECT_LE(g.start_ns, it->start_ns);
    EXPECT_LE(it->end_ns, g.end_ns);
  }
}

// The agent's reasoning span waits (suspends) while a tool runs and resumes afterwards:
// two segments of one logical operation, linked in one chain, with the wait measured.
TEST(Api, WeatherAgentSuspendsWhileToolRunsAndResumes) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  std::uint64_t think_id = 0;
  {
    auto run = strobe::trace("weather-agent");
    strobe::SuspendToken token;
    {
      auto think = strobe::span("think", Kind::llm);
      think_id = think.span_id();
      think.output("call get_weather(Paris)");
      token = think.suspend();
      EXPECT_FALSE(think.recording());
    }
    ASSERT_TRUE(token.valid());
    EXPECT_EQ(token.span_id(), think_id);
    EXPECT_EQ(token.segment_index(), 0u);
    {
      auto tool = strobe::span("get_weather", Kind::tool, {{"city", "Paris"}});
      std::this_thread::sleep_for(1ms);
    }
    auto think = strobe::resume(token);
    EXPECT_TRUE(think.recording());
    EXPECT_NE(think.span_id(), think_id);
    think.output("It is sunny in Paris.");
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent weather-agent\n"
            "  llm think #0\n"
            "  tool get_weather\n"
            "  llm think #1\n");
  ASSERT_EQ(t.chains.size(), 1u);
  const strobe::SegmentChain& chain = t.chains[0];
  EXPECT_EQ(chain.first_span_id, think_id);
  ASSERT_EQ(chain.segments.size(), 2u);
  EXPECT_EQ(chain.segments[0], think_id);
  EXPECT_GT(chain.waited_ns, 0);
  const SpanData* tool = find_span(t, "get_weather");
  ASSERT_NE(tool, nullptr);
  EXPECT_GE(chain.waited_ns, tool->duration_ns());  // the tool ran inside the wait
  EXPECT_TRUE(t.spans[1].flags & strobe::kSpanSuspended);
  EXPECT_EQ(t.spans[1].output, "call get_weather(Paris)");
  EXPECT_EQ(t.spans[3].span_id, chain.segments[1]);
  EXPECT_EQ(t.spans[3].segment_of, think_id);
  EXPECT_EQ(t.spans[3].parent_id, t.spans[0].span_id);
  EXPECT_EQ(t.spans[3].output, "It is sunny in Paris.");
  EXPECT_TRUE(t.groups.empty());
}

TEST(Api, ParentChildGrandchildNestThroughTheCurrentSpan) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto parent = strobe::span("parent", Kind::agent);
    {
      auto child = strobe::span("child", Kind::step);
      { auto grandchild = strobe::span("grandchild"); }
      { auto second_grandchild = strobe::span("second_grandchild", Kind::tool); }
    }
    auto sibling = strobe::span("child_two", Kind::action);
  }
  recorder.flush();
  EXPECT_EQ(render_tree(only_trace(*sink)),
            "agent parent\n"
            "  step child\n"
            "    span grandchild\n"
            "    tool second_grandchild\n"
            "  action child_two\n");
}

TEST(Api, ExceptionEscapingAScopeMarksTheSpanFailed) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    try {
      auto risky = strobe::span("risky_tool", Kind::tool);
      throw std::runtime_error("tool crashed");
    } catch (const std::runtime_error&) {
    }
    auto after = strobe::span("after");  // the context was restored by the unwound span
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent run\n"
            "  tool risky_tool [failed]\n"
            "  span after\n");
  const SpanData* risky = find_span(t, "risky_tool");
  ASSERT_NE(risky, nullptr);
  EXPECT_EQ(risky->status, Status::failed);
  EXPECT_TRUE(risky->flags & strobe::kSpanThrown);
  EXPECT_FALSE(risky->error_message.empty());
  EXPECT_FALSE(find_span(t, "run")->flags & strobe::kSpanThrown);
}

// The hot path reads the thread's count of exceptions in flight straight from the C++
// runtime. A span begun and ended while another exception unwinds (in a destructor) did
// not fail; the span the exception escapes did, on whichever thread it runs.
TEST(Api, SpansInADestructorDuringUnwindingAreNotFailed) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  struct Cleanup {
    ~Cleanup() { auto s = strobe::span("cleanup"); }
  };
  std::thread([] {
    auto run = strobe::span("run", Kind::agent);
    try {
      Cleanup c;
      auto risky = strobe::span("risky");
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    EXPECT_NE(strobe::detail::t_state.uncaught, nullptr) << "the direct read is in use";
  }).join();
  recorder.flush();
  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent run\n"
            "  span risky [failed]\n"
            "  span cleanup\n");
  EXPECT_TRUE(find_span(t, "risky")->flags & strobe::kSpanThrown);
  EXPECT_FALSE(find_span(t, "cleanup")->flags & strobe::kSpanThrown);
}

// Attributes under an interned key take an inline path for numbers and for strings of up
// to 32 bytes; longer strings, and strings over max_string_bytes, take the general one.
// Every form must arrive the same.
TEST(Api, InternedKeyAttributesOfEveryLengthArrive) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config = config_for(sink);
  config.max_string_bytes = 40;
  strobe::Recorder recorder(config);
  const std::string s32(32, 'a'), s33(33, 'b'), s50(50, 'c');
  {
    auto root = strobe::trace("run");
    STROBE_SPAN(s, "attrs");
    s.attr(STROBE_NAME("i"), -7)
        .attr(STROBE_NAME("u8"), std::uint8_t{200})
        .attr(STROBE_NAME("f"), 0.25f)
        .attr(STROBE_NAME("b"), true)
        .attr(STROBE_NAME("lit"), "hi")
        .attr(STROBE_NAME("empty"), "")
        .attr(STROBE_NAME("s32"), s32)
        .attr(STROBE_NAME("s33"), std::string_view(s33))
        .attr(STROBE_NAME("s50"), s50);
  }
  recorder.flush();
  const AssembledTrace t = only_trace(*sink);
  const SpanData* s = find_span(t, "attrs");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(describe(s->attrs), "i:i64=-7 u8:i64=200 f:f64=0.250000 b:bool=true lit:str=hi empty:str= s32:str=" + s32 +
                                    " s33:str=" + s33 + " s50:str=" + std::string(40, 'c') + "(truncated)");
  ASSERT_EQ(s->attrs.size(), 9u);
  EXPECT_FALSE(s->attrs[6].truncated);
  EXPECT_FALSE(s->attrs[7].truncated);
  EXPECT_TRUE(s->attrs[8].truncated) << "cut to max_string_bytes";
}

TEST(Api, RecordSpanKeepsExplicitStartAndDuration) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  const auto start = std::chrono::system_clock::now() - 5ms;
  const std::int64_t start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  std::uint64_t parent_id = 0;
  {
    auto run = strobe::span("run", Kind::agent);
    parent_id = run.span_id();
    strobe::record_span("cached_llm_call", Kind::llm, start, 1234567ns, Status::ok,
                        {{"cache_hit", true}, {"latency_ms", 1.234567}});
    strobe::record_span("failed_call", Kind::tool, start + 2ms, 10ns, Status::failed);
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent run\n"
            "  llm cached_llm_call\n"
            "  tool failed_call [failed]\n");
  const SpanData* cached = find_span(t, "cached_llm_call");
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->start_ns, start_ns);
  EXPECT_EQ(cached->end_ns, start_ns + 1234567);
  EXPECT_EQ(cached->parent_id, parent_id);
  EXPECT_TRUE(cached->flags & strobe::kSpanOneShot);
  EXPECT_EQ(describe(cached->attrs), "cache_hit:bool=true latency_ms:f64=1.234567");
  const SpanData* failed = find_span(t, "failed_call");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->start_ns, start_ns + 2'000'000);
  EXPECT_EQ(failed->end_ns, start_ns + 2'000'010);
}

// What a Tracium user passes to record_span: input, output, model, tokens and an error,
// through RecordOptions; the error makes the span failed with that message.
TEST(Api, RecordSpanTakesInputOutputModelTokensAndError) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  const auto start = std::chrono::system_clock::now() - 10ms;
  const std::int64_t start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  {
    auto run = strobe::trace("rag-agent");
    strobe::record_span("generate", Kind::llm, start, 3ms,
                        {.input = "what is strobe?", .output = "a span recorder", .model = "gpt-4",
                         .tokens = {.input = 100, .output = 200, .cached_input = 50},
                         .attrs = {{"temperature", 0.5}}});
    strobe::record_span("lookup", Kind::tool, start, start + 2ms,
                        {.input = "user_123", .error = "timed out"});
    strobe::record_span("refused", Kind::tool, start, 1ms, {.status = Status::failed});
    strobe::record_span("backwards", Kind::step, start, start - 1ms);  // an end before its start
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent rag-agent\n"
            "  || llm generate\n"
            "  || tool lookup [failed]\n"
            "  || tool refused [failed]\n"
            "  step backwards\n");  // the first three overlap (one start); an empty span overlaps nothing
  const SpanData* gen = find_span(t, "generate");
  ASSERT_NE(gen, nullptr);
  EXPECT_EQ(gen->start_ns, start_ns);
  EXPECT_EQ(gen->end_ns, start_ns + 3'000'000);
  EXPECT_EQ(gen->input, "what is strobe?");
  EXPECT_EQ(gen->output, "a span recorder");
  EXPECT_EQ(gen->model, "gpt-4");
  EXPECT_TRUE(gen->has_tokens);
  EXPECT_EQ(gen->tokens, (strobe::TokenUsage{100, 200, 50}));
  EXPECT_EQ(gen->status, Status::ok);
  EXPECT_EQ(describe(gen->attrs), "temperature:f64=0.500000");
  EXPECT_TRUE(gen->flags & strobe::kSpanOneShot);
  const SpanData* lookup = find_span(t, "lookup");
  ASSERT_NE(lookup, nullptr);
  EXPECT_EQ(lookup->end_ns - lookup->start_ns, 2'000'000);
  EXPECT_EQ(lookup->status, Status::failed);
  EXPECT_EQ(lookup->error_message, "timed out");
  EXPECT_EQ(lookup->input, "user_123");
  EXPECT_FALSE(lookup->has_tokens) << "no tokens given: none recorded";
  const SpanData* refused = find_span(t, "refused");
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->error_message, "");
  const SpanData* backwards = find_span(t, "backwards");
  ASSERT_NE(backwards, nullptr);
  EXPECT_EQ(backwards->start_ns, start_ns);
  EXPECT_EQ(backwards->end_ns, start_ns);
}

// "This took 45 ms and ended now": the span ends at the instant of the call, on the clock
// the recorder stamps its other spans with, so it sits between the spans around it.
TEST(Api, RecordSpanWithADurationEndsNow) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::trace("agent");
    { auto before = strobe::span("before"); }
    strobe::record_span("cached_call", Kind::llm, 45ms, {.model = "gpt-4"});
    { auto after = strobe::span("after"); }
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  const SpanData* before = find_span(t, "before");
  const SpanData* call = find_span(t, "cached_call");
  const SpanData* after = find_span(t, "after");
  ASSERT_TRUE(before != nullptr && call != nullptr && after != nullptr);
  EXPECT_EQ(call->end_ns - call->start_ns, 45'000'000);
  EXPECT_GE(call->end_ns, before->end_ns) << "ended at the call, after the span before it";
  EXPECT_LE(call->end_ns, after->start_ns) << "ended at the call, before the span after it";
  EXPECT_EQ(call->model, "gpt-4");
  EXPECT_TRUE(call->flags & strobe::kSpanOneShot);
}

// record_span returns the recorded span's context: spans begun under it are its children,
// and its span_id() is the id the trace gives it. Invalid with no recorder.
TEST(Api, RecordSpanReturnsTheContextOfTheSpanItRecorded) {
  EXPECT_FALSE(strobe::record_span("none", Kind::tool, 1ms).valid());
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  strobe::Context ctx;
  strobe::TraceId trace;
  {
    auto run = strobe::trace("agent");
    trace = run.trace_id();
    ctx = strobe::record_span("plan", Kind::plan, 5ms, {.output = "fetch, then answer"});
    ASSERT_TRUE(ctx.valid());
    EXPECT_EQ(ctx.trace_id(), trace);
    EXPECT_NE(ctx.span_id(), run.span_id());
    EXPECT_EQ(strobe::current().span_id(), run.span_id()) << "a one-shot span is never current";
    {
      strobe::ContextScope adopt(ctx);
      strobe::record_span("fetch", Kind::tool, 2ms);
      auto answer = strobe::span("answer", Kind::llm);
    }
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent agent\n"
            "  plan plan\n"
            "    tool fetch\n"
            "    llm answer\n");
  const SpanData* plan = find_span(t, "plan");
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->span_id, ctx.span_id());
}

// started_at() / ended_at() on the handle: the times the trace gives the span (the same
// clock and conversion), ended_at() empty while it is open; the epoch for a no-op handle.
TEST(Api, SpanHandleSaysWhenItStartedAndEnded) {
  strobe::Span none;
  EXPECT_EQ(none.started_at(), std::chrono::system_clock::time_point{});
  EXPECT_EQ(none.ended_at(), std::chrono::system_clock::time_point{});

  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  const auto ns = [](std::chrono::system_clock::time_point tp) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  };
  std::int64_t run_start = 0, step_start = 0, step_end = 0, next_start = 0, next_end = 0;
  {
    const auto wall_before = std::chrono::system_clock::now();
    auto run = strobe::trace("agent");
    run_start = ns(run.started_at());
    EXPECT_NEAR(static_cast<double>(run_start), static_cast<double>(ns(wall_before)), 50e6)
        << "wall-clock time, not clock ticks";
    auto step = strobe::start_span("step", Kind::step);
    EXPECT_EQ(step.ended_at(), std::chrono::system_clock::time_point{}) << "open";
    std::this_thread::sleep_for(1ms);
    step.finish();
    step_start = ns(step.started_at());
    step_end = ns(step.ended_at());
    EXPECT_GE(step_end - step_start, 1'000'000);

    strobe::Span chain = strobe::span("attention");
    chain.next(strobe::Name("mlp"));  // the handle is now the sibling: its own times
    next_start = ns(chain.started_at());
    EXPECT_EQ(chain.ended_at(), std::chrono::system_clock::time_point{});
    strobe::Span moved = std::move(chain);
    EXPECT_EQ(ns(moved.started_at()), next_start) << "a move keeps the times";
    moved.finish();
    next_end = ns(moved.ended_at());
    EXPECT_EQ(run.ended_at(), std::chrono::system_clock::time_point{});
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  const SpanData* run = find_span(t, "agent");
  const SpanData* step = find_span(t, "step");
  const SpanData* mlp = find_span(t, "mlp");
  ASSERT_TRUE(run != nullptr && step != nullptr && mlp != nullptr);
  // The same conversion as the drainer's; only a recalibration of the clock's slope in
  // between could move them, and by far less than a microsecond over this test.
  EXPECT_NEAR(static_cast<double>(run_start), static_cast<double>(run->start_ns), 1000);
  EXPECT_NEAR(static_cast<double>(step_start), static_cast<double>(step->start_ns), 1000);
  EXPECT_NEAR(static_cast<double>(step_end), static_cast<double>(step->end_ns), 1000);
  EXPECT_NEAR(static_cast<double>(next_start), static_cast<double>(mlp->start_ns), 1000);
  EXPECT_NEAR(static_cast<double>(next_end), static_cast<double>(mlp->end_ns), 1000);
}

// flush() hands over a trace whose span is still open as an incomplete part; the span
// goes on and arrives complete in the next part once it ends.
TEST(Api, UnfinishedSpanAtFlushIsEmittedIncomplete) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  auto job = strobe::start_span(strobe::Name("long_job"), Kind::action);
  job.attr("phase", 1);
  recorder.flush();

  std::vector<AssembledTrace> first = sink->take();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(render_tree(first[0]), "action long_job [incomplete]\n");
  EXPECT_TRUE(first[0].partial);
  EXPECT_EQ(first[0].part, 0u);
  ASSERT_EQ(first[0].spans.size(), 1u);
  EXPECT_EQ(first[0].spans[0].status, Status::incomplete);
  EXPECT_TRUE(first[0].spans[0].flags & strobe::kSpanIncomplete);
  EXPECT_GE(first[0].spans[0].end_ns, first[0].spans[0].start_ns);

  job.finish();
  recorder.flush();
  std::vector<AssembledTrace> second = sink->take();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(render_tree(second[0]), "action long_job\n");
  EXPECT_FALSE(second[0].partial);
  EXPECT_EQ(second[0].part, 1u);
  EXPECT_EQ(second[0].trace_id, first[0].trace_id);
  ASSERT_EQ(second[0].spans.size(), 1u);
  EXPECT_FALSE(second[0].spans[0].flags & strobe::kSpanIncomplete);
  EXPECT_EQ(describe(second[0].spans[0].attrs), "phase:i64=1");
}

// A span that stays open across many flushes (a server's main loop) hands over each event
// once: every part carries the events since the previous part and the attributes in full,
// so repeated flushes neither duplicate its history nor keep it in memory.
TEST(Api, RepeatedFlushesHandOverEachEventOfAnOpenSpanOnce) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  auto loop = strobe::start_span(strobe::Name("serve"), Kind::agent);
  loop.attr("port", 8080);
  std::vector<std::string> seen;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2; ++i) loop.log("request " + std::to_string(round * 2 + i));
    recorder.flush();
    std::vector<AssembledTrace> part = sink->take();
    ASSERT_EQ(part.size(), 1u);
    EXPECT_EQ(part[0].part, static_cast<std::uint32_t>(round));
    ASSERT_EQ(part[0].spans.size(), 1u);
    const strobe::SpanData& s = part[0].spans[0];
    EXPECT_EQ(s.status, Status::incomplete);
    EXPECT_EQ(describe(s.attrs), "port:i64=8080") << "attributes travel with every part";
    EXPECT_EQ(s.events.size(), 2u) << "only the events since the previous part";
    for (const strobe::SpanEvent& e : s.events) seen.push_back(e.attrs.at(0).value.s);
  }
  loop.log("request 6");
  loop.finish();
  recorder.flush();
  std::vector<AssembledTrace> last = sink->take();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_FALSE(last[0].partial);
  ASSERT_EQ(last[0].spans.size(), 1u);
  EXPECT_EQ(last[0].spans[0].status, Status::ok);
  EXPECT_EQ(describe(last[0].spans[0].attrs), "port:i64=8080");
  for (const strobe::SpanEvent& e : last[0].spans[0].events) seen.push_back(e.attrs.at(0).value.s);
  const std::vector<std::string> want = {"request 0", "request 1", "request 2", "request 3",
                                         "request 4", "request 5", "request 6"};
  EXPECT_EQ(seen, want) << "every event exactly once, in order";
}

TEST(Api, LlmPayloadsTagsLogsAndErrorsArrive) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::trace("chat");
    {
      auto gen = strobe::span("generate", Kind::llm);
      gen.model("gpt-4o-mini")
          .input("What is the capital of France?")
          .output("Paris.")
          .tokens({.input = 12, .output = 3, .cached_input = 8})
          .tag("streaming")
          .tag("retry")
          .log("first token after 80 ms");
    }
    {
      auto tool = strobe::span("search", Kind::tool);
      tool.fail("rate limited");
    }
    {
      auto parse = strobe::span("parse", Kind::step);
      parse.error("bad json", "{\"a\":");
    }
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent chat\n"
            "  llm generate\n"
            "  tool search [failed]\n"
            "  step parse [failed]\n");
  const SpanData* gen = find_span(t, "generate");
  ASSERT_NE(gen, nullptr);
  EXPECT_EQ(gen->model, "gpt-4o-mini");
  EXPECT_EQ(gen->input, "What is the capital of France?");
  EXPECT_EQ(gen->output, "Paris.");
  EXPECT_TRUE(gen->has_tokens);
  EXPECT_EQ(gen->tokens, (strobe::TokenUsage{12, 3, 8}));
  EXPECT_EQ(gen->tags, (std::vector<std::string>{"streaming", "retry"}));
  ASSERT_EQ(gen->events.size(), 1u);
  EXPECT_EQ(gen->events[0].name, "log");
  EXPECT_EQ(describe(gen->events[0].attrs), "message:str=first token after 80 ms");
  EXPECT_LE(gen->start_ns, gen->events[0].time_ns);
  EXPECT_LE(gen->events[0].time_ns, gen->end_ns);

  const SpanData* search = find_span(t, "search");
  ASSERT_NE(search, nullptr);
  EXPECT_EQ(search->status, Status::failed);
  EXPECT_EQ(search->error_message, "rate limited");
  EXPECT_FALSE(search->flags & strobe::kSpanThrown);
  const SpanData* parse = find_span(t, "parse");
  ASSERT_NE(parse, nullptr);
  EXPECT_EQ(parse->error_message, "bad json");
  EXPECT_EQ(parse->error_data, "{\"a\":");
}

TEST(Api, KindGivenByStringIsBuiltInOrCustom) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", "agent");
    { auto db = strobe::span("query", "vector-db"); }
    { auto tool = strobe::span("call", "tool"); }
    { auto empty = strobe::span("unnamed", ""); }
  }
  recorder.flush();
  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "agent run\n"
            "  custom:vector-db query\n"
            "  tool call\n"
            "  custom unnamed\n");
  EXPECT_EQ(find_span(t, "query")->kind_name, "vector-db");
  EXPECT_EQ(find_span(t, "call")->kind_name, "");
}

// next() ends a stage and begins the next with one clock read: adjacent siblings whose
// end and start are the same instant, so they never form a parallel group.
TEST(Api, NextChainsAdjacentSiblingsWithSharedTimestamps) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto step = strobe::span("decode_step", Kind::llm);
    STROBE_SPAN(stage, "embed", Kind::step);
    stage.attr("layer", 0);
    STROBE_NEXT(stage, "attention").attr("layer", 1);
    stage.next(strobe::Name("mlp"), Kind::action).attr("layer", 2);
    auto inner = strobe::span("inside_mlp");  // child of the current stage
  }
  recorder.flush();

  const AssembledTrace t = only_trace(*sink);
  EXPECT_EQ(render_tree(t),
            "llm decode_step\n"
            "  step embed\n"
            "  step attention\n"
            "  action mlp\n"
            "    span inside_mlp\n");
  ASSERT_EQ(t.spans.size(), 5u);
  const SpanData& embed = t.spans[1];
  const SpanData& attention = t.spans[2];
  const SpanData& mlp = t.spans[3];
  EXPECT_EQ(embed.end_ns, attention.start_ns);
  EXPECT_EQ(attention.end_ns, mlp.start_ns);
  EXPECT_EQ(describe(embed.attrs), "layer:i64=0");
  EXPECT_EQ(describe(attention.attrs), "layer:i64=1");
  EXPECT_EQ(describe(mlp.attrs), "layer:i64=2");
  for (const SpanData* s : {&embed, &attention, &mlp}) EXPECT_EQ(s->parent_id, t.spans[0].span_id);
  EXPECT_TRUE(t.groups.empty());
}

// next(name) keeps the kind, and for a custom kind that is the kind's name too.
TEST(Api, NextKeepsTheCustomKindName) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    auto db = strobe::span("query", "vector-db");
    db.next(strobe::Name("rerank"));
  }
  recorder.flush();
  EXPECT_EQ(render_tree(only_trace(*sink)),
            "agent run\n"
            "  custom:vector-db query\n"
            "  custom:vector-db rerank\n");
}

// Ending a current span gives back the context it was begun in: a child its parent, a
// new trace (or a resumed segment) whatever was current before it — also after a move,
// a chain of next() and a ContextScope in between.
TEST(Api, EndingASpanRestoresTheContextItWasBegunIn) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  auto same = [](const strobe::Context& a, const strobe::Context& b) {
    return a.span_id() == b.span_id() && a.trace_id() == b.trace_id();
  };
  strobe::SuspendToken token;
  {
    auto first = strobe::trace("first");
    const strobe::Context in_first = strobe::current();
    {
      auto child = strobe::span("child");
      {
        auto grandchild = strobe::span("grandchild");
        grandchild.next(strobe::Name("sibling"));  // still a child of `child`
        EXPECT_EQ(strobe::current().span_id(), grandchild.span_id());
      }
      EXPECT_EQ(strobe::current().span_id(), child.span_id());
      strobe::Span moved = std::move(child);
      {
        auto other = strobe::trace("second");  // a new trace while `first` is current
        EXPECT_NE(strobe::current().trace_id(), in_first.trace_id());
        token = strobe::span("waits").suspend();
        EXPECT_EQ(strobe::current().span_id(), other.span_id());
      }
      EXPECT_EQ(strobe::current().span_id(), moved.span_id());
    }
    EXPECT_TRUE(same(strobe::current(), in_first));
    {
      // A segment resumed while another trace is current: it began under `first`'s
      // context, not its own parent's, and gives that back.
      auto resumed = strobe::resume(token);
      EXPECT_TRUE(resumed.recording());
      EXPECT_NE(strobe::current().trace_id(), in_first.trace_id());
      auto inner = strobe::span("inner");
      inner.finish();
      EXPECT_EQ(strobe::current().span_id(), resumed.span_id());
    }
    EXPECT_TRUE(same(strobe::current(), in_first));
    {
      strobe::ContextScope adopt(in_first);
      auto adopted = strobe::span("adopted");
    }
    EXPECT_TRUE(same(strobe::current(), in_first));
  }
  EXPECT_FALSE(strobe::current().valid());
  recorder.flush();
  EXPECT_EQ(sink->traces().size(), 2u);
}

TEST(Api, IdAccessorsMatchTheAssembledTrace) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  strobe::TraceId trace_id;
  std::uint64_t root_id = 0, child_id = 0, grandchild_id = 0;
  {
    auto root = strobe::trace("ids");
    trace_id = root.trace_id();
    root_id = root.span_id();
    EXPECT_TRUE(trace_id.valid());
    EXPECT_EQ(trace_id.to_hex().size(), 32u);
    EXPECT_NE(root_id, 0u);
    EXPECT_EQ(root.parent_id(), 0u);
    EXPECT_EQ(strobe::current().span_id(), root_id);
    EXPECT_EQ(strobe::current().trace_id(), trace_id);

    auto child = strobe::span("child");
    child_id = child.span_id();
    EXPECT_EQ(child.parent_id(), root_id);
    EXPECT_EQ(child.trace_id(), trace_id);
    EXPECT_NE(child_id, root_id);
    EXPECT_EQ(child.context().span_id(), child_id);

    auto grandchild = strobe::start_span(strobe::Name("grandchild"));
    grandchild_id = grandchild.span_id();
    EXPECT_EQ(grandchild.parent_id(), child_id);
    EXPECT_EQ(strobe::current().span_id(), child_id);  // start_span is not made current
  }
  EXPECT_FALSE(strobe::current().valid());
  {
    auto other = strobe::trace("ids");
    EXPECT_NE(other.trace_id(), trace_id);
  }
  recorder.flush();

  std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 2u);
  const AssembledTrace& t = traces[0].trace_id == trace_id ? traces[0] : traces[1];
  ASSERT_EQ(t.trace_id, trace_id);
  ASSERT_EQ(t.spans.size(), 3u);
  EXPECT_EQ(t.spans[0].span_id, root_id);
  EXPECT_EQ(t.spans[0].parent_id, 0u);
  EXPECT_TRUE(t.spans[0].flags & strobe::kSpanTraceRoot);
  EXPECT_EQ(t.spans[1].span_id, child_id);
  EXPECT_EQ(t.spans[1].parent_id, root_id);
  EXPECT_EQ(t.spans[2].span_id, grandchild_id);
  EXPECT_EQ(t.spans[2].parent_id, child_id);
}

// Without an active Recorder every call is a harmless no-op, and nothing leaks into a
// recorder started afterwards.
// A sink is opened by the Recorder's constructor, on its thread, with what the recorder
// says of itself; only consume() and flush() run on the sink thread.
TEST(Api, SinksAreOpenedBeforeTheRecorderConstructorReturns) {
  struct Opened : strobe::Sink {
    std::thread::id opened_on;
    std::string service;
    int opens = 0;
    void open(const strobe::RecorderInfo& info) override {
      opened_on = std::this_thread::get_id();
      service = info.service_name;
      ++opens;
    }
    void consume(const AssembledTrace&) override {}
  };
  auto sink = std::make_shared<Opened>();
  strobe::Recorder rec(strobe::Config{.service_name = "opened", .sinks = {sink}});
  EXPECT_EQ(sink->opens, 1);  // read without a lock: nothing else touches it now
  EXPECT_EQ(sink->opened_on, std::this_thread::get_id());
  EXPECT_EQ(sink->service, "opened");
  rec.flush();
  EXPECT_EQ(sink->opens, 1);
}

TEST(Api, EveryCallIsANoOpWithoutARecorder) {
  ASSERT_FALSE(strobe::Recorder::active());
  const strobe::Context before = strobe::current();
  {
    auto run = strobe::trace("agent", {{"k", 1}});
    EXPECT_FALSE(run.recording());
    EXPECT_EQ(run.span_id(), 0u);
    EXPECT_FALSE(run.trace_id().valid());
    auto s = strobe::span("step", Kind::llm, {{"a", 1}, {"b", "x"}});
    EXPECT_FALSE(s.recording());
    s.attr("k", 1).attr("d", 0.5).attr("b", true).attr("s", "text");
    s.event("e", {{"k", 2}}).log("line").input("in").output("out").model("m");
    s.tokens({.input = 1}).tag("t").fail("f").error("e", "d");
    s.next(strobe::Name("next"));
    EXPECT_FALSE(s.recording());
    const strobe::SuspendToken token = s.suspend();
    EXPECT_FALSE(token.valid());
    auto resumed = strobe::resume(token);
    EXPECT_FALSE(resumed.recording());
    auto custom = strobe::span("c", "vector-db");
    EXPECT_FALSE(custom.recording());
    auto explicit_span = strobe::start_span(strobe::Name("explicit"), Kind::tool,
                                            {.mark_as_current = true});
    EXPECT_FALSE(explicit_span.recording());
    explicit_span.finish();
    explicit_span.finish();
    strobe::record_span("one_shot", Kind::tool, std::chrono::system_clock::now(), 1ms);
    { STROBE_SPAN(macro_span, "macro", Kind::step); }
    strobe::ContextScope scope(run.context());
    auto adopted = strobe::span("adopted");
    EXPECT_FALSE(adopted.recording());
    EXPECT_FALSE(strobe::prepare_thread());
  }
  EXPECT_EQ(strobe::current().span_id(), before.span_id());
  EXPECT_EQ(strobe::current().trace_id(), before.trace_id());

  auto sink = std::make_shared<strobe::MemorySink>();
  {
    strobe::Recorder recorder(config_for(sink));
    recorder.flush();
    const strobe::Stats stats = recorder.stats();
    EXPECT_EQ(stats.spans_recorded, 0u);
    EXPECT_EQ(stats.orphan_records, 0u);
  }
  EXPECT_TRUE(sink->traces().empty());
}

}  // namespace

namespace {

std::string attr_text(const SpanData& s, std::string_view key) {
  for (const strobe::Attribute& a : s.attrs) {
    if (a.key != key) continue;
    switch (a.value.type) {
      case strobe::AttrValue::Type::string: return a.value.s;
      case strobe::AttrValue::Type::f64: return std::to_string(a.value.d);
      default: return std::to_string(a.value.i);
    }
  }
  return "<none>";
}

struct ToolTimeout : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

// A caught exception's type and message; the GenAI attributes under their standard keys;
// a resumed segment carries the model of the one before; span ids in hex.
TEST(Api, ExceptionsGenAiAttributesResumedModelAndHexIds) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  std::uint64_t tool_id = 0;
  {
    auto run = strobe::trace("agent");
    {
      auto tool = strobe::span("search", Kind::tool);
      tool_id = tool.span_id();
      tool.tool_call_id("call_42");
      try {
        throw ToolTimeout("search timed out after 30 s");
      } catch (const std::exception& e) {
        tool.record_exception(e);
      }
    }
    {
      auto odd = strobe::span("odd");
      try {
        throw 7;
      } catch (...) {
        odd.record_exception(std::current_exception());
      }
    }
    auto chat = strobe::span("chat", Kind::llm);
    chat.model("gpt-x").provider("openai").conversation_id("conv-1");
    chat.request({.temperature = 0.2, .max_tokens = 256});
    const strobe::SuspendToken token = chat.suspend();
    auto again = strobe::resume(token);
    again.response_model("gpt-x-2025").finish_reasons({"stop", "len\"gth"}).more_tokens(12, 3);
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  const SpanData* tool = find_span(t, "search");
  ASSERT_NE(tool, nullptr);
  EXPECT_EQ(tool->status, Status::failed);
  EXPECT_EQ(tool->error_message, "search timed out after 30 s");
  EXPECT_EQ(attr_text(*tool, "exception.type"), "(anonymous namespace)::ToolTimeout");
  EXPECT_EQ(attr_text(*tool, "exception.message"), "search timed out after 30 s");
  EXPECT_EQ(attr_text(*tool, "gen_ai.tool.call.id"), "call_42");
  const SpanData* odd = find_span(t, "odd");
  ASSERT_NE(odd, nullptr);
  EXPECT_EQ(odd->status, Status::failed);
  EXPECT_EQ(attr_text(*odd, "exception.type"), "int");

  std::vector<const SpanData*> chats;
  for (const SpanData& s : t.spans)
    if (s.name == "chat") chats.push_back(&s);
  ASSERT_EQ(chats.size(), 2u);
  EXPECT_EQ(chats[0]->model, "gpt-x");
  EXPECT_EQ(chats[1]->model, "gpt-x");  // carried into the resumed segment
  EXPECT_EQ(attr_text(*chats[0], "gen_ai.provider.name"), "openai");
  EXPECT_EQ(attr_text(*chats[0], "gen_ai.conversation.id"), "conv-1");
  EXPECT_EQ(attr_text(*chats[0], "gen_ai.request.temperature"), std::to_string(0.2));
  EXPECT_EQ(attr_text(*chats[0], "gen_ai.request.max_tokens"), "256");
  EXPECT_EQ(attr_text(*chats[0], "gen_ai.request.top_p"), "<none>");
  EXPECT_EQ(attr_text(*chats[1], "gen_ai.response.model"), "gpt-x-2025");
  EXPECT_EQ(attr_text(*chats[1], "gen_ai.response.finish_reasons"), R"(["stop","len\"gth"])");
  EXPECT_EQ(attr_text(*chats[1], "gen_ai.usage.reasoning.output_tokens"), "12");
  EXPECT_EQ(attr_text(*chats[1], "gen_ai.usage.cache_creation.input_tokens"), "3");

  EXPECT_EQ(strobe::to_hex(std::uint64_t{0x00ab}), "00000000000000ab");
  EXPECT_EQ(strobe::to_hex(tool_id).size(), 16u);
}
