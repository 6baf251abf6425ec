// strobe::benchmark through the package: a benchmark's spans become its counters, and the
// run is kept as a strobe file.
#include <strobe/benchmark.hpp>
#include <strobe/serialize/reader.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr int kIterations = 1000;

void BM_Work(benchmark::State& state) {
  strobe::bench::Measure measure(state);
  for (auto _ : state) {
    STROBE_SPAN(work, "work", strobe::Kind::step);
    benchmark::DoNotOptimize(work.span_id());
  }
}

// Prints as usual and keeps the counters of every run.
class KeepCounters final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs)
      for (const auto& [name, counter] : run.counters) counters[name] = counter.value;
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> counters;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer_bench.strobe";
  benchmark::RegisterBenchmark("BM_Work", BM_Work)->Iterations(kIterations);
  KeepCounters reporter;
  {
    strobe::bench::Session session({.file = path});
    benchmark::RunSpecifiedBenchmarks(&reporter);
  }
  if (reporter.counters["work.count"] != kIterations || !(reporter.counters["work.p50_ns"] > 0)) {
    std::printf("unexpected counters: work.count %g, work.p50_ns %g\n", reporter.counters["work.count"],
                reporter.counters["work.p50_ns"]);
    return 1;
  }
  const auto traces = strobe::serialize::read_all(path);
  if (traces.size() != kIterations) {
    std::printf("unexpected: %zu traces in %s\n", traces.size(), path.c_str());
    return 1;
  }
  std::printf("consumer_bench ok: %zu spans of work kept, p50 %g ns\n", traces.size(),
              reporter.counters["work.p50_ns"]);
  return 0;
}
