// The record log's batch coding (Assembly::deferred): random record streams, shaped
// like real rings' (ids counting up, loops under one parent, chains) and not (anything
// else, at random), decode to the fields the assembler reads, exactly; a batch cut short
// or with a byte changed never decodes to something else silently.

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "record_log.hpp"
#include "render.hpp"

using namespace strobe::detail;

namespace {

// What the assembler reads of r (begin's ended_span is unset by the hot path; the other
// records' unused bytes are kept as they are, as raw records).
void expect_same(const Record& want, const Record& got, std::size_t i) {
  ASSERT_EQ(static_cast<int>(got.type), static_cast<int>(want.type)) << i;
  EXPECT_EQ(got.flags, want.flags) << i;
  EXPECT_EQ(got.aux, want.aux) << i;
  EXPECT_EQ(got.key, want.key) << i;
  EXPECT_EQ(got.span_id, want.span_id) << i;
  EXPECT_EQ(got.ts, want.ts) << i;
  switch (want.type) {
    case RecType::begin:
    case RecType::next:
      EXPECT_EQ(got.payload.begin.trace_hi, want.payload.begin.trace_hi) << i;
      EXPECT_EQ(got.payload.begin.trace_lo, want.payload.begin.trace_lo) << i;
      EXPECT_EQ(got.payload.begin.parent_id, want.payload.begin.parent_id) << i;
      EXPECT_EQ(got.payload.begin.kind_name_id, want.payload.begin.kind_name_id) << i;
      EXPECT_EQ(got.payload.begin.generation, want.payload.begin.generation) << i;
      if (want.type == RecType::next) EXPECT_EQ(got.payload.begin.ended_span, want.payload.begin.ended_span) << i;
      break;
    case RecType::end: break;
    default: EXPECT_EQ(std::memcmp(&got, &want, sizeof want), 0) << i;
  }
}

std::vector<Record> random_stream(std::mt19937_64& rng, std::size_t n) {
  std::vector<Record> out;
  std::uint64_t next_id = (rng() % 7 + 1) << 48, ts = rng(), root = 0;
  const std::uint64_t hi = rng(), lo = rng();
  std::vector<std::uint64_t> open;
  auto pick = [&](unsigned k) { return rng() % k; };
  while (out.size() < n) {
    Record r;
    std::memset(static_cast<void*>(&r), 0, sizeof r);
    for (unsigned char& b : r.payload.raw) b = static_cast<unsigned char>(rng());  // unused bytes: anything
    ts += pick(8) == 0 ? rng() : pick(5000);  // mostly small steps, sometimes anything (wall-clock records)
    r.ts = ts;
    const unsigned what = static_cast<unsigned>(pick(10));
    if (what < 4 || open.empty()) {  // a begin: usually the next id under the loop's parent
      r.type = pick(6) == 0 ? RecType::next : RecType::begin;
      r.span_id = pick(10) == 0 ? rng() : ++next_id;
      r.key = static_cast<std::uint32_t>(pick(4) == 0 ? rng() : pick(300));
      r.flags = static_cast<std::uint8_t>(pick(5) == 0 ? rng() : 0);
      r.aux = static_cast<std::uint16_t>(pick(5) == 0 ? rng() : 3);
      r.payload.begin.trace_hi = pick(10) == 0 ? rng() : hi;
      r.payload.begin.trace_lo = pick(10) == 0 ? rng() : lo;
      r.payload.begin.parent_id = open.empty() ? (root = r.span_id, 0) : pick(3) == 0 ? open.back() : pick(8) == 0 ? rng() : root;
      r.payload.begin.kind_name_id = static_cast<std::uint32_t>(pick(10) == 0 ? rng() : 0);
      r.payload.begin.generation = static_cast<std::uint32_t>(pick(20) == 0 ? rng() : 5);
      r.payload.begin.ended_span = pick(2) == 0 && !open.empty() ? open.back() : rng();
      open.push_back(r.span_id);
    } else if (what < 8) {  // an end: usually the latest open span
      r.type = RecType::end;
      r.span_id = pick(4) == 0 ? open[pick(static_cast<unsigned>(open.size()))] : open.back();
      if (pick(4) == 0) open.pop_back();
      if (!open.empty() && open.back() == r.span_id) open.pop_back();
      r.flags = static_cast<std::uint8_t>(pick(6) == 0 ? rng() : 0);
      r.aux = static_cast<std::uint16_t>(pick(6) == 0 ? 1 : 0);
      r.key = static_cast<std::uint32_t>(pick(10) == 0 ? rng() : 0);
    } else {  // anything else goes as it is
      std::memset(static_cast<void*>(&r), 0, 8);
      r.type = static_cast<RecType>(3 + pick(9));
      if (r.type == RecType::end || r.type == RecType::begin || r.type == RecType::next) r.type = RecType::attr_int;
      r.key = static_cast<std::uint32_t>(rng());
      r.span_id = rng();
    }
    out.push_back(r);
  }
  return out;
}

// The chunk's one batch: its cell and encoded bytes.
std::pair<const unsigned char*, std::size_t> only_batch(const LogChunk& chunk, std::size_t& count) {
  LogCell c;
  std::memcpy(&c, chunk.data(), sizeof c);
  EXPECT_EQ(c.kind, LogKind::batch);
  count = c.count;
  return {static_cast<const unsigned char*>(chunk.data()) + sizeof(Record), c.bytes};
}

}  // namespace

TEST(RecordLog, RandomStreamsDecodeToWhatTheAssemblerReads) {
  std::mt19937_64 rng(20261201);
  const int rounds = std::max(20, static_cast<int>(400 * strobe::test::stress_scale()));
  for (int round = 0; round < rounds; ++round) {
    const std::vector<Record> records = random_stream(rng, 1 + rng() % 3000);
    LogChunk chunk;
    chunk.batch(77, records.size());
    for (const Record& r : records) chunk.put(r);
    chunk.end_batch();
    EXPECT_EQ(chunk.records(), records.size());
    std::size_t count = 0;
    const auto [bytes, size] = only_batch(chunk, count);
    ASSERT_EQ(count, records.size());
    std::vector<Record> got;
    decode_records(bytes, size, count, got);
    ASSERT_EQ(got.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) expect_same(records[i], got[i], i);
    // Cut short anywhere: an error, never fewer records taken for all.
    const std::size_t cut = rng() % size;
    EXPECT_THROW(decode_records(bytes, cut, count, got), RecordLogError) << "cut at " << cut << " of " << size;
    // Extra bytes after the last record: an error too.
    std::vector<unsigned char> longer(bytes, bytes + size);
    longer.push_back(0);
    EXPECT_THROW(decode_records(longer.data(), longer.size(), count, got), RecordLogError);
  }
}

TEST(RecordLog, LoopSpansTakeAFewBytes) {
  // A decode loop: begin and end of the next id under one root, a few microseconds apart.
  LogChunk chunk;
  const std::size_t spans = 10000;
  chunk.batch(1, 2 * spans);
  Record r;
  std::memset(static_cast<void*>(&r), 0, sizeof r);
  std::uint64_t ts = 1'000'000;
  for (std::size_t i = 0; i < spans; ++i) {
    r.type = RecType::begin;
    r.span_id = (std::uint64_t{1} << 48) + i + 1;
    r.key = 40;
    r.aux = 3;
    r.ts = ts += 2600;
    r.payload.begin.trace_hi = 0x1234;
    r.payload.begin.trace_lo = 0x5678;
    r.payload.begin.parent_id = 1 << 20;
    r.payload.begin.generation = 2;
    chunk.put(r);
    Record e = r;
    e.type = RecType::end;
    e.aux = 0;
    e.key = 0;
    e.ts = ts += 900;
    chunk.put(e);
  }
  chunk.end_batch();
  EXPECT_LT(chunk.bytes(), spans * 10);  // about 8 bytes a span, against 128 as records
  EXPECT_EQ(chunk.begins(), spans);
}

TEST(RecordLog, ReplayRefusesAnotherVersionAndDamagedCells) {
  RecordReplay replay("svc", 1);
  LogChunk chunk;
  chunk.cell(LogKind::start, {1, 100, 1000, kLogVersion + 1, sizeof(Record)});
  EXPECT_THROW(replay.feed(chunk.data(), chunk.bytes()), RecordLogError);
  RecordReplay fresh("svc", 1);
  LogChunk bad;
  bad.cell(LogKind::pass, {0, 0, 0});
  EXPECT_THROW(fresh.feed(bad.data(), bad.bytes()), RecordLogError);  // before the start
  EXPECT_THROW(fresh.feed(bad.data(), bad.bytes() - 1), RecordLogError);  // not whole cells
}
