// The assembler's span index against std::unordered_map: random inserts, lookups and
// erases of ids shaped like real ones (per-thread counters) and of arbitrary ids, through
// many growths, so backward-shift deletion is exercised on long probe runs.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "assembler.hpp"

namespace strobe::detail {
namespace {

void run(std::uint64_t seed, bool thread_shaped) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  SpanIndex index;
  std::unordered_map<std::uint64_t, std::uint32_t> model;
  std::vector<std::uint64_t> live;
  std::uint64_t counters[8] = {};
  auto fresh_id = [&] {
    for (;;) {
      std::uint64_t id;
      if (thread_shaped) {
        const std::size_t t = rng() % 8;
        id = (std::uint64_t{t + 1} << 48) | ++counters[t];
      } else {
        id = rng() | 1;  // never 0
      }
      if (!model.contains(id)) return id;
    }
  };
  for (int step = 0; step < 200000; ++step) {
    const unsigned op = static_cast<unsigned>(rng() % 10);
    if (op < 5 || live.empty()) {
      const std::uint64_t id = fresh_id();
      auto& slot = index.insert(id);
      slot.index = static_cast<std::uint32_t>(step);
      model[id] = static_cast<std::uint32_t>(step);
      live.push_back(id);
    } else if (op < 8) {
      const std::size_t k = rng() % live.size();
      const std::uint64_t id = live[k];
      if (rng() % 4 == 0) {  // stale erases: the slot names another span, and stays
        index.erase(id, 0, model[id] + 1);  // another position
        index.erase(id, 1, model[id]);      // another trace
        ASSERT_NE(index.find(id), nullptr) << "id " << id << " erased by a span it did not name";
      }
      index.erase(id, 0, model[id]);
      model.erase(id);
      live[k] = live.back();
      live.pop_back();
      ASSERT_EQ(index.find(id), nullptr) << "erased id " << id << " still found";
    } else {
      const std::uint64_t id = live[rng() % live.size()];
      const auto* slot = index.find(id);
      ASSERT_NE(slot, nullptr) << "live id " << id << " lost at step " << step;
      ASSERT_EQ(slot->index, model[id]);
    }
    ASSERT_EQ(index.size(), model.size());
  }
  for (const auto& [id, value] : model) {
    const auto* slot = index.find(id);
    ASSERT_NE(slot, nullptr) << id;
    EXPECT_EQ(slot->index, value);
  }
  index.clear();
  EXPECT_EQ(index.size(), 0u);
  for (const auto& [id, value] : model) EXPECT_EQ(index.find(id), nullptr);
}

TEST(SpanIndex, MatchesAMapForThreadShapedIds) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) run(seed, true);
}

TEST(SpanIndex, MatchesAMapForArbitraryIds) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) run(seed, false);
}

}  // namespace
}  // namespace strobe::detail
