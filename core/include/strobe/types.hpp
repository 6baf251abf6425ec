#pragma once
// strobe's public value types: kinds, statuses, ids, configuration and statistics.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace strobe {

// What a span represents. `custom` carries its own name (see span(name, "my-kind")).
enum class Kind : std::uint8_t { span, llm, retrieval, tool, plan, action, agent, step, custom };
inline constexpr int kKindCount = 9;

// "span", "llm", ... ; never null.
[[nodiscard]] const char* to_string(Kind k) noexcept;
// The kind named by s; an unknown or empty name gives Kind::custom.
[[nodiscard]] Kind kind_from_string(std::string_view s) noexcept;

// How a span ended. `incomplete`: it had not ended when its trace was handed over
// (flush, shutdown) or its end record was lost.
enum class Status : std::uint8_t { ok, failed, incomplete };
[[nodiscard]] const char* to_string(Status s) noexcept;

// 128-bit trace id, OpenTelemetry-compatible; never zero once assigned.
struct TraceId {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  [[nodiscard]] bool valid() const noexcept { return (hi | lo) != 0; }
  [[nodiscard]] std::string to_hex() const;  // 32 lowercase hex digits
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

struct TokenUsage {
  std::int64_t input = 0;
  std::int64_t output = 0;
  std::int64_t cached_input = 0;
  friend bool operator==(const TokenUsage&, const TokenUsage&) = default;
};

// Request parameters of a model call (OpenTelemetry GenAI: gen_ai.request.*); a negative
// value (the default) is not recorded.
struct GenAiRequest {
  double temperature = -1;
  double top_p = -1;
  std::int64_t max_tokens = -1;
  std::int64_t seed = -1;
};

// A span id as 16 lowercase hex digits (as OpenTelemetry and W3C trace context write it).
[[nodiscard]] std::string to_hex(std::uint64_t span_id);

// Where the spans of the rings become traces (Config::assembly).
//   in_process: the drainer assembles them (trees, groups, parts) and every sink gets
//     traces (consume_compact / consume).
//   deferred: the drainer assembles nothing. It passes the rings' records on as a compact
//     log (a plain span in about 8 bytes: what differs from the span before it), and the
//     file's reader assembles them as the drainer would have: strobe's Reader does it as
//     it opens the file (into a temporary file in $TMPDIR; `strobe assemble` does it once
//     for good), giving the same traces, parts, groups and drops. The process spends
//     about a third of the CPU per span after its ring, which is what decides tracing's
//     cost when every core is busy, and the file is several times smaller (README,
//     "Overhead"). Every sink must take the log (Sink::takes_records(): a FileSink without
//     rotation does), else a ConfigError. Stats::spans_assembled and traces_emitted stay
//     0. When the sinks fall behind (the queue holds sink_queue_spans x 128 bytes of
//     log), the drainer leaves the records in the rings, which fill: their overflow policy
//     applies (drop: counted as ever; wait: lossless).
//   automatic (the default): deferred when there is a sink and every sink takes the log,
//     else in_process.
enum class Assembly : std::uint8_t { automatic, in_process, deferred };
[[nodiscard]] const char* to_string(Assembly a) noexcept;  // "automatic", "in_process", "deferred"

// What the hot path does when its thread's ring is full.
enum class OverflowPolicy : std::uint8_t {
  drop,  // never block: the record is dropped and counted (per ring, exact)
  wait,  // spin, then yield, until the drainer frees space: lossless, for benchmark runs
};

enum class ClockSource : std::uint8_t {
  automatic,  // the TSC when the CPU reports it invariant, else steady_clock
  tsc,        // the TSC; Recorder refuses to start when it is not invariant
  steady,     // std::chrono::steady_clock
};

class Sink;

struct Config {
  // Records per thread ring (64 bytes each); a power of two in [64, 2^24]. Larger rings absorb
  // longer bursts between drain passes; each recording thread holds one.
  std::size_t ring_capacity = 1u << 15;  // 2 MiB per recording thread, pre-faulted at its first span
  OverflowPolicy overflow = OverflowPolicy::drop;
  ClockSource clock = ClockSource::automatic;
  // Longest string value, input, output, log line or error kept; longer ones are cut at
  // a UTF-8 boundary and flagged truncated. Also capped at a quarter of the ring.
  std::size_t max_string_bytes = 64 * 1024;
  // How long the drainer sleeps when it finds every ring empty; after a pass that found
  // only a trickle (under an eighth of a ring in the busiest) it waits until the busiest
  // ring would hold a quarter of its capacity at the rate it saw, at most 4 x this long
  // (this long after a pass that found threads exited, whose rings then go back to the
  // pool sooner), so that it reads batches instead of tailing the recording threads: a
  // burst four times the rate it saw, within a nap, fills a ring. The sink thread looks
  // at its queue every 4 x this long unless woken sooner. Shorter: lower latency to the
  // sinks, more wake-ups. Longer: fewer wake-ups, rings must hold more.
  std::chrono::microseconds drain_interval{1000};
  // Empty passes the drainer spins (with a pause instruction) before it sleeps.
  int drain_spin_passes = 32;
  // A trace whose root has not ended is handed over in parts once it holds this many ended
  // spans (or new events on open spans) or is this old, so an endless root keeps memory
  // bounded; each part carries the root. Larger: fewer parts of a long trace. Smaller:
  // less memory, and the drainer's work for a part stays in cache (at 1 M spans/s under
  // one endless root, 100,000 cost the drainer ~25% more per span than 16,384, the sinks
  // twice as much, and the pause to hand over a part dropped ~0.1% of the spans).
  std::size_t partial_trace_spans = 16384;
  std::chrono::milliseconds partial_trace_age{10000};
  // Spans in the largest trace you expect (0: no preparation). The drainer's memory for a
  // trace that large (about 600 bytes a span) is then allocated and touched when the
  // Recorder starts, so the first large trace costs the drainer what later ones do: on
  // some machines a first touch of memory costs microseconds a page, and a drainer that
  // stalls on it for tens of milliseconds can let a busy ring fill. At most 2^22. Unused
  // when assembly is deferred (the drainer then assembles nothing).
  std::size_t expected_trace_spans = 0;
  // Spans (and events: each counts as one) the queue between the drainer and the sink
  // thread holds: about 64 bytes a span, plus what attributes and strings take. When sinks fall behind and it is full, the drop
  // policy drops whole traces (counted in Stats::sink_spans_dropped and in the next
  // trace's DropCounts::sink_spans); the wait policy makes the drainer wait (lossless).
  std::size_t sink_queue_spans = std::size_t{1} << 19;
  std::string service_name = "strobe";
  // Where assembled traces go. Sinks run on the recorder's sink thread, never on the drainer.
  std::vector<std::shared_ptr<Sink>> sinks;
  // Crash flush: on SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and std::terminate, the
  // crashing thread stops recording, has the drainer read every ring and hand over every
  // open trace (the span running on the crashing thread flagged kSpanCrashed), waits until
  // the sinks flushed (a FileSink writes its end frame, which records the crash) or the
  // timeout passes, then lets the signal's previous disposition (or handler) run. A crash
  // of the drainer or sink thread itself, or of a forked child, just passes through. A
  // signal for which the program had installed a handler of its own before the Recorder
  // goes to that handler alone (it may recover). The drainer notices a crash within
  // 4 x drain_interval: keep the timeout well above it. Within [0, 60 s].
  bool crash_flush = true;
  std::chrono::milliseconds crash_flush_timeout{3000};
  // Post-mortem recovery, for what no handler sees (SIGKILL, the OOM killer): a directory
  // (by convention the output's path + ".recovery") in which the rings live, as shared
  // file mappings, and the drainer journals every record it takes before handing it on;
  // `strobe recover` rebuilds from it what the process had not written. Empty: off. The
  // hot path is the same code in this mode; the drainer copies each record once more.
  // Created (emptied) when the Recorder starts, removed when it ends after its sinks
  // flushed. An error creating it is a ConfigError.
  std::string recovery_dir;
  // Records the journal holds (64 bytes each, on disk beside the rings): it must cover
  // what the drainer and the sinks hold unwritten (open traces' parts, the sink queue,
  // a FileSink's batch). A power of two, at least 2 x ring_capacity, at most 2^28.
  std::size_t recovery_journal_records = std::size_t{1} << 22;  // 256 MiB
  // Where traces are assembled (Assembly, above): by default in the file's reader when
  // every sink stores the record log (a FileSink without rotation), else in the process.
  // Recorder::config() says which was taken (never `automatic`).
  Assembly assembly = Assembly::automatic;
};

// Thrown by Recorder's constructor for an invalid Config or a second active recorder.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct Stats {
  std::uint64_t spans_recorded = 0;   // begin records written by the hot path
  // Spans lost whole. A span whose begin finds its ring full keeps its identity (its
  // children still name it) and writes its begin when it ends, from the room kept for end
  // records; it is counted here only when that fails too, when it ends.
  std::uint64_t spans_dropped = 0;
  std::uint64_t records_dropped = 0;  // every record not written, begins included
  std::uint64_t spans_assembled = 0;  // spans handed to the sinks (a span continued across parts: once)
  std::uint64_t traces_emitted = 0;   // assembled traces (or partial segments) handed over
  std::uint64_t rings_live = 0;       // rings owned by running threads
  std::uint64_t rings_retired = 0;    // rings of exited threads drained and recycled so far
  // Ring memory held by the process: running threads' rings and the spare ones (at most
  // as many as are in use, plus two; all spare ones are freed when the Recorder ends).
  std::uint64_t ring_bytes = 0;
  std::uint64_t misuse = 0;           // calls with a defined no-op result (double end, ...)
  std::uint64_t orphan_records = 0;   // records for spans never begun (e.g. begun before start)
  std::uint64_t sink_errors = 0;      // exceptions thrown by sinks, caught by the recorder
  std::uint64_t sink_spans_dropped = 0;  // assembled, but the sink queue was full (drop policy)
  std::uint64_t placeholders = 0;     // stand-ins made for spans whose begin was lost (kSpanPlaceholder)
  // Span names, attribute keys and event names that found the process's intern table full
  // (2^18 distinct names): they read "<too many names>" and their spans carry
  // kSpanNameOverflow.
  std::uint64_t names_overflowed = 0;
  // Spans begun from a signal handler that interrupted strobe on the same thread (in the
  // middle of writing a record, switching the current context, or taking its ring): not
  // recorded, so nothing in flight is corrupted; also counted in spans_dropped once the
  // thread has its ring.
  std::uint64_t reentrant_spans = 0;
  // Spans (and the odd other call) on threads that could get no ring — the process was out
  // of memory or had 65,535 threads recording: not recorded; also counted in spans_dropped.
  std::uint64_t ringless_spans = 0;
  // CPU time (ns) the recorder's own threads used so far: the drainer (reading rings,
  // assembling) and the sink thread (every sink's consume and flush).
  std::uint64_t drainer_cpu_ns = 0;
  std::uint64_t sink_cpu_ns = 0;
};

}  // namespace strobe
