#pragma once
// strobe inside Google Benchmark: the spans a benchmark records become per-span-name
// latency percentiles in its user counters (so --benchmark_format=json carries them),
// and the whole run can be kept as a strobe file for `strobe diff`.
//
//   int main(int argc, char** argv) {
//     benchmark::Initialize(&argc, argv);
//     strobe::bench::Session session({.file = "run.strobe"});  // one recorder for the run
//     benchmark::RunSpecifiedBenchmarks();
//   }
//
//   static void BM_Decode(benchmark::State& state) {
//     strobe::bench::Measure measure(state);   // spans recorded while it lives...
//     for (auto _ : state) model.decode();     // ...by code with STROBE_SPANs in it
//   }                                          // -> counters decode_token.p50_ns, ...
//
// Link strobe::benchmark (needs Google Benchmark and strobe::serialize).

#include <benchmark/benchmark.h>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace strobe::bench {

struct SessionOptions {
  std::string file;                             // also write every trace here ("" = no file)
  std::vector<double> percentiles{50, 90, 99};  // reported per span name
  std::size_t max_samples_per_name = 1 << 20;   // beyond this, a uniform sample is kept
  Config recorder{.overflow = OverflowPolicy::wait};  // lossless by default
};

class Session;

namespace detail {

// Collects span durations by name while a Measure is open. Drainer thread writes,
// the benchmark thread reads after flush().
class Collector final : public Sink {
 public:
  explicit Collector(std::size_t cap) : cap_(cap) {}
  void consume(const AssembledTrace& t) override {
    std::lock_guard lock(mutex_);
    if (!open_) return;
    for (const SpanData& s : t.spans) {
      if (s.status == Status::incomplete) continue;
      Samples& v = by_name_[s.name];
      ++v.seen;
      if (v.values.size() < cap_) {
        v.values.push_back(s.duration_ns());
      } else if (const std::uint64_t j = rng_() % v.seen; j < cap_) {
        v.values[j] = s.duration_ns();
      }
    }
  }
  void open() {
    std::lock_guard lock(mutex_);
    by_name_.clear();
    open_ = true;
  }
  struct Samples {
    std::vector<std::int64_t> values;
    std::uint64_t seen = 0;
  };
  std::map<std::string, Samples> close() {
    std::lock_guard lock(mutex_);
    open_ = false;
    return std::exchange(by_name_, {});
  }

 private:
  std::mutex mutex_;
  bool open_ = false;
  std::size_t cap_;
  std::mt19937_64 rng_{42};
  std::map<std::string, Samples> by_name_;
};

inline Session*& current_session() {
  static Session* s = nullptr;
  return s;
}

}  // namespace detail

// A recorder for the whole benchmark run. One at a time.
class Session {
 public:
  explicit Session(SessionOptions options = {}) : options_(std::move(options)) {
    collector_ = std::make_shared<detail::Collector>(options_.max_samples_per_name);
    Config cfg = options_.recorder;
    cfg.sinks.push_back(collector_);
    if (!options_.file.empty()) {
      file_ = std::make_shared<serialize::FileSink>(serialize::FileSinkOptions{.path = options_.file});
      cfg.sinks.push_back(file_);
    }
    recorder_ = std::make_unique<Recorder>(std::move(cfg));
    detail::current_session() = this;
  }
  ~Session() {
    detail::current_session() = nullptr;
    recorder_.reset();
    if (file_) file_->close();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  [[nodiscard]] Recorder& recorder() noexcept { return *recorder_; }
  [[nodiscard]] const SessionOptions& options() const noexcept { return options_; }
  [[nodiscard]] detail::Collector& collector() noexcept { return *collector_; }

 private:
  SessionOptions options_;
  std::shared_ptr<detail::Collector> collector_;
  std::shared_ptr<serialize::FileSink> file_;
  std::unique_ptr<Recorder> recorder_;
};

// Within one benchmark function: the spans recorded while it lives become counters
// "<span name>.p<N>_ns" and "<span name>.count" on `state`. Without a Session it does
// nothing. The flush happens in the destructor, after the timed loop.
class Measure {
 public:
  explicit Measure(benchmark::State& state) : state_(state), session_(detail::current_session()) {
    if (session_ && state_.thread_index() == 0) session_->collector().open();
  }
  ~Measure() {
    if (!session_ || state_.thread_index() != 0) return;
    session_->recorder().flush();
    auto samples = session_->collector().close();
    for (auto& [name, s] : samples) {
      std::vector<std::int64_t>& v = s.values;
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      for (double p : session_->options().percentiles) {
        const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(v.size())));
        const std::int64_t value = v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
        char key[32];
        std::snprintf(key, sizeof key, ".p%g_ns", p);
        state_.counters[name + key] = benchmark::Counter(double(value));
      }
      state_.counters[name + ".count"] = benchmark::Counter(double(s.seen));
    }
  }
  Measure(const Measure&) = delete;
  Measure& operator=(const Measure&) = delete;

 private:
  benchmark::State& state_;
  Session* session_;
};

}  // namespace strobe::bench
