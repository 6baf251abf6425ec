// Misuse has a defined result: ending twice, ending on another thread, moved-from and
// orphaned handles, a second recorder, bad configuration, oversized strings, invalid
// UTF-8 and writes after the end. None of them crashes or corrupts other spans.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <type_traits>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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

strobe::Config config_for(const std::shared_ptr<strobe::MemorySink>& sink) {
  strobe::Config c;
  c.sinks = {sink};
  return c;
}

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

// Every trace the sink holds, rendered one after another.
std::string render_all(const strobe::MemorySink& sink) {
  std::string out;
  for (const AssembledTrace& t : sink.traces()) out += render_tree(t);
  return out;
}

// As render_all, in name order: traces handed over together come in no fixed order.
std::string render_sorted(const strobe::MemorySink& sink) {
  std::vector<std::string> parts;
  for (const AssembledTrace& t : sink.traces()) parts.push_back(render_tree(t));
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) out += p;
  return out;
}

TEST(Misuse, FinishTwiceIsACountedNoOp) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    auto s = strobe::span("twice", Kind::tool);
    s.finish();
    EXPECT_FALSE(s.recording());
    EXPECT_EQ(strobe::current().span_id(), run.span_id());
    s.finish();
    EXPECT_EQ(strobe::current().span_id(), run.span_id());
  }
  recorder.flush();
  EXPECT_EQ(render_all(*sink),
            "agent run\n"
            "  tool twice\n");
  const strobe::Stats stats = recorder.stats();
  EXPECT_EQ(stats.misuse, 1u);
  EXPECT_EQ(stats.spans_recorded, 2u);
  EXPECT_EQ(stats.orphan_records, 0u);
}

// A span begun on one thread and finished on another: the end is recorded by the other
// thread, the span is complete, and neither thread's current context moves.
TEST(Misuse, FinishOnAnotherThreadRecordsTheEndThere) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  std::uint64_t main_thread_ctx = 0;
  {
    auto run = strobe::trace("handoff-agent");
    const strobe::Context ctx = strobe::current();
    auto job = strobe::start_span(strobe::Name("job"), Kind::tool);
    main_thread_ctx = strobe::current().span_id();
    EXPECT_EQ(main_thread_ctx, run.span_id());
    std::thread worker([&] {
      strobe::ContextScope scope(ctx);
      auto own = strobe::span("worker_step");
      const std::uint64_t before = strobe::current().span_id();
      EXPECT_EQ(before, own.span_id());
      job.finish();
      EXPECT_EQ(strobe::current().span_id(), before);
      EXPECT_FALSE(job.recording());
      job.finish();  // still a no-op from here
    });
    worker.join();
    EXPECT_EQ(strobe::current().span_id(), main_thread_ctx);
    auto after = strobe::span("after");
    EXPECT_EQ(after.parent_id(), run.span_id());
  }
  recorder.flush();

  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  EXPECT_EQ(render_tree(t),
            "agent handoff-agent\n"
            "  || tool job\n"
            "  || span worker_step\n"
            "  span after\n");
  const SpanData* job = find_span(t, "job");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->status, Status::ok);
  EXPECT_FALSE(job->flags & (strobe::kSpanIncomplete | strobe::kSpanOrphan));
  EXPECT_NE(job->end_thread_id, job->thread_id);
  EXPECT_EQ(job->end_thread_id, find_span(t, "worker_step")->thread_id);
  EXPECT_GE(job->end_ns, job->start_ns);
  EXPECT_EQ(recorder.stats().misuse, 1u);
}

TEST(Misuse, MovedFromHandleIsANoOp) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    auto original = strobe::span("moved", Kind::step);
    strobe::Span owner = std::move(original);
    EXPECT_FALSE(original.recording());  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_TRUE(owner.recording());
    original.attr("ignored", 1).event("ignored").input("ignored").fail("ignored");
    original.finish();
    EXPECT_TRUE(owner.recording());  // finishing the moved-from handle did not end it
    owner.attr("kept", 2);

    // Move-assigning over a live handle ends the span it held (a child of "moved", which
    // is current).
    strobe::Span target = strobe::start_span(strobe::Name("replaced"));
    target = std::move(owner);
    EXPECT_TRUE(target.recording());
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(render_tree(traces[0]),
            "agent run\n"
            "  step moved\n"
            "    span replaced\n");
  const SpanData* moved = find_span(traces[0], "moved");
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->status, Status::ok);
  EXPECT_EQ(describe(moved->attrs), "kept:i64=2");
  EXPECT_TRUE(moved->events.empty());
  EXPECT_TRUE(moved->input.empty());
  EXPECT_EQ(recorder.stats().misuse, 0u);
}

// Spans still open when their recorder goes away are handed over incomplete; using and
// ending them later does nothing, and a later recorder sees none of their records.
TEST(Misuse, SpanOutlivingItsRecorderEndsAsANoOp) {
  auto first_sink = std::make_shared<strobe::MemorySink>();
  auto second_sink = std::make_shared<strobe::MemorySink>();
  std::optional<strobe::Recorder> first;
  first.emplace(config_for(first_sink));
  auto stale_current = strobe::span("stale_current", Kind::agent);
  auto stale_a = strobe::start_span(strobe::Name("stale_a"), Kind::tool, {.new_trace = true});
  auto stale_b = strobe::start_span(strobe::Name("stale_b"), Kind::tool, {.new_trace = true});
  first.reset();

  EXPECT_FALSE(strobe::Recorder::active());
  EXPECT_EQ(render_sorted(*first_sink),
            "agent stale_current [incomplete]\n"
            "tool stale_a [incomplete]\n"
            "tool stale_b [incomplete]\n");
  for (const AssembledTrace& t : first_sink->traces()) {
    ASSERT_EQ(t.spans.size(), 1u);
    EXPECT_EQ(t.spans[0].status, Status::incomplete) << t.spans[0].name;
  }

  stale_a.attr("late", 1).event("late").log("late");
  stale_a.finish();  // no recorder at all
  {
    strobe::Recorder second(config_for(second_sink));
    stale_b.attr("late", 2);  // a new recorder, before this thread records under it
    stale_b.finish();
    {
      auto fresh = strobe::span("fresh", Kind::agent);
      EXPECT_EQ(fresh.parent_id(), 0u);  // the stale context does not carry over
      stale_current.attr("late", 3);
      stale_current.finish();  // after this thread attached to the new recorder
      auto child = strobe::span("child");
      EXPECT_EQ(child.parent_id(), fresh.span_id());
    }
    second.flush();
    EXPECT_EQ(render_all(*second_sink),
              "agent fresh\n"
              "  span child\n");
    EXPECT_EQ(second.stats().spans_recorded, 2u);
  }
  EXPECT_EQ(render_all(*second_sink),
            "agent fresh\n"
            "  span child\n");
}

TEST(Misuse, SecondRecorderWhileOneIsActiveThrows) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  auto other_sink = std::make_shared<strobe::MemorySink>();
  EXPECT_THROW(strobe::Recorder second(config_for(other_sink)), strobe::ConfigError);
  EXPECT_TRUE(strobe::Recorder::active());
  { auto s = strobe::span("still_recording"); }
  recorder.flush();
  EXPECT_EQ(render_all(*sink), "span still_recording\n");
  EXPECT_TRUE(other_sink->traces().empty());
}

TEST(Misuse, InvalidConfigIsRejectedBeforeAnythingStarts) {
  auto sink = std::make_shared<strobe::MemorySink>();
  auto expect_rejected = [&](const char* what, auto&& edit) {
    strobe::Config c = config_for(sink);
    edit(c);
    EXPECT_THROW(strobe::Recorder r(c), strobe::ConfigError) << what;
    EXPECT_FALSE(strobe::Recorder::active()) << what;
  };
  expect_rejected("capacity not a power of two", [](strobe::Config& c) { c.ring_capacity = 100; });
  expect_rejected("capacity below 64", [](strobe::Config& c) { c.ring_capacity = 32; });
  expect_rejected("capacity zero", [](strobe::Config& c) { c.ring_capacity = 0; });
  expect_rejected("max_string_bytes zero", [](strobe::Config& c) { c.max_string_bytes = 0; });
  expect_rejected("null sink", [](strobe::Config& c) { c.sinks.push_back(nullptr); });

  // The smallest valid ring is fine, and nothing from the rejected attempts lingers.
  strobe::Config c = config_for(sink);
  c.ring_capacity = 64;
  strobe::Recorder recorder(c);
  { auto s = strobe::span("ok"); }
  recorder.flush();
  EXPECT_EQ(render_all(*sink), "span ok\n");
}

// A string over max_string_bytes is cut at a UTF-8 boundary (never inside a sequence)
// and flagged; one of exactly the maximum length is kept whole.
TEST(Misuse, OversizedStringIsTruncatedAtAUtf8Boundary) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config c = config_for(sink);
  c.max_string_bytes = 10;
  strobe::Recorder recorder(c);
  {
    auto run = strobe::span("run", Kind::agent);
    {
      auto s = strobe::span("two_byte_cut");
      s.attr("text", "123456789\xC3\xA9xyz");  // é straddles byte 10
    }
    {
      auto s = strobe::span("four_byte_cut");
      s.input("12345678\xF0\x9F\x98\x80!");  // 😀 covers bytes 8..11
    }
    {
      auto s = strobe::span("exact");
      s.attr("text", "0123456789");
      s.output("abcdefghij");
    }
    {
      auto s = strobe::span("event_attr");
      s.event("e", {{"text", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}});
    }
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];

  const SpanData* two = find_span(t, "two_byte_cut");
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(describe(two->attrs), "text:str=123456789(truncated)");
  EXPECT_TRUE(two->flags & strobe::kSpanTruncated);
  EXPECT_FALSE(two->flags & strobe::kSpanInvalidUtf8);

  const SpanData* four = find_span(t, "four_byte_cut");
  ASSERT_NE(four, nullptr);
  EXPECT_EQ(four->input, "12345678");
  EXPECT_TRUE(four->flags & strobe::kSpanTruncated);
  EXPECT_FALSE(four->flags & strobe::kSpanInvalidUtf8);

  const SpanData* exact = find_span(t, "exact");
  ASSERT_NE(exact, nullptr);
  EXPECT_EQ(describe(exact->attrs), "text:str=0123456789");
  EXPECT_EQ(exact->output, "abcdefghij");
  EXPECT_FALSE(exact->flags & strobe::kSpanTruncated);

  const SpanData* ev = find_span(t, "event_attr");
  ASSERT_NE(ev, nullptr);
  ASSERT_EQ(ev->events.size(), 1u);
  EXPECT_EQ(describe(ev->events[0].attrs), "text:str=aaaaaaaaaa(truncated)");
  EXPECT_TRUE(ev->flags & strobe::kSpanTruncated);

  EXPECT_FALSE(find_span(t, "run")->flags & strobe::kSpanTruncated);
}

// Invalid UTF-8 is replaced with U+FFFD (one per bad sequence) and flagged; valid
// multi-byte text is left alone.
TEST(Misuse, InvalidUtf8IsReplacedAndFlagged) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    {
      auto s = strobe::span("bad");
      s.attr("text", "ab\xFF" "cd");
      s.input("lone lead \xC3");
      s.tag("\xED\xA0\x80");  // an encoded surrogate
    }
    {
      auto s = strobe::span("good");
      s.attr("text", "caf\xC3\xA9 \xF0\x9F\x98\x80");
    }
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const SpanData* bad = find_span(traces[0], "bad");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(describe(bad->attrs), "text:str=ab\xEF\xBF\xBD" "cd");
  EXPECT_EQ(bad->input, "lone lead \xEF\xBF\xBD");
  EXPECT_EQ(bad->tags, std::vector<std::string>{"\xEF\xBF\xBD"});
  EXPECT_TRUE(bad->flags & strobe::kSpanInvalidUtf8);
  EXPECT_FALSE(bad->flags & strobe::kSpanTruncated);

  const SpanData* good = find_span(traces[0], "good");
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(describe(good->attrs), "text:str=caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_FALSE(good->flags & strobe::kSpanInvalidUtf8);
}

// Names, attribute keys, event names and custom kinds are repaired like values, and the
// span that used them is flagged; the same bad name given twice is one name.
TEST(Misuse, InvalidUtf8InNamesAndKeysIsReplacedAndFlagged) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config = config_for(sink);
  config.service_name = "svc\xC0";
  strobe::Recorder recorder(config);
  {
    auto run = strobe::span("run", Kind::agent);
    { auto s = strobe::span("na\xFFme"); }
    { auto s = strobe::span("na\xFFme"); }
    { strobe::span("keyed").attr("k\xE2\x82", 1); }
    { strobe::span("evented").event("e\x80v"); }
    { auto s = strobe::span("kinded", "my\xF5kind"); }
    { auto s = strobe::span("clean"); s.attr("k", 1); }
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  EXPECT_EQ(t.service_name, "svc\xEF\xBF\xBD");
  int named = 0;
  for (const SpanData& s : t.spans) {
    if (s.name != "na\xEF\xBF\xBDme") continue;
    ++named;
    EXPECT_TRUE(s.flags & strobe::kSpanInvalidUtf8);
  }
  EXPECT_EQ(named, 2);
  const SpanData* keyed = find_span(t, "keyed");
  ASSERT_NE(keyed, nullptr);
  EXPECT_EQ(describe(keyed->attrs), "k\xEF\xBF\xBD:i64=1");
  EXPECT_TRUE(keyed->flags & strobe::kSpanInvalidUtf8);
  const SpanData* evented = find_span(t, "evented");
  ASSERT_NE(evented, nullptr);
  ASSERT_EQ(evented->events.size(), 1u);
  EXPECT_EQ(evented->events[0].name, "e\xEF\xBF\xBDv");
  EXPECT_TRUE(evented->flags & strobe::kSpanInvalidUtf8);
  const SpanData* kinded = find_span(t, "kinded");
  ASSERT_NE(kinded, nullptr);
  EXPECT_EQ(kinded->kind_name, "my\xEF\xBF\xBDkind");
  EXPECT_TRUE(kinded->flags & strobe::kSpanInvalidUtf8);
  const SpanData* clean = find_span(t, "clean");
  ASSERT_NE(clean, nullptr);
  EXPECT_FALSE(clean->flags & strobe::kSpanInvalidUtf8);
}

TEST(Misuse, WritesAfterFinishAreIgnoredAndCounted) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto run = strobe::span("run", Kind::agent);
    auto s = strobe::span("done", Kind::llm);
    s.attr("before", 1);
    s.finish();
    s.attr("after", 2);
    s.event("after");
    s.input("after");
    s.tokens({.input = 1});
    s.fail("after");
    EXPECT_FALSE(s.suspend().valid());
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(render_tree(traces[0]),
            "agent run\n"
            "  llm done\n");
  const SpanData* done = find_span(traces[0], "done");
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(describe(done->attrs), "before:i64=1");
  EXPECT_TRUE(done->events.empty());
  EXPECT_TRUE(done->input.empty());
  EXPECT_FALSE(done->has_tokens);
  EXPECT_TRUE(done->error_message.empty());
  EXPECT_EQ(recorder.stats().misuse, 6u);
  EXPECT_EQ(recorder.stats().orphan_records, 0u);
}

}  // namespace

// A token, and every copy of it, resumes once: a second resume is a counted no-op, also
// when copies race on two threads.
TEST(Misuse, SecondResumeOfATokenIsACountedNoOp) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  constexpr int kChains = 500;
  std::vector<strobe::SuspendToken> tokens;
  {
    auto run = strobe::span("run", Kind::agent);
    for (int i = 0; i < kChains; ++i) tokens.push_back(strobe::span("op", Kind::tool).suspend());
    int recording = 0;
    for (const strobe::SuspendToken& token : tokens) {
      strobe::SuspendToken copy = token;
      auto first = strobe::resume(token);
      auto second = strobe::resume(copy);
      auto third = strobe::resume(token);
      recording += first.recording() + second.recording() + third.recording();
    }
    EXPECT_EQ(recording, kChains);
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  EXPECT_EQ(t.spans.size(), 1u + 2u * kChains);
  EXPECT_EQ(t.chains.size(), static_cast<std::size_t>(kChains));
  for (const auto& chain : t.chains) EXPECT_EQ(chain.segments.size(), 2u);
  EXPECT_EQ(recorder.stats().misuse, 2u * kChains);
}

TEST(Misuse, CopiesOfATokenRacingToResumeOpenOneSegment) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  constexpr int kRounds = 2000;
  std::vector<strobe::SuspendToken> tokens;
  {
    auto run = strobe::span("run", Kind::agent);
    for (int i = 0; i < kRounds; ++i) tokens.push_back(strobe::span("op").suspend());
  }
  std::atomic<int> resumed{0};
  auto racer = [&] {
    for (const strobe::SuspendToken& token : tokens) {
      auto s = strobe::resume(token);
      resumed += s.recording();
    }
  };
  std::thread a(racer), b(racer);
  a.join();
  b.join();
  EXPECT_EQ(resumed.load(), kRounds);
  EXPECT_EQ(recorder.stats().misuse, static_cast<std::uint64_t>(kRounds));
}

// Unsigned values keep their value: above INT64_MAX as their decimal digits, also in an
// event's attributes and an initializer list; below it as integers. Pointers are refused.
TEST(Misuse, UnsignedAttributesKeepTheirValue) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  {
    auto s = strobe::span("u");
    s.attr("max", std::numeric_limits<std::uint64_t>::max());
    s.attr("big", std::uint64_t{1} << 63);
    s.attr("small", std::uint64_t{42});
    s.attr(std::string_view("listed"), strobe::Value(std::uint64_t{18446744073709551000u}));
    s.attrs({{"in_list", std::uint64_t{9223372036854775808u}}});
    s.event("e", {{"on_event", std::numeric_limits<std::uint64_t>::max()}});
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const SpanData& u = traces[0].spans[0];
  EXPECT_EQ(describe(u.attrs),
            "max:str=18446744073709551615 big:str=9223372036854775808 small:i64=42 "
            "listed:str=18446744073709551000 in_list:str=9223372036854775808");
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(describe(u.events[0].attrs), "on_event:str=18446744073709551615");
  static_assert(!std::is_convertible_v<int*, strobe::Value>, "a pointer is refused");
  static_assert(!std::is_convertible_v<const void*, strobe::Value>, "a pointer is refused");
  static_assert(std::is_convertible_v<const char*, strobe::Value>, "text is not a pointer");
}

// A span current on its thread, handed to another thread and ended there: its thread's
// next span is not its child but its parent's, in both the nested and the resumed case.
TEST(Misuse, CurrentSpanEndedOnAnotherThreadIsNoLongerCurrentThere) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  std::uint64_t run_id = 0, request_id = 0;
  {
    auto run = strobe::trace("agent");
    run_id = run.span_id();
    {
      auto request = strobe::span("request", Kind::tool);  // current on this thread
      request_id = request.span_id();
      ASSERT_EQ(strobe::current().span_id(), request_id);
      std::thread other([moved = std::move(request)]() mutable { moved.finish(); });
      other.join();
      EXPECT_EQ(strobe::current().span_id(), run_id);
      auto next = strobe::span("next");
      EXPECT_EQ(next.parent_id(), run_id);
    }
    {
      // Two levels handed over: the outer ends elsewhere after the inner.
      auto outer = strobe::span("outer");
      auto inner = strobe::span("inner");
      std::thread other([o = std::move(outer), i = std::move(inner)]() mutable {
        i.finish();
        o.finish();
      });
      other.join();
      auto after = strobe::span("after");
      EXPECT_EQ(after.parent_id(), run_id);
    }
  }
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(render_tree(traces[0]),
            "agent agent\n"
            "  tool request\n"
            "  span next\n"
            "  span outer\n"
            "    span inner\n"
            "  span after\n");
  EXPECT_EQ(recorder.stats().misuse, 0u);
}
