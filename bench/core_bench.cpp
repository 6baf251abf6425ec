// The recording hot path, next to baselines that do the same work by other means: two
// timestamps and two 64-byte records per span.
//
// Strobe cases run with a live Recorder (its drainer thread polling the rings) under
// OverflowPolicy::wait, so no record is ever dropped. The drainer assembles far more
// slowly than the hot path records, so a tight loop would soon measure the drainer, not
// the hot path: every case records in batches that fill at most half a ring, and lets the
// drainer catch up (Recorder::flush) with the timer paused between batches. Within a
// batch the drainer runs as it always does (it wakes every drain_interval and reads
// whatever was committed).
//
// BM_SpanScopeDisabled runs first, with no Recorder active. The Recorder is created by
// the first strobe case and destroyed (after a check that nothing was dropped) before
// the baselines, which need none. The *Recovery cases run right after their plain twins
// under a Recorder with Config::recovery_dir (rings in shared file mappings in a
// temporary directory, the drainer journaling): the same hot path, to compare in one run.

#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>
#include <x86intrin.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <strobe/strobe.hpp>

namespace {

// Records per thread ring: 4 MiB per recording thread.
constexpr std::size_t kRingCapacity = std::size_t{1} << 16;
// Records one timed batch may write: half a ring, so the ring never fills inside a batch
// (the wait policy would otherwise make the hot path wait for the drainer).
constexpr std::int64_t kBatchRecords = static_cast<std::int64_t>(kRingCapacity / 2);

std::unique_ptr<strobe::Recorder> g_recorder;
bool g_recorder_recovers = false;  // g_recorder has Config::recovery_dir
// The threads of a multi-threaded strobe case meet here around each catch-up.
std::unique_ptr<std::barrier<>> g_batch_barrier;

strobe::Config bench_config() {
  strobe::Config c;
  c.ring_capacity = kRingCapacity;
  c.overflow = strobe::OverflowPolicy::wait;
  // The drainer wakes within 0.1 ms of a batch's start, so every case shares the machine
  // with a working drainer for (nearly) its whole batch. With the default 1 ms, a case's
  // exposure depended on how long its batch lasted: BM_SpanScope's (~1 ms) met the
  // drainer, BM_SpanWithAttrs' (~0.4 ms) and BM_SpanChain's (~0.25 ms) mostly did not,
  // and the latter measured faster than they are next to a live drainer.
  c.drain_interval = std::chrono::microseconds(100);
  return c;
}

void stop_recorder();

// Benchmark setup hooks (run on the main thread before a case's threads start).
void start_recorder(const benchmark::State& state, bool recovery) {
  if (g_recorder && g_recorder_recovers != recovery) stop_recorder();
  if (!g_recorder) {
    strobe::Config c = bench_config();
    if (recovery) {
      // STROBE_BENCH_RECOVERY_DIR: where the directory goes (the file system matters:
      // see the README), else the temporary directory.
      const char* where = std::getenv("STROBE_BENCH_RECOVERY_DIR");
      const std::filesystem::path base = where != nullptr ? std::filesystem::path(where)
                                                          : std::filesystem::temp_directory_path();
      c.recovery_dir = (base / ("strobe_core_bench." + std::to_string(::getpid()) + ".recovery")).string();
    }
    g_recorder = std::make_unique<strobe::Recorder>(std::move(c));
    g_recorder_recovers = recovery;
  }
  g_batch_barrier = std::make_unique<std::barrier<>>(state.threads());
}
void start_recorder(const benchmark::State& state) { start_recorder(state, false); }
void start_recovering_recorder(const benchmark::State& state) { start_recorder(state, true); }

// Flushes, reports the recorder's counts on stderr (with a warning when anything was
// dropped), and destroys the Recorder.
void stop_recorder() {
  if (!g_recorder) return;
  g_recorder->flush();
  const strobe::Stats s = g_recorder->stats();
  std::fprintf(stderr, "recorder: %llu spans recorded, %llu records dropped\n",
               static_cast<unsigned long long>(s.spans_recorded),
               static_cast<unsigned long long>(s.records_dropped));
  if (s.records_dropped != 0) {
    std::fprintf(stderr,
                 "warning: %llu records (%llu spans) were dropped; the strobe cases did not "
                 "measure a lossless steady state\n",
                 static_cast<unsigned long long>(s.records_dropped),
                 static_cast<unsigned long long>(s.spans_dropped));
  }
  g_recorder.reset();
}
void stop_recorder(const benchmark::State&) { stop_recorder(); }

// Runs body(n) -- n iterations of a case -- in timed batches of n = kBatchRecords /
// records_per_iteration; after each batch, with the timer paused, waits until the drainer
// has consumed everything (records_per_iteration 0: no recorder, no waiting). Every case
// uses it, so every case has the same loop shape.
//
// With several threads, all of them wait at a barrier and one flushes: the drainer's
// catch-up never overlaps another thread's timed batch, so a 2-thread case measures the
// hot path's own scaling rather than the drainer competing for the cores. Every thread
// runs the same number of batches, so the barrier cannot deadlock.
template <class Body>
void run_batched(benchmark::State& state, std::int64_t records_per_iteration, Body&& body) {
  const std::int64_t n = records_per_iteration == 0 ? 4096 : kBatchRecords / records_per_iteration;
  while (state.KeepRunningBatch(n)) {
    body(n);
    if (records_per_iteration != 0) {
      state.PauseTiming();
      g_batch_barrier->arrive_and_wait();
      if (state.thread_index() == 0) g_recorder->flush();
      g_batch_barrier->arrive_and_wait();
      state.ResumeTiming();
    }
  }
}

// The untimed catch-up dominates a strobe case's wall time (the drainer assembles far
// more slowly than the hot path records), so strobe cases run for a shorter timed total.
constexpr double kStrobeMinTime = 0.2;

// ---- strobe ----

// The no-op path: STROBE_SPAN while no Recorder is active (one relaxed load and a branch).
void BM_SpanScopeDisabled(benchmark::State& state) {
  run_batched(state, 0, [](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      STROBE_SPAN(span, "bench.disabled");
    }
  });
}
BENCHMARK(BM_SpanScopeDisabled)->Setup(stop_recorder);

// Begin + end of a STROBE_SPAN that is a child of the thread's open trace root: two clock
// reads, two 64-byte records, current-context save and restore.
void BM_SpanScope(benchmark::State& state) {
  auto root = strobe::trace("bench.root");
  run_batched(state, 2, [](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      STROBE_SPAN(span, "bench.child");
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpanScope)->Setup(start_recorder)->MinTime(kStrobeMinTime);
// The same with the recovery mode on: the rings in file mappings, the drainer journaling.
void BM_SpanScopeRecovery(benchmark::State& state) { BM_SpanScope(state); }
BENCHMARK(BM_SpanScopeRecovery)->Setup(start_recovering_recorder)->MinTime(kStrobeMinTime);
// The same per recording thread with one and two threads recording at once (each thread
// has its own ring; Time is per span across all threads, CPU is per span per thread).
BENCHMARK(BM_SpanScope)->Setup(start_recorder)->MinTime(kStrobeMinTime)->Threads(1)->Threads(2);

// A child span with two integer attributes and one short string attribute, keys
// interned at the call site: five records.
void BM_SpanWithAttrs(benchmark::State& state) {
  auto root = strobe::trace("bench.root");
  run_batched(state, 5, [](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      STROBE_SPAN(span, "bench.attrs");
      span.attr(STROBE_NAME("index"), i)
          .attr(STROBE_NAME("tokens"), 128)
          .attr(STROBE_NAME("model"), "small-model");
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpanWithAttrs)->Setup(start_recorder)->MinTime(kStrobeMinTime);

// span.event() with no attributes on an already open span: one clock read, one record.
void BM_Event(benchmark::State& state) {
  auto root = strobe::trace("bench.root");
  // One span per batch, ended before the catch-up: its 2 records are amortised over the
  // batch, and the drainer never holds a long-lived open span.
  run_batched(state, 1, [](std::int64_t n) {
    STROBE_SPAN(span, "bench.events");
    for (std::int64_t i = 0; i < n; ++i) span.event(STROBE_NAME("bench.tick"));
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Event)->Setup(start_recorder)->MinTime(kStrobeMinTime);

// Cost per span in a chain of 8 adjacent sibling spans (STROBE_NEXT): 9 clock reads and
// 9 records per chain (a begin, 7 records that each end a stage and begin the next, an
// end). The "span" counter is the time per span.
void BM_SpanChain(benchmark::State& state) {
  constexpr int kChain = 8;
  auto root = strobe::trace("bench.root");
  run_batched(state, kChain + 1, [](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      STROBE_SPAN(span, "bench.stage0");
      STROBE_NEXT(span, "bench.stage1");
      STROBE_NEXT(span, "bench.stage2");
      STROBE_NEXT(span, "bench.stage3");
      STROBE_NEXT(span, "bench.stage4");
      STROBE_NEXT(span, "bench.stage5");
      STROBE_NEXT(span, "bench.stage6");
      STROBE_NEXT(span, "bench.stage7");
    }
  });
  state.SetItemsProcessed(state.iterations() * kChain);
  state.counters["span"] = benchmark::Counter(
      kChain, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SpanChain)->Setup(start_recorder)->MinTime(kStrobeMinTime);
void BM_SpanChainRecovery(benchmark::State& state) { BM_SpanChain(state); }
BENCHMARK(BM_SpanChainRecovery)->Setup(start_recovering_recorder)->MinTime(kStrobeMinTime);

// ---- baselines: the same two timestamps and two 64-byte records ----

struct alignas(64) Rec64 {
  std::uint64_t word[8];
};
static_assert(sizeof(Rec64) == 64);

// Fills a record the way a begin or end record is filled: a few ids and a timestamp.
inline void fill(Rec64& r, std::uint64_t id, std::uint64_t ts) noexcept {
  r.word[0] = 1;
  r.word[1] = id;
  r.word[2] = ts;
  r.word[3] = 0x1111;
  r.word[4] = 0x2222;
  r.word[5] = id - 1;
  r.word[6] = 0;
  r.word[7] = 0;
}

// The floor any recorder of this shape pays: two __rdtsc() and two 64-byte stores into a
// prefaulted per-thread array as large as strobe's ring, wrapping; nothing published.
void BM_BaselineFloor(benchmark::State& state) {
  constexpr std::size_t kMask = kRingCapacity - 1;
  std::unique_ptr<Rec64[]> slots(new Rec64[kRingCapacity]());  // value-initialised: prefaulted
  Rec64* buf = slots.get();
  benchmark::DoNotOptimize(buf);
  std::uint64_t pos = 0;
  run_batched(state, 0, [&](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      fill(buf[pos & kMask], pos, __rdtsc());
      ++pos;
      fill(buf[pos & kMask], pos, __rdtsc());
      ++pos;
      benchmark::ClobberMemory();
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineFloor)->Setup(stop_recorder);
// The floor with one and two threads: how much the machine itself slows a thread down
// when two record at once (compare with BM_SpanScope/threads:2).
BENCHMARK(BM_BaselineFloor)->Setup(stop_recorder)->Threads(1)->Threads(2);

// Two records through a moodycamel::ConcurrentQueue (with a ProducerToken), timestamps
// included; a consumer thread dequeues in bulk and sleeps ~1 ms whenever it finds the
// queue empty, as strobe's drainer does.
void BM_BaselineMoodycamel(benchmark::State& state) {
  moodycamel::ConcurrentQueue<Rec64> queue(kRingCapacity);
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    std::vector<Rec64> out(1024);
    std::uint64_t sink = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      std::size_t n;
      while ((n = queue.try_dequeue_bulk(out.data(), out.size())) != 0) sink += out[n - 1].word[2];
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    benchmark::DoNotOptimize(sink);
  });
  moodycamel::ProducerToken token(queue);
  std::uint64_t id = 0;
  Rec64 r{};
  run_batched(state, 0, [&](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      fill(r, ++id, __rdtsc());
      queue.enqueue(token, r);
      fill(r, id, __rdtsc());
      queue.enqueue(token, r);
    }
  });
  stop.store(true, std::memory_order_relaxed);
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineMoodycamel)->Setup(stop_recorder);

// The naive recorder: each of the two records is stamped with steady_clock and appended
// to a std::vector under a std::mutex (uncontended); cleared when it reaches the size of
// strobe's ring, so memory stays bounded.
void BM_BaselineMutexVector(benchmark::State& state) {
  std::mutex mutex;
  std::vector<Rec64> records;
  records.reserve(kRingCapacity);
  std::uint64_t id = 0;
  auto append = [&](std::uint64_t span_id) {
    const auto ts = static_cast<std::uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count());
    std::lock_guard lock(mutex);
    if (records.size() == kRingCapacity) records.clear();
    fill(records.emplace_back(), span_id, ts);
  };
  run_batched(state, 0, [&](std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      append(++id);
      append(id);
    }
  });
  benchmark::DoNotOptimize(records.data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineMutexVector)->Setup(stop_recorder);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  stop_recorder();
  benchmark::Shutdown();
  return 0;
}
