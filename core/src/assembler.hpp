#pragma once
// Turns decoded records into AssembledTraces. Drainer thread only; never touches rings.

#include <cstdint>
#include <memory>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/model.hpp"

namespace strobe::detail {

struct TraceIdHash {
  std::size_t operator()(const TraceId& t) const noexcept { return t.hi ^ (t.lo * 0x9e3779b97f4a7c15ull); }
};

// Per-pass scratch memory on a mimalloc heap, released wholesale (mi_heap_destroy) at
// the end of every pass, so the drainer's temporary maps and vectors never churn the
// process allocator. Drainer thread only: mimalloc heaps belong to their thread.
class ScratchHeap final : public std::pmr::memory_resource {
 public:
  ScratchHeap() = default;
  ~ScratchHeap() override { release(); }
  void release() noexcept;
  // True when mimalloc could be loaded (else a monotonic buffer stands in).
  static bool uses_mimalloc() noexcept;

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override;
  void do_deallocate(void*, std::size_t, std::size_t) noexcept override {}  // freed wholesale
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
  void* heap_ = nullptr;  // mi_heap_t*
  std::pmr::monotonic_buffer_resource fallback_;
};

class Assembler {
 public:
  struct Options {
    std::string service_name;
    std::uint32_t process_id = 0;
    std::size_t partial_trace_spans = 100000;
    std::int64_t partial_trace_age_ns = 10'000'000'000;
  };

  Assembler(Options options, const Clock& clock);
  ~Assembler();
  Assembler(const Assembler&) = delete;
  Assembler& operator=(const Assembler&) = delete;

  // One record of a ring, in the ring's order. `text` is the reassembled string of a
  // string record. `thread` is the OS thread that owns the ring.
  void on_record(const Record& r, std::uint64_t thread, std::string&& text = {});

  // After every pass over all rings: closes traces that were complete a whole pass ago
  // (so a child's records still waiting in another ring are not missed) and hands over
  // parts of traces grown past the partial limits. Appends to out.
  void end_of_pass(std::vector<AssembledTrace>& out, std::int64_t now_ns);

  // Hands over every trace that has spans, open spans marked incomplete with end = now_ns.
  // Unless final, open spans are kept and their trace continues in a later part.
  void flush(std::vector<AssembledTrace>& out, std::int64_t now_ns, bool final);

  // Drops observed since the last emitted trace; attached to the next one.
  void add_drops(const DropCounts& d) noexcept {
    pending_drops_.spans += d.spans;
    pending_drops_.records += d.records;
  }

  [[nodiscard]] std::uint64_t begins() const noexcept { return begins_; }
  [[nodiscard]] std::uint64_t orphan_records() const noexcept { return orphan_records_; }
  [[nodiscard]] std::size_t open_spans() const noexcept { return nodes_.size(); }

  struct Node;
  struct TraceState;

 private:
  Node& node(std::uint64_t span_id);
  TraceState& trace_of(const TraceId& id);
  void became_closable(TraceState& ts);
  // keep_open: spans not ended are copied, not moved (they stay for a later part).
  void emit(TraceState& ts, std::vector<Node*>& nodes, bool partial, std::vector<AssembledTrace>& out,
            bool keep_open = false);
  void emit_ended(TraceState& ts, std::vector<AssembledTrace>& out);
  void erase_trace(const TraceId& id);

  Options options_;
  const Clock& clock_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Node>> nodes_;
  std::unordered_map<TraceId, std::unique_ptr<TraceState>, TraceIdHash> traces_;
  std::unordered_map<TraceId, std::uint32_t, TraceIdHash> next_part_;  // traces already (partly) emitted
  std::vector<TraceId> candidates_;
  std::vector<TraceId> grown_;  // traces past partial_trace_spans, handed over this pass
  std::uint64_t pass_ = 0;
  std::int64_t last_partial_check_ns_ = 0;
  std::uint64_t begins_ = 0;
  std::uint64_t orphan_records_ = 0;
  DropCounts pending_drops_{};
  ScratchHeap scratch_;
};

// Replaces invalid UTF-8 sequences with U+FFFD; returns true if any was replaced.
bool repair_utf8(std::string& s);

}  // namespace strobe::detail
