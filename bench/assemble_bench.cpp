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

#include "assemble_shapes.hpp"
#include "assembler.hpp"
#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/detail/thread_state.hpp"

namespace {

using namespace strobe::bench;

template <void (*Write)(TraceWriter&)>
void BM_Assemble(benchmark::State& state) {
  ShapeFeeder feeder(Write);
  for (auto _ : state) feeder.pass();
  // Only traces handed over inside the timed loop count (the last two are still pending).
  state.SetItemsProcessed(static_cast<std::int64_t>(feeder.spans));
  if (feeder.traces != 0) {
    state.counters["spans_per_trace"] = static_cast<double>(feeder.spans) / static_cast<double>(feeder.traces);
    state.counters["groups_per_trace"] = static_cast<double>(feeder.groups) / static_cast<double>(feeder.traces);
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
