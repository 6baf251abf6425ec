// Tracing overhead on a real decode loop: the same tokens decoded untraced (no span code
// at all) and traced (a span per token; under it one chain of adjacent spans through every
// layer's attention and mlp),
// alternating in one run so both see the same machine. Reports medians.
//
// Every core busy (--threads N, N decoding threads, each with its own model): all threads
// run the same kind of round at once (all untraced, then all traced, or the other way
// round, alternating), so that the drainer and the sink thread have no idle core to run
// on and what they cost shows up in the decode times. The default runs one thread (one
// core left for the drainer) and then one thread per core.
//
// Usage: strobe_overhead [--rounds N] [--ring RECORDS] [--threads N] [--spin-passes N]
//                        [--sink counter|file|deferred]
//   ring: records per thread, a power of two; threads: 0 = one, then one per core.
//   sink: where the traces go: counter (the default) counts the spans handed over and
//   writes nothing; file adds a FileSink (a temporary file, removed at the end), so the
//   encoding and the kernel's writes count too; deferred writes the record log into the
//   file instead (Assembly::deferred: nothing is assembled in the process; what the
//   default Config does with a FileSink alone). counter and file assemble in the process.

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <strobe/serialize/writer.hpp>

#include "cpu_time.hpp"
#include "tiny_model.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Result {
  const char* label;
  double untraced_ns, traced_ns;  // per token, medians
  int spans_per_token;
  std::uint64_t spans;
  std::uint64_t dropped;         // in the measured rounds
  std::uint64_t warmup_dropped;  // in the warm-up round
  double drainer_ns_per_span;    // CPU of every thread but the decoding one, per traced span
  int threads = 1;
  double sinks_ns_per_span = 0;  // of that, the sink thread's (parallel mode)
};

// Counts the spans handed over without resolving them into plain values.
class SpanCounter final : public strobe::Sink {
 public:
  void consume_compact(const strobe::CompactTrace& t) override {
    spans_.fetch_add(t.spans.size(), std::memory_order_relaxed);
  }
  void consume(const strobe::AssembledTrace& t) override { spans_.fetch_add(t.spans.size(), std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t spans() const noexcept { return spans_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> spans_{0};
};

template <bool Traced>
double time_round(demo::TinyModel& model, int tokens) {
  model.reset();
  int tok = 1;
  const auto t0 = std::chrono::steady_clock::now();
  if constexpr (Traced) {
    STROBE_SPAN(gen, "generate", strobe::Kind::llm);
    for (int i = 0; i < tokens; ++i) tok = model.decode<true>(tok);
  } else {
    for (int i = 0; i < tokens; ++i) tok = model.decode<false>(tok);
  }
  const auto t1 = std::chrono::steady_clock::now();
  static volatile int sink;
  sink = tok;
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) / tokens;
}

// --spin-passes N: Config::drain_spin_passes (-1: the default).
int g_spin_passes = -1;
// --sink: counter, file or deferred (see the usage above).
std::string g_sink = "counter";

// The recorder's sinks for --sink: the counter, and a file when asked for.
struct Output {
  std::shared_ptr<SpanCounter> counter = std::make_shared<SpanCounter>();
  std::string path;
  Output() {
    if (g_sink != "counter")
      path = (std::filesystem::temp_directory_path() / ("strobe-overhead-" + std::to_string(::getpid()) + ".strobe")).string();
  }
  ~Output() {
    if (!path.empty()) std::filesystem::remove(path);
  }
  strobe::Config config(strobe::Config c) const {
    if (g_spin_passes >= 0) c.drain_spin_passes = g_spin_passes;
    if (g_sink == "deferred") {
      c.assembly = strobe::Assembly::deferred;
      c.sinks = {};
    }
    if (!path.empty()) {
      strobe::serialize::FileSinkOptions o;
      o.path = path;
      c.sinks.push_back(std::make_shared<strobe::serialize::FileSink>(o));
    }
    return c;
  }
  // Spans handed to the sinks (deferred: recorded, as nothing is assembled).
  std::uint64_t spans(const strobe::Stats& s) const { return g_sink == "deferred" ? s.spans_recorded : counter->spans(); }
};

Result measure(const char* label, demo::ModelConfig cfg, int tokens, int rounds, std::size_t ring) {
  const Output output;
  // The library's default 2 MiB rings (--ring to change): at 1.3 M spans/s about 20 ms
  // of records. A round is one trace of tokens * spans_per_token + 1 spans, and the
  // drainer's memory for it is prepared when the recorder starts (expected_trace_spans):
  // unprepared, the first such trace met fresh memory and stalled the drainer for 40-50 ms
  // on this VM, long enough for the ring to overflow. Drops in the warm-up round are
  // reported apart.
  demo::TinyModel model(cfg);
  strobe::Recorder recorder(output.config({.ring_capacity = ring,
                                           .expected_trace_spans = static_cast<std::size_t>(tokens) *
                                                                       static_cast<std::size_t>(model.spans_per_token()) + 1,
                                           .service_name = "overhead",
                                           .sinks = {output.counter}}));
  time_round<false>(model, tokens);  // warm-up: caches, ring pages, call-site names
  time_round<true>(model, tokens);
  recorder.flush();
  const std::uint64_t warmup_dropped = recorder.stats().spans_dropped;
  const demo::CpuSplit cpu;
  std::vector<double> untraced, traced;
  for (int r = 0; r < rounds; ++r) {
    if (r % 2 == 0) {
      untraced.push_back(time_round<false>(model, tokens));
      traced.push_back(time_round<true>(model, tokens));
    } else {
      traced.push_back(time_round<true>(model, tokens));
      untraced.push_back(time_round<false>(model, tokens));
    }
  }
  recorder.flush();
  const std::int64_t others = cpu.others_ns();
  const double traced_spans = static_cast<double>(rounds) * tokens * model.spans_per_token();
  const strobe::Stats st = recorder.stats();
  return Result{label,         median(untraced), median(traced), model.spans_per_token(), output.spans(st),
                st.spans_dropped - warmup_dropped, warmup_dropped, static_cast<double>(others) / traced_spans};
}

// `threads` decoding threads, each its own model; every round all trace or none do.
Result measure_parallel(const char* label, demo::ModelConfig cfg, int tokens, int rounds, std::size_t ring,
                        int threads) {
  const Output output;
  demo::TinyModel probe(cfg);
  strobe::Recorder recorder(output.config({.ring_capacity = ring,
                                           .expected_trace_spans = static_cast<std::size_t>(tokens) *
                                                                       static_cast<std::size_t>(probe.spans_per_token()) + 1,
                                           .service_name = "overhead",
                                           .sinks = {output.counter}}));
  std::barrier sync(threads + 1);
  std::vector<std::vector<double>> untraced(static_cast<std::size_t>(threads)), traced(untraced.size());
  std::vector<std::int64_t> worker_cpu(untraced.size());
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      demo::TinyModel model(cfg);
      time_round<false>(model, tokens);  // warm-up
      time_round<true>(model, tokens);
      sync.arrive_and_wait();  // the warm-up is over: the main thread takes its figures
      sync.arrive_and_wait();
      const std::int64_t cpu0 = demo::cpu_ns(CLOCK_THREAD_CPUTIME_ID);
      for (int r = 0; r < rounds; ++r) {
        for (int half = 0; half < 2; ++half) {
          sync.arrive_and_wait();  // all threads start each half-round together
          if ((r % 2 == 0) == (half == 0)) {
            untraced[w].push_back(time_round<false>(model, tokens));
          } else {
            traced[w].push_back(time_round<true>(model, tokens));
          }
        }
      }
      worker_cpu[w] = demo::cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    });
  }
  sync.arrive_and_wait();
  recorder.flush();
  const strobe::Stats before = recorder.stats();
  const std::int64_t process0 = demo::cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
  sync.arrive_and_wait();
  for (int r = 0; r < rounds; ++r)
    for (int half = 0; half < 2; ++half) sync.arrive_and_wait();
  for (auto& t : workers) t.join();
  recorder.flush();
  const std::int64_t process = demo::cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - process0;
  const strobe::Stats after = recorder.stats();
  std::vector<double> all_untraced, all_traced;
  std::int64_t decoding_cpu = 0;
  for (int w = 0; w < threads; ++w) {
    all_untraced.insert(all_untraced.end(), untraced[w].begin(), untraced[w].end());
    all_traced.insert(all_traced.end(), traced[w].begin(), traced[w].end());
    decoding_cpu += worker_cpu[w];
  }
  const double traced_spans = static_cast<double>(rounds) * threads * tokens * probe.spans_per_token();
  Result r{label,
           median(all_untraced),
           median(all_traced),
           probe.spans_per_token(),
           output.spans(after),
           after.spans_dropped - before.spans_dropped,
           before.spans_dropped,
           static_cast<double>(process - decoding_cpu) / traced_spans};
  r.threads = threads;
  r.sinks_ns_per_span = static_cast<double>(after.sink_cpu_ns - before.sink_cpu_ns) / traced_spans;
  return r;
}

void print(const Result* results, std::size_t n, int rounds) {
  std::printf("| workload | threads | spans/token | untraced ns/token | traced ns/token | span rate (per thread) | overhead | ns/span | drainer+sinks CPU ns/span | dropped (warm-up) |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (std::size_t i = 0; i < n; ++i) {
    const Result& r = results[i];
    const double extra = r.traced_ns - r.untraced_ns;
    const double rate = r.spans_per_token * 1e9 / r.traced_ns;
    std::printf("| %s | %d | %d | %.0f | %.0f | %.2f M/s | %+.2f%% | %.1f | %.0f | %llu (%llu) |\n", r.label, r.threads,
                r.spans_per_token, r.untraced_ns, r.traced_ns, rate / 1e6, extra / r.untraced_ns * 100.0,
                extra / r.spans_per_token, r.drainer_ns_per_span, static_cast<unsigned long long>(r.dropped),
                static_cast<unsigned long long>(r.warmup_dropped));
  }
  std::printf("(medians of %d alternating rounds per thread)\n", rounds);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 21;
  int threads = 0;
  std::size_t ring = strobe::Config{}.ring_capacity;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::max(3, std::atoi(argv[++i]));
    if (std::strcmp(argv[i], "--ring") == 0 && i + 1 < argc) ring = std::strtoull(argv[++i], nullptr, 10);
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::max(0, std::atoi(argv[++i]));
    if (std::strcmp(argv[i], "--spin-passes") == 0 && i + 1 < argc) g_spin_passes = std::max(0, std::atoi(argv[++i]));
    if (std::strcmp(argv[i], "--sink") == 0 && i + 1 < argc) g_sink = argv[++i];
  }
  if (g_sink != "counter" && g_sink != "file" && g_sink != "deferred") {
    std::fprintf(stderr, "strobe_overhead: --sink must be counter, file or deferred\n");
    return 2;
  }
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  demo::ModelConfig demo_cfg;  // the demo's model
  demo::ModelConfig fast_cfg;  // small layers: per-layer spans at over a million per second
  fast_cfg.vocab = 64;
  fast_cfg.d = 16;
  fast_cfg.ff = 32;
  fast_cfg.heads = 2;
  fast_cfg.max_seq = 64;
  fast_cfg.name = "micro-transformer";

  const Result results[] = {
      measure("demo model (d=64, 4 layers)", demo_cfg, 256, rounds, ring),
      measure("micro model (d=16, 4 layers)", fast_cfg, 4096, rounds, ring),
  };
  print(results, 2, rounds);
  std::printf("(one thread decodes, a core is left for the drainer; sink %s; spans %s: %llu + %llu)\n\n", g_sink.c_str(),
              g_sink == "deferred" ? "recorded" : "assembled", static_cast<unsigned long long>(results[0].spans),
              static_cast<unsigned long long>(results[1].spans));
  const Result busy[] = {
      measure_parallel("demo model (d=64, 4 layers)", demo_cfg, 256, rounds, ring, threads),
      measure_parallel("micro model (d=16, 4 layers)", fast_cfg, 4096, rounds, ring, threads),
  };
  print(busy, 2, rounds);
  std::printf("(every core decodes: %d threads, each its own model; drainer+sinks CPU includes the sink thread's %.0f / %.0f ns/span)\n",
              threads, busy[0].sinks_ns_per_span, busy[1].sinks_ns_per_span);
  return 0;
}
