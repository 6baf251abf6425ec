// The frame checksum: CRC-32C as the standard defines it (the check value of "123456789"),
// equal to a bit-by-bit reference at every length and alignment, three-stream blocks and
// the serial tail alike, and continued across calls.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "strobe/serialize/format.hpp"

namespace {

using strobe::serialize::crc32c;

std::uint32_t reference(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, CheckValue) {
  const char* text = "123456789";
  EXPECT_EQ(crc32c(text, 9), 0xE3069283u);
}

TEST(Crc32c, EqualsTheBitwiseDefinitionAtEveryLengthAndAlignment) {
  std::mt19937_64 rng(7);
  std::vector<unsigned char> data(3 * 1024 * 5 + 64);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 64; ++n) lengths.push_back(n);
  for (std::size_t n : {3071u, 3072u, 3073u, 3079u, 6143u, 6144u, 6151u, 9216u, 12000u, 15360u})
    lengths.push_back(n);
  for (const std::size_t n : lengths) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      ASSERT_EQ(crc32c(data.data() + offset, n), reference(data.data() + offset, n)) << n << " bytes at +" << offset;
    }
  }
}

TEST(Crc32c, ContinuesAcrossCalls) {
  std::vector<unsigned char> data(20000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 131 + 7);
  const std::uint32_t whole = crc32c(data.data(), data.size());
  for (const std::size_t cut : {1u, 100u, 3072u, 9217u, 19999u}) {
    const std::uint32_t first = crc32c(data.data(), cut);
    EXPECT_EQ(crc32c(data.data() + cut, data.size() - cut, first), whole) << cut;
  }
}

}  // namespace
