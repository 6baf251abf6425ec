// Converting ticks to wall-clock ns: the integer slope against exact arithmetic, its
// bounds, and the drainer's conversion against the recording threads' (the published map).

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>

#include "clock.hpp"

namespace strobe::detail {
namespace {

__extension__ using Wide = __int128;

// floor(delta * x), exactly: x is a double, so m * 2^e with an integer m below 2^53.
std::int64_t exact_floor(std::int64_t delta, double x) {
  int e = 0;
  const double m = std::frexp(x, &e);  // x = m * 2^e, 0.5 <= m < 1
  const auto mant = static_cast<Wide>(std::ldexp(m, 53));
  e -= 53;
  const Wide product = static_cast<Wide>(delta) * mant;
  if (e >= 0) return static_cast<std::int64_t>(product << e);
  return static_cast<std::int64_t>(product >> -e);  // arithmetic: floor for negatives too
}

TEST(Slope, ScalesExactlyForSlopesOfTimestampCounters) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> rate(0.05, 4.0);  // 250 MHz .. 20 GHz
  for (int i = 0; i < 2000; ++i) {
    const double x = rate(rng);
    const Slope s = Slope::of(x);
    for (int j = 0; j < 50; ++j) {
      const auto delta = static_cast<std::int64_t>(rng() >> (j % 2 == 0 ? 20 : 2)) * (j % 3 == 0 ? -1 : 1);
      ASSERT_EQ(s.scale(delta), exact_floor(delta, x)) << "x " << x << " delta " << delta;
    }
  }
}

TEST(Slope, AgreesWithTheDoubleProductWithinOneNanosecond) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const double x = 0.1 + static_cast<double>(rng() % 1000) / 300.0;
    const auto delta = static_cast<std::int64_t>(rng() >> 24);  // up to 2^40 ticks: minutes to hours
    const auto by_double = static_cast<std::int64_t>(static_cast<double>(delta) * x);
    ASSERT_LE(std::llabs(Slope::of(x).scale(delta) - by_double), 1) << "x " << x << " delta " << delta;
  }
}

TEST(Slope, WholeSlopesAreIdentities) {
  const Slope one = Slope::of(1.0);
  EXPECT_EQ(one.whole, 1u);
  EXPECT_EQ(one.fraction, 0u);
  for (const std::int64_t d : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{1} << 62,
                               std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()})
    EXPECT_EQ(one.scale(d), d);
  EXPECT_EQ(Slope::of(3.0).scale(-5), -15);
}

TEST(Slope, OutOfRangeSlopesAreBoundedNotUndefined) {
  EXPECT_EQ(Slope::of(std::nan("")).scale(12345), 0);
  EXPECT_EQ(Slope::of(-2.5).scale(12345), 0);
  EXPECT_EQ(Slope::of(0.0).scale(12345), 0);
  const Slope huge = Slope::of(1e300);
  EXPECT_EQ(huge.whole, std::uint64_t{1} << 32);
  EXPECT_EQ(huge.fraction, 0u);
  EXPECT_EQ(huge.scale(3), std::int64_t{3} << 32);
  EXPECT_EQ(Slope::of(std::numeric_limits<double>::infinity()).whole, std::uint64_t{1} << 32);
  // Just below 1: the largest fraction, 1 - 2^-53, times 2^64 is 2^64 - 2^11.
  const Slope below_one = Slope::of(std::nextafter(1.0, 0.0));
  EXPECT_EQ(below_one.whole, 0u);
  EXPECT_EQ(below_one.fraction, ~std::uint64_t{0} - 2047);
  EXPECT_EQ(below_one.scale(1'000'000), 999'999);
}

TEST(Clock, ADamagedMapWrapsInsteadOfOverflowing) {
  // A recovery map from a damaged file: an anchor near the end of the range and a huge
  // slope. The sum wraps (defined), where a signed add would be undefined.
  const Clock c(Clock::Map{true, 1e300, 0, std::numeric_limits<std::int64_t>::max() - 5});
  const std::int64_t wrapped = c.to_wall_ns(1);
  EXPECT_EQ(static_cast<std::uint64_t>(wrapped),
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() - 5) + (std::uint64_t{1} << 32));
}

TEST(Clock, AFixedMapConvertsAsItsSlopeSays) {
  const Clock::Map m{true, 0.384615, 1'000'000, 1'700'000'000'000'000'000};
  const Clock c(m);
  EXPECT_EQ(c.to_wall_ns(1'000'000), m.anchor_wall);
  EXPECT_EQ(c.to_wall_ns(1'000'000 + 2'600'000'000ull), m.anchor_wall + exact_floor(2'600'000'000, 0.384615));
  EXPECT_EQ(c.to_wall_ns(999'000), m.anchor_wall + exact_floor(-1000, 0.384615));  // before the anchor
}

TEST(Clock, TheDrainerAndTheRecordingThreadsConvertAlike) {
  for (const bool tsc : {false, true}) {
    if (tsc && !tsc_is_invariant()) continue;
    const Clock c(tsc);  // publishes its map
    const std::uint64_t now = c.now_ticks();
    for (const std::uint64_t t : {now, now + 1, now + 123'456'789, now - 1000, now + (std::uint64_t{1} << 40)})
      EXPECT_EQ(published_wall_ns(t), c.to_wall_ns(t)) << (tsc ? "tsc" : "steady");
  }
}

}  // namespace
}  // namespace strobe::detail
