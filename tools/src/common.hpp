#pragma once
// Shared by the strobe tool's subcommands: exit codes, file iteration with damage
// warnings, output files, formatting.

#include <strobe/serialize/reader.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

namespace strobe::tool {

class LossSummary;

// Exit statuses (documented in tools/README.md and `strobe --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitNo = 1;          // diff: a span got significantly slower; validate: damage (--strict: loss)
inline constexpr int kExitUsage = 2;       // bad arguments
inline constexpr int kExitUnreadable = 3;  // missing, not a strobe file, newer version, bad header
inline constexpr int kExitDamaged = 4;     // damage inside the file: output covers what precedes it
inline constexpr int kExitOutput = 5;      // cannot write the output / push failed

// A failure that ends the command with `code` after printing "strobe: <what>".
class ToolError : public std::runtime_error {
 public:
  ToolError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

// Streams every trace of a file, batch by batch (bounded memory). A damaged file yields
// what precedes the damage, prints one warning line, and returns kExitDamaged; an
// unreadable one throws ToolError(kExitUnreadable). With `loss`, every trace read and the
// file's run-level totals are added to it.
int for_each_trace(const std::string& path,
                   const std::function<void(const serialize::TraceView&)>& fn,
                   serialize::FileInfo* info = nullptr, LossSummary* loss = nullptr);

// An output stream: "-" is stdout. Throws ToolError(kExitOutput) when it cannot be opened;
// close() reports write errors the same way.
class Output {
 public:
  explicit Output(const std::string& path);
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  [[nodiscard]] std::FILE* file() const noexcept { return f_; }
  void close();

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// Arithmetic on values from a file, defined for any of them (a file may hold anything
// the format can encode).
// a + b, saturated at the largest value.
[[nodiscard]] inline std::uint64_t sat_add(std::uint64_t a, std::uint64_t b) noexcept {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}
// a - b, exact when it fits, else saturated at INT64_MIN / INT64_MAX.
[[nodiscard]] inline std::int64_t sat_sub(std::int64_t a, std::int64_t b) noexcept {
  const __int128 d = static_cast<__int128>(a) - b;
  if (d > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
  if (d < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(d);
}
// A span's duration from its times (SpanView::end_ns() gives back the exact end even
// where the stored duration wrapped): end - start, saturated.
[[nodiscard]] inline std::int64_t span_duration(std::int64_t start_ns, std::int64_t end_ns) noexcept {
  return sat_sub(end_ns, start_ns);
}
// v rounded to the nearest integer, saturated; NaN gives 0.
[[nodiscard]] std::int64_t round_to_int64(double v) noexcept;
// Decimal text of a 128-bit value.
std::string to_decimal(__int128 v);

// A sum of int64 values that cannot overflow: exact in 128 bits (2^63 values of any
// size fit), read out saturated.
class Total {
 public:
  void add(std::int64_t v) noexcept { sum_ += v; }
  [[nodiscard]] __int128 exact() const noexcept { return sum_; }
  [[nodiscard]] std::int64_t value() const noexcept {
    if (sum_ > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
    if (sum_ < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(sum_);
  }
  // value() is not the exact sum.
  [[nodiscard]] bool saturated() const noexcept { return value() != sum_; }
  [[nodiscard]] bool nonzero() const noexcept { return sum_ != 0; }

 private:
  __int128 sum_ = 0;
};

// "812 ns", "12.3 us", "4.56 ms", "1.234 s"; any value, INT64_MIN included.
std::string format_duration(std::int64_t ns);
// ISO-8601 UTC with nanoseconds: 2026-11-22T05:41:18.123456789Z
std::string iso8601(std::int64_t unix_ns);
std::string hex64(std::uint64_t v);

}  // namespace strobe::tool
