// Exact drop accounting on a full ring. A 64-record ring whose drainer sleeps (10 s
// interval, no spinning) fills after a few spans; every span after that is dropped whole
// and counted, and whatever reaches the sink is whole. The wait policy loses nothing.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::Kind;
using strobe::SpanData;
using strobe::Status;
using namespace std::chrono_literals;

strobe::Config stalled_config(const std::shared_ptr<strobe::MemorySink>& sink) {
  strobe::Config c;
  c.ring_capacity = 64;
  c.drain_interval = 10s;
  c.drain_spin_passes = 0;
  c.sinks = {sink};
  return c;
}

// Lets the drainer finish its start-up pass and the pass after a flush, so that it sleeps
// for its whole drain interval while the test fills the ring.
void let_drainer_fall_asleep(strobe::Recorder& recorder) {
  recorder.flush();
  std::this_thread::sleep_for(100ms);
}

const strobe::Attribute* find_attr(const SpanData& s, std::string_view key) {
  for (const strobe::Attribute& a : s.attrs)
    if (a.key == key) return &a;
  return nullptr;
}

constexpr std::uint64_t kItemAttrs = 3;
constexpr std::uint64_t kItemRecords = 2 + kItemAttrs;  // begin, attributes, end

TEST(Drops, StalledDrainerDropsWholeSpansAndCountsEveryOne) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(stalled_config(sink));
  let_drainer_fall_asleep(recorder);

  const int rounds = std::max(2, static_cast<int>(20 * strobe::test::stress_scale()));
  constexpr int kItems = 200;
  for (int r = 0; r < rounds; ++r) {
    {
      auto round = strobe::span("round", Kind::step, {{"round", r}});
      for (int i = 0; i < kItems; ++i) {
        auto item = strobe::span("item", Kind::tool);
        item.attr("i", i).attr("tag", "item").attr("w", i * 0.5);
      }
    }
    recorder.flush();
  }
  const std::uint64_t n = static_cast<std::uint64_t>(rounds) * (kItems + 1);

  const strobe::Stats stats = recorder.stats();
  EXPECT_EQ(stats.spans_recorded + stats.spans_dropped, n);
  EXPECT_GT(stats.spans_dropped, 0u) << "the ring never filled: the drainer did not stall";
  EXPECT_EQ(stats.orphan_records, 0u);

  const std::vector<AssembledTrace> traces = sink->traces();
  std::uint64_t arrived = 0, missing_records = 0, items_arrived = 0, late = 0;
  strobe::DropCounts reported{};
  std::set<std::int64_t> rounds_seen;
  for (const AssembledTrace& t : traces) {
    reported.spans += t.drops_since_previous.spans;
    reported.records += t.drops_since_previous.records;
    EXPECT_FALSE(t.partial);
    ASSERT_FALSE(t.spans.empty());
    arrived += t.spans.size();
    const SpanData& root = t.spans[0];
    EXPECT_EQ(root.name, "round");
    EXPECT_EQ(root.parent_id, 0u);
    const strobe::Attribute* round_attr = find_attr(root, "round");
    ASSERT_NE(round_attr, nullptr);
    EXPECT_TRUE(rounds_seen.insert(round_attr->value.i).second) << "round twice";
    std::set<std::int64_t> items_seen;
    for (std::size_t k = 0; k < t.spans.size(); ++k) {
      const SpanData& s = t.spans[k];
      // Whole: begun (named, placed under its parent) and ended.
      EXPECT_EQ(s.status, Status::ok) << s.name;
      EXPECT_FALSE(s.flags & (strobe::kSpanIncomplete | strobe::kSpanOrphan)) << s.name;
      EXPECT_GE(s.end_ns, s.start_ns);
      if (k == 0) continue;
      ++items_arrived;
      EXPECT_EQ(s.name, "item");
      EXPECT_EQ(s.kind, Kind::tool);
      EXPECT_EQ(s.parent_id, root.span_id);
      EXPECT_LE(s.attrs.size(), kItemAttrs);
      missing_records += kItemAttrs - s.attrs.size();
      if (s.flags & strobe::kSpanLateBegin) {
        ++late;  // its begin found the ring full: written when it ended, under its parent
        EXPECT_TRUE(s.flags & strobe::kSpanLostRecords);
      }
      if (const strobe::Attribute* i = find_attr(s, "i")) {
        EXPECT_TRUE(items_seen.insert(i->value.i).second) << "item " << i->value.i << " twice";
        EXPECT_LT(i->value.i, kItems);
      }
    }
  }
  EXPECT_EQ(rounds_seen.size(), static_cast<std::size_t>(rounds));
  EXPECT_EQ(arrived, stats.spans_recorded);
  EXPECT_EQ(arrived, stats.spans_assembled);
  // A dropped item loses all its records; an item that arrived may have lost attributes,
  // and one whose begin came late lost the begin's first try as well.
  EXPECT_EQ(stats.records_dropped, stats.spans_dropped * kItemRecords + missing_records + late);
  EXPECT_GT(late, 0u) << "no begin was retried at its end";
  EXPECT_EQ(items_arrived + stats.spans_dropped, static_cast<std::uint64_t>(rounds) * kItems);
  // The traces carry the same drops as the statistics.
  EXPECT_EQ(reported.spans, stats.spans_dropped);
  EXPECT_EQ(reported.records, stats.records_dropped);
}

// A span whose begin was recorded but one of whose attributes found the ring full arrives
// flagged kSpanLostRecords, so a reader knows it is not the whole story.
TEST(Drops, SpanThatLostAnAttributeIsFlaggedLostRecords) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(stalled_config(sink));
  let_drainer_fall_asleep(recorder);

  // Fill the ring with two-record spans until a begin and one attribute still fit but a
  // second attribute does not (begins and attributes leave `headroom` slots for ends).
  strobe::detail::ThreadState& t = strobe::detail::t_state;
  do {
    auto filler = strobe::span("filler");
  } while (t.ring->free_slots() > t.headroom + 2);
  ASSERT_EQ(t.ring->free_slots(), t.headroom + 2);
  {
    auto victim = strobe::span("victim");
    victim.attr("kept", 1).attr("lost", 2);
  }
  recorder.flush();

  const SpanData* victim = nullptr;
  std::vector<AssembledTrace> traces = sink->traces();
  for (const AssembledTrace& tr : traces)
    for (const SpanData& s : tr.spans)
      if (s.name == "victim") victim = &s;
  ASSERT_NE(victim, nullptr);
  EXPECT_EQ(victim->status, Status::ok);
  ASSERT_EQ(victim->attrs.size(), 1u);
  EXPECT_EQ(victim->attrs[0].key, "kept");
  EXPECT_EQ(recorder.stats().records_dropped, 1u);
  EXPECT_TRUE(victim->flags & strobe::kSpanLostRecords)
      << "a span missing a dropped attribute arrived unflagged (flags " << victim->flags << ")";
}

// More spans open than the ring's headroom, then the ring fills: the outermost ends are
// lost. Those spans arrive incomplete, never as an end without a begin or a nameless span.
TEST(Drops, LostEndsLeaveSpansIncompleteButNamed) {
  auto sink = std::make_shared<strobe::MemorySink>();
  std::uint64_t records_dropped = 0;
  {
    strobe::Recorder recorder(stalled_config(sink));
    let_drainer_fall_asleep(recorder);
    ASSERT_TRUE(strobe::prepare_thread());  // t.headroom is set when the thread attaches
    strobe::detail::ThreadState& t = strobe::detail::t_state;
    {
      std::vector<strobe::Span> open;
      const std::size_t depth = t.headroom + 4;
      for (std::size_t d = 0; d < depth; ++d)
        open.push_back(strobe::span(d == 0 ? "outer" : "nested", Kind::step));
      while (t.ring->free_slots() > t.headroom) open.back().attr("fill", 1);
      while (!open.empty()) open.pop_back();  // innermost first
    }
    recorder.flush();
    const std::vector<AssembledTrace> flushed = sink->take();
    ASSERT_EQ(flushed.size(), 1u);
    EXPECT_TRUE(flushed[0].partial);
    std::size_t incomplete = 0;
    for (const SpanData& s : flushed[0].spans) {
      EXPECT_FALSE(s.name.empty());
      if (s.status == Status::incomplete) {
        ++incomplete;
        EXPECT_TRUE(s.flags & strobe::kSpanIncomplete);
      }
    }
    EXPECT_EQ(incomplete, 4u);
    EXPECT_EQ(flushed[0].spans[0].name, "outer");
    EXPECT_EQ(flushed[0].spans[0].status, Status::incomplete);
    records_dropped = recorder.stats().records_dropped;
    EXPECT_EQ(recorder.stats().spans_dropped, 0u);
  }
  EXPECT_EQ(records_dropped, 4u);
  // Shutdown hands the spans that never ended over once more, still incomplete and named.
  const std::vector<AssembledTrace> final_parts = sink->take();
  ASSERT_EQ(final_parts.size(), 1u);
  EXPECT_FALSE(final_parts[0].partial);
  EXPECT_EQ(strobe::test::render_tree(final_parts[0]),
            "step outer [incomplete]\n"
            "  step nested [incomplete]\n"
            "    step nested [incomplete]\n"
            "      step nested [incomplete]\n");
}

// The wait policy with the smallest ring and a running drainer: nothing is dropped, and
// every span arrives with every attribute, from several threads at once.
TEST(Drops, WaitPolicyWithTinyRingIsLossless) {
  std::atomic<std::uint64_t> spans{0}, attrs{0}, incomplete{0};
  auto counter = std::make_shared<strobe::CallbackSink>([&](const AssembledTrace& t) {
    for (const SpanData& s : t.spans) {
      spans.fetch_add(1, std::memory_order_relaxed);
      attrs.fetch_add(s.attrs.size(), std::memory_order_relaxed);
      if (s.status != Status::ok) incomplete.fetch_add(1, std::memory_order_relaxed);
    }
  });
  strobe::Config c;
  c.ring_capacity = 64;
  c.overflow = strobe::OverflowPolicy::wait;
  c.drain_interval = 100us;
  c.sinks = {counter};
  strobe::Recorder recorder(c);

  constexpr int kThreads = 3;
  const int per_thread = std::max(200, static_cast<int>(20000 * strobe::test::stress_scale()));
  constexpr int kItemsPerBatch = 50;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_thread; i += kItemsPerBatch) {
        auto batch = strobe::span("batch", Kind::step, {{"worker", w}});
        for (int k = 0; k < kItemsPerBatch; ++k) {
          auto item = strobe::span("item", Kind::tool);
          item.attr("i", i + k)
              .attr("tag", "a string longer than the thirty-two inline bytes")
              .attr("w", 0.5);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  recorder.flush();

  const std::uint64_t batches = static_cast<std::uint64_t>(
      kThreads * ((per_thread + kItemsPerBatch - 1) / kItemsPerBatch));
  const std::uint64_t items = batches * kItemsPerBatch;
  const strobe::Stats stats = recorder.stats();
  EXPECT_EQ(stats.spans_dropped, 0u);
  EXPECT_EQ(stats.records_dropped, 0u);
  EXPECT_EQ(stats.spans_recorded, batches + items);
  EXPECT_EQ(spans.load(), batches + items);
  EXPECT_EQ(attrs.load(), batches + items * kItemAttrs);
  EXPECT_EQ(incomplete.load(), 0u);
}

}  // namespace
