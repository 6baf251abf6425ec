#pragma once
// Converting record timestamps (TSC ticks or steady_clock ns) to wall-clock ns.

#include <cstdint>

namespace strobe::detail {

// True when CPUID reports an invariant TSC (constant rate, runs in all C-states).
bool tsc_is_invariant() noexcept;

std::int64_t monotonic_ns() noexcept;
std::int64_t realtime_ns() noexcept;

// A slope in ns per tick for integer arithmetic: whole + fraction / 2^64, taken from a
// double. Scaling by it costs two multiplies instead of a round trip through a double
// (the drainer converts two timestamps a span). For slopes of at least 2^-12 ns a tick
// (any real clock's: a TSC runs below 20 GHz) it holds every bit of the double, so a
// conversion gives the exact floor of the product; every conversion made from the same
// double gives the same ns.
struct Slope {
  std::uint64_t whole = 1;
  std::uint64_t fraction = 0;
  // A slope below 0 or not a number reads as 0; one beyond 2^32 ns a tick as 2^32.
  static Slope of(double ns_per_tick) noexcept;
  [[nodiscard]] std::int64_t scale(std::int64_t delta) const noexcept {
    __extension__ using Wide = __int128;
    const auto low = static_cast<std::uint64_t>((static_cast<Wide>(delta) * static_cast<Wide>(fraction)) >> 64);
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(delta) * whole + low);  // wraps, never UB
  }
  // anchor + scale(delta), wrapping like it (a damaged map cannot make it undefined).
  [[nodiscard]] std::int64_t from(std::int64_t anchor, std::int64_t delta) const noexcept {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(anchor) + static_cast<std::uint64_t>(scale(delta)));
  }
};

// Maps ticks to wall-clock ns: a piecewise-linear map, continuous and increasing, whose
// slope is refined against CLOCK_MONOTONIC as the baseline grows (recalibrate()), and
// whose offset comes from CLOCK_REALTIME at start.
//
// Each Clock publishes its map (when made and at each recalibrate()) for the recording
// threads, which read it with published_wall_ns(): only a Recorder makes one outside
// tests and benchmarks, so the published map is the active recorder's, or the last one's.
class Clock {
 public:
  // Measures the tick rate (about 10 ms on first use in a process; later reuses it).
  explicit Clock(bool use_tsc);
  // The map as it stands: a recovery directory keeps it (see recovery.hpp), so that the
  // records a killed process left convert as its drainer would have converted them.
  struct Map {
    bool tsc = false;
    double ns_per_tick = 1.0;
    std::uint64_t anchor_ticks = 0;
    std::int64_t anchor_wall = 0;
  };
  [[nodiscard]] Map map() const noexcept { return {tsc_, ns_per_tick_, anchor_ticks_, anchor_wall_}; }
  // A fixed map (another process's): not published, and recalibrate() does nothing.
  explicit Clock(const Map& m) noexcept
      : tsc_(m.tsc), ns_per_tick_(m.ns_per_tick), slope_(Slope::of(m.ns_per_tick)), anchor_ticks_(m.anchor_ticks),
        anchor_wall_(m.anchor_wall), fixed_(true) {}
  [[nodiscard]] bool uses_tsc() const noexcept { return tsc_; }
  // Inline: the drainer converts two timestamps per span.
  [[nodiscard]] std::int64_t to_wall_ns(std::uint64_t ticks) const noexcept {
    return slope_.from(anchor_wall_, static_cast<std::int64_t>(ticks - anchor_ticks_));
  }
  [[nodiscard]] std::uint64_t now_ticks() const noexcept;
  [[nodiscard]] double ns_per_tick() const noexcept { return ns_per_tick_; }
  // Drainer thread, now and then: refines the slope over the whole baseline since start.
  void recalibrate() noexcept;

 private:
  void publish() const noexcept;

  bool tsc_;
  double ns_per_tick_ = 1.0;
  Slope slope_;  // ns_per_tick_'s
  std::uint64_t anchor_ticks_ = 0;  // the map is wall = anchor_wall_ + (t - anchor_ticks_) * slope
  std::int64_t anchor_wall_ = 0;  // integer: a double holds 1.8e18 ns only to ~256 ns
  std::uint64_t base_ticks_ = 0;  // first calibration sample, for long-baseline refinement
  std::int64_t base_mono_ = 0;
  bool fixed_ = false;
};

// Any thread, lock-free: the wall-clock ns the published map (see Clock) gives ticks of
// its clock (detail::now() on a thread attached to the active recorder, or
// now_published_ticks()). The drainer converts records with the same map, so this is the
// time a trace carries for them, unless a recalibrate() came between the two conversions
// (it changes the slope a little, so times long before it move slightly).
// No map published yet (no Recorder made): the ticks are CLOCK_REALTIME ns, kept as they are.
std::int64_t published_wall_ns(std::uint64_t ticks) noexcept;
// Ticks of the published map's clock (the TSC or steady_clock), read now.
std::uint64_t now_published_ticks() noexcept;

}  // namespace strobe::detail
