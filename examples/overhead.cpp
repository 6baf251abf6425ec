// Tracing overhead on a real decode loop: the same tokens decoded untraced (no span code
// at all) and traced (a span per token; under it one chain of adjacent spans through every
// layer's attention and mlp),
// alternating in one run so both see the same machine. Reports medians.
//
// Usage: strobe_overhead [--rounds N] [--ring RECORDS]   (ring: records per thread, a power of two)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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

Result measure(const char* label, demo::ModelConfig cfg, int tokens, int rounds, std::size_t ring) {
  std::atomic<std::uint64_t> spans{0};
  auto counter = std::make_shared<strobe::CallbackSink>(
      [&](const strobe::AssembledTrace& t) { spans.fetch_add(t.spans.size(), std::memory_order_relaxed); });
  // The library's default 2 MiB rings (--ring to change): at 1.3 M spans/s about 20 ms
  // of records. A round is one trace of tokens * spans_per_token + 1 spans, and the
  // drainer's memory for it is prepared when the recorder starts (expected_trace_spans):
  // unprepared, the first such trace met fresh memory and stalled the drainer for 40-50 ms
  // on this VM, long enough for the ring to overflow. Drops in the warm-up round are
  // reported apart.
  demo::TinyModel model(cfg);
  strobe::Recorder recorder({.ring_capacity = ring,
                             .expected_trace_spans = static_cast<std::size_t>(tokens) *
                                                         static_cast<std::size_t>(model.spans_per_token()) + 1,
                             .service_name = "overhead",
                             .sinks = {counter}});
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
  return Result{label,         median(untraced), median(traced), model.spans_per_token(), spans.load(),
                st.spans_dropped - warmup_dropped, warmup_dropped, static_cast<double>(others) / traced_spans};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 21;
  std::size_t ring = strobe::Config{}.ring_capacity;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = std::max(3, std::atoi(argv[++i]));
    if (std::strcmp(argv[i], "--ring") == 0 && i + 1 < argc) ring = std::strtoull(argv[++i], nullptr, 10);
  }

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
  std::printf("| workload | spans/token | untraced ns/token | traced ns/token | span rate | overhead | ns/span | drainer CPU ns/span | dropped (warm-up) |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Result& r : results) {
    const double extra = r.traced_ns - r.untraced_ns;
    const double rate = r.spans_per_token * 1e9 / r.traced_ns;
    std::printf("| %s | %d | %.0f | %.0f | %.2f M/s | %+.2f%% | %.1f | %.0f | %llu (%llu) |\n", r.label,
                r.spans_per_token, r.untraced_ns, r.traced_ns, rate / 1e6, extra / r.untraced_ns * 100.0,
                extra / r.spans_per_token, r.drainer_ns_per_span, static_cast<unsigned long long>(r.dropped),
                static_cast<unsigned long long>(r.warmup_dropped));
  }
  std::printf("(medians of %d alternating rounds; spans assembled: %llu + %llu)\n", rounds,
              static_cast<unsigned long long>(results[0].spans), static_cast<unsigned long long>(results[1].spans));
  return 0;
}
