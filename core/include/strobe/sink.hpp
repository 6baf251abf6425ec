#pragma once
// Sinks receive assembled traces on the recorder's sink thread: the drainer queues each
// trace (bounded by Config::sink_queue_spans) and goes on draining, so a slow sink never
// stalls the rings (under OverflowPolicy::wait a full queue makes the drainer wait). One
// thread calls every sink, in order; a sink needs no lock of its own unless other threads
// read it. docs/design.md describes the queue. A recorder whose sinks all take the record
// log (takes_records(): a FileSink without rotation) gives them that instead, by default
// (Config::assembly).

#include <cstdint>
#include <functional>
#include <string>
#include <mutex>
#include <utility>
#include <vector>

#include "strobe/model.hpp"

namespace strobe {

// What a recorder tells its sinks when it starts (file headers carry it).
struct RecorderInfo {
  std::string service_name;
  std::string host_name;
  std::uint32_t process_id = 0;
  std::int64_t start_ns = 0;  // wall clock
  std::string clock;          // "tsc" or "steady"
  double ns_per_tick = 1.0;   // the TSC calibration (1 for steady)
  bool records = false;       // Assembly::deferred: the sinks get consume_records(), not traces
};

// What the crash flush tells the sinks (Config::crash_flush).
struct CrashInfo {
  int signal = 0;                 // SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT (std::terminate too)
  std::uint64_t address = 0;      // the faulting address, when the signal has one
  std::string description;        // "SIGSEGV at 0x10", "std::terminate: <what()>"
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Once, before the first consume(): on the thread constructing the Recorder, before its
  // constructor returns (a file sink's header is on disk before anything is recorded).
  virtual void open(const RecorderInfo& info) { (void)info; }
  // Sink thread. Called once per assembled trace (or partial part) in the drainer's compact
  // form. The default resolves it into plain values (CompactTrace::to_assembled) and calls
  // consume(const AssembledTrace&); sinks that encode or send traces override it to skip
  // that. An exception is caught, counted in Stats::sink_errors, and the trace is still
  // given to other sinks.
  virtual void consume_compact(const CompactTrace& trace) { consume(trace.to_assembled()); }
  // Sink thread (through consume_compact). Plain values, every string resolved.
  virtual void consume(const AssembledTrace& trace) = 0;
  // Assembly::deferred: whether this sink stores the record log (a Recorder with that
  // setting refuses sinks that do not).
  [[nodiscard]] virtual bool takes_records() const noexcept { return false; }
  // Sink thread, Assembly::deferred: the next chunk of the record log — the rings'
  // records, as read, in 64-byte cells of whole drain passes; opaque bytes, valid for the
  // call, to be kept in order. `records` and `spans` say what it holds (what losing it
  // loses). strobe's Reader assembles a file of them.
  virtual void consume_records(const void* data, std::size_t bytes, std::uint64_t records, std::uint64_t spans) {
    (void)data, (void)bytes, (void)records, (void)spans;
  }
  // Sink thread, right before flush(): drops that no trace given to consume() carries —
  // those that happened after the last trace handed over, or came with traces dropped
  // because the sinks fell behind. A sink that reports loss adds them to what it reports.
  virtual void lost(const DropCounts& drops) { (void)drops; }
  // Sink thread, once, when the process is crashing (Config::crash_flush): after the last
  // traces and lost(), right before the last flush(). Nothing runs after that flush — no
  // destructor, no close() — so a sink makes what it wrote whole there.
  virtual void crashed(const CrashInfo& crash) { (void)crash; }
  // Sink thread. Recorder::flush() and shutdown call it after the last consume().
  virtual void flush() {}
};

// Hands each trace to a function (embedding: an agent receives its finished traces).
class CallbackSink final : public Sink {
 public:
  explicit CallbackSink(std::function<void(const AssembledTrace&)> fn) : fn_(std::move(fn)) {}
  void consume(const AssembledTrace& trace) override { fn_(trace); }

 private:
  std::function<void(const AssembledTrace&)> fn_;
};

// Keeps every trace in memory (tests, small tools). Thread-safe reads.
class MemorySink final : public Sink {
 public:
  void consume(const AssembledTrace& trace) override {
    std::lock_guard lock(mutex_);
    traces_.push_back(trace);
  }
  [[nodiscard]] std::vector<AssembledTrace> traces() const {
    std::lock_guard lock(mutex_);
    return traces_;
  }
  [[nodiscard]] std::vector<AssembledTrace> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(traces_, {});
  }
  void lost(const DropCounts& drops) override {
    std::lock_guard lock(mutex_);
    trailing_ += drops;
  }
  // The drops that came with flushes rather than with a trace (see Sink::lost).
  [[nodiscard]] DropCounts trailing_drops() const {
    std::lock_guard lock(mutex_);
    return trailing_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<AssembledTrace> traces_;
  DropCounts trailing_{};
};

}  // namespace strobe
