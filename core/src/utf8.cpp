#include "strobe/detail/utf8.hpp"

#include <cstdint>

namespace strobe::detail {

namespace {

// The length of the valid sequence at `at` (1-4), or 0 when it is invalid there.
std::size_t sequence_length(const unsigned char* p, std::size_t n, std::size_t at) noexcept {
  auto is_cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  const unsigned char c = p[at];
  if (c < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (at + len > n) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if (!is_cont(p[at + k])) return 0;
    cp = (cp << 6) | (p[at + k] & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;  // overlong, out of range, or a surrogate
  return len;
}

// The length of the valid prefix of p[0, n).
std::size_t valid_prefix(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {  // ASCII runs: most text
      ++i;
      continue;
    }
    const std::size_t len = sequence_length(p, n, i);
    if (len == 0) break;
    i += len;
  }
  return i;
}

}  // namespace

bool valid_utf8(std::string_view s) noexcept {
  return valid_prefix(reinterpret_cast<const unsigned char*>(s.data()), s.size()) == s.size();
}

bool repair_utf8(std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = valid_prefix(p, n);  // valid input is left alone
  if (i == n) return false;
  std::string out(s.data(), i);
  while (i < n) {
    const std::size_t len = sequence_length(p, n, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      while (i < n && (p[i] & 0xC0) == 0x80) ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  s = std::move(out);
  return true;
}

}  // namespace strobe::detail
