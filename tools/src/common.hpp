#pragma once
// Shared by the strobe tool's subcommands: exit codes, file iteration with damage
// warnings, output files, formatting.

#include <strobe/serialize/reader.hpp>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

namespace strobe::tool {

// Exit statuses (documented in tools/README.md and `strobe --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitNo = 1;          // diff: a span got significantly slower; validate: damage
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
// unreadable one throws ToolError(kExitUnreadable).
int for_each_trace(const std::string& path,
                   const std::function<void(const serialize::TraceView&)>& fn,
                   serialize::FileInfo* info = nullptr);

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

// "812 ns", "12.3 us", "4.56 ms", "1.234 s".
std::string format_duration(std::int64_t ns);
// ISO-8601 UTC with nanoseconds: 2026-11-22T05:41:18.123456789Z
std::string iso8601(std::int64_t unix_ns);
std::string hex64(std::uint64_t v);

}  // namespace strobe::tool
