// A signal handler that records a span on the thread it interrupted: whatever that thread
// was doing (writing a record, switching its current context), nothing it records is
// corrupted. The handler's span is recorded whole, or dropped and counted
// (Stats::reentrant_spans) when it came in the middle of strobe's own work.

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::SpanData;

std::atomic<std::uint64_t> g_handled{0};

void on_signal(int) {
  // Static names: interned before any signal, so the handler allocates nothing.
  static const strobe::Name kName("signal.handler");
  static const strobe::Name kKey("signal.n");
  const std::uint64_t n = g_handled.fetch_add(1, std::memory_order_relaxed);
  auto s = strobe::span(kName);
  s.attr(kKey, static_cast<std::int64_t>(n));
}

TEST(Signal, HandlerSpansNeverCorruptTheSpansTheyInterrupt) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  config.overflow = strobe::OverflowPolicy::wait;  // nothing dropped for want of room
  strobe::Recorder recorder(config);
  (void)strobe::Name("signal.handler");
  (void)strobe::Name("signal.n");
  // Attached before any handler can run: attaching allocates its ring, which a signal
  // handler must not do (the README says so).
  ASSERT_TRUE(strobe::prepare_thread());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, nullptr), 0);

  const int rounds = static_cast<int>(200000 * strobe::test::stress_scale()) + 200;
  std::atomic<bool> done{false};
  const pthread_t target = ::pthread_self();
  std::thread shooter([&] {
    while (!done.load(std::memory_order_relaxed)) {
      ::pthread_kill(target, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  {
    strobe::ContextScope none{strobe::Context{}};
    for (int i = 0; i < rounds; ++i) {
      auto outer = strobe::trace("outer");
      outer.attr("i", i);
      {
        auto inner = strobe::span("inner");
        inner.attr("j", i);
        inner.next(STROBE_NAME("second")).attr("k", i);
      }
      strobe::ContextScope again(strobe::current());
      outer.attr("after", i);
    }
  }
  done = true;
  shooter.join();
  signal(SIGUSR1, SIG_IGN);
  recorder.flush();

  const strobe::Stats stats = recorder.stats();
  // Nothing else was dropped (a signal during the thread's first attach has no ring to count on).
  EXPECT_LE(stats.records_dropped, stats.reentrant_spans);
  EXPECT_EQ(stats.spans_dropped, stats.records_dropped);
  std::map<std::int64_t, int> outers;
  std::uint64_t handler_spans = 0;
  for (const AssembledTrace& t : sink->traces()) {
    for (const SpanData& s : t.spans) {
      EXPECT_EQ(s.flags & (strobe::kSpanIncomplete | strobe::kSpanLostRecords | strobe::kSpanOrphan |
                           strobe::kSpanPlaceholder),
                0u)
          << s.name;
      if (s.name == "signal.handler") {
        ++handler_spans;
        ASSERT_EQ(s.attrs.size(), 1u);
        EXPECT_EQ(s.attrs[0].key, "signal.n");
        continue;
      }
      if (s.name != "outer") continue;
      ASSERT_EQ(s.attrs.size(), 2u) << "outer attributes";
      EXPECT_EQ(s.attrs[0].key, "i");
      EXPECT_EQ(s.attrs[1].key, "after");
      EXPECT_EQ(s.attrs[0].value.i, s.attrs[1].value.i);
      ++outers[s.attrs[0].value.i];
      // Its two children, in order, each with its attribute of the same round.
      std::vector<const SpanData*> kids;
      for (const SpanData& c : t.spans)
        if (c.parent_id == s.span_id && c.name != "signal.handler") kids.push_back(&c);
      ASSERT_EQ(kids.size(), 2u);
      EXPECT_EQ(kids[0]->name, "inner");
      EXPECT_EQ(kids[1]->name, "second");
      ASSERT_EQ(kids[0]->attrs.size(), 1u);
      ASSERT_EQ(kids[1]->attrs.size(), 1u);
      EXPECT_EQ(kids[0]->attrs[0].value.i, s.attrs[0].value.i);
      EXPECT_EQ(kids[1]->attrs[0].value.i, s.attrs[0].value.i);
    }
  }
  EXPECT_EQ(outers.size(), static_cast<std::size_t>(rounds));
  for (const auto& [i, n] : outers) EXPECT_EQ(n, 1) << "round " << i;
  EXPECT_EQ(handler_spans + stats.reentrant_spans, g_handled.load());
  EXPECT_GT(g_handled.load(), 0u);
}

}  // namespace
