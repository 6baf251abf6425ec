// The drainer at a steady rate, for seconds: what strobe costs a machine after the ring.
//
// Each recording thread records child spans at a fixed rate (spinning between them, as a
// decode loop computes between its spans), every span a child of one root that never
// ends (--spans-per-root 0) or of a root renewed every N spans. The default Config (drop
// policy, 2 MiB rings) writes into a FileSink. Reports, over the measured seconds:
//   drainer_ns_per_span  CPU of the drainer thread per span recorded
//   sink_ns_per_span     CPU of the sink thread (encoding, writing) per span recorded
//   other_ns_per_span    CPU of every other thread that is not recording
//   dropped              spans dropped (Stats::spans_dropped) and records dropped
//   rss_mib              resident memory at the start and the end of the measured part
//
// Usage: strobe_paced_bench [--threads N] [--rate SPANS_PER_S_PER_THREAD] [--seconds S]
//                           [--spans-per-root N] [--warmup S] [--out PATH] [--policy drop|wait]
//                           [--partial-spans N]   (Config::partial_trace_spans)
//                           [--spin-passes N]     (Config::drain_spin_passes)
//                           [--recovery DIR]      (Config::recovery_dir: the drainer journals)
//                           [--assembly automatic|in_process|deferred]   (Config::assembly; the default's
//                                                 automatic, which with a FileSink alone is deferred)

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include "cpu_time.hpp"

namespace {

struct Options {
  int threads = 1;
  double rate = 1'000'000;  // per thread
  double seconds = 10;
  double warmup = 1;
  long spans_per_root = 0;  // 0: one root that never ends
  long partial_spans = 0;   // Config::partial_trace_spans; 0: the default
  long spin_passes = -1;    // Config::drain_spin_passes; -1: the default
  std::string out;
  std::string recovery;  // Config::recovery_dir; empty: off
  strobe::Assembly assembly = strobe::Assembly::automatic;  // Config::assembly
  strobe::OverflowPolicy policy = strobe::OverflowPolicy::drop;
};

double rss_mib() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Records at opt.rate from start_ns until stop; returns the spans it recorded after
// measure_from (written to *measured) and its CPU time in *cpu_ns.
void record(const Options& opt, std::int64_t start_ns, const std::atomic<bool>& stop,
            const std::atomic<bool>& measuring, std::uint64_t* measured, std::int64_t* cpu_ns) {
  static const strobe::Name kRoot("request"), kStep("decode_token");
  const double period = 1e9 / opt.rate;
  strobe::Span root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
  long in_root = 0;
  std::uint64_t i = 0, counted = 0;
  std::int64_t cpu_from = 0;
  bool was_measuring = false;
  while (!stop.load(std::memory_order_relaxed)) {
    const std::int64_t due = start_ns + static_cast<std::int64_t>(static_cast<double>(i) * period);
    while (now_ns() < due) {
    }
    ++i;
    if (opt.spans_per_root != 0 && ++in_root == opt.spans_per_root) {
      root.finish();
      root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
      in_root = 0;
    }
    { strobe::Span s(kStep, strobe::Kind::step); }
    const bool m = measuring.load(std::memory_order_relaxed);
    if (m && !was_measuring) cpu_from = demo::cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    if (m) ++counted;
    if (!m && was_measuring) break;
    was_measuring = m;
  }
  *cpu_ns = demo::cpu_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_from;
  *measured = counted;
  root.finish();
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--threads")) {
      o.threads = std::atoi(argv[++i]);
    } else if (arg("--rate")) {
      o.rate = std::atof(argv[++i]);
    } else if (arg("--seconds")) {
      o.seconds = std::atof(argv[++i]);
    } else if (arg("--warmup")) {
      o.warmup = std::atof(argv[++i]);
    } else if (arg("--spans-per-root")) {
      o.spans_per_root = std::atol(argv[++i]);
    } else if (arg("--partial-spans")) {
      o.partial_spans = std::atol(argv[++i]);
    } else if (arg("--spin-passes")) {
      o.spin_passes = std::atol(argv[++i]);
    } else if (arg("--assembly")) {
      const std::string a = argv[++i];
      if (a == "in_process") o.assembly = strobe::Assembly::in_process;
      else if (a == "deferred") o.assembly = strobe::Assembly::deferred;
      else if (a != "automatic") {
        std::fprintf(stderr, "strobe_paced_bench: --assembly must be automatic, in_process or deferred\n");
        std::exit(2);
      }
    } else if (arg("--recovery")) {
      o.recovery = argv[++i];
    } else if (arg("--out")) {
      o.out = argv[++i];
    } else if (arg("--policy")) {
      o.policy = std::strcmp(argv[++i], "wait") == 0 ? strobe::OverflowPolicy::wait : strobe::OverflowPolicy::drop;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--rate SPANS_PER_S] [--seconds S] [--warmup S] "
                   "[--spans-per-root N] [--out PATH] [--policy drop|wait] [--partial-spans N] [--spin-passes N] [--recovery DIR] [--assembly automatic|in_process|deferred]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  if (o.threads < 1 || o.rate <= 0 || o.seconds <= 0 || o.warmup < 0 || o.spans_per_root < 0) {
    std::fprintf(stderr, "strobe_paced_bench: bad arguments\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const std::string path =
      opt.out.empty() ? (std::filesystem::temp_directory_path() / ("strobe-paced-" + std::to_string(::getpid()) + ".strobe")).string()
                      : opt.out;
  strobe::Stats stats;
  double rss0 = 0, rss1 = 0, elapsed_s = 0;
  std::int64_t process_cpu = 0, recording_cpu = 0;
  std::uint64_t spans = 0;
  strobe::Stats before{};
  strobe::Assembly assembly{};
  {
    auto file = std::make_shared<strobe::serialize::FileSink>([&] {
      strobe::serialize::FileSinkOptions o;
      o.path = path;
      return o;
    }());
    strobe::Config config;  // the defaults, but for the sink and the policy
    config.service_name = "paced";
    config.overflow = opt.policy;
    if (opt.partial_spans > 0) config.partial_trace_spans = static_cast<std::size_t>(opt.partial_spans);
    if (opt.spin_passes >= 0) config.drain_spin_passes = static_cast<int>(opt.spin_passes);
    config.assembly = opt.assembly;
    config.sinks = {file};
    config.recovery_dir = opt.recovery;
    strobe::Recorder recorder(config);
    assembly = recorder.config().assembly;  // what automatic became

    std::atomic<bool> stop{false}, measuring{false};
    std::vector<std::uint64_t> measured(static_cast<std::size_t>(opt.threads));
    std::vector<std::int64_t> cpu(static_cast<std::size_t>(opt.threads));
    const std::int64_t start = now_ns() + 1'000'000;
    std::vector<std::thread> threads;
    for (int t = 0; t < opt.threads; ++t)
      threads.emplace_back(record, std::cref(opt), start, std::cref(stop), std::cref(measuring), &measured[t], &cpu[t]);

    std::this_thread::sleep_for(std::chrono::duration<double>(opt.warmup));
    before = recorder.stats();
    rss0 = rss_mib();
    const std::int64_t process0 = demo::cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    const std::int64_t wall0 = now_ns();
    measuring.store(true);
    std::this_thread::sleep_for(std::chrono::duration<double>(opt.seconds));
    measuring.store(false);
    const std::int64_t wall1 = now_ns();
    const std::int64_t process1 = demo::cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    stats = recorder.stats();
    rss1 = rss_mib();
    stop.store(true);
    for (auto& th : threads) th.join();
    elapsed_s = static_cast<double>(wall1 - wall0) / 1e9;
    process_cpu = process1 - process0;
    for (int t = 0; t < opt.threads; ++t) {
      spans += measured[t];
      recording_cpu += cpu[t];
    }
  }
  // Per span kept (recorded and not dropped): what the drainer and the sinks worked on.
  const std::uint64_t dropped = stats.spans_dropped - before.spans_dropped;
  const std::uint64_t rec_dropped = stats.records_dropped - before.records_dropped;
  const double n = static_cast<double>(spans - std::min(spans, dropped));
  const double drainer = static_cast<double>(stats.drainer_cpu_ns - before.drainer_cpu_ns) / n;
  const double sink = static_cast<double>(stats.sink_cpu_ns - before.sink_cpu_ns) / n;
  const double other =
      static_cast<double>(process_cpu - recording_cpu) / n - drainer - sink;  // the main thread, sleeping
  std::printf(
      "threads %d  rate %.2f M spans/s/thread  spans-per-root %s  policy %s  assembly %s\n"
      "measured %.2f s: %llu spans begun (%.3f M spans/s in all)\n"
      "per span kept:\n"
      "drainer_ns_per_span %.1f  sink_ns_per_span %.1f  drainer+sink %.1f  other_ns_per_span %.1f\n"
      "recording_ns_per_span %.1f (CPU of the recording threads, mostly their pacing spin)\n"
      "dropped %llu spans (%.3f%%), %llu records\n"
      "rss_mib %.1f -> %.1f\n",
      opt.threads, opt.rate / 1e6, opt.spans_per_root == 0 ? "endless" : std::to_string(opt.spans_per_root).c_str(),
      opt.policy == strobe::OverflowPolicy::wait ? "wait" : "drop", strobe::to_string(assembly), elapsed_s, static_cast<unsigned long long>(spans),
      static_cast<double>(spans) / elapsed_s / 1e6, drainer, sink, drainer + sink, other, static_cast<double>(recording_cpu) / n,
      static_cast<unsigned long long>(dropped), 100.0 * static_cast<double>(dropped) / static_cast<double>(spans),
      static_cast<unsigned long long>(rec_dropped), rss0, rss1);
  if (opt.out.empty()) std::filesystem::remove(path);
  return 0;
}
