// libFuzzer target for the reader: any bytes given as a file must give traces or a
// one-line ReadError naming the file and a byte offset, never a crash, a sanitizer report
// or an unbounded allocation.
//
// Each input is read twice: as it is, and with its preamble and every frame's checksums
// made valid (lengths clamped to what the file holds), so that mutations get past the
// checksums to the FlatBuffers verifier and the reader's own consistency checks.

#include <strobe/serialize/format.hpp>
#include <strobe/serialize/reader.hpp>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

using strobe::serialize::kFrameHeaderSize;
using strobe::serialize::kPreambleSize;

// One in-memory file, rewritten for every input; the reader opens it by path.
struct Scratch {
  int fd = ::memfd_create("strobe-reader-fuzz", MFD_CLOEXEC);
  std::string path = "/proc/self/fd/" + std::to_string(fd);

  void write(const std::uint8_t* data, std::size_t size) {
    if (fd < 0 || ::ftruncate(fd, 0) != 0) __builtin_trap();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) __builtin_trap();
      done += static_cast<std::size_t>(n);
    }
  }
};

Scratch& scratch() {
  static Scratch s;
  return s;
}

void check_message(const std::string& what, const std::string& path) {
  if (what.find(path + ": byte ") != 0 || what.find('\n') != std::string::npos) __builtin_trap();
}

volatile std::uint64_t g_sink;

void read_everything(const std::string& path) {
  try {
    strobe::serialize::Reader r(path);
    std::uint64_t acc = r.info().service_name.size() + r.info().major;
    strobe::serialize::BatchView b;
    while (r.next(b)) {
      for (std::size_t i = 0; i < b.trace_count(); ++i) {
        const strobe::serialize::TraceView& t = b.trace(i);
        acc += t.trace_id().lo + t.root_name().size() + t.part() + t.drops().records;
        for (strobe::serialize::SpanView s : t.spans())
          acc += s.name().size() + static_cast<std::uint64_t>(s.duration_ns()) + s.thread_id() + s.model().size() +
                 static_cast<std::uint64_t>(s.tokens().input) + s.flags() + static_cast<std::uint64_t>(s.kind());
        const strobe::AssembledTrace a = t.materialize();
        acc += a.spans.size() + a.groups.size() + a.chains.size();
      }
    }
    if (r.error()) check_message(r.error()->what(), path);
    acc += r.end_info().spans + r.ended_cleanly();
    g_sink = acc;
  } catch (const strobe::serialize::ReadError& e) {
    check_message(e.what(), path);
  }
}

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

// The input with a valid preamble and valid checksums on every frame. False when there
// is nothing past the preamble to repair.
bool repair(const std::uint8_t* data, std::size_t size, std::vector<std::uint8_t>& out) {
  if (size < kPreambleSize + kFrameHeaderSize) return false;
  out.assign(data, data + size);
  std::memcpy(out.data(), strobe::serialize::kMagic, sizeof strobe::serialize::kMagic);
  const std::uint16_t major = strobe::serialize::kFormatMajor;
  std::memcpy(out.data() + 10, &major, 2);
  std::size_t pos = kPreambleSize;
  while (pos + kFrameHeaderSize <= size) {
    const std::size_t room = size - pos - kFrameHeaderSize;
    std::uint32_t length = u32_at(out, pos);
    if (length > room) length = static_cast<std::uint32_t>(room);
    put_u32(out, pos, length);
    put_u32(out, pos + 8, strobe::serialize::crc32c(out.data() + pos + kFrameHeaderSize, length));
    put_u32(out, pos + 12, strobe::serialize::crc32c(out.data() + pos, 12));
    pos += kFrameHeaderSize + ((std::size_t{length} + 7) & ~std::size_t{7});
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Scratch& s = scratch();
  s.write(data, size);
  read_everything(s.path);
  static std::vector<std::uint8_t> fixed;
  if (repair(data, size, fixed) && std::memcmp(fixed.data(), data, size) != 0) {
    s.write(fixed.data(), fixed.size());
    read_everything(s.path);
  }
  return 0;
}
