#include "clock.hpp"

#include <cpuid.h>
#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "strobe/detail/thread_state.hpp"

namespace strobe::detail {

bool tsc_is_invariant() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0x80000000u, &a, &b, &c, &d) == 0 || a < 0x80000007u) return false;
  __get_cpuid(0x80000007u, &a, &b, &c, &d);
  return (d & (1u << 8)) != 0;
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::uint64_t steady_ticks() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

namespace {

struct Sample {
  std::uint64_t ticks;
  std::int64_t mono;
};

// A tick reading bracketed as tightly as possible by two monotonic readings.
Sample sample_tsc() noexcept {
  Sample best{};
  std::int64_t best_window = INT64_MAX;
  for (int i = 0; i < 5; ++i) {
    const std::int64_t m0 = monotonic_ns();
    const std::uint64_t t = __rdtsc();
    const std::int64_t m1 = monotonic_ns();
    if (m1 - m0 < best_window) {
      best_window = m1 - m0;
      best = {t, m0 + (m1 - m0) / 2};
    }
  }
  return best;
}

// The process's first measurement of the TSC rate; later recorders reuse it.
std::atomic<double> g_tsc_ns_per_tick{0.0};

// The last published map, under a sequence lock: odd while a writer is in it. Writers are
// a Clock's constructor and its recalibrate() (rare), one at a time under the mutex;
// readers retry while a write overlaps them.
struct PublishedMap {
  std::mutex writer;
  std::atomic<std::uint32_t> seq{0};  // 0: nothing published
  std::atomic<bool> tsc{false};
  std::atomic<std::uint64_t> slope_whole{1};
  std::atomic<std::uint64_t> slope_fraction{0};
  std::atomic<std::uint64_t> anchor_ticks{0};
  std::atomic<std::int64_t> anchor_wall{0};
};
constinit PublishedMap g_published;

double measure_tsc_rate() noexcept {
  if (const double known = g_tsc_ns_per_tick.load(std::memory_order_relaxed); known > 0) return known;
  const Sample a = sample_tsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const Sample b = sample_tsc();
  const double rate = b.ticks > a.ticks ? double(b.mono - a.mono) / double(b.ticks - a.ticks) : 1.0;
  g_tsc_ns_per_tick.store(rate, std::memory_order_relaxed);
  return rate;
}

}  // namespace

Slope Slope::of(double ns_per_tick) noexcept {
  if (!(ns_per_tick > 0)) return {0, 0};  // and NaN
  if (ns_per_tick >= 4294967296.0) return {std::uint64_t{1} << 32, 0};
  const double whole = std::floor(ns_per_tick);
  // Both steps are exact: the fraction is below 1 (at most 1 - 2^-53), so times 2^64 it
  // is at most 2^64 - 2^11, which a std::uint64_t holds. Bits below 2^-64 (slopes under
  // 2^-12 ns a tick only) are dropped.
  const double fraction = std::ldexp(ns_per_tick - whole, 64);
  return {static_cast<std::uint64_t>(whole), static_cast<std::uint64_t>(fraction)};
}

Clock::Clock(bool use_tsc) : tsc_(use_tsc) {
  if (tsc_) {
    ns_per_tick_ = measure_tsc_rate();
    slope_ = Slope::of(ns_per_tick_);
    const Sample s = sample_tsc();
    base_ticks_ = anchor_ticks_ = s.ticks;
    base_mono_ = s.mono;
    anchor_wall_ = realtime_ns() - monotonic_ns() + s.mono;
  } else {
    ns_per_tick_ = 1.0;
    const std::int64_t mono = static_cast<std::int64_t>(steady_ticks());
    base_ticks_ = anchor_ticks_ = static_cast<std::uint64_t>(mono);
    base_mono_ = mono;
    anchor_wall_ = realtime_ns();
  }
  publish();
}

void Clock::publish() const noexcept {
  std::lock_guard lock(g_published.writer);
  PublishedMap& m = g_published;
  const std::uint32_t s = m.seq.load(std::memory_order_relaxed);
  m.seq.store(s + 1, std::memory_order_relaxed);
  // release fence: a reader that sees a field written below also sees seq odd (or later).
  std::atomic_thread_fence(std::memory_order_release);
  m.tsc.store(tsc_, std::memory_order_relaxed);
  m.slope_whole.store(slope_.whole, std::memory_order_relaxed);
  m.slope_fraction.store(slope_.fraction, std::memory_order_relaxed);
  m.anchor_ticks.store(anchor_ticks_, std::memory_order_relaxed);
  m.anchor_wall.store(anchor_wall_, std::memory_order_relaxed);
  // release: a reader that sees seq even at s + 2 sees every field above.
  m.seq.store(s + 2, std::memory_order_release);
}

namespace {
struct MapCopy {
  bool published, tsc;
  Slope slope;
  std::uint64_t anchor_ticks;
  std::int64_t anchor_wall;
};
MapCopy read_published() noexcept {
  const PublishedMap& m = g_published;
  for (;;) {
    // acquire: the fields read below are at least those published with seq s.
    const std::uint32_t s = m.seq.load(std::memory_order_acquire);
    if (s & 1) continue;  // a writer is in it
    const MapCopy c{s != 0, m.tsc.load(std::memory_order_relaxed),
                    Slope{m.slope_whole.load(std::memory_order_relaxed), m.slope_fraction.load(std::memory_order_relaxed)},
                    m.anchor_ticks.load(std::memory_order_relaxed),
                    m.anchor_wall.load(std::memory_order_relaxed)};
    // acquire fence: the loads above happen before the re-read of seq; an unchanged seq
    // means no writer touched them meanwhile.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (m.seq.load(std::memory_order_relaxed) == s) return c;
  }
}
}  // namespace

std::uint64_t now_published_ticks() noexcept {
  const MapCopy c = read_published();
  if (!c.published) return static_cast<std::uint64_t>(realtime_ns());
  return c.tsc ? __rdtsc() : steady_ticks();
}

std::int64_t published_wall_ns(std::uint64_t ticks) noexcept {
  const MapCopy c = read_published();
  if (!c.published) return static_cast<std::int64_t>(ticks);
  // As Clock::to_wall_ns does, to the bit.
  return c.slope.from(c.anchor_wall, static_cast<std::int64_t>(ticks - c.anchor_ticks));
}

std::uint64_t Clock::now_ticks() const noexcept { return tsc_ ? __rdtsc() : steady_ticks(); }

void Clock::recalibrate() noexcept {
  if (!tsc_ || fixed_) return;
  const Sample s = sample_tsc();
  if (s.ticks <= base_ticks_ || s.mono - base_mono_ < 50'000'000) return;  // baseline too short
  const std::int64_t wall_now = to_wall_ns(s.ticks);
  anchor_ticks_ = s.ticks;
  anchor_wall_ = wall_now;  // continuous at the anchor; only the slope changes
  ns_per_tick_ = double(s.mono - base_mono_) / double(s.ticks - base_ticks_);
  slope_ = Slope::of(ns_per_tick_);
  publish();
}

}  // namespace strobe::detail
