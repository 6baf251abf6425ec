// Loss never corrupts a trace. Several producers nest spans three deep on 256-record
// rings under the drop policy while the drainer keeps up as it can: many begins find a
// full ring. Every span that arrives sits under its true parent, in its true trace; no
// child is promoted to a root; a child whose parent was lost whole hangs under a
// placeholder with the parent's id; and begun = arrived + dropped, exactly.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

struct Expected {
  std::uint64_t parent = 0;
  strobe::TraceId trace;
};

TEST(Overload, DropsNeverPutASpanUnderTheWrongParent) {
  const double scale = strobe::test::stress_scale();
  const int requests = std::max(20, static_cast<int>(400 * scale));
  constexpr int kProducers = 3, kSteps = 8, kLayers = 4;

  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.ring_capacity = 256;
  config.overflow = strobe::OverflowPolicy::drop;
  config.sinks = {sink};
  auto recorder = std::make_unique<strobe::Recorder>(config);

  std::mutex mutex;
  std::map<std::uint64_t, Expected> begun;  // every span begun, as its producer saw it
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      std::vector<std::pair<std::uint64_t, Expected>> mine;
      for (int r = 0; r < requests; ++r) {
        strobe::Span request = strobe::trace("request");
        mine.push_back({request.span_id(), {0, request.trace_id()}});
        for (int s = 0; s < kSteps; ++s) {
          STROBE_SPAN(step, "decode_step", strobe::Kind::step);
          mine.push_back({step.span_id(), {request.span_id(), step.trace_id()}});
          for (int l = 0; l < kLayers; ++l) {
            STROBE_SPAN(layer, "layer");
            layer.attr("l", l);
            mine.push_back({layer.span_id(), {step.span_id(), layer.trace_id()}});
          }
        }
      }
      std::lock_guard lock(mutex);
      for (auto& [id, e] : mine) begun.emplace(id, e);
    });
  }
  for (auto& t : producers) t.join();
  recorder->flush();
  const strobe::Stats stats = recorder->stats();
  recorder.reset();

  std::set<std::uint64_t> arrived, placeholders;
  std::uint64_t promoted = 0, wrong_parent = 0, wrong_trace = 0, unknown = 0;
  for (const strobe::AssembledTrace& t : sink->traces()) {
    for (const strobe::SpanData& s : t.spans) {
      if (std::getenv("STROBE_DEBUG_OVERLOAD"))
        std::printf("trace %s n %zu part %u partial %d span %llu parent %llu flags %u\n", t.trace_id.to_hex().c_str(), t.spans.size(), t.part, t.partial,
                    (unsigned long long)s.span_id, (unsigned long long)s.parent_id, s.flags);
      if (s.flags & strobe::kSpanPlaceholder) {
        EXPECT_TRUE(placeholders.insert(s.span_id).second)
            << "placeholder " << s.span_id << " twice; now in part " << t.part << (t.partial ? " (partial)" : "")
            << " of trace " << t.trace_id.to_hex() << ", parent " << s.parent_id;
        continue;
      }
      if (s.flags & strobe::kSpanContinued) continue;

      auto it = begun.find(s.span_id);
      if (it == begun.end()) {
        ++unknown;
        continue;
      }
      EXPECT_TRUE(arrived.insert(s.span_id).second) << "span " << s.span_id << " twice";
      if (s.parent_id != it->second.parent) ++wrong_parent;
      if (!(t.trace_id == it->second.trace)) ++wrong_trace;
      if (it->second.parent != 0 && (s.flags & strobe::kSpanTraceRoot)) ++promoted;
    }
  }
  // A placeholder stands for a span that was begun and lost whole, and has children.
  for (std::uint64_t id : placeholders) {
    EXPECT_TRUE(begun.contains(id)) << "placeholder for a span never begun";
    EXPECT_FALSE(arrived.contains(id)) << "placeholder for a span that arrived";
  }
  std::uint64_t lost_with_children = 0;
  std::set<std::uint64_t> parents_of_arrived;
  for (std::uint64_t id : arrived) parents_of_arrived.insert(begun[id].parent);
  for (const auto& [id, e] : begun)
    if (!arrived.contains(id) && parents_of_arrived.contains(id)) {
      ++lost_with_children;
      if (!placeholders.contains(id)) ADD_FAILURE() << "no placeholder for lost span " << id << " (parent " << e.parent << ")";
    }

  std::printf("begun %zu, arrived %zu, dropped %llu (records %llu), placeholders %zu\n", begun.size(),
              arrived.size(), static_cast<unsigned long long>(stats.spans_dropped),
              static_cast<unsigned long long>(stats.records_dropped), placeholders.size());
  EXPECT_GT(stats.spans_dropped + stats.records_dropped, 0u) << "nothing was dropped: the test tested nothing";
  EXPECT_EQ(wrong_parent, 0u);
  EXPECT_EQ(wrong_trace, 0u);
  EXPECT_EQ(promoted, 0u);
  EXPECT_EQ(unknown, 0u);
  EXPECT_EQ(placeholders.size(), lost_with_children) << "every lost parent of an arrived span has a placeholder";
  EXPECT_EQ(arrived.size() + stats.spans_dropped, begun.size());
  EXPECT_EQ(stats.spans_recorded, arrived.size());
  EXPECT_EQ(stats.placeholders, placeholders.size());
}

}  // namespace
