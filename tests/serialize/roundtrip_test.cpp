// Traces written by the FileSink read back equal, field by field: random traces with every
// field kind (thread names among them), a real Recorder's traces (compared with a
// MemorySink on the same recorder), thread names one a thread per batch, and the size of
// a plain span on disk.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "every_kind.hpp"
#include "random_trace.hpp"
#include "temp_dir.hpp"
#include "render.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;
using strobe::test::first_difference;

namespace {

using strobe::test::TempDir;

RecorderInfo test_info() {
  RecorderInfo info;
  info.service_name = "roundtrip-service";
  info.host_name = "host-ü";
  info.process_id = 4242;
  info.start_ns = 1'700'000'000'123'456'789;
  info.clock = "tsc";
  info.ns_per_tick = 0.3571;
  return info;
}

// Compares traces one by one; the failure names the trace, span and field.
void expect_same(const std::vector<AssembledTrace>& want, const std::vector<AssembledTrace>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::string d = first_difference(want[i], got[i]);
    ASSERT_EQ(d, "") << "trace #" << i;
  }
}

}  // namespace

TEST(RoundTrip, RandomTracesReadBackEqualFieldByField) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const int seeds = std::max(4, static_cast<int>(40 * strobe::test::stress_scale()));
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    strobe::test::RandomTraces gen(static_cast<std::uint64_t>(seed));
    std::vector<AssembledTrace> written;
    for (int i = 0; i < 40; ++i) written.push_back(gen.next());
    const std::string path = (dir / ("random-" + std::to_string(seed) + ".strobe")).string();
    FileSink::Counters counters;
    {
      FileSink sink({.path = path, .batch_spans = 64});
      sink.open(test_info());
      for (const AssembledTrace& t : written) sink.consume(t);
      sink.close();
      counters = sink.counters();
    }
    EXPECT_GT(counters.batches, 2u) << "batch_spans = 64 should give several batches";
    EXPECT_EQ(counters.traces, written.size());
    EXPECT_EQ(counters.io_errors, 0u);
    EXPECT_EQ(counters.bytes, fs::file_size(path));

    std::optional<ReadError> error;
    const std::vector<AssembledTrace> got = read_all(path, &error);
    EXPECT_FALSE(error) << error->what();
    expect_same(written, got);

    // The views, without materializing.
    Reader r(path);
    const RecorderInfo want = test_info();
    EXPECT_EQ(r.info().major, kFormatMajor);
    EXPECT_EQ(r.info().minor, kFormatMinor);
    EXPECT_EQ(r.info().service_name, want.service_name);
    EXPECT_EQ(r.info().host_name, want.host_name);
    EXPECT_EQ(r.info().process_id, want.process_id);
    EXPECT_EQ(r.info().start_ns, want.start_ns);
    EXPECT_EQ(r.info().clock, want.clock);
    EXPECT_EQ(r.info().ns_per_tick, want.ns_per_tick);
    EXPECT_FALSE(r.info().writer.empty());
    BatchView b;
    std::size_t ti = 0, batches = 0, spans = 0;
    while (r.next(b)) {
      ++batches;
      for (std::size_t i = 0; i < b.trace_count(); ++i, ++ti) {
        ASSERT_LT(ti, written.size());
        const AssembledTrace& w = written[ti];
        const TraceView& t = b.trace(i);
        EXPECT_EQ(t.trace_id(), w.trace_id);
        EXPECT_EQ(t.root_name(), w.root_name);
        EXPECT_EQ(t.part(), w.part);
        EXPECT_EQ(t.partial(), w.partial);
        EXPECT_EQ(t.drops(), w.drops_since_previous);
        ASSERT_EQ(t.span_count(), w.spans.size());
        std::size_t si = 0;
        for (SpanView s : t.spans()) {
          const SpanData& ws = w.spans[si++];
          EXPECT_EQ(s.span_id(), ws.span_id);
          EXPECT_EQ(s.parent_id(), ws.parent_id);
          EXPECT_EQ(s.name(), ws.name);
          EXPECT_EQ(s.kind(), ws.kind);
          EXPECT_EQ(s.status(), ws.status);
          EXPECT_EQ(s.start_ns(), ws.start_ns);
          EXPECT_EQ(s.duration_ns(), ws.duration_ns());
          EXPECT_EQ(s.end_ns(), ws.end_ns);
          EXPECT_EQ(s.thread_id(), ws.thread_id);
          EXPECT_EQ(s.has_tokens(), ws.has_tokens);
          EXPECT_EQ(s.tokens(), ws.tokens);
          EXPECT_EQ(s.model(), ws.model);
          EXPECT_EQ(s.flags(), ws.flags);
        }
        spans += t.span_count();
      }
    }
    EXPECT_FALSE(r.error()) << r.error()->what();
    EXPECT_TRUE(r.ended_cleanly());
    EXPECT_EQ(ti, written.size());
    EXPECT_EQ(batches, counters.batches);
    EXPECT_EQ(r.end_info().traces, written.size());
    EXPECT_EQ(r.end_info().spans, spans);
    EXPECT_EQ(r.end_info().batches, counters.batches);
    EXPECT_EQ(r.size(), fs::file_size(path));
    EXPECT_EQ(r.path(), path);
    if (::testing::Test::HasFailure()) break;
  }
}

// Without open() (a sink used outside a Recorder) the header takes the service and process
// of the first trace, so materialized traces keep them.
TEST(RoundTrip, HeaderFromFirstTraceWhenNeverOpened) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "unopened.strobe").string();
  strobe::test::RandomTraces gen(7, {.service_name = "from-trace", .process_id = 99});
  std::vector<AssembledTrace> written;
  for (int i = 0; i < 10; ++i) written.push_back(gen.next());
  {
    FileSink sink({.path = path, .batch_spans = 16});
    for (const AssembledTrace& t : written) sink.consume(t);
  }  // the destructor closes the file
  Reader r(path);
  EXPECT_EQ(r.info().service_name, "from-trace");
  EXPECT_EQ(r.info().process_id, 99u);
  expect_same(written, read_all(path));
}

TEST(RoundTrip, EmptyFileHasHeaderAndEndOnly) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "empty.strobe").string();
  { FileSink sink({.path = path}); }
  Reader r(path);
  BatchView b;
  EXPECT_FALSE(r.next(b));
  EXPECT_FALSE(r.error()) << r.error()->what();
  EXPECT_TRUE(r.ended_cleanly());
  EXPECT_EQ(r.end_info().traces, 0u);
}

// A span handed over before it ended (Status::incomplete) has no end thread: 0, not the
// thread that began it. The file format stores an end thread only where it differs from
// the begin thread, so the reader must not fill one in for an incomplete span.
TEST(RoundTrip, IncompleteSpanHasNoEndThread) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "incomplete.strobe").string();
  AssembledTrace t;
  t.trace_id = TraceId{1, 2};
  t.root_name = "open";
  t.service_name = "roundtrip-service";
  t.process_id = 4242;
  t.partial = true;
  SpanData s = strobe::test::RandomTraces::plain_span(7, 0, "open", Kind::agent, 100, 200, 42);
  s.status = Status::incomplete;
  s.flags = kSpanIncomplete | kSpanTraceRoot;
  s.end_thread_id = 0;
  t.spans.push_back(s);
  {
    FileSink sink({.path = path});
    sink.open(test_info());
    sink.consume(t);
  }
  const auto got = read_all(path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(first_difference(t, got[0]), "");
}

// Any pair of times reads back exactly, even where end - start does not fit in 64 bits
// (the duration column wraps; the reader undoes it).
TEST(RoundTrip, ExtremeTimesReadBackExactly) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "extreme.strobe").string();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::pair<std::int64_t, std::int64_t> times[] = {{kMin, kMax}, {kMax, kMin}, {0, kMin}, {-1, kMax}, {kMax, kMax}};
  AssembledTrace t;
  t.trace_id = TraceId{3, 4};
  t.root_name = "extreme";
  t.service_name = "roundtrip-service";
  t.process_id = 4242;
  std::uint64_t id = 1;
  for (const auto& [start, end] : times)
    t.spans.push_back(strobe::test::RandomTraces::plain_span(id++, 0, "extreme", Kind::span, start, end, 9));
  {
    FileSink sink({.path = path});
    sink.open(test_info());
    sink.consume(t);
  }
  const auto got = read_all(path);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(first_difference(t, got[0]), "");
}

// Thread names (format 1.2): one a thread per batch, the latest a batch's traces give;
// each trace lists the named threads its spans began or ended on; a batch whose threads
// have no names (as every batch before 1.2) stores none and reads as unnamed.
TEST(RoundTrip, ThreadNamesOnePerThreadPerBatch) {
  const TempDir tmp;
  const std::string path = (tmp.path / "names.strobe").string();
  auto trace = [](std::uint64_t lo, std::vector<SpanData> spans, std::vector<ThreadName> names) {
    AssembledTrace t;
    t.trace_id = TraceId{9, lo};
    t.root_name = spans.front().name;
    t.service_name = "roundtrip-service";
    t.process_id = 4242;
    t.spans = std::move(spans);
    t.thread_names = std::move(names);
    return t;
  };
  using strobe::test::RandomTraces;
  SpanData ended_elsewhere = RandomTraces::plain_span(3, 1, "moved", Kind::step, 110, 150, 11);
  ended_elsewhere.end_thread_id = 12;
  const AssembledTrace first =
      trace(1, {RandomTraces::plain_span(1, 0, "first", Kind::agent, 100, 200, 11), ended_elsewhere},
            {{11, "main"}, {12, "finisher-\xC3\xBC"}});
  // Thread 11 renamed before the second trace; thread 13 never named.
  const AssembledTrace second = trace(2,
                                      {RandomTraces::plain_span(4, 0, "second", Kind::agent, 300, 400, 11),
                                       RandomTraces::plain_span(5, 4, "unnamed", Kind::tool, 310, 320, 13)},
                                      {{11, "main-renamed"}});
  const AssembledTrace plain = trace(3, {RandomTraces::plain_span(6, 0, "plain", Kind::agent, 500, 600, 14)}, {});
  {
    FileSink sink({.path = path});
    sink.open(test_info());
    sink.consume(first);
    sink.consume(second);  // same batch as first
    sink.flush();
    sink.consume(plain);  // a batch of its own, without names
  }
  Reader r(path);
  EXPECT_EQ(r.info().minor, kFormatMinor);
  BatchView b;
  ASSERT_TRUE(r.next(b));
  ASSERT_EQ(b.trace_count(), 2u);
  EXPECT_EQ(b.trace(0).span(0).thread_name(), "main-renamed") << "the latest name of the batch";
  EXPECT_EQ(b.trace(1).span(1).thread_id(), 13u);
  EXPECT_EQ(b.trace(1).span(1).thread_name(), "");
  AssembledTrace got = b.trace(0).materialize();
  EXPECT_EQ(got.thread_name(11), "main-renamed");
  EXPECT_EQ(got.thread_name(12), "finisher-\xC3\xBC") << "a thread a span ended on";
  got = b.trace(1).materialize();
  ASSERT_EQ(got.thread_names.size(), 1u) << "only named threads, only the trace's";
  EXPECT_EQ(got.thread_names[0], (ThreadName{11, "main-renamed"}));
  ASSERT_TRUE(r.next(b));
  ASSERT_EQ(b.trace_count(), 1u);
  EXPECT_EQ(b.thread_name(0), "");
  EXPECT_EQ(first_difference(plain, b.trace(0).materialize()), "");
  EXPECT_FALSE(r.next(b));
  EXPECT_FALSE(r.error().has_value());
}

// A real recorder: everything the span API can express goes to a MemorySink and a FileSink
// side by side; the file must read back as exactly what the MemorySink received.
TEST(RoundTrip, RecorderFileSinkEqualsMemorySink) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "recorder.strobe").string();
  auto memory = std::make_shared<MemorySink>();
  auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path, .batch_spans = 8});
  Stats stats;
  {
    Recorder rec(Config{.max_string_bytes = 256, .service_name = "roundtrip-agent", .sinks = {memory, file}});
    strobe::test::record_every_kind(rec);
    stats = rec.stats();
  }
  file->close();
  EXPECT_EQ(stats.sink_errors, 0u);
  EXPECT_EQ(stats.records_dropped, 0u);
  const std::vector<AssembledTrace> want = memory->traces();
  ASSERT_GE(want.size(), 3u);
  std::optional<ReadError> error;
  const std::vector<AssembledTrace> got = read_all(path, &error);
  EXPECT_FALSE(error) << error->what();
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(strobe::test::render_tree(got[i]), strobe::test::render_tree(want[i]));
    EXPECT_EQ(first_difference(want[i], got[i]), "") << "trace #" << i;
  }
  Reader r(path);
  EXPECT_EQ(r.info().service_name, "roundtrip-agent");
  EXPECT_EQ(r.info().process_id, static_cast<std::uint32_t>(::getpid()));
}

// The columnar layout's promise: a plain span (name, kind, ids, two timestamps) costs at
// most 48 bytes on disk, headers and string tables included.
TEST(RoundTrip, PlainSpanCostsAtMost48Bytes) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "plain.strobe").string();
  constexpr std::size_t kSpans = 100'000, kPerTrace = 100;
  static const char* const kNames[] = {"decode_step", "attention", "mlp", "sample", "kv_cache"};
  {
    FileSink sink({.path = path});
    sink.open(test_info());
    std::uint64_t id = 1;
    std::int64_t clock = 1'700'000'000'000'000'000;
    for (std::size_t t = 0; t < kSpans / kPerTrace; ++t) {
      AssembledTrace trace;
      trace.trace_id = TraceId{0x1234 + t, 0x9876 + t};
      trace.root_name = "decode";
      trace.spans.reserve(kPerTrace);
      const std::uint64_t root = id;
      for (std::size_t i = 0; i < kPerTrace; ++i, ++id) {
        clock += 1'000 + static_cast<std::int64_t>(id % 977);
        trace.spans.push_back(strobe::test::RandomTraces::plain_span(
            (7ull << 48) | id, i == 0 ? 0 : (7ull << 48) | root, i == 0 ? "decode" : kNames[i % 5],
            i == 0 ? Kind::agent : Kind::step, clock, clock + 500 + static_cast<std::int64_t>(id % 131), 12345));
      }
      sink.consume(trace);
    }
  }
  const auto size = fs::file_size(path);
  const double per_span = static_cast<double>(size) / kSpans;
  std::printf("bytes per plain span: %.2f (%ju bytes for %zu spans)\n", per_span, static_cast<std::uintmax_t>(size),
              kSpans);
  RecordProperty("bytes_per_plain_span", std::to_string(per_span));
  EXPECT_LE(per_span, 48.0);
  std::size_t spans = 0;
  for (const AssembledTrace& t : read_all(path)) spans += t.spans.size();
  EXPECT_EQ(spans, kSpans);
}
