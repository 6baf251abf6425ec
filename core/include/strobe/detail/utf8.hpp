#pragma once
// UTF-8 repair: every string strobe hands over (names, keys, values) is valid UTF-8.

#include <string>
#include <string_view>

namespace strobe::detail {

// Replaces each invalid UTF-8 sequence (stray, overlong, surrogate, out of range,
// truncated) with U+FFFD; returns true if any was replaced.
bool repair_utf8(std::string& s);

// True when s is valid UTF-8 (what repair_utf8 would leave alone).
bool valid_utf8(std::string_view s) noexcept;

}  // namespace strobe::detail
