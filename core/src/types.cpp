#include "strobe/types.hpp"

#include <array>

namespace strobe {
namespace {
constexpr std::array<const char*, kKindCount> kKindNames = {
    "span", "llm", "retrieval", "tool", "plan", "action", "agent", "step", "custom"};
}

const char* to_string(Kind k) noexcept {
  const auto i = static_cast<std::size_t>(k);
  return i < kKindNames.size() ? kKindNames[i] : "custom";
}

Kind kind_from_string(std::string_view s) noexcept {
  for (std::size_t i = 0; i + 1 < kKindNames.size(); ++i)
    if (s == kKindNames[i]) return static_cast<Kind>(i);
  return Kind::custom;
}

const char* to_string(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::failed: return "failed";
    case Status::incomplete: return "incomplete";
  }
  return "unknown";
}

const char* to_string(Assembly a) noexcept {
  switch (a) {
    case Assembly::automatic: return "automatic";
    case Assembly::in_process: return "in_process";
    case Assembly::deferred: return "deferred";
  }
  return "unknown";
}

std::string TraceId::to_hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(hi >> (4 * i)) & 0xF];
    out[31 - i] = kHex[(lo >> (4 * i)) & 0xF];
  }
  return out;
}

std::string to_hex(std::uint64_t span_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[15 - i] = kHex[(span_id >> (4 * i)) & 0xF];
  return out;
}

}  // namespace strobe
