#include "clock.hpp"

#include <cpuid.h>
#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <chrono>
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

Clock::Clock(bool use_tsc) : tsc_(use_tsc) {
  if (tsc_) {
    ns_per_tick_ = measure_tsc_rate();
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
}

std::uint64_t Clock::now_ticks() const noexcept { return tsc_ ? __rdtsc() : steady_ticks(); }

void Clock::recalibrate() noexcept {
  if (!tsc_) return;
  const Sample s = sample_tsc();
  if (s.ticks <= base_ticks_ || s.mono - base_mono_ < 50'000'000) return;  // baseline too short
  const std::int64_t wall_now = to_wall_ns(s.ticks);
  anchor_ticks_ = s.ticks;
  anchor_wall_ = wall_now;  // continuous at the anchor; only the slope changes
  ns_per_tick_ = double(s.mono - base_mono_) / double(s.ticks - base_ticks_);
}

}  // namespace strobe::detail
