#pragma once
// The strobe file format: constants, the file's metadata, and the reader's error.
//
//   offset 0   preamble (16 bytes): "\x89STROBE\r\n\x1a" (10 bytes) | u16 major | u16 minor | u16 0
//   offset 16  frames, each 8-aligned:
//                u32 payload length | u8 type | 3 zero bytes | u32 CRC-32C(payload) |
//                u32 CRC-32C(the 12 bytes before) | payload | zero padding to 8
//              type 1: FileHeader buffer (first frame), 2: Batch buffer, 3: FileEnd buffer
//
// Every payload is a FlatBuffers buffer (schema: serialize/schema/strobe.fbs). A crash
// mid-write loses at most the frame being written; a reader stops at the first damaged
// frame and keeps everything before it. docs/design.md describes the format in full.

#include <cstdint>
#include <stdexcept>
#include <string>

namespace strobe::serialize {

inline constexpr std::uint16_t kFormatMajor = 1;
inline constexpr std::uint16_t kFormatMinor = 5;
inline constexpr char kMagic[10] = {'\x89', 'S', 'T', 'R', 'O', 'B', 'E', '\r', '\n', '\x1a'};
inline constexpr std::size_t kPreambleSize = 16;
inline constexpr std::size_t kFrameHeaderSize = 16;
// A frame larger than this is refused by the reader (and never written).
inline constexpr std::uint32_t kMaxFrameBytes = 1u << 30;

// records (format 1.5): a chunk of the record log (Assembly::deferred), as the
// recorder's drainer read its rings; only in files whose header says records.
enum class FrameType : std::uint8_t { header = 1, batch = 2, end = 3, records = 4 };

struct FileInfo {
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  std::string service_name;
  std::string host_name;
  std::uint32_t process_id = 0;
  std::int64_t start_ns = 0;
  std::string clock;
  double ns_per_tick = 1.0;
  std::string writer;
  // Format 1.5: the file holds the record log of a recorder with Assembly::deferred;
  // the Reader assembled it when it opened the file (what it returns are those traces).
  bool records = false;
};

// What the reader says of a file it cannot read (further): one line naming the file and
// the byte offset, e.g. "run.strobe: byte 4096: frame checksum mismatch".
class ReadError : public std::runtime_error {
 public:
  ReadError(std::string path, std::uint64_t offset, const std::string& message)
      : std::runtime_error(path + ": byte " + std::to_string(offset) + ": " + message),
        path_(std::move(path)),
        offset_(offset),
        message_(message) {}
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string path_;
  std::uint64_t offset_;
  std::string message_;
};

// CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

}  // namespace strobe::serialize
