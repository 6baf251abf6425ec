// Bounded memory under an endless root: a trace whose root stays open while millions of
// children end is handed over in partial parts, so the drainer's memory stays far below
// what keeping every span until the root ends would take.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

// Resident set size in bytes: the current one, or the peak so far.
std::int64_t rss_bytes(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  std::int64_t kib = -1;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = std::strtoll(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

struct Part {
  strobe::TraceId trace;
  std::uint32_t part;
  bool partial;
  std::size_t spans;
  bool has_root;
};

TEST(AssemblerMemory, EndlessRootIsHandedOverInBoundedParts) {
  const double scale = strobe::test::stress_scale();
  const auto children = static_cast<std::size_t>(std::max(100000.0, 3'000'000 * scale));
  const std::size_t part_spans = scale < 1 ? 10'000 : 50'000;
  constexpr std::size_t kRing = 1u << 15;
  // A part is due once the trace holds part_spans ended spans; the drainer notices at the
  // end of the pass that crossed the limit, and one pass reads at most a ring's worth of
  // records (two per span) from the one recording thread.
  const std::size_t max_part = part_spans + kRing / 2;
  // What keeping every span until the root ends would retain, at a low 200 bytes a span.
  const std::int64_t keep_all = static_cast<std::int64_t>(children) * 200;

  std::mutex mutex;
  std::vector<Part> parts;  // a few bytes per part: the spans themselves are not kept
  std::uint64_t delivered = 0;
  auto sink = std::make_shared<strobe::CallbackSink>([&](const strobe::AssembledTrace& t) {
    std::lock_guard lock(mutex);
    bool root = false;
    for (const strobe::SpanData& s : t.spans) {
      if (s.flags & strobe::kSpanTraceRoot) root = true;
      if (!(s.flags & strobe::kSpanContinued)) ++delivered;  // an open span appears again later
    }
    parts.push_back({t.trace_id, t.part, t.partial, t.spans.size(), root});
  });

  strobe::Config config;
  config.ring_capacity = kRing;
  config.overflow = strobe::OverflowPolicy::wait;
  config.partial_trace_spans = part_spans;
  config.partial_trace_age = std::chrono::hours(1);  // parts come from the span count alone
  config.sinks = {sink};
  strobe::Recorder recorder(config);

  strobe::TraceId trace_id;
  std::int64_t rss_before = 0;
  {
    strobe::Span root = strobe::trace("endless");
    trace_id = root.trace_id();
    const strobe::Context ctx = strobe::current();
    std::thread([&] {
      strobe::ContextScope scope(ctx);
      { auto warm = strobe::span("warm"); }  // the thread's ring is allocated before the baseline
      rss_before = rss_bytes("VmRSS");
      for (std::size_t i = 0; i < children; ++i) {
        STROBE_SPAN(step, "step", strobe::Kind::step);
      }
    }).join();
  }
  recorder.flush();
  const std::int64_t peak = rss_bytes("VmHWM");

  ASSERT_GT(rss_before, 0) << "no /proc/self/status";
  const std::int64_t growth = peak - rss_before;
  std::printf("children %zu, part limit %zu: rss before %lld MiB, peak growth %lld MiB, keep-all estimate %lld MiB\n",
              children, part_spans, static_cast<long long>(rss_before >> 20),
              static_cast<long long>(growth >> 20), static_cast<long long>(keep_all >> 20));
#if !defined(STROBE_TEST_SANITIZED)  // shadow memory makes RSS meaningless; the part sizes below still bound the drainer
  EXPECT_LT(growth, keep_all / 4) << "the drainer's memory grew with the endless trace";
#endif

  const strobe::Stats stats = recorder.stats();
  EXPECT_EQ(stats.spans_dropped, 0u);
  EXPECT_EQ(stats.spans_recorded, children + 2);

  std::lock_guard lock(mutex);
  EXPECT_EQ(delivered, children + 2);  // the steps, "warm" and the root, each once
  EXPECT_EQ(stats.spans_assembled, delivered);
  ASSERT_GE(parts.size(), 2u);
  std::size_t largest_partial = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    EXPECT_EQ(p.trace, trace_id) << "part " << i;
    EXPECT_EQ(p.part, i) << "part numbers must increase one by one";
    EXPECT_EQ(p.partial, i + 1 < parts.size()) << "part " << i;
    EXPECT_TRUE(p.has_root) << "part " << i << " lacks the trace's root (open, so it must come continued)";
    if (p.partial) {
      EXPECT_GE(p.spans, part_spans) << "part " << i << " was handed over before it was due";
      largest_partial = std::max(largest_partial, p.spans);
    }
  }
  EXPECT_LE(largest_partial, max_part) << "the trace held far more ended spans than partial_trace_spans";
  EXPECT_LE(parts.size(), children / part_spans + 1);
}

}  // namespace
