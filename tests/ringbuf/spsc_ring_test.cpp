#include <strobe/ringbuf/ring_registry.hpp>
#include <strobe/ringbuf/spsc_ring.hpp>

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>
#include <vector>

#include "render.hpp"

namespace {

using strobe::ringbuf::RingRegistry;
using strobe::ringbuf::SpscRing;

struct alignas(64) Slot {
  std::uint64_t seq;
  std::uint64_t check;
  unsigned char pad[48];
};
static_assert(sizeof(Slot) == 64);

Slot make(std::uint64_t seq) {
  Slot s{};
  s.seq = seq;
  s.check = seq * 0x9e3779b97f4a7c15ull;
  return s;
}

TEST(SpscRing, RejectsCapacityThatIsNotAPowerOfTwo) {
  EXPECT_THROW(SpscRing<Slot>(0), std::invalid_argument);
  EXPECT_THROW(SpscRing<Slot>(1), std::invalid_argument);
  EXPECT_THROW(SpscRing<Slot>(3), std::invalid_argument);
  EXPECT_THROW(SpscRing<Slot>(100), std::invalid_argument);
  EXPECT_NO_THROW(SpscRing<Slot>(2));
}

class SpscRingCapacity : public ::testing::TestWithParam<std::size_t> {};

TEST_P(SpscRingCapacity, EmptyFullAndWraparound) {
  const std::size_t cap = GetParam();
  SpscRing<Slot> ring(cap);
  EXPECT_EQ(ring.capacity(), cap);
  EXPECT_EQ(ring.available(), 0u);
  std::uint64_t next_in = 0, next_out = 0;
  // Many laps with uneven batch sizes cross the wrap point in every position.
  for (int lap = 0; lap < 50; ++lap) {
    while (ring.try_push(make(next_in))) ++next_in;
    EXPECT_EQ(ring.available(), cap) << "lap " << lap;
    EXPECT_FALSE(ring.reserve(1));
    EXPECT_EQ(ring.free_slots(), 0u);
    const std::size_t take = 1 + static_cast<std::size_t>(lap) % cap;
    for (std::size_t i = 0; i < take; ++i) {
      EXPECT_EQ(ring.peek(i).seq, next_out + i);
    }
    ring.release(take);
    next_out += take;
    EXPECT_EQ(ring.available(), cap - take);
    EXPECT_TRUE(ring.reserve(take));
    EXPECT_FALSE(ring.reserve(take + 1));
  }
  // Multi-slot reservations commit together.
  const std::size_t drained = ring.discard_all();
  next_out += drained;
  EXPECT_EQ(ring.available(), 0u);
  ASSERT_TRUE(ring.reserve(cap));
  for (std::size_t i = 0; i < cap; ++i) ring.slot(i) = make(next_in + i);
  EXPECT_EQ(ring.available(), 0u) << "nothing is visible before commit";
  ring.commit(cap);
  ASSERT_EQ(ring.available(), cap);
  for (std::size_t i = 0; i < cap; ++i) EXPECT_EQ(ring.peek(i).seq, next_in + i);
}

INSTANTIATE_TEST_SUITE_P(TinyCapacities, SpscRingCapacity, ::testing::Values(2, 4, 8, 16, 64, 1024));

// Producer and consumer on two threads; every record arrives once, in order, intact.
void run_order_stress(std::size_t capacity, std::uint64_t count, std::uint64_t seed) {
  SpscRing<Slot> ring(capacity);
  std::thread producer([&] {
    std::mt19937_64 rng(seed);
    std::uint64_t seq = 0;
    while (seq < count) {
      const std::size_t n = 1 + rng() % std::min<std::size_t>(capacity, 8);
      const std::size_t batch = static_cast<std::size_t>(std::min<std::uint64_t>(n, count - seq));
      if (!ring.reserve(batch)) {
        std::this_thread::yield();
        continue;
      }
      for (std::size_t i = 0; i < batch; ++i) ring.slot(i) = make(seq + i);
      ring.commit(batch);
      seq += batch;
    }
  });
  std::uint64_t expect = 0;
  std::uint64_t bad = 0;
  while (expect < count) {
    const std::size_t n = ring.available();
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Slot& s = ring.peek(i);
      if (s.seq != expect + i || s.check != (expect + i) * 0x9e3779b97f4a7c15ull) ++bad;
    }
    ring.release(n);
    expect += n;
  }
  producer.join();
  EXPECT_EQ(bad, 0u) << "capacity " << capacity << " seed " << seed;
  EXPECT_EQ(expect, count);
}

TEST(SpscRingStress, TwoThreadsKeepOrderLargeRing) {
  run_order_stress(1 << 12, static_cast<std::uint64_t>(20'000'000 * strobe::test::stress_scale()), 1);
}

TEST(SpscRingStress, TwoThreadsKeepOrderTinyRandomCapacities) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 16; ++round) {
    const std::size_t cap = std::size_t{2} << (rng() % 6);  // 2 .. 64
    run_order_stress(cap, static_cast<std::uint64_t>(500'000 * strobe::test::stress_scale()), rng());
  }
}

struct Counter {
  int uses = 0;
};

TEST(RingRegistry, RecycledEntryKeepsSlotAndCookie) {
  RingRegistry<Slot, Counter> reg;
  auto* a = reg.acquire(64, 1);
  auto* b = reg.acquire(64, 2);
  EXPECT_NE(a->slot, b->slot);
  EXPECT_EQ(reg.registered_count(), 2u);
  a->cookie = 12345;
  reg.retire(a);
  EXPECT_TRUE(a->retired.load());
  reg.recycle(a);
  EXPECT_EQ(reg.registered_count(), 1u);
  auto* c = reg.acquire(64, 3);
  EXPECT_EQ(c, a) << "the free pool is used before anything new is built";
  EXPECT_EQ(c->cookie, 12345u);
  EXPECT_FALSE(c->retired.load());
  EXPECT_EQ(c->owner_thread.load(), 3u);
}

TEST(RingRegistry, CapacityChangeReplacesEntryButKeepsSlotAndCookie) {
  RingRegistry<Slot, Counter> reg;
  auto* a = reg.acquire(64, 1);
  const auto slot = a->slot;
  a->cookie = 77;
  reg.retire(a);
  reg.recycle(a);
  auto* b = reg.acquire(128, 1);
  EXPECT_EQ(b->ring.capacity(), 128u);
  EXPECT_EQ(b->slot, slot);
  EXPECT_EQ(b->cookie, 77u);
}

TEST(RingRegistry, ConcurrentAcquireGivesDistinctSlots) {
  RingRegistry<Slot, Counter> reg;
  constexpr int kThreads = 8, kPerThread = 16;
  std::vector<std::vector<std::uint32_t>> slots(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto* e = reg.acquire(64, static_cast<std::uint64_t>(t));
        slots[static_cast<std::size_t>(t)].push_back(e->slot);
        if (i % 2 == 1) reg.retire(e);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::uint32_t> all;
  for (auto& v : slots) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), std::size_t{kThreads * kPerThread});
  std::vector<RingRegistry<Slot, Counter>::Entry*> snap;
  reg.snapshot(snap);
  EXPECT_EQ(snap.size(), std::size_t{kThreads * kPerThread});
}

}  // namespace
