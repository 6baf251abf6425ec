// What reaches the sinks stays true to what happened when data is handed over early or
// lost: a trace waiting for a resume is neither closed as complete nor made to wait
// forever, a span begun late under a closed trace joins it as a later part (no stand-in
// for a parent that was never lost), an event keeps its attributes across parts, every
// drop reaches a sink, and an exception in flight on another thread fails no span.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::SpanData;
using strobe::Status;
using namespace std::chrono_literals;

strobe::Config config_with(const std::shared_ptr<strobe::Sink>& sink) {
  strobe::Config c;
  c.sinks = {sink};
  return c;
}

std::vector<const AssembledTrace*> parts_of(const std::vector<AssembledTrace>&&, const strobe::TraceId&) = delete;
std::vector<const AssembledTrace*> parts_of(const std::vector<AssembledTrace>& traces, const strobe::TraceId& id) {
  std::vector<const AssembledTrace*> out;
  for (const AssembledTrace& t : traces)
    if (t.trace_id == id) out.push_back(&t);
  return out;
}

const SpanData* find_span(const AssembledTrace& t, std::string_view name) {
  for (const SpanData& s : t.spans)
    if (s.name == name) return &s;
  return nullptr;
}

std::uint64_t placeholders_in(const std::vector<AssembledTrace>& traces) {
  std::uint64_t n = 0;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans) n += (s.flags & strobe::kSpanPlaceholder) ? 1 : 0;
  return n;
}

// A flush while an operation is suspended and nothing else is open: the trace is not
// complete (a segment will follow), so the part says more follows, and the resumed
// segment comes as the next part of the same trace under its true parent.
TEST(LossIntegrity, FlushWithOnlyASuspendedOperationKeepsTheTraceOpen) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_with(sink));
  strobe::TraceId id;
  std::uint64_t root_id = 0;
  strobe::SuspendToken token;
  {
    auto root = strobe::trace("request");
    id = root.trace_id();
    root_id = root.span_id();
    auto wait = strobe::span("wait_for_tool");
    token = wait.suspend();
  }
  recorder.flush();
  {
    auto resumed = strobe::resume(token);
    resumed.attr("round", 2);
  }
  recorder.flush();
  const auto traces = sink->traces();
  const auto parts = parts_of(traces, id);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->part, 0u);
  EXPECT_TRUE(parts[0]->partial) << "a suspended operation waits: more follows";
  EXPECT_EQ(parts[1]->part, 1u);
  EXPECT_FALSE(parts[1]->partial);
  const SpanData* seg = find_span(*parts[1], "wait_for_tool");
  ASSERT_NE(seg, nullptr);
  EXPECT_EQ(seg->parent_id, root_id);
  EXPECT_EQ(seg->segment_index, 1u);
  EXPECT_EQ(placeholders_in(traces), 0u);
  EXPECT_EQ(recorder.stats().placeholders, 0u);
}

// A trace handed over in parts whose last part came while an operation was suspended
// and never resumed: at shutdown its last part says so (partial unset) rather than
// leaving the file saying more follows.
TEST(LossIntegrity, ATraceLeftSuspendedEndsWithALastPart) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::TraceId id;
  {
    strobe::Recorder recorder(config_with(sink));
    {
      auto root = strobe::trace("request");
      id = root.trace_id();
      auto wait = strobe::span("never_resumed");
      (void)wait.suspend();
    }
    recorder.flush();
  }
  const auto traces = sink->traces();
  const auto parts = parts_of(traces, id);
  ASSERT_FALSE(parts.empty());
  EXPECT_TRUE(parts.front()->partial);
  EXPECT_FALSE(parts.back()->partial) << "the last part of the trace must say it is the last";
  for (std::size_t i = 0; i < parts.size(); ++i) EXPECT_EQ(parts[i]->part, i);
}

// A context captured while its trace ran, adopted after the trace was handed over: the
// late span is a later part of the same trace, a child of its true parent; no stand-in
// "<lost span>" is made for a parent that was handed over whole.
TEST(LossIntegrity, ASpanBegunUnderAClosedTraceJoinsItAsALaterPart) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_with(sink));
  strobe::Context ctx;
  strobe::TraceId id;
  std::uint64_t handler_id = 0;
  {
    auto root = strobe::trace("request");
    id = root.trace_id();
    auto handler = strobe::span("handler");
    handler_id = handler.span_id();
    ctx = strobe::current();
  }
  recorder.flush();  // the trace is complete and handed over
  {
    const auto before = sink->traces();
    ASSERT_EQ(parts_of(before, id).size(), 1u);
  }
  std::thread late([&] {
    strobe::ContextScope scope(ctx);
    auto s = strobe::span("fire_and_forget");
  });
  late.join();
  recorder.flush();
  const auto traces = sink->traces();
  const auto parts = parts_of(traces, id);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->part, 0u);
  EXPECT_EQ(parts[1]->part, 1u);
  EXPECT_FALSE(parts[1]->partial);
  ASSERT_EQ(parts[1]->spans.size(), 1u);
  EXPECT_EQ(parts[1]->spans[0].name, "fire_and_forget");
  EXPECT_EQ(parts[1]->spans[0].parent_id, handler_id);
  EXPECT_EQ(placeholders_in(traces), 0u);
  EXPECT_EQ(recorder.stats().placeholders, 0u);
}

// A long-lived span logging events with attributes, handed over in many small parts while
// it logs: every event arrives with exactly its own attributes, none lands on the span.
TEST(LossIntegrity, EventsKeepTheirAttributesAcrossParts) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config c = config_with(sink);
  c.partial_trace_spans = 8;
  c.overflow = strobe::OverflowPolicy::wait;
  c.drain_spin_passes = 1000;  // drains while the events are written
  constexpr int kEvents = 60000;
  strobe::TraceId id;
  {
    strobe::Recorder recorder(c);
    auto root = strobe::trace("decode");
    id = root.trace_id();
    for (int i = 0; i < kEvents; ++i)
      root.event("token", {{"index", i}, {"text", "tok"}, {"logprob", -0.5}});
    root.finish();
  }
  int events = 0;
  const auto traces = sink->traces();
  for (const AssembledTrace* t : parts_of(traces, id)) {
    for (const SpanData& s : t->spans) {
      EXPECT_TRUE(s.attrs.empty()) << "an event's attribute landed on span " << s.name << " in part " << t->part;
      for (const strobe::SpanEvent& e : s.events) {
        ++events;
        ASSERT_EQ(e.attrs.size(), 3u) << "event " << events << " in part " << t->part;
      }
    }
  }
  EXPECT_EQ(events, kEvents);
}

// A sink that takes its time: the queue in front of the sinks fills and whole traces are
// dropped (drop policy). Every span so dropped is counted in what the sinks receive —
// with a later trace or, when none follows, with the flush — as Stats counts it.
class SlowSink final : public strobe::Sink {
 public:
  void consume(const AssembledTrace&) override { std::this_thread::sleep_for(2ms); }
};

TEST(LossIntegrity, SinkQueueDropsReachTheSinksEvenWhenNoTraceFollows) {
  auto memory = std::make_shared<strobe::MemorySink>();
  strobe::Config c;
  c.sinks = {std::make_shared<SlowSink>(), memory};
  c.sink_queue_spans = 64;
  strobe::Recorder recorder(c);
  for (int i = 0; i < 2000; ++i) {
    auto root = strobe::trace("burst");
    for (int k = 0; k < 7; ++k) auto child = strobe::span("step");
  }
  recorder.flush();  // nothing is recorded after the burst: no later trace carries its drops
  const strobe::Stats s = recorder.stats();
  ASSERT_GT(s.sink_spans_dropped, 0u) << "the slow sink should have made the queue drop";
  std::uint64_t seen = memory->trailing_drops().sink_spans;
  for (const AssembledTrace& t : memory->traces()) seen += t.drops_since_previous.sink_spans;
  EXPECT_EQ(seen, s.sink_spans_dropped);
  std::uint64_t spans = 0;
  for (const AssembledTrace& t : memory->traces()) spans += t.spans.size();
  EXPECT_EQ(spans + s.sink_spans_dropped, 2000u * 8u) << "every span is delivered or counted as dropped";
}

// A span begun on one thread and ended on another while that thread unwinds an exception
// (a destructor during stack unwinding): that exception never passed through the span's
// scope, so the span is not failed.
struct EndsInDestructor {
  strobe::Span* span;
  ~EndsInDestructor() { span->finish(); }
};

TEST(LossIntegrity, AnExceptionOnTheEndingThreadFailsNoSpanBegunElsewhere) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::TraceId id;
  {
    strobe::Recorder recorder(config_with(sink));
    auto root = strobe::trace("request");
    id = root.trace_id();
    auto work = strobe::start_span("handed_over", strobe::Kind::tool, {.mark_as_current = false});
    std::thread other([&] {
      try {
        EndsInDestructor ender{&work};
        throw std::runtime_error("unrelated");
      } catch (const std::exception&) {
      }
    });
    other.join();
  }
  const auto traces = sink->traces();
  const auto parts = parts_of(traces, id);
  ASSERT_EQ(parts.size(), 1u);
  const SpanData* s = find_span(*parts[0], "handed_over");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->status, Status::ok);
  EXPECT_EQ(s->flags & strobe::kSpanThrown, 0u);
}

// An operation whose first segment lost its begin (a full ring) still suspends and
// resumes: the later segments are recorded, and the trace completes rather than waiting.
TEST(LossIntegrity, ASegmentWhoseBeginWasDroppedStillSuspendsAndResumes) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config c = config_with(sink);
  c.ring_capacity = 64;
  c.drain_interval = 10s;
  c.drain_spin_passes = 0;
  strobe::Recorder recorder(c);
  recorder.flush();
  std::this_thread::sleep_for(100ms);  // the drainer sleeps its whole interval now
  strobe::TraceId id;
  strobe::SuspendToken token;
  {
    auto root = strobe::trace("request");
    id = root.trace_id();
    for (int i = 0; i < 200; ++i) root.attr("filler", i);  // fills the ring: later begins drop
    auto wait = strobe::span("wait");
    ASSERT_FALSE(wait.recording()) << "the ring should be full here";
    token = wait.suspend();
    ASSERT_TRUE(token.valid());
    recorder.flush();  // drained now; the root stays open
    auto resumed = strobe::resume(token);
    EXPECT_TRUE(resumed.recording());
  }
  recorder.flush();
  const auto traces = sink->traces();
  const auto parts = parts_of(traces, id);
  ASSERT_FALSE(parts.empty());
  EXPECT_FALSE(parts.back()->partial) << "the trace must complete, not wait for a resume";
  int segments = 0;
  for (const AssembledTrace* t : parts)
    for (const SpanData& s : t->spans)
      if (s.name == "wait" && s.segment_index == 1) ++segments;
  EXPECT_EQ(segments, 1);
}

}  // namespace
