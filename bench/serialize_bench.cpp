// The file format: encoding assembled traces, reading them back with verification, and
// recording through a live Recorder into a FileSink, end to end.
//
// BM_Encode and BM_ReadVerify need no Recorder. BM_EndToEnd creates one per run
// (OverflowPolicy::wait, so nothing is dropped and the figure is what the drainer
// sustains); each iteration records a chunk of spans and then flushes, so the time
// includes assembling, encoding and writing everything recorded. Its argument picks the
// sink: none (the drainer and assembler alone), a FileSink to /dev/null (plus encoding
// and framing), a FileSink to a file in /tmp (plus the write system calls), all three
// assembling in the process (Assembly::in_process), or that file with deferred assembly
// (the record log: nothing assembled in the process; what the default Config does with a
// FileSink alone).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include "cpu_time.hpp"

namespace {

constexpr std::size_t kSpansPerTrace = 100;

// Traces of kSpansPerTrace spans under one root. rich: every fourth span also carries two
// attributes, a model and token counts (a span detail entry).
std::vector<strobe::AssembledTrace> make_traces(std::size_t spans, bool rich) {
  static const char* const kNames[] = {"decode_step", "attention", "mlp", "sample", "kv_cache"};
  std::vector<strobe::AssembledTrace> out;
  std::uint64_t id = 1;
  std::int64_t clock = 1'700'000'000'000'000'000;
  for (std::size_t t = 0; t < spans / kSpansPerTrace; ++t) {
    strobe::AssembledTrace trace;
    trace.trace_id = strobe::TraceId{0x5eed + t, 0xc0ffee + t};
    trace.root_name = "decode";
    trace.service_name = "bench";
    const std::uint64_t root = (1ull << 48) | id;
    for (std::size_t i = 0; i < kSpansPerTrace; ++i, ++id) {
      strobe::SpanData s;
      s.span_id = (1ull << 48) | id;
      s.parent_id = i == 0 ? 0 : root;
      s.name = i == 0 ? "decode" : kNames[i % 5];
      s.kind = i == 0 ? strobe::Kind::agent : strobe::Kind::step;
      clock += 900 + static_cast<std::int64_t>(id % 211);
      s.start_ns = clock;
      s.end_ns = clock + 400 + static_cast<std::int64_t>(id % 97);
      s.thread_id = s.end_thread_id = 4242;
      if (rich && i % 4 == 1) {
        s.model = "tiny-model";
        s.has_tokens = true;
        s.tokens = strobe::TokenUsage{static_cast<std::int64_t>(i), 1, 0};
        strobe::Attribute index, temperature;
        index.key = "token_index";
        index.value.i = static_cast<std::int64_t>(i);
        temperature.key = "temperature";
        temperature.value.type = strobe::AttrValue::Type::f64;
        temperature.value.d = 0.7;
        s.attrs.push_back(std::move(index));
        s.attrs.push_back(std::move(temperature));
      }
      trace.spans.push_back(std::move(s));
    }
    out.push_back(std::move(trace));
  }
  return out;
}

strobe::serialize::FileSinkOptions sink_options(const std::string& path) {
  strobe::serialize::FileSinkOptions o;
  o.path = path;
  return o;
}

std::string temp_path(const char* what) {
  return (std::filesystem::temp_directory_path() /
          ("strobe-serialize-bench-" + std::string(what) + "-" + std::to_string(::getpid()) + ".strobe"))
      .string();
}

}  // namespace

// AssembledTrace -> one Batch buffer: 16 400 spans a batch, the FileSink's default size.
void BM_Encode(benchmark::State& state) {
  const auto traces = make_traces(16'400, state.range(0) != 0);
  strobe::serialize::Encoder encoder;
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (const strobe::AssembledTrace& t : traces) encoder.add(t);
    const auto buffer = encoder.finish();
    benchmark::DoNotOptimize(buffer.data());
    bytes += buffer.size();
  }
  const std::int64_t spans = static_cast<std::int64_t>(traces.size() * kSpansPerTrace);
  state.SetItemsProcessed(state.iterations() * spans);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["bytes_per_span"] =
      static_cast<double>(bytes) / static_cast<double>(state.iterations() * spans);
}
BENCHMARK(BM_Encode)->ArgName("rich")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// A prewritten file of 100 000 spans read with the streaming Reader: every frame checked
// and verified, every span's name and duration read through the views.
void BM_ReadVerify(benchmark::State& state) {
  const std::string path = temp_path("read");
  constexpr std::size_t kSpans = 100'000;
  {
    strobe::serialize::FileSink sink(sink_options(path));
    for (const strobe::AssembledTrace& t : make_traces(kSpans, state.range(0) != 0)) sink.consume(t);
  }
  const auto file_bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
  for (auto _ : state) {
    strobe::serialize::Reader r(path);
    strobe::serialize::BatchView b;
    std::uint64_t acc = 0, spans = 0;
    while (r.next(b)) {
      for (std::size_t i = 0; i < b.trace_count(); ++i) {
        for (strobe::serialize::SpanView s : b.trace(i).spans()) {
          acc += s.name().size() + static_cast<std::uint64_t>(s.duration_ns());
          ++spans;
        }
      }
    }
    benchmark::DoNotOptimize(acc);
    if (r.error() || spans != kSpans) {
      state.SkipWithError("the prewritten file did not read back whole");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kSpans));
  state.SetBytesProcessed(state.iterations() * file_bytes);
  std::filesystem::remove(path);
}
BENCHMARK(BM_ReadVerify)->ArgName("rich")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// One thread records child spans as fast as it can (a new trace root every 1000 spans);
// each iteration records kChunk spans and flushes, so every span is assembled and, with a
// FileSink, encoded and written before the clock stops. drainer_cpu_ns_per_span is the CPU
// time of every thread but the recording one (the drainer, which assembles and runs the
// sinks) per span: unlike wall time, it hardly depends on what else the machine runs.
void BM_EndToEnd(benchmark::State& state) {
  constexpr std::int64_t kChunk = 1 << 20;
  constexpr int kSpansPerRoot = 1000;
  const int sink_kind = static_cast<int>(state.range(0));
  const bool deferred = sink_kind == 3;
  const std::string path = sink_kind >= 2 ? temp_path("e2e") : "/dev/null";
  strobe::Config config;
  config.ring_capacity = std::size_t{1} << 16;
  config.overflow = strobe::OverflowPolicy::wait;
  config.service_name = "bench";
  config.assembly = deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process;
  std::shared_ptr<strobe::serialize::FileSink> sink;
  if (sink_kind != 0) {
    sink = std::make_shared<strobe::serialize::FileSink>(sink_options(path));
    config.sinks.push_back(sink);
  }
  auto recorder = std::make_unique<strobe::Recorder>(config);
  static const strobe::Name kRoot("decode"), kStep("step");
  std::int64_t recorded = 0;
  const demo::CpuSplit cpu;
  for (auto _ : state) {
    strobe::Span root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
    int in_root = 0;
    for (std::int64_t i = 0; i < kChunk; ++i) {
      if (++in_root == kSpansPerRoot) {
        root.finish();
        root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
        in_root = 0;
        ++recorded;
      }
      strobe::Span s(kStep, strobe::Kind::step);
    }
    root.finish();
    ++recorded;
    recorder->flush();
    recorded += kChunk;
  }
  const std::int64_t thread_cpu = cpu.this_thread_ns();
  const std::int64_t others_cpu = cpu.others_ns();
  const strobe::Stats stats = recorder->stats();
  recorder.reset();
  state.counters["drainer_cpu_ns_per_span"] = static_cast<double>(others_cpu) / static_cast<double>(recorded);
  state.counters["recorder_cpu_ns_per_span"] = static_cast<double>(thread_cpu) / static_cast<double>(recorded);
  if (stats.records_dropped != 0) state.SkipWithError("records were dropped under OverflowPolicy::wait");
  if ((deferred ? stats.spans_recorded : stats.spans_assembled) != static_cast<std::uint64_t>(recorded))
    state.SkipWithError("not every span was assembled (deferred: recorded)");
  state.SetItemsProcessed(recorded);
  state.counters["records_dropped"] = static_cast<double>(stats.records_dropped);
  if (sink) {
    sink->close();
    const auto c = sink->counters();
    if (c.io_errors != 0 || c.lost_frames != 0 || (!deferred && c.spans != static_cast<std::uint64_t>(recorded)))
      state.SkipWithError("the sink lost spans");
    state.SetBytesProcessed(static_cast<std::int64_t>(c.bytes));
    state.counters["bytes_per_span"] = static_cast<double>(c.bytes) / static_cast<double>(recorded);
  }
  if (sink_kind >= 2) std::filesystem::remove(path);
}
BENCHMARK(BM_EndToEnd)
    ->ArgName("sink")  // 0: none, 1: FileSink to /dev/null, 2: FileSink to a file, 3: deferred, to a file
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
