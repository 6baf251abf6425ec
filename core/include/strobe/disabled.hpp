#pragma once
// What the macros become under STROBE_DISABLE: empty inline types the compiler removes,
// so code written against strobe's macros builds and links without strobe at all.

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace strobe {

struct DisabledName {};

struct DisabledSpan {
  template <class... A>
  constexpr DisabledSpan& attr(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& event(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& log(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& input(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& output(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& model(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& tokens(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& tag(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& fail(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& error(A&&...) noexcept { return *this; }
  template <class... A>
  constexpr DisabledSpan& next(A&&...) noexcept { return *this; }
  constexpr void finish() noexcept {}
  [[nodiscard]] constexpr bool recording() const noexcept { return false; }
  [[nodiscard]] constexpr std::uint64_t span_id() const noexcept { return 0; }
};

}  // namespace strobe
