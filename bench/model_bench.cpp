// The demo model's decode loop under Google Benchmark, with strobe's spans turned into
// per-span-name latency counters (strobe/benchmark.hpp). Two runs and `strobe diff`
// tell which stage got slower:
//
//   strobe_model_bench --strobe_out=base.strobe
//   (change something)
//   strobe_model_bench --strobe_out=new.strobe
//   strobe diff base.strobe new.strobe

#include <strobe/benchmark.hpp>

#include <cstring>
#include <string>

#include "tiny_model.hpp"

namespace {

// Decode steps of the demo model; counters: decode_token/attention/mlp .p50_ns etc.
void BM_DecodeToken(benchmark::State& state) {
  demo::ModelConfig cfg;
  cfg.d = static_cast<int>(state.range(0));
  cfg.ff = cfg.d * 4;
  demo::TinyModel model(cfg);
  strobe::bench::Measure measure(state);
  int tok = 1;
  for (auto _ : state) {
    if (model.position() >= cfg.max_seq) model.reset();
    tok = model.decode<true>(tok);
  }
  benchmark::DoNotOptimize(tok);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeToken)->Arg(32)->Arg(64);

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--strobe_out=", 13) == 0) {
      out = argv[i] + 13;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  strobe::bench::Session session({.file = out});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
