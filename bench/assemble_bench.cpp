// Assembly throughput: spans per second that one Assembler turns from records into
// CompactTraces (what the drainer queues for the sinks), with no rings and no recorder. The record sequences are built once, as
// the hot path writes them (begin and end records with trace ids, parent ids and clock
// ticks), and fed pass by pass as the drainer reads them, ring by ring: one trace's
// records, then end_of_pass(). A trace is
// handed over one pass after it became complete, so each shape cycles through a few
// copies with distinct ids. items_per_second counts the spans of the emitted traces.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "assembler.hpp"
#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/detail/thread_state.hpp"

namespace {

using strobe::Kind;
using strobe::detail::Record;
using strobe::detail::RecType;

// Copies of a shape fed in turn; ids repeat only after every copy was handed over.
constexpr int kCopies = 4;
constexpr std::uint64_t kThread = 1000;

std::uint32_t name_id(std::string_view s) { return strobe::detail::intern(s.data(), s.size()); }

// One trace's records in ring order, and the OS thread owning the ring of each.
struct TraceRecords {
  std::vector<Record> records;
  std::vector<std::uint64_t> threads;
};

// Writes one trace's records the way the hot path does.
class TraceWriter {
 public:
  TraceWriter(int copy, std::uint64_t base_ticks)
      : trace_hi_(0x5eed0000u + static_cast<std::uint64_t>(copy)),
        trace_lo_(0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(copy + 1)),
        id_base_(static_cast<std::uint64_t>(copy + 1) << 48),
        ticks_(base_ticks) {}

  // Begins a span under parent (0: the trace root); returns its id.
  std::uint64_t begin(std::uint32_t name, std::uint64_t parent, std::uint64_t thread = kThread) {
    Record r{};
    r.type = RecType::begin;
    r.flags = parent == 0 ? strobe::detail::kTraceRoot : 0;
    r.aux = static_cast<std::uint16_t>(Kind::span);
    r.key = name;
    r.span_id = id_base_ | ++next_local_;
    r.ts = tick();
    r.payload.begin.trace_hi = trace_hi_;
    r.payload.begin.trace_lo = trace_lo_;
    r.payload.begin.parent_id = parent;
    r.payload.begin.kind_name_id = 0;
    r.payload.begin.generation = 1;
    push(r, thread);
    return r.span_id;
  }

  void end(std::uint64_t span, std::uint64_t thread = kThread) {
    Record r{};
    r.type = RecType::end;
    r.aux = static_cast<std::uint16_t>(strobe::Status::ok);
    r.span_id = span;
    r.ts = tick();
    push(r, thread);
  }

  [[nodiscard]] const TraceRecords& trace() const noexcept { return out_; }

  // A writer for more records of the same trace, with ids and ticks going on from here.
  [[nodiscard]] TraceWriter continued() const {
    TraceWriter w = *this;
    w.out_ = {};
    return w;
  }
  void resume_after(const TraceWriter& later) noexcept {
    ticks_ = later.ticks_;
    next_local_ = later.next_local_;
  }

  // The records as a drain pass reads them: ring by ring (in the order the rings first
  // appear), each ring's in its order.
  [[nodiscard]] TraceRecords by_ring() const {
    std::vector<std::uint64_t> rings;
    for (const std::uint64_t t : out_.threads)
      if (std::find(rings.begin(), rings.end(), t) == rings.end()) rings.push_back(t);
    TraceRecords r;
    for (const std::uint64_t ring : rings) {
      for (std::size_t i = 0; i < out_.records.size(); ++i) {
        if (out_.threads[i] != ring) continue;
        r.records.push_back(out_.records[i]);
        r.threads.push_back(ring);
      }
    }
    return r;
  }

 private:
  std::uint64_t tick() noexcept { return ticks_ += 100; }  // 100 ns between records
  void push(const Record& r, std::uint64_t thread) {
    out_.records.push_back(r);
    out_.threads.push_back(thread);
  }

  std::uint64_t trace_hi_, trace_lo_, id_base_;
  std::uint64_t ticks_;
  std::uint64_t next_local_ = 0;
  TraceRecords out_;
};

// A root with 1023 sequential children: 1024 spans.
void write_flat(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), child = name_id("bench.child");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int i = 0; i < 1023; ++i) w.end(w.begin(child, root));
  w.end(root);
}

// A root whose 32 children each begin a chain 32 spans deep: 1025 spans.
void write_deep(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), step = name_id("bench.step");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int chain = 0; chain < 32; ++chain) {
    std::uint64_t open[32];
    std::uint64_t parent = root;
    for (int d = 0; d < 32; ++d) parent = open[d] = w.begin(step, parent);
    for (int d = 31; d >= 0; --d) w.end(open[d]);
  }
  w.end(root);
}

// A root with 1024 children in 64 waves of 16 that all run at once (on 16 worker
// threads), ending in a different order than they began: 64 parallel groups, 1025 spans.
void write_fanout(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), task = name_id("bench.task");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int wave = 0; wave < 64; ++wave) {
    std::uint64_t open[16];
    for (int k = 0; k < 16; ++k) open[k] = w.begin(task, root, kThread + 1 + k);
    for (int k = 0; k < 16; ++k) {
      const int j = (k * 7) % 16;  // 7 is coprime with 16: a permutation
      w.end(open[j], kThread + 1 + j);
    }
  }
  w.end(root);
}

template <void (*Write)(TraceWriter&)>
void BM_Assemble(benchmark::State& state) {
  const strobe::detail::Clock clock(false);
  std::vector<TraceRecords> copies;
  for (int c = 0; c < kCopies; ++c) {
    TraceWriter w(c, clock.now_ticks());
    Write(w);
    copies.push_back(w.by_ring());
  }
  strobe::detail::Assembler assembler({"bench", 1, 100000, 10'000'000'000}, clock);
  std::vector<strobe::CompactTrace> out;  // what the drainer hands to the sink queue
  std::uint64_t spans = 0, traces = 0, groups = 0;
  int next = 0;
  for (auto _ : state) {
    const TraceRecords& pass = copies[next];
    next = (next + 1) % kCopies;
    for (std::size_t i = 0; i < pass.records.size(); ++i) assembler.on_record(pass.records[i], pass.threads[i]);
    assembler.end_of_pass(out, clock.to_wall_ns(clock.now_ticks()));
    for (strobe::CompactTrace& t : out) {
      spans += t.spans.size();
      groups += t.groups.size();
      assembler.recycle(std::move(t));  // as the drainer does once the sinks are done with it
    }
    traces += out.size();
    out.clear();
  }
  // Only traces handed over inside the timed loop count (the last two are still pending).
  state.SetItemsProcessed(static_cast<std::int64_t>(spans));
  if (traces != 0) {
    state.counters["spans_per_trace"] = static_cast<double>(spans) / static_cast<double>(traces);
    state.counters["groups_per_trace"] = static_cast<double>(groups) / static_cast<double>(traces);
  }
}

// Flat: a root with many sequential children (the product target: >= 10 M spans/s).
void BM_AssembleFlat(benchmark::State& state) { BM_Assemble<write_flat>(state); }
BENCHMARK(BM_AssembleFlat);

// Deep: nesting 32 levels down, so depth-first ordering walks long parent chains.
void BM_AssembleDeep(benchmark::State& state) { BM_Assemble<write_deep>(state); }
BENCHMARK(BM_AssembleDeep);

// Fan-out: overlapping siblings on many threads, so parallel groups and their peak
// concurrency are computed.
void BM_AssembleFanout(benchmark::State& state) { BM_Assemble<write_fanout>(state); }
BENCHMARK(BM_AssembleFanout);

// Endless: one root that never ends (a decode loop under one request), 1,024 children a
// pass, handed over in parts of 16,384 (Config's default): the cost per span must not
// grow with the trace. Counts the children handed over (not the root each part repeats).
void BM_AssembleEndless(benchmark::State& state) {
  const strobe::detail::Clock clock(false);
  strobe::detail::Assembler assembler({"bench", 1, static_cast<std::size_t>(state.range(0)), 10'000'000'000}, clock);
  const std::uint32_t root_name = name_id("bench.root"), child = name_id("bench.child");
  TraceWriter w(0, clock.now_ticks());
  const std::uint64_t root = w.begin(root_name, 0);
  for (std::size_t i = 0; i < w.trace().records.size(); ++i)
    assembler.on_record(w.trace().records[i], w.trace().threads[i]);
  std::vector<strobe::CompactTrace> out;
  std::uint64_t spans = 0;
  for (auto _ : state) {
    state.PauseTiming();
    TraceWriter chunk = w.continued();
    for (int i = 0; i < 1024; ++i) chunk.end(chunk.begin(child, root));
    w.resume_after(chunk);
    state.ResumeTiming();
    const TraceRecords& r = chunk.trace();
    for (std::size_t i = 0; i < r.records.size(); ++i) assembler.on_record(r.records[i], r.threads[i]);
    assembler.end_of_pass(out, clock.to_wall_ns(clock.now_ticks()));
    for (strobe::CompactTrace& t : out) {
      for (const strobe::SpanRow& s : t.spans) spans += (s.flags & strobe::kSpanContinued) == 0;
      assembler.recycle(std::move(t));
    }
    out.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(spans));
}
BENCHMARK(BM_AssembleEndless)->Arg(16384)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
