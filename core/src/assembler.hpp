#pragma once
// Turns decoded records into AssembledTraces. Drainer thread only; never touches rings.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/model.hpp"

namespace strobe::detail {

struct TraceIdHash {
  std::size_t operator()(const TraceId& t) const noexcept { return t.hi ^ (t.lo * 0x9e3779b97f4a7c15ull); }
};

// Per-pass scratch memory: a bump arena over blocks from mimalloc (loaded privately),
// rewound, not freed, at the end of every pass, so the drainer's temporary maps and
// vectors never churn an allocator and, in steady state, never touch fresh pages. A pass
// that needed more than one block leaves one block of their total size for the next (up
// to kKeptBytes; more is given back). One thread at a time.
class ScratchHeap final : public std::pmr::memory_resource {
 public:
  static constexpr std::size_t kFirstBlock = 64 * 1024;
  static constexpr std::size_t kKeptBytes = 16 * 1024 * 1024;
  ScratchHeap() = default;
  ScratchHeap(const ScratchHeap&) = delete;
  ScratchHeap& operator=(const ScratchHeap&) = delete;
  ~ScratchHeap() override;
  // Rewinds: everything allocated since the last release is gone at once.
  void release() noexcept;
  // Bytes of blocks held (kept across releases).
  [[nodiscard]] std::size_t held_bytes() const noexcept { return held_; }
  // True when mimalloc could be loaded (else operator new gives the blocks).
  static bool uses_mimalloc() noexcept;

 private:
  struct Block {
    char* data;
    std::size_t size;
  };
  void* do_allocate(std::size_t bytes, std::size_t align) override;
  void do_deallocate(void*, std::size_t, std::size_t) noexcept override {}  // freed wholesale
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
  void* next_block(std::size_t bytes, std::size_t align);
  Block get_block(std::size_t size);
  void free_block(Block b) noexcept;
  Block blocks_[48]{};    // sizes at least double: 48 cover any request
  std::size_t count_ = 0;  // blocks held; blocks_[in_use_ - 1] is being filled
  std::size_t in_use_ = 0;
  char* cursor_ = nullptr;
  char* limit_ = nullptr;
  std::size_t held_ = 0;
};

// A scratch vector whose growth (resize, the size constructor) leaves its elements
// default-initialized: for the arrays of a hand-over that are written before they are
// read, no zeroing pass.
template <class T>
struct DefaultInit : std::pmr::polymorphic_allocator<T> {
  using std::pmr::polymorphic_allocator<T>::polymorphic_allocator;
  DefaultInit(const std::pmr::polymorphic_allocator<T>& a) noexcept : std::pmr::polymorphic_allocator<T>(a) {}  // NOLINT
  template <class U>
  struct rebind {
    using other = DefaultInit<U>;
  };
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    std::pmr::polymorphic_allocator<T>::construct(p, std::forward<Args>(args)...);
  }
};
template <class T>
using ScratchArray = std::vector<T, DefaultInit<T>>;

// Span id -> where the span lives: open addressing with linear probing and backward-shift
// deletion, in one flat array with no allocation per entry (every record of a drain pass
// looks its span up here). Id 0 is never a span id; it marks an empty slot.
class SpanIndex {
 public:
  struct Slot {
    std::uint64_t id = 0;
    std::uint32_t owner = 0;  // the number of the trace holding the span; 0 while its begin is missing
    std::uint32_t index = 0;  // its position in the owner's nodes (or in the waiting pool)
  };
  static_assert(sizeof(Slot) == 16);  // four a cache line

  SpanIndex() { rebuild(kMinSlots); }

  [[nodiscard]] Slot* find(std::uint64_t id) noexcept {
    for (std::size_t i = home(id);; i = (i + kStride) & mask_) {
      if (slots_[i].id == id) return &slots_[i];
      if (slots_[i].id == 0) return nullptr;
    }
  }

  // The slot of id, inserted (fresh = true, owner and index unset) when absent. Valid
  // until the next insert or erase.
  Slot& find_or_insert(std::uint64_t id, bool& fresh) {
    if (crowded(size_ + 1, slots_.size())) rebuild(slots_.size() * 2);
    for (;;) {
      // A probe run as long as half a lane (unlucky or hostile ids) grows the table, so
      // every lane keeps empty slots and find() and erase() always stop.
      const std::size_t limit = slots_.size() / kStride / 2;
      std::size_t i = home(id), probes = 0;
      while (slots_[i].id != 0 && slots_[i].id != id && probes < limit) {
        i = (i + kStride) & mask_;
        ++probes;
      }
      if (slots_[i].id == id) {
        fresh = false;
        return slots_[i];
      }
      if (slots_[i].id != 0) {
        rebuild(slots_.size() * 2);
        continue;
      }
      slots_[i].id = id;
      ++size_;
      fresh = true;
      return slots_[i];
    }
  }

  // id must not be present. The returned slot stays valid until the next insert or erase.
  Slot& insert(std::uint64_t id) {
    bool fresh = false;
    return find_or_insert(id, fresh);
  }

  // Drops id's slot if it still names the span at (owner, index). A span id begun again
  // (only a damaged or hostile record log holds one) takes the slot over, and the other
  // span with that id, forgotten later, must not take the slot with it.
  void erase(std::uint64_t id, std::uint32_t owner, std::uint32_t index) noexcept {
    std::size_t i = home(id);
    while (slots_[i].id != id) {
      if (slots_[i].id == 0) return;
      i = (i + kStride) & mask_;
    }
    if (slots_[i].owner != owner || slots_[i].index != index) return;
    // Backward shift: pull later entries of the probe run into the hole when the hole lies
    // between their home slot and where they sit, so lookups never need tombstones.
    for (std::size_t j = (i + kStride) & mask_; slots_[j].id != 0; j = (j + kStride) & mask_) {
      if (((j - home(slots_[j].id)) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --size_;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  void clear() {
    slots_.clear();
    size_ = 0;
    rebuild(kMinSlots);
  }

 private:
  // The table grows before it is three quarters full.
  static bool crowded(std::size_t entries, std::size_t slots) noexcept { return entries * 4 > slots * 3; }

  // A thread's span ids are consecutive (its slot, then a counter), so blocks of 256
  // consecutive ids take 256 consecutive slots (6 KiB, which the prefetcher streams), and
  // the blocks are spread by a multiplicative hash: a thread's spans are begun, looked up
  // as parents and erased in order through memory, where a hash of each id alone (or of
  // blocks of 16: measured, a cache miss every few spans once a long-lived trace held
  // 100,000) would miss the cache on each. Probing steps a whole block, so an id only ever
  // meets ids of the same lane (offset in the block): 256 interleaved linear-probing
  // tables of at least 64 slots each, none clustered by the blocks.
  // The hash also rotates each block's ids among the lanes, so ids that share low bits
  // (all odd, say) still use every lane.
  static constexpr unsigned kBlockBits = 8;
  static constexpr std::size_t kStride = std::size_t{1} << kBlockBits;
  static constexpr std::size_t kMinSlots = std::size_t{64} << kBlockBits;  // 64 slots a lane
  [[nodiscard]] std::size_t home(std::uint64_t id) const noexcept {
    const std::uint64_t h = (id >> kBlockBits) * 0x9e3779b97f4a7c15ull;
    const auto block = static_cast<std::size_t>(h >> shift_);
    const auto lane = static_cast<std::size_t>(id + (h >> (shift_ - kBlockBits))) & (kStride - 1);
    return (block << kBlockBits | lane) & mask_;
  }

 public:
  // Room for n entries without growing; the table's memory is written (touched) now.
  void reserve(std::size_t n) {
    std::size_t slots = slots_.size();
    while (crowded(n, slots)) slots *= 2;
    if (slots != slots_.size()) rebuild(slots);
  }

 private:
  void rebuild(std::size_t slots) {
    std::vector<Slot> old(slots);
    old.swap(slots_);
    mask_ = slots - 1;
    shift_ = 64 - (static_cast<unsigned>(__builtin_ctzll(slots)) - kBlockBits);
    for (const Slot& s : old) {  // at most 3/8 full now: the lanes have room
      if (s.id == 0) continue;
      std::size_t i = home(s.id);
      while (slots_[i].id != 0) i = (i + kStride) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 0;
  std::size_t size_ = 0;
};

// Names the threads a handed-over trace lists (Assembler: by id, names empty), with
// name_of(thread id), a const std::string* (null: unknown); those without a name are left
// out, the rest sorted by id. The drainer's and the record log's replay's.
template <class NameOf>
void name_threads(CompactTrace& t, NameOf name_of) {
  std::size_t kept = 0;
  for (const ThreadName& thread : t.thread_names) {
    const std::string* name = thread.thread_id == 0 ? nullptr : name_of(thread.thread_id);
    if (name == nullptr || name->empty()) continue;
    t.thread_names[kept].thread_id = thread.thread_id;
    t.thread_names[kept++].name = *name;
  }
  t.thread_names.resize(kept);
  std::sort(t.thread_names.begin(), t.thread_names.end(),
            [](const ThreadName& a, const ThreadName& b) { return a.thread_id < b.thread_id; });
}

class Assembler {
 public:
  struct Options {
    std::string service_name;
    std::uint32_t process_id = 0;
    std::size_t partial_trace_spans = 16384;
    std::int64_t partial_trace_age_ns = 10'000'000'000;
    // Config::expected_trace_spans: memory for a trace this large, touched up front.
    std::size_t prepared_spans = 0;
  };

  Assembler(Options options, const Clock& clock);
  ~Assembler();
  Assembler(const Assembler&) = delete;
  Assembler& operator=(const Assembler&) = delete;

  // One record of a ring, in the ring's order. `text` is the reassembled string of a
  // string record. `thread` is the OS thread that owns the ring.
  void on_record(const Record& r, std::uint64_t thread, std::string&& text);
  // A record with no text (all but string records): no empty string made per record.
  void on_record(const Record& r, std::uint64_t thread);

  // A trace handed over lists in thread_names the threads its spans began or ended on,
  // by id, with empty names (the drainer fills them in).
  // After every pass over all rings: closes traces that were complete a whole pass ago
  // (so a child's records still waiting in another ring are not missed) and hands over
  // parts of traces grown past the partial limits. Appends to out.
  void end_of_pass(std::vector<CompactTrace>& out, std::int64_t now_ns);
  // The same, converted to plain values (tests).
  void end_of_pass(std::vector<AssembledTrace>& out, std::int64_t now_ns);

  // Hands over every trace that has spans, in the order the traces began, open spans
  // marked incomplete with end = now_ns. Unless final, open spans are kept and their trace
  // continues in a later part; each appearance of such a span carries its attributes and
  // strings in full but only the events recorded since its previous appearance, so
  // repeated flushes never copy a long-lived span's history again.
  void flush(std::vector<CompactTrace>& out, std::int64_t now_ns, bool final);
  void flush(std::vector<AssembledTrace>& out, std::int64_t now_ns, bool final);

  // The process is crashing with span_id running on the crashing thread: it is flagged
  // kSpanCrashed and its error message says how (before the final flush hands it over).
  void mark_crash(std::uint64_t span_id, const std::string& description);

  // Drops observed since the last emitted trace; attached to the next one.
  void add_drops(const DropCounts& d) noexcept {
    pending_drops_ += d;
  }
  // The drops no emitted trace carries yet (at a flush: for the sinks directly).
  [[nodiscard]] DropCounts take_drops() noexcept { return std::exchange(pending_drops_, DropCounts{}); }

  // After the sinks have seen an emitted trace: keeps its storage (emptied) for a later
  // trace, within a budget. Large traces otherwise get fresh memory from the system every
  // time, and page faults cost more than assembling them.
  void recycle(CompactTrace&& trace);

  [[nodiscard]] std::uint64_t begins() const noexcept { return begins_; }
  [[nodiscard]] std::uint64_t orphan_records() const noexcept { return orphan_records_; }
  // Spans held: begun and not yet handed over, plus those whose begin has not arrived.
  [[nodiscard]] std::size_t open_spans() const noexcept { return index_.size(); }
  // Placeholders made for spans whose begin never arrived (see kSpanPlaceholder).
  [[nodiscard]] std::uint64_t placeholders() const noexcept { return placeholders_; }

  struct Node;
  struct TraceState;

 private:
  // A span held: its bookkeeping, its row, and its trace (nullptr while its begin is missing).
  struct Ref {
    Node* node = nullptr;
    SpanRow* row = nullptr;
    TraceState* owner = nullptr;
    explicit operator bool() const noexcept { return node != nullptr; }
  };
  Ref at(std::uint32_t owner, std::uint32_t index) noexcept;
  Ref at(TraceState& ts, std::uint32_t index) noexcept;
  // The span span_id: among the open spans of the ring being read, else in the index.
  Ref find_node(std::uint64_t span_id);
  [[nodiscard]] std::size_t open_position(std::uint64_t span_id) const noexcept;
  // The span an end record names, taken off the ring's open spans when it is there (a
  // thread's spans nest, so most ends find theirs on top), else find_node().
  Ref ended_node(std::uint64_t span_id);
  // Puts the spans still open on the ring just read into the index (where records of other
  // rings, later passes and hand-overs find them) and empties the open-span stack.
  void settle_open();
  // Records the slot of a node that is put into the index.
  void index_node(Node& n, std::uint64_t span_id, std::uint32_t owner, std::uint32_t at);
  Ref waiting_node(std::uint64_t span_id);
  // What every record does first: a ring switch settles the stack of open spans. False for
  // a record that names no span (counted as an orphan).
  bool enter(const Record& r, std::uint64_t thread);
  // Begin, end and chain records, the bulk of them; false for the others, which go to
  // on_detail.
  bool on_lifecycle(const Record& r, std::uint64_t thread);
  void on_detail(const Record& r, std::string&& text);
  void on_begin(const Record& r, std::uint64_t thread);
  // The end of span_id at ts_raw (clock ticks, or wall-clock ns under kWallClock).
  void on_end(std::uint64_t span_id, std::uint64_t ts_raw, std::uint8_t flags, std::uint16_t status,
              std::uint64_t thread);
  TraceState& trace_of(const TraceId& id);
  void became_closable(TraceState& ts);
  // Queues ts for a partial hand-over once it holds partial_trace_spans ended spans or new events.
  void check_grown(TraceState& ts);
  void grew(TraceState& ts);  // check_grown for a trace known not to be closable
  // Hands over every span ts holds, the open ones marked incomplete (ending at now_ns, and
  // `continued` when they come again in a later part), and forgets them; keep_open: the
  // open spans stay in ts, and what they carried so far goes with this part.
  void emit(TraceState& ts, bool partial, std::vector<CompactTrace>& out, bool keep_open, std::int64_t now_ns,
            bool continued);
  // True when the spans of ts are, in arrival order, depth-first with children in start
  // order, one root, and no two siblings overlap (no parallel group).
  // first_part: nothing of the trace was handed over before, so a root of the part with a
  // parent (not the trace's root) lost it, or lies in another trace: worked out by emit().
  bool depth_first_without_overlap(const TraceState& ts, bool first_part);
  // A pooled trace whose row vector holds at least `spans` (else a fresh one).
  CompactTrace take_pooled(std::size_t spans);
  // An open span in a hand-over: incomplete, ending now, and (continued) back in a later part.
  static void hand_over_open(SpanRow& row, std::int64_t now_ns, bool continued) noexcept;
  // Undoes hand_over_open on a span that stays open.
  static void reopen(SpanRow& row) noexcept;
  // After a hand-over: keeps (keep_open) the spans of ts that have not ended, reindexed and
  // reopened; forgets the others.
  void forget_handed_over(TraceState& ts, bool keep_open);
  // After a part: ts holds only its open spans; its counts since the previous part restart
  // and its threads are those of the spans it still holds.
  void after_part(TraceState& ts);
  // An open span kept, now at position `at` of ts: its index slot follows it.
  void moved_open(TraceState& ts, Node& n, std::uint64_t span_id, std::uint32_t from, std::uint32_t to);
  // A part of a trace whose root is still open: its ended spans and every span still open
  // (marked continued); the ended are then forgotten.
  void emit_part(TraceState& ts, std::vector<CompactTrace>& out, std::int64_t now_ns);
  void close_trace(TraceState& ts);

  Options options_;
  const Clock& clock_;
  SpanIndex index_;
  std::vector<TraceState*> by_number_{nullptr};  // TraceState::number -> state; 0: none
  std::vector<std::uint32_t> free_numbers_;
  std::vector<Node> waiting_;  // spans whose records came before their begin
  std::vector<SpanRow> waiting_rows_;  // their rows
  std::vector<std::uint32_t> waiting_free_;
  std::size_t waiting_live_ = 0;  // entries of waiting_ in use: while 0, a begin needs no lookup
  std::unordered_map<TraceId, std::unique_ptr<TraceState>, TraceIdHash> traces_;
  std::vector<std::unique_ptr<TraceState>> spare_traces_;  // closed, kept for their capacity
  TraceState* last_trace_ = nullptr;  // the trace of the latest begin: most records hit it
  // Traces closed lately and the number of their next part, so that a span begun under a
  // context captured before its trace closed comes as a later part of that trace (its
  // parent handed over earlier) rather than as a new trace with a lost parent. Direct
  // mapped by trace id: fixed memory; an entry pushed out by a later trace only means
  // such a late span is taken for one whose parent was lost.
  struct ClosedTrace {
    TraceId id{};
    std::uint32_t next_part = 0;
  };
  static constexpr std::size_t kClosedTraces = 8192;
  std::vector<ClosedTrace> closed_ = std::vector<ClosedTrace>(kClosedTraces);
  [[nodiscard]] ClosedTrace& closed_slot(const TraceId& id) noexcept {
    return closed_[TraceIdHash{}(id) & (kClosedTraces - 1)];
  }
  // The spans begun on the ring being read and not ended yet, innermost last, as (id,
  // trace, node index). A span enters the index only when it is still open as
  // its ring's records run out (or has records that came before its begin): most spans
  // begin and end within one read of their ring, and never cost an insert and an erase
  // in the index, nor a cache miss on it. Valid within a pass (nodes move only between
  // passes); settled into the index when the ring changes and at the end of a pass.
  struct OpenSpan {
    std::uint64_t id;
    TraceState* trace;  // not its number: an end finds its node with one load less
    std::uint32_t index;
  };
  static constexpr std::size_t kOpenSpans = 64;  // deeper nesting goes to the index
  OpenSpan open_[kOpenSpans]{};
  std::size_t open_depth_ = 0;
  std::uint64_t open_thread_ = 0;
  std::vector<TraceId> candidates_;
  std::vector<TraceId> grown_;  // traces past partial_trace_spans, handed over this pass
  std::uint64_t pass_ = 0;
  std::uint64_t trace_seq_ = 0;
  std::int64_t last_partial_check_ns_ = 0;
  std::uint64_t begins_ = 0;
  std::uint64_t orphan_records_ = 0;
  DropCounts pending_drops_{};
  ScratchHeap scratch_;
  // depth_first_without_overlap()'s path of open ancestors, kept for its capacity.
  struct PathStep {
    std::uint64_t id;
    std::int64_t last_start;  // of its latest child
    std::uint64_t last_id;
    std::int64_t reach;  // latest end among its children with a length
  };
  std::vector<PathStep> path_;
  std::uint64_t placeholders_ = 0;
  std::vector<CompactTrace> pool_;  // emptied traces, for their capacity
  std::vector<std::vector<std::uint64_t>> spare_members_;  // emptied groups' member lists
  std::size_t pool_bytes_ = 0;
  std::size_t pool_budget_ = std::size_t{16} << 20;
};

}  // namespace strobe::detail
