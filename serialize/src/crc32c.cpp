#include <nmmintrin.h>

#include <array>
#include <cstring>

#include "strobe/serialize/format.hpp"

namespace strobe::serialize {
namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

std::uint32_t crc_soft(const unsigned char* p, std::size_t n, std::uint32_t c) noexcept {
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c;
}

// One stream: the crc32 instruction takes 8 bytes a cycle but waits 3 cycles for its
// previous result.
[[gnu::target("sse4.2")]] std::uint32_t crc_hw_serial(const unsigned char* p, std::size_t n,
                                                      std::uint32_t c) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return c;
}

// Three streams over consecutive blocks, so three crc32 instructions are in flight: the
// register after block A then B is shift(register after A) ^ (B's register from 0), where
// shift (feeding kBlock zero bytes) is linear in the register, tabulated bytewise once.
constexpr std::size_t kBlock = 1024;

struct Shift {
  std::uint32_t t[4][256];
};

const Shift& block_shift() noexcept {
  static const Shift s = [] {
    Shift m{};
    static const unsigned char zeros[kBlock] = {};
    std::uint32_t basis[32];
    for (int b = 0; b < 32; ++b) basis[b] = crc_hw_serial(zeros, kBlock, std::uint32_t{1} << b);
    for (int k = 0; k < 4; ++k) {
      for (std::uint32_t v = 0; v < 256; ++v) {
        std::uint32_t x = 0;
        for (int bit = 0; bit < 8; ++bit)
          if ((v >> bit) & 1u) x ^= basis[8 * k + bit];
        m.t[k][v] = x;
      }
    }
    return m;
  }();
  return s;
}

std::uint32_t shift_block(const Shift& s, std::uint32_t c) noexcept {
  return s.t[0][c & 0xff] ^ s.t[1][(c >> 8) & 0xff] ^ s.t[2][(c >> 16) & 0xff] ^ s.t[3][c >> 24];
}

[[gnu::target("sse4.2")]] std::uint32_t crc_hw(const unsigned char* p, std::size_t n, std::uint32_t c) noexcept {
  if (n >= 3 * kBlock) {
    const Shift& s = block_shift();
    while (n >= 3 * kBlock) {
      std::uint64_t a = c, b = 0, d = 0;
      for (std::size_t i = 0; i < kBlock; i += 8) {
        std::uint64_t va, vb, vd;
        std::memcpy(&va, p + i, 8);
        std::memcpy(&vb, p + kBlock + i, 8);
        std::memcpy(&vd, p + 2 * kBlock + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
        d = _mm_crc32_u64(d, vd);
      }
      c = shift_block(s, shift_block(s, static_cast<std::uint32_t>(a)) ^ static_cast<std::uint32_t>(b)) ^
          static_cast<std::uint32_t>(d);
      p += 3 * kBlock;
      n -= 3 * kBlock;
    }
  }
  return crc_hw_serial(p, n, c);
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint32_t c = ~crc;
  return ~(kHaveSse42 ? crc_hw(p, size, c) : crc_soft(p, size, c));
}

}  // namespace strobe::serialize
