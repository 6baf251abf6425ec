#pragma once
// strobe under STROBE_DISABLE: what <strobe/span.hpp>, <strobe/recorder.hpp> (and so
// <strobe/strobe.hpp>) declare instead. The same names and signatures, declaration by
// declaration, as no-ops the compiler removes: code written against strobe builds
// unchanged, and a program that uses only these needs no strobe library. A Recorder keeps
// its Config and starts nothing; every handle is empty, every id 0, every context invalid.
// types.hpp, model.hpp and sink.hpp are the real ones (their out-of-line functions, such
// as to_string(Kind), still need strobe::core).
//
// Everything here is in the inline namespace strobe::disabled: it is spelled strobe::Span
// as always, but its symbols differ from the real ones, so a disabled translation unit
// linked with strobe::core never picks up a real definition of the same name.
//
// Keep in step with span.hpp and recorder.hpp: tests/disabled/disabled_build.cpp names
// every public declaration with its exact type and builds against both.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "strobe/types.hpp"

namespace strobe {
inline namespace disabled {

class Name {
 public:
  constexpr explicit Name(std::string_view) noexcept {}
  [[nodiscard]] constexpr std::uint32_t id() const noexcept { return 0; }
  [[nodiscard]] constexpr std::string_view str() const noexcept { return {}; }
};

// Accepts what the real Value accepts (so overloads resolve alike) and keeps nothing.
class Value {
 public:
  enum class Type : std::uint8_t { i64, f64, boolean, string, u64 };
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  constexpr Value(I) noexcept {}
  template <class T>
    requires(!std::same_as<std::remove_cv_t<T>, char>)
  Value(T*) = delete;
  Value(std::nullptr_t) = delete;
  template <std::floating_point F>
  constexpr Value(F) noexcept {}
  constexpr Value(bool) noexcept {}
  constexpr Value(std::string_view) noexcept {}
  constexpr Value(const char*) noexcept {}
  constexpr Value(const std::string&) noexcept {}

  [[nodiscard]] constexpr Type type() const noexcept { return Type::i64; }
  [[nodiscard]] constexpr std::int64_t as_int() const noexcept { return 0; }
  [[nodiscard]] constexpr std::uint64_t as_uint() const noexcept { return 0; }
  [[nodiscard]] constexpr double as_double() const noexcept { return 0; }
  [[nodiscard]] constexpr bool as_bool() const noexcept { return false; }
  [[nodiscard]] constexpr std::string_view as_string() const noexcept { return {}; }
};

struct Attr {
  std::string_view key;
  Value value;
};

class Context {
 public:
  Context() = default;
  [[nodiscard]] constexpr TraceId trace_id() const noexcept { return {}; }
  [[nodiscard]] constexpr std::uint64_t span_id() const noexcept { return 0; }
  [[nodiscard]] constexpr bool valid() const noexcept { return false; }
  [[nodiscard]] static constexpr Context from_traceparent(std::string_view) noexcept { return {}; }
  [[nodiscard]] std::string traceparent() const { return {}; }
  [[nodiscard]] constexpr bool remote() const noexcept { return false; }
  [[nodiscard]] constexpr bool sampled() const noexcept { return false; }
};

constexpr bool prepare_thread() noexcept { return false; }

[[nodiscard]] constexpr Context current() noexcept { return {}; }

class ContextScope {
 public:
  constexpr explicit ContextScope(const Context&) noexcept {}
  constexpr ~ContextScope() {}
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;
};

class SuspendToken {
 public:
  SuspendToken() = default;
  [[nodiscard]] constexpr bool valid() const noexcept { return false; }
  [[nodiscard]] constexpr std::uint64_t span_id() const noexcept { return 0; }
  [[nodiscard]] constexpr std::uint32_t segment_index() const noexcept { return 0; }
};

struct StartOptions {
  bool mark_as_current = false;
  bool new_trace = false;
};

struct RecordOptions {
  std::string_view input{};
  std::string_view output{};
  std::string_view model{};
  TokenUsage tokens{};
  Status status = Status::ok;
  std::string_view error{};
  std::initializer_list<Attr> attrs{};
};

class Span {
 public:
  Span() noexcept = default;
  constexpr explicit Span(Name, Kind = Kind::span, std::initializer_list<Attr> = {}) noexcept {}
  constexpr Span(Name, std::string_view, std::initializer_list<Attr> = {}) noexcept {}
  Span(Span&&) noexcept = default;
  Span& operator=(Span&&) noexcept = default;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  constexpr ~Span() {}

  constexpr void finish() noexcept {}

  template <class T>
    requires(std::integral<T> || std::floating_point<T>)
  constexpr Span& attr(Name, T) noexcept {
    return *this;
  }
  template <class S>
    requires(std::is_convertible_v<const S&, std::string_view> && !std::is_same_v<S, Value>)
  constexpr Span& attr(Name, const S&) noexcept {
    return *this;
  }
  constexpr Span& attr(Name, Value) noexcept { return *this; }
  constexpr Span& attr(std::string_view, Value) noexcept { return *this; }
  constexpr Span& attrs(std::initializer_list<Attr>) noexcept { return *this; }
  constexpr Span& event(Name, std::initializer_list<Attr> = {}) noexcept { return *this; }
  constexpr Span& event(std::string_view, std::initializer_list<Attr> = {}) noexcept { return *this; }
  constexpr Span& log(std::string_view) noexcept { return *this; }
  constexpr Span& input(std::string_view) noexcept { return *this; }
  constexpr Span& output(std::string_view) noexcept { return *this; }
  constexpr Span& model(std::string_view) noexcept { return *this; }
  constexpr Span& tokens(TokenUsage) noexcept { return *this; }
  constexpr Span& link(const Context&) noexcept { return *this; }
  constexpr Span& tag(std::string_view) noexcept { return *this; }
  constexpr Span& fail(std::string_view) noexcept { return *this; }
  Span& record_exception(const std::exception&) noexcept { return *this; }
  Span& record_exception(const std::exception_ptr&) noexcept { return *this; }
  constexpr Span& provider(std::string_view) noexcept { return *this; }
  constexpr Span& response_model(std::string_view) noexcept { return *this; }
  constexpr Span& finish_reasons(std::initializer_list<std::string_view>) noexcept { return *this; }
  constexpr Span& request(const GenAiRequest&) noexcept { return *this; }
  constexpr Span& tool_call_id(std::string_view) noexcept { return *this; }
  constexpr Span& conversation_id(std::string_view) noexcept { return *this; }
  constexpr Span& more_tokens(std::int64_t, std::int64_t) noexcept { return *this; }
  constexpr Span& error(std::string_view, std::string_view) noexcept { return *this; }

  constexpr Span& next(Name) noexcept { return *this; }
  constexpr Span& next(Name, Kind) noexcept { return *this; }

  [[nodiscard]] constexpr SuspendToken suspend() noexcept { return {}; }

  [[nodiscard]] constexpr bool recording() const noexcept { return false; }
  [[nodiscard]] constexpr std::uint64_t span_id() const noexcept { return 0; }
  [[nodiscard]] constexpr std::uint64_t parent_id() const noexcept { return 0; }
  [[nodiscard]] constexpr TraceId trace_id() const noexcept { return {}; }
  [[nodiscard]] constexpr Context context() const noexcept { return {}; }
  [[nodiscard]] constexpr std::chrono::system_clock::time_point started_at() const noexcept { return {}; }
  [[nodiscard]] constexpr std::chrono::system_clock::time_point ended_at() const noexcept { return {}; }
};

[[nodiscard]] constexpr Span span(std::string_view, Kind = Kind::span,
                                  std::initializer_list<Attr> = {}) noexcept {
  return Span();
}
[[nodiscard]] constexpr Span span(Name, Kind = Kind::span, std::initializer_list<Attr> = {}) noexcept {
  return Span();
}
[[nodiscard]] constexpr Span span(std::string_view, std::string_view,
                                  std::initializer_list<Attr> = {}) noexcept {
  return Span();
}

[[nodiscard]] constexpr Span trace(std::string_view, std::initializer_list<Attr> = {}) noexcept {
  return Span();
}

[[nodiscard]] constexpr Span start_span(Name, Kind = Kind::span, StartOptions = {},
                                        std::initializer_list<Attr> = {}) noexcept {
  return Span();
}
[[nodiscard]] constexpr Span start_span(std::string_view, Kind = Kind::span, StartOptions = {},
                                        std::initializer_list<Attr> = {}) noexcept {
  return Span();
}

[[nodiscard]] constexpr Span resume(const SuspendToken&) noexcept { return Span(); }

constexpr Context record_span(std::string_view, Kind, std::chrono::nanoseconds,
                              RecordOptions = {}) noexcept {
  return {};
}
constexpr Context record_span(std::string_view, Kind, std::chrono::system_clock::time_point,
                              std::chrono::system_clock::time_point, RecordOptions = {}) noexcept {
  return {};
}
constexpr Context record_span(std::string_view, Kind, std::chrono::system_clock::time_point,
                              std::chrono::nanoseconds, RecordOptions = {}) noexcept {
  return {};
}
constexpr Context record_span(std::string_view, Kind, std::chrono::system_clock::time_point,
                              std::chrono::nanoseconds, Status, std::initializer_list<Attr> = {}) noexcept {
  return {};
}

// recorder.hpp
inline void set_thread_name(std::string_view) noexcept {}

class Recorder {
 public:
  explicit Recorder(Config config = {}) : config_(std::move(config)) {}
  ~Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  void flush() {}
  [[nodiscard]] Stats stats() const { return {}; }
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  [[nodiscard]] static bool active() noexcept { return false; }

 private:
  Config config_;
};

}  // namespace disabled
}  // namespace strobe

// The macros take the arguments the real ones take (they are type-checked alike) and
// make a no-op Span.
#define STROBE_NAME(text) (::strobe::Name{(text)})
#define STROBE_SPAN(var, name, ...) \
  [[maybe_unused]] ::strobe::Span var { ::strobe::Name{(name)} __VA_OPT__(, ) __VA_ARGS__ }
#define STROBE_NEXT(var, name) ((var).next(STROBE_NAME(name)))
