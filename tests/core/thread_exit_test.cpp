// Short-lived threads: each records spans under an adopted context and exits at once.
// No record is lost with the thread, its ring is retired, drained and recycled, and
// later threads reuse recycled rings instead of registering new ones.

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "globals.hpp"
#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::Kind;
using strobe::SpanData;
using namespace std::chrono_literals;

constexpr int kThreadsPerWave = 64;

strobe::Config config_for(const std::shared_ptr<strobe::MemorySink>& sink) {
  strobe::Config c;
  c.ring_capacity = 4096;
  c.partial_trace_age = std::chrono::minutes(10);  // one trace however slow the machine
  c.partial_trace_spans = 1u << 20;                // and however large
  c.sinks = {sink};
  return c;
}

std::int64_t attr_int(const SpanData& s, std::string_view key) {
  for (const strobe::Attribute& a : s.attrs)
    if (a.key == key) return a.value.i;
  return -1;
}

// The ring slot a span id was issued from (ids are (slot + 1) << 48 | counter).
std::uint64_t slot_of(std::uint64_t span_id) { return (span_id >> 48) - 1; }

// Runs one wave: kThreadsPerWave threads adopt ctx, record spans_each spans, wait until
// every thread of the wave has recorded, and exit together.
void run_wave(int wave, int spans_each, const strobe::Context& ctx) {
  std::barrier all_recorded(kThreadsPerWave);
  std::vector<std::thread> threads;
  threads.reserve(kThreadsPerWave);
  for (int i = 0; i < kThreadsPerWave; ++i) {
    threads.emplace_back([&, i] {
      strobe::ContextScope scope(ctx);
      auto worker = strobe::span("worker", Kind::agent, {{"wave", wave}, {"thread", i}});
      for (int k = 0; k < spans_each; ++k) {
        auto s = strobe::span("work", Kind::tool);
        s.attr("seq", k);
      }
      worker.finish();
      all_recorded.arrive_and_wait();
    });
  }
  for (auto& t : threads) t.join();
}

TEST(ThreadExit, EverySpanOfExitedThreadsArrives) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  const int waves = std::max(2, static_cast<int>(4 * strobe::test::stress_scale()));
  const int spans_each = std::max(5, static_cast<int>(100 * strobe::test::stress_scale()));
  recorder.flush();
  const strobe::Stats before = recorder.stats();
  {
    auto root = strobe::trace("fan-out");
    const strobe::Context ctx = strobe::current();
    for (int w = 0; w < waves; ++w) {
      run_wave(w, spans_each, ctx);
      // The drainer retires the exited threads' rings on its own, without a flush.
      const auto retired = static_cast<std::uint64_t>(w + 1) * kThreadsPerWave;
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (recorder.stats().rings_retired - before.rings_retired < retired &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
      ASSERT_EQ(recorder.stats().rings_retired - before.rings_retired, retired) << "wave " << w;
    }
  }
  recorder.flush();
  const strobe::Stats after = recorder.stats();

  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  const std::size_t threads = static_cast<std::size_t>(waves) * kThreadsPerWave;
  EXPECT_EQ(t.spans.size(), 1 + threads * (1 + static_cast<std::size_t>(spans_each)));
  EXPECT_EQ(after.spans_dropped, 0u);

  // Every worker arrived under the root, with each of its spans exactly once.
  std::map<std::uint64_t, std::pair<std::int64_t, std::int64_t>> workers;  // id -> (wave, thread)
  std::set<std::pair<std::int64_t, std::int64_t>> worker_keys;
  std::map<std::uint64_t, std::set<std::int64_t>> seqs;
  for (const SpanData& s : t.spans) {
    EXPECT_EQ(s.status, strobe::Status::ok) << s.name;
    EXPECT_FALSE(s.flags & (strobe::kSpanIncomplete | strobe::kSpanOrphan)) << s.name;
    if (s.name == "worker") {
      EXPECT_EQ(s.parent_id, t.spans[0].span_id);
      const auto key = std::make_pair(attr_int(s, "wave"), attr_int(s, "thread"));
      EXPECT_TRUE(worker_keys.insert(key).second);
      workers[s.span_id] = key;
    }
  }
  EXPECT_EQ(workers.size(), threads);
  for (const SpanData& s : t.spans) {
    if (s.name != "work") continue;
    ASSERT_TRUE(workers.count(s.parent_id)) << "a work span outside any worker";
    EXPECT_TRUE(seqs[s.parent_id].insert(attr_int(s, "seq")).second);
  }
  for (const auto& [id, key] : workers)
    EXPECT_EQ(seqs[id].size(), static_cast<std::size_t>(spans_each))
        << "wave " << key.first << " thread " << key.second;

  EXPECT_EQ(after.rings_retired - before.rings_retired, threads);
  EXPECT_EQ(after.rings_live, 1u);  // only this thread's
}

// Wave after wave, exited threads' rings go back to the pool and the next wave takes them:
// the registry does not grow, and the ring slots in use stay bounded by one wave's worth.
TEST(ThreadExit, RingsOfExitedThreadsAreRecycled) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder(config_for(sink));
  { auto attach = strobe::span("attach_main_thread"); }
  recorder.flush();
  EXPECT_EQ(sink->take().size(), 1u);
  auto& registry = strobe::detail::globals().registry;
  const std::size_t registered_before = registry.registered_count();
  const int waves = 6;
  const int spans_each = std::max(2, static_cast<int>(20 * strobe::test::stress_scale()));

  std::set<std::uint64_t> slots;
  for (int w = 0; w < waves; ++w) {
    const strobe::Stats before = recorder.stats();
    run_wave(w, spans_each, strobe::Context{});
    recorder.flush();
    const strobe::Stats after = recorder.stats();
    EXPECT_EQ(after.rings_retired - before.rings_retired,
              static_cast<std::uint64_t>(kThreadsPerWave))
        << "wave " << w;
    EXPECT_EQ(registry.registered_count(), registered_before) << "wave " << w;

    std::size_t spans = 0;
    for (const AssembledTrace& t : sink->take()) {
      for (const SpanData& s : t.spans) {
        ++spans;
        slots.insert(slot_of(s.span_id));
      }
    }
    EXPECT_EQ(spans, static_cast<std::size_t>(kThreadsPerWave) * (1 + spans_each)) << "wave " << w;
  }
  // Without recycling, each wave would register kThreadsPerWave new rings (6x as many slots).
  // Rings left in the pool by the other test account for at most one more wave's worth.
  EXPECT_LE(slots.size(), static_cast<std::size_t>(2 * kThreadsPerWave));
}

}  // namespace
