// Damaged, truncated, foreign and hostile files: the reader never crashes, says what is
// wrong in one line naming the file and the byte offset, and keeps every trace before the
// damage (bad input gets a clear error and loses nothing).

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "random_trace.hpp"
#include "temp_dir.hpp"
#include "render.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;

namespace {

using Bytes = std::vector<unsigned char>;

using strobe::test::TempDir;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const Bytes& b, std::size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(n));
}
void write_bytes(const std::string& path, const Bytes& b) { write_bytes(path, b, b.size()); }

// A file in memory (memfd), rewritten for each case: thousands of cases cost no disk I/O.
class ScratchFile {
 public:
  ScratchFile() : fd_(::memfd_create("strobe-damage", MFD_CLOEXEC)), path_("/proc/self/fd/" + std::to_string(fd_)) {
    EXPECT_GE(fd_, 0);
  }
  ~ScratchFile() { ::close(fd_); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  void write(const Bytes& b, std::size_t n) {
    ASSERT_EQ(::ftruncate(fd_, 0), 0);
    ASSERT_EQ(::pwrite(fd_, b.data(), n, 0), static_cast<ssize_t>(n));
  }
  void write(const Bytes& b) { write(b, b.size()); }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  int fd_;
  std::string path_;
};

std::uint32_t u32_at(const Bytes& b, std::size_t at) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

// A frame as laid out in format.hpp: 16-byte header, payload, zero padding to 8.
struct Frame {
  std::size_t start = 0;
  std::size_t payload_end = 0;  // start + 16 + length
  std::size_t end = 0;          // start of the next frame
  FrameType type{};
  std::size_t traces = 0;  // batch frames: how many traces the reader returns from it
  std::size_t first_trace = 0;
};

// Walks the frames of a well-formed file.
std::vector<Frame> frames_of(const Bytes& b) {
  std::vector<Frame> out;
  std::size_t pos = kPreambleSize;
  while (pos + kFrameHeaderSize <= b.size()) {
    Frame f;
    f.start = pos;
    const std::uint32_t len = u32_at(b, pos);
    f.type = static_cast<FrameType>(b[pos + 4]);
    f.payload_end = pos + kFrameHeaderSize + len;
    f.end = pos + kFrameHeaderSize + ((len + 7u) & ~7u);
    out.push_back(f);
    pos = f.end;
  }
  return out;
}

// Recomputes a frame header's own checksum after a test patched its first 12 bytes.
void fix_header_crc(Bytes& b, std::size_t frame) { put_u32(b, frame + 12, crc32c(b.data() + frame, 12)); }
void fix_payload_crc(Bytes& b, std::size_t frame) {
  put_u32(b, frame + 8, crc32c(b.data() + frame + kFrameHeaderSize, u32_at(b, frame)));
  fix_header_crc(b, frame);
}

struct Read {
  bool threw = false;
  std::string what;  // of the ReadError thrown, or of error()
  std::uint64_t offset = 0;
  bool has_error = false;
  bool ended = false;
  std::vector<AssembledTrace> traces;
};

// Everything a reader makes of the file; every trace is materialized.
Read read_file(const std::string& path) {
  Read r;
  try {
    Reader reader(path);
    BatchView b;
    while (reader.next(b))
      for (std::size_t i = 0; i < b.trace_count(); ++i) r.traces.push_back(b.trace(i).materialize());
    r.ended = reader.ended_cleanly();
    if (reader.error()) {
      r.has_error = true;
      r.what = reader.error()->what();
      r.offset = reader.error()->offset();
    }
  } catch (const ReadError& e) {
    r.threw = true;
    r.what = e.what();
    r.offset = e.offset();
  }
  return r;
}

// A small valid file of several batches, its bytes, frames and traces.
struct Sample {
  std::string path;
  Bytes bytes;
  std::vector<Frame> frames;
  std::vector<AssembledTrace> traces;
};

Sample make_sample(const fs::path& dir) {
  Sample s;
  s.path = (dir / "sample.strobe").string();
  strobe::test::RandomTraces gen(2024, {.max_spans = 4, .long_string_share = 0});
  {
    FileSink sink({.path = s.path, .batch_spans = 8});
    RecorderInfo info;
    info.service_name = "damage";
    info.process_id = 7;
    sink.open(info);
    for (int i = 0; i < 14; ++i) sink.consume(gen.next());
  }
  s.bytes = read_bytes(s.path);
  s.frames = frames_of(s.bytes);
  Reader r(s.path);
  BatchView b;
  std::size_t batch = 0;
  while (r.next(b)) {
    while (s.frames[batch].start != b.offset()) ++batch;
    s.frames[batch].first_trace = s.traces.size();
    s.frames[batch].traces = b.trace_count();
    for (std::size_t i = 0; i < b.trace_count(); ++i) s.traces.push_back(b.trace(i).materialize());
  }
  EXPECT_FALSE(r.error());
  EXPECT_TRUE(r.ended_cleanly());
  return s;
}

// The traces of every batch frame whose payload lies wholly before `cut`.
std::size_t traces_before(const Sample& s, std::size_t cut) {
  std::size_t n = 0;
  for (const Frame& f : s.frames)
    if (f.type == FrameType::batch && f.payload_end <= cut) n = f.first_trace + f.traces;
  return n;
}

void expect_prefix(const std::vector<AssembledTrace>& got, const std::vector<AssembledTrace>& all) {
  ASSERT_LE(got.size(), all.size());
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(strobe::test::first_difference(all[i], got[i]), "");
}

void expect_names_file_and_byte(const std::string& what, const std::string& path) {
  EXPECT_NE(what.find(path), std::string::npos) << what;
  EXPECT_NE(what.find(": byte "), std::string::npos) << what;
  EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
}

}  // namespace

TEST(Damage, SampleHasSeveralBatches) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  std::size_t batches = 0;
  for (const Frame& f : s.frames) batches += f.type == FrameType::batch;
  EXPECT_GE(batches, 4u);
  EXPECT_EQ(s.frames.front().type, FrameType::header);
  EXPECT_EQ(s.frames.back().type, FrameType::end);
  EXPECT_EQ(s.frames.back().end, s.bytes.size());
  EXPECT_EQ(s.traces.size(), 14u);
  std::printf("sample: %zu bytes, %zu frames, %zu traces\n", s.bytes.size(), s.frames.size(), s.traces.size());
}

// Cut at every byte: the header must be whole, or the Reader refuses the file; after
// that, every batch before the cut comes back and the error names file and offset.
TEST(Damage, TruncatedAtEveryByte) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  ScratchFile scratch;
  const std::string& cut_path = scratch.path();
  const Frame& header = s.frames.front();
  const Frame& end = s.frames.back();
  for (std::size_t cut = 0; cut <= s.bytes.size(); ++cut) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut) + " of " + std::to_string(s.bytes.size()));
    scratch.write(s.bytes, cut);
    const Read r = read_file(cut_path);
    if (cut < header.payload_end) {
      ASSERT_TRUE(r.threw) << "a file without a whole header must be refused";
      expect_names_file_and_byte(r.what, cut_path);
      EXPECT_LE(r.offset, cut);
      continue;
    }
    ASSERT_FALSE(r.threw) << r.what;
    ASSERT_EQ(r.traces.size(), traces_before(s, cut));
    expect_prefix(r.traces, s.traces);
    if (cut >= end.payload_end) {
      EXPECT_FALSE(r.has_error) << r.what;
      EXPECT_TRUE(r.ended);
      continue;
    }
    ASSERT_TRUE(r.has_error);
    EXPECT_FALSE(r.ended);
    expect_names_file_and_byte(r.what, cut_path);
    EXPECT_LE(r.offset, cut);
    bool at_boundary = false;
    for (const Frame& f : s.frames) at_boundary |= f.end == cut;
    if (at_boundary) EXPECT_NE(r.what.find("without an end frame"), std::string::npos) << r.what;
    if (::testing::Test::HasFatalFailure()) break;
  }
}

// CRC-32C catches every error of up to three bits in a frame, so a few flipped bits give
// either the same data (they hit bytes nobody reads: padding, reserved, minor version) or
// a clean error with everything before the damage kept.
TEST(Damage, RandomBitFlips) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  ScratchFile scratch;
  const std::string& path = scratch.path();
  const int seeds = std::max(200, static_cast<int>(3000 * strobe::test::stress_scale()));
  int clean = 0, refused = 0, damaged = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    Bytes b = s.bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    std::size_t first = b.size(), last = 0;
    for (int k = 0; k < flips; ++k) {
      const std::size_t at = rng() % b.size();
      b[at] ^= static_cast<unsigned char>(1u << (rng() % 8));
      first = std::min(first, at);
      last = std::max(last, at);
    }
    scratch.write(b);
    const Read r = read_file(path);
    if (r.threw) {
      ++refused;
      expect_names_file_and_byte(r.what, path);
      EXPECT_LT(first, s.frames.front().end) << "refused though preamble and header are intact: " << r.what;
    } else if (r.has_error) {
      ++damaged;
      expect_names_file_and_byte(r.what, path);
      EXPECT_LE(r.offset, last) << r.what;
      EXPECT_GE(r.traces.size(), traces_before(s, first)) << r.what;
      expect_prefix(r.traces, s.traces);
    } else {
      ++clean;
      EXPECT_TRUE(r.ended);
      ASSERT_EQ(r.traces.size(), s.traces.size());
      expect_prefix(r.traces, s.traces);
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
  std::printf("bit flips: %d clean, %d refused, %d damaged of %d\n", clean, refused, damaged, seeds);
  EXPECT_GT(damaged, 0);
}

// Runs of random bytes written over the file: the same guarantees as bit flips, except
// that identical data is only required when the reader reports no damage at all.
TEST(Damage, RandomGarbageRuns) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  ScratchFile scratch;
  const std::string& path = scratch.path();
  const int seeds = std::max(100, static_cast<int>(1000 * strobe::test::stress_scale()));
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed) * 7919);
    Bytes b = s.bytes;
    const std::size_t at = rng() % b.size();
    const std::size_t len = std::min<std::size_t>(b.size() - at, 1 + rng() % 64);
    for (std::size_t k = 0; k < len; ++k) b[at + k] = static_cast<unsigned char>(rng());
    scratch.write(b);
    const Read r = read_file(path);
    if (r.threw || r.has_error) {
      expect_names_file_and_byte(r.what, path);
      if (!r.threw) {
        EXPECT_GE(r.traces.size(), traces_before(s, at)) << r.what;
        expect_prefix(r.traces, s.traces);
      }
    } else {
      ASSERT_EQ(r.traces.size(), s.traces.size());
      expect_prefix(r.traces, s.traces);
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
}

TEST(Damage, WrongMagic) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  b[1] = 'X';
  const std::string path = (dir / "magic.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("not a strobe file"), std::string::npos) << r.what;
  EXPECT_EQ(r.offset, 0u);
}

TEST(Damage, ForeignFileShorterThanPreamble) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "short.strobe").string();
  write_bytes(path, Bytes{0x89, 'S', 'T', 'R', 'O'});
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("not a strobe file"), std::string::npos) << r.what;
}

TEST(Damage, NewerMajorVersionIsRefused) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  const std::uint16_t major = kFormatMajor + 1;
  std::memcpy(b.data() + 10, &major, 2);
  const std::string path = (dir / "newer.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("newer"), std::string::npos) << r.what;
  EXPECT_EQ(r.offset, 10u);
}

TEST(Damage, MajorVersionZeroIsRefused) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  b[10] = b[11] = 0;
  const std::string path = (dir / "zero.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("version 0"), std::string::npos) << r.what;
}

// A newer minor version of the same major reads normally.
TEST(Damage, NewerMinorVersionReads) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  const std::uint16_t minor = kFormatMinor + 5;
  std::memcpy(b.data() + 12, &minor, 2);
  const std::string path = (dir / "minor.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_FALSE(r.threw) << r.what;
  EXPECT_FALSE(r.has_error) << r.what;
  EXPECT_EQ(r.traces.size(), s.traces.size());
}

// A length prefix that passes the header checksum but claims more than the file holds
// (or more than any frame may hold) is an error, never an allocation.
TEST(Damage, AbsurdFrameLength) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  const Frame& second = s.frames[2];  // the second batch frame
  ASSERT_EQ(second.type, FrameType::batch);
  for (const std::uint32_t length : {0xFFFF'FFF0u, kMaxFrameBytes, kMaxFrameBytes + 1,
                                     static_cast<std::uint32_t>(s.bytes.size())}) {
    SCOPED_TRACE("length " + std::to_string(length));
    Bytes b = s.bytes;
    put_u32(b, second.start, length);
    fix_header_crc(b, second.start);
    const std::string path = (dir / "length.strobe").string();
    write_bytes(path, b);
    const Read r = read_file(path);
    ASSERT_FALSE(r.threw) << r.what;
    ASSERT_TRUE(r.has_error);
    expect_names_file_and_byte(r.what, path);
    EXPECT_NE(r.what.find("claims"), std::string::npos) << r.what;
    EXPECT_EQ(r.offset, second.start);
    EXPECT_EQ(r.traces.size(), s.frames[1].traces);
    expect_prefix(r.traces, s.traces);
  }
  // The same in the header frame: the file is refused.
  Bytes b = s.bytes;
  put_u32(b, s.frames[0].start, 0xFFFF'FFF0u);
  fix_header_crc(b, s.frames[0].start);
  const std::string path = (dir / "header-length.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("claims"), std::string::npos) << r.what;
}

TEST(Damage, UnknownFrameType) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  b[s.frames[2].start + 4] = 9;
  fix_header_crc(b, s.frames[2].start);
  const std::string path = (dir / "type.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.has_error);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("unknown frame type 9"), std::string::npos) << r.what;
  EXPECT_EQ(r.offset, s.frames[2].start);
  EXPECT_EQ(r.traces.size(), s.frames[1].traces);
}

// Checksums that match garbage: the FlatBuffers verifier is the last line of defence.
TEST(Damage, GarbagePayloadWithValidChecksums) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  ScratchFile scratch;
  const std::string& path = scratch.path();
  for (int seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    Bytes b = s.bytes;
    const Frame& f = s.frames[2 + rng() % 3];
    const std::size_t payload = f.start + kFrameHeaderSize;
    const std::size_t n = f.payload_end - payload;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k) b[payload + rng() % n] = static_cast<unsigned char>(rng());
    fix_payload_crc(b, f.start);
    scratch.write(b);
    const Read r = read_file(path);
    ASSERT_FALSE(r.threw) << r.what;
    EXPECT_GE(r.traces.size(), f.first_trace);
    if (r.has_error) {
      expect_names_file_and_byte(r.what, path);
      EXPECT_EQ(r.traces.size(), f.first_trace) << r.what;
      EXPECT_EQ(r.offset, f.start) << r.what;
    }
    // What the verifier lets through differs from the original only inside that batch.
    for (std::size_t i = 0; i < f.first_trace; ++i) ASSERT_EQ(strobe::test::first_difference(s.traces[i], r.traces[i]), "");
  }
}

// FlatBuffers' verifier checks a vector's length prefix for 4-byte alignment only, not its
// elements (google/flatbuffers#8397), so it passes a vector of 8-byte elements that starts
// off an 8-byte boundary; reading one is undefined behaviour. The reader must refuse it.
TEST(Damage, MisalignedVectorThatPassesTheVerifier) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  // A Batch whose `threads` vector (field 1, [ulong]) holds one element at byte 28.
  Bytes batch(36, 0);
  put_u32(batch, 0, 12);                           // root table at 12
  const std::uint16_t vtable[] = {8, 8, 0, 4};      // vtable at 4: sizes, strings absent, threads at +4
  std::memcpy(batch.data() + 4, vtable, sizeof vtable);
  put_u32(batch, 12, 8);                           // the table's vtable is 8 bytes before it
  put_u32(batch, 16, 8);                           // threads: vector at 16 + 8 = 24
  put_u32(batch, 24, 1);                           // one element, at 28: 4-aligned, not 8-aligned
  const std::uint64_t thread = 42;
  std::memcpy(batch.data() + 28, &thread, 8);
  // The file: the sample's preamble and header, this batch, the sample's end frame.
  const Frame& header = s.frames.front();
  Bytes b(s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(header.end));
  const std::size_t at = b.size();
  b.resize(at + kFrameHeaderSize + 40, 0);
  put_u32(b, at, static_cast<std::uint32_t>(batch.size()));
  b[at + 4] = static_cast<unsigned char>(FrameType::batch);
  std::memcpy(b.data() + at + kFrameHeaderSize, batch.data(), batch.size());
  fix_payload_crc(b, at);
  b.insert(b.end(), s.bytes.begin() + static_cast<std::ptrdiff_t>(s.frames.back().start), s.bytes.end());
  const std::string path = (dir / "misaligned.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_FALSE(r.threw) << r.what;
  ASSERT_TRUE(r.has_error) << "a batch with a misaligned [ulong] vector was accepted";
  expect_names_file_and_byte(r.what, path);
  EXPECT_EQ(r.offset, at);
}

TEST(Damage, DataAfterTheEndFrame) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  b.insert(b.end(), s.bytes.begin() + static_cast<std::ptrdiff_t>(s.frames[1].start),
           s.bytes.begin() + static_cast<std::ptrdiff_t>(s.frames[1].end));
  const std::string path = (dir / "after.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.has_error);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("after the end frame"), std::string::npos) << r.what;
  EXPECT_EQ(r.offset, s.bytes.size());
  EXPECT_EQ(r.traces.size(), s.traces.size());
}

TEST(Damage, SecondHeaderFrame) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  Bytes b = s.bytes;
  const Frame& h = s.frames[0];
  b.insert(b.begin() + static_cast<std::ptrdiff_t>(h.end), s.bytes.begin() + static_cast<std::ptrdiff_t>(h.start),
           s.bytes.begin() + static_cast<std::ptrdiff_t>(h.end));
  const std::string path = (dir / "second-header.strobe").string();
  write_bytes(path, b);
  const Read r = read_file(path);
  ASSERT_TRUE(r.has_error);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("second header"), std::string::npos) << r.what;
  EXPECT_EQ(r.offset, h.end);
  EXPECT_TRUE(r.traces.empty());
}

TEST(Damage, EmptyFile) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "empty.strobe").string();
  write_bytes(path, Bytes{});
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("empty file"), std::string::npos) << r.what;
}

TEST(Damage, Directory) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Read r = read_file(dir.string());
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, dir.string());
  EXPECT_NE(r.what.find("is a directory"), std::string::npos) << r.what;
}

TEST(Damage, MissingFile) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "no-such.strobe").string();
  const Read r = read_file(path);
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, path);
  EXPECT_NE(r.what.find("cannot open"), std::string::npos) << r.what;
  EXPECT_NE(r.what.find("No such file"), std::string::npos) << r.what;
}

TEST(Damage, NotARegularFile) {
  const Read r = read_file("/dev/null");
  ASSERT_TRUE(r.threw);
  expect_names_file_and_byte(r.what, "/dev/null");
  EXPECT_NE(r.what.find("not a regular file"), std::string::npos) << r.what;
}

// read_all without an error slot throws the damage; with one it returns what came before.
TEST(Damage, ReadAllThrowsOrReports) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const Sample s = make_sample(dir);
  const std::string path = (dir / "cut.strobe").string();
  write_bytes(path, s.bytes, s.frames[3].end);
  EXPECT_THROW((void)read_all(path), ReadError);
  std::optional<ReadError> error;
  const auto got = read_all(path, &error);
  ASSERT_TRUE(error);
  EXPECT_EQ(got.size(), s.frames[1].traces + s.frames[2].traces + s.frames[3].traces);
  EXPECT_EQ(error->path(), path);
  EXPECT_EQ(error->offset(), s.frames[3].end);
  EXPECT_NE(error->message().find("without an end frame"), std::string::npos);
}
