#pragma once
// The record sequences the assembly benchmarks feed: one trace's records, written the way
// the hot path writes them (begin and end records with trace ids, parent ids and clock
// ticks), in the order a drain pass reads them, ring by ring. Shared by
// strobe_assemble_bench (timings) and strobe_assemble_count (a fixed amount of work, for
// instruction counts).

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "assembler.hpp"
#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/detail/thread_state.hpp"

namespace strobe::bench {

using strobe::Kind;
using strobe::detail::Record;
using strobe::detail::RecType;

// Copies of a shape fed in turn; ids repeat only after every copy was handed over.
constexpr int kCopies = 4;
constexpr std::uint64_t kThread = 1000;

inline std::uint32_t name_id(std::string_view s) { return strobe::detail::intern(s.data(), s.size()); }

// One trace's records in ring order, and the OS thread owning the ring of each.
struct TraceRecords {
  std::vector<Record> records;
  std::vector<std::uint64_t> threads;
};

// Writes one trace's records the way the hot path does.
class TraceWriter {
 public:
  TraceWriter(int copy, std::uint64_t base_ticks)
      : trace_hi_(0x5eed0000u + static_cast<std::uint64_t>(copy)),
        trace_lo_(0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(copy + 1)),
        id_base_(static_cast<std::uint64_t>(copy + 1) << 48),
        ticks_(base_ticks) {}

  // Begins a span under parent (0: the trace root); returns its id.
  std::uint64_t begin(std::uint32_t name, std::uint64_t parent, std::uint64_t thread = kThread) {
    Record r{};
    r.type = RecType::begin;
    r.flags = parent == 0 ? strobe::detail::kTraceRoot : 0;
    r.aux = static_cast<std::uint16_t>(Kind::span);
    r.key = name;
    r.span_id = id_base_ | ++next_local_;
    r.ts = tick();
    r.payload.begin.trace_hi = trace_hi_;
    r.payload.begin.trace_lo = trace_lo_;
    r.payload.begin.parent_id = parent;
    r.payload.begin.kind_name_id = 0;
    r.payload.begin.generation = 1;
    push(r, thread);
    return r.span_id;
  }

  void end(std::uint64_t span, std::uint64_t thread = kThread) {
    Record r{};
    r.type = RecType::end;
    r.aux = static_cast<std::uint16_t>(strobe::Status::ok);
    r.span_id = span;
    r.ts = tick();
    push(r, thread);
  }

  [[nodiscard]] const TraceRecords& trace() const noexcept { return out_; }

  // A writer for more records of the same trace, with ids and ticks going on from here.
  [[nodiscard]] TraceWriter continued() const {
    TraceWriter w = *this;
    w.out_ = {};
    return w;
  }
  void resume_after(const TraceWriter& later) noexcept {
    ticks_ = later.ticks_;
    next_local_ = later.next_local_;
  }

  // The records as a drain pass reads them: ring by ring (in the order the rings first
  // appear), each ring's in its order.
  [[nodiscard]] TraceRecords by_ring() const {
    std::vector<std::uint64_t> rings;
    for (const std::uint64_t t : out_.threads)
      if (std::find(rings.begin(), rings.end(), t) == rings.end()) rings.push_back(t);
    TraceRecords r;
    for (const std::uint64_t ring : rings) {
      for (std::size_t i = 0; i < out_.records.size(); ++i) {
        if (out_.threads[i] != ring) continue;
        r.records.push_back(out_.records[i]);
        r.threads.push_back(ring);
      }
    }
    return r;
  }

 private:
  std::uint64_t tick() noexcept { return ticks_ += 100; }  // 100 ns between records
  void push(const Record& r, std::uint64_t thread) {
    out_.records.push_back(r);
    out_.threads.push_back(thread);
  }

  std::uint64_t trace_hi_, trace_lo_, id_base_;
  std::uint64_t ticks_;
  std::uint64_t next_local_ = 0;
  TraceRecords out_;
};

// A root with 1023 sequential children: 1024 spans.
inline void write_flat(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), child = name_id("bench.child");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int i = 0; i < 1023; ++i) w.end(w.begin(child, root));
  w.end(root);
}

// A root whose 32 children each begin a chain 32 spans deep: 1025 spans.
inline void write_deep(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), step = name_id("bench.step");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int chain = 0; chain < 32; ++chain) {
    std::uint64_t open[32];
    std::uint64_t parent = root;
    for (int d = 0; d < 32; ++d) parent = open[d] = w.begin(step, parent);
    for (int d = 31; d >= 0; --d) w.end(open[d]);
  }
  w.end(root);
}

// A root with 1024 children in 64 waves of 16 that all run at once (on 16 worker
// threads), ending in a different order than they began: 64 parallel groups, 1025 spans.
inline void write_fanout(TraceWriter& w) {
  const std::uint32_t root_name = name_id("bench.root"), task = name_id("bench.task");
  const std::uint64_t root = w.begin(root_name, 0);
  for (int wave = 0; wave < 64; ++wave) {
    std::uint64_t open[16];
    for (int k = 0; k < 16; ++k) open[k] = w.begin(task, root, kThread + 1 + k);
    for (int k = 0; k < 16; ++k) {
      const int j = (k * 7) % 16;  // 7 is coprime with 16: a permutation
      w.end(open[j], kThread + 1 + j);
    }
  }
  w.end(root);
}

// Feeds one Assembler the copies of a shape in turn, one drain pass each, and gives the
// traces it hands over back to it, as the drainer does once the sinks are done with them.
class ShapeFeeder {
 public:
  explicit ShapeFeeder(void (*write)(TraceWriter&)) : clock_(false), assembler_({"bench", 1, 100000, 10'000'000'000}, clock_) {
    for (int c = 0; c < kCopies; ++c) {
      TraceWriter w(c, clock_.now_ticks());
      write(w);
      copies_.push_back(w.by_ring());
    }
  }

  void pass() {
    const TraceRecords& r = copies_[next_];
    next_ = (next_ + 1) % kCopies;
    for (std::size_t i = 0; i < r.records.size(); ++i) assembler_.on_record(r.records[i], r.threads[i]);
    assembler_.end_of_pass(out_, clock_.to_wall_ns(clock_.now_ticks()));
    for (strobe::CompactTrace& t : out_) {
      spans += t.spans.size();
      groups += t.groups.size();
      assembler_.recycle(std::move(t));
    }
    traces += out_.size();
    out_.clear();
  }

  // Handed over so far (a trace goes one pass after it became complete).
  std::uint64_t spans = 0, traces = 0, groups = 0;

 private:
  strobe::detail::Clock clock_;
  strobe::detail::Assembler assembler_;
  std::vector<TraceRecords> copies_;
  std::vector<strobe::CompactTrace> out_;  // what the drainer hands to the sink queue
  int next_ = 0;
};

}  // namespace strobe::bench
