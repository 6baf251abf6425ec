#pragma once
// Frame layout helpers shared by the writer and the reader. Internal.

#include <cstdint>
#include <cstring>

#include "strobe/serialize/format.hpp"

namespace strobe::serialize::detail {

struct FrameHeader {
  std::uint32_t length;
  std::uint8_t type;
  std::uint8_t zero[3];
  std::uint32_t payload_crc;
  std::uint32_t header_crc;
};
static_assert(sizeof(FrameHeader) == kFrameHeaderSize);

inline std::uint32_t padded(std::uint32_t n) noexcept { return (n + 7u) & ~7u; }

inline FrameHeader make_frame_header(FrameType type, const void* payload, std::uint32_t length) {
  FrameHeader h{};
  h.length = length;
  h.type = static_cast<std::uint8_t>(type);
  h.payload_crc = crc32c(payload, length);
  h.header_crc = crc32c(&h, 12);
  return h;
}

inline void make_preamble(unsigned char out[kPreambleSize]) {
  std::memset(out, 0, kPreambleSize);
  std::memcpy(out, kMagic, sizeof kMagic);
  const std::uint16_t major = kFormatMajor, minor = kFormatMinor;
  std::memcpy(out + 10, &major, 2);
  std::memcpy(out + 12, &minor, 2);
}

}  // namespace strobe::serialize::detail
