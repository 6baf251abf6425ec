#include "assembler.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include <dlfcn.h>

#include <new>

#include "intern.hpp"
#include "strobe/detail/utf8.hpp"
#include "strobe/detail/thread_state.hpp"

namespace strobe::detail {

// A span while its trace is assembled is a row (what it is handed over as, kept in the
// trace's row array: a part whose rows need no reordering hands that array over whole)
// and this: its bookkeeping, plus what only some spans have (attributes, events,
// strings, tags, tokens) behind one pointer. Nothing is resolved into a string.
struct Assembler::Node {
  // Everything else: strings, attributes, events, tokens, a custom kind's name, the thread
  // that ended it when another, its place in a suspended operation.
  std::unique_ptr<SpanExtra> extra;
  std::uint32_t records = 0;  // records seen while the begin was still missing
  bool begun = false;
  bool ended = false;
  bool is_root = false;
  bool indexed = false;  // in the span index (see Assembler::open_)

  SpanExtra& more() {
    if (!extra) extra = std::make_unique<SpanExtra>();
    return *extra;
  }
};
static_assert(sizeof(Assembler::Node) == 16);  // scans of a trace's bookkeeping stay in cache

struct Assembler::TraceState {
  TraceId id;
  std::uint32_t number = 0;  // what the span index holds for it (never 0), while it is open
  // Begun spans, in arrival order: their rows (extra and group unset) and bookkeeping.
  std::vector<SpanRow> rows;
  std::vector<Node> nodes;
  std::size_t open = 0;     // begun, not ended
  std::size_t ended = 0;
  std::int64_t suspended = 0;  // segments suspended and not (yet seen) resumed
  std::uint32_t root_name_id = 0;  // for parts that do not contain the root
  bool has_root_name = false;
  bool root_ended = false;
  bool candidate = false;
  bool grown = false;               // queued for a partial hand-over
  std::uint64_t closable_pass = 0;  // pass in which it was last seen closable
  std::uint64_t seq = 0;            // order in which traces began
  std::int64_t first_ns = 0;
  std::uint64_t root_span_id = 0;   // the root's id once its begin came (placeholders hang under it)
  std::size_t pending_events = 0;   // events on open spans not handed over yet
  std::uint32_t next_part = 0;      // parts handed over so far (the next one's number)
  std::int64_t last_end_ns = 0;     // the latest end since the previous part
  // The threads the spans held began or ended on (for the names a part carries), noted
  // as a ring's records come, not looked for in every row of a part.
  std::vector<std::uint64_t> threads;
  std::uint64_t last_thread = 0;

  void note_thread(std::uint64_t thread) {
    if (thread != last_thread) [[unlikely]] note_other_thread(thread);
  }
  [[gnu::noinline]] void note_other_thread(std::uint64_t thread) {
    last_thread = thread;
    if (std::find(threads.begin(), threads.end(), thread) == threads.end()) threads.push_back(thread);
  }

  // Complete: a root has ended, nothing is open, and no operation waits to be resumed.
  [[nodiscard]] bool closable() const noexcept { return root_ended && open == 0 && suspended <= 0; }

  // Makes a closed trace's state (and its nodes' capacity) serve a new trace.
  void reset(const TraceId& trace, std::uint64_t order) noexcept {
    rows.clear();
    nodes.clear();
    id = trace;
    open = ended = 0;
    suspended = 0;
    root_name_id = 0;
    has_root_name = root_ended = candidate = grown = false;
    closable_pass = 0;
    seq = order;
    first_ns = 0;
    root_span_id = 0;
    pending_events = 0;
    next_part = 0;
    last_end_ns = 0;
    threads.clear();
    last_thread = 0;
  }
};

namespace {

AttrValue value_of(const Record& r) {
  AttrValue v;
  switch (r.type) {
    case RecType::attr_int:
      v.type = AttrValue::Type::i64;
      v.i = r.payload.i64;
      break;
    case RecType::attr_double:
      v.type = AttrValue::Type::f64;
      v.d = r.payload.f64;
      break;
    default:
      v.type = AttrValue::Type::boolean;
      v.i = r.payload.i64 != 0 ? 1 : 0;
      break;
  }
  return v;
}


// Sets key to v: the last value wins, as set_attribute does in every reference SDK.
void set_attribute(std::vector<Attribute>& list, std::string_view key, AttrValue&& v, bool truncated) {
  for (Attribute& a : list) {
    if (a.key == key) {
      a.value = std::move(v);
      a.truncated = truncated;
      return;
    }
  }
  list.push_back(Attribute{std::string(key), std::move(v), truncated});
}

}  // namespace

namespace {

// mimalloc, loaded privately. Debian's libmimalloc.so exports malloc/free itself, so
// linking it would replace the whole process's allocator; opened RTLD_LOCAL its symbols
// stay out of the global scope and only mi_malloc_aligned and mi_free are used.
struct MimallocApi {
  void* (*malloc_aligned)(std::size_t, std::size_t) = nullptr;
  void (*free)(void*) = nullptr;
  bool ok = false;
};

const MimallocApi& mimalloc() {
  static const MimallocApi api = [] {
    MimallocApi a;
#if defined(STROBE_SCRATCH_WITHOUT_MIMALLOC)
    return a;  // sanitizer builds: TSan does not follow an allocator loaded with dlopen
#endif
    void* lib = nullptr;
    for (const char* name : {"libmimalloc.so.2", "libmimalloc.so"})
      if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    if (lib == nullptr) return a;
    a.malloc_aligned = reinterpret_cast<void* (*)(std::size_t, std::size_t)>(::dlsym(lib, "mi_malloc_aligned"));
    a.free = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_free"));
    a.ok = a.malloc_aligned && a.free;
    return a;
  }();
  return api;
}

constexpr std::size_t kBlockAlign = 64;

}  // namespace

bool ScratchHeap::uses_mimalloc() noexcept { return mimalloc().ok; }

ScratchHeap::~ScratchHeap() {
  for (std::size_t i = 0; i < count_; ++i) free_block(blocks_[i]);
}

ScratchHeap::Block ScratchHeap::get_block(std::size_t size) {
  const MimallocApi& mi = mimalloc();
  void* p = nullptr;
  if (mi.ok) {
    p = mi.malloc_aligned(size, kBlockAlign);
    if (p == nullptr) throw std::bad_alloc();
  } else {
    p = ::operator new(size, std::align_val_t{kBlockAlign});
  }
  held_ += size;
  return {static_cast<char*>(p), size};
}

void ScratchHeap::free_block(Block b) noexcept {
  held_ -= b.size;
  if (mimalloc().ok) {
    mimalloc().free(b.data);
  } else {
    ::operator delete(b.data, std::align_val_t{kBlockAlign});
  }
}

void* ScratchHeap::do_allocate(std::size_t bytes, std::size_t align) {
  if (bytes == 0) bytes = 1;
  const auto at = reinterpret_cast<std::uintptr_t>(cursor_);
  const std::uintptr_t aligned = (at + (align - 1)) & ~static_cast<std::uintptr_t>(align - 1);
  if (cursor_ != nullptr && aligned <= reinterpret_cast<std::uintptr_t>(limit_) &&
      bytes <= reinterpret_cast<std::uintptr_t>(limit_) - aligned) [[likely]] {
    cursor_ = reinterpret_cast<char*>(aligned + bytes);
    return reinterpret_cast<void*>(aligned);
  }
  return next_block(bytes, align);
}

void* ScratchHeap::next_block(std::size_t bytes, std::size_t align) {
  const std::size_t need = bytes + (align > kBlockAlign ? align : 0);
  // The next block held, if it is large enough; else a new one at least twice the last.
  while (in_use_ < count_ && blocks_[in_use_].size < need) {
    free_block(blocks_[in_use_]);
    std::copy(blocks_ + in_use_ + 1, blocks_ + count_, blocks_ + in_use_);
    --count_;
  }
  if (in_use_ == count_) {
    if (count_ == std::size(blocks_)) throw std::bad_alloc();
    std::size_t size = count_ != 0 ? blocks_[count_ - 1].size * 2 : kFirstBlock;
    while (size < need) size *= 2;
    blocks_[count_++] = get_block(size);
  }
  const Block& b = blocks_[in_use_++];
  cursor_ = b.data;
  limit_ = b.data + b.size;
  return do_allocate(bytes, align);
}

void ScratchHeap::release() noexcept {
  if (count_ > 1) {
    // More than one block: next time, one block of their total size (if it is kept).
    std::size_t total = 0;
    for (std::size_t i = 0; i < count_; ++i) total += blocks_[i].size;
    for (std::size_t i = 0; i < count_; ++i) free_block(blocks_[i]);
    count_ = 0;
    if (total <= kKeptBytes) {
      try {
        blocks_[0] = get_block(total);
        count_ = 1;
      } catch (const std::bad_alloc&) {  // the next pass asks again
      }
    }
  } else if (count_ == 1 && blocks_[0].size > kKeptBytes) {
    free_block(blocks_[0]);
    count_ = 0;
  }
  in_use_ = 0;
  cursor_ = limit_ = nullptr;
}

namespace {

constexpr std::uint32_t kNone = 0xffffffffu;

// Span id -> position among the spans of one hand-over, for the parents of a part that
// are not found on the path of the span before (see emit): open addressing in scratch
// memory, made only when first needed, at most a quarter full (with a placeholder per
// span, half).
class LocalIds {
 public:
  explicit LocalIds(std::pmr::memory_resource* mr) : ids_(mr), at_(mr) {}
  [[nodiscard]] bool made() const noexcept { return !ids_.empty(); }
  // The ids of rows, with room for a placeholder per row.
  void make(const std::vector<SpanRow>& rows) {
    std::size_t slots = 16;
    while (slots < rows.size() * 4) slots *= 2;
    ids_.assign(slots, 0);
    at_.resize(slots);
    mask_ = slots - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(slots));
    for (std::uint32_t k = 0; k < rows.size(); ++k) insert(rows[k].span_id, k);
  }
  // The first position given for id stays (span ids are unique; 0 is never one).
  void insert(std::uint64_t id, std::uint32_t at) noexcept {
    if (ids_.empty()) return;  // not made: nothing looks it up
    std::size_t i = home(id);
    while (ids_[i] != 0 && ids_[i] != id) i = (i + 1) & mask_;
    if (ids_[i] == id) return;
    ids_[i] = id;
    at_[i] = at;
  }
  [[nodiscard]] std::uint32_t find(std::uint64_t id) const noexcept {
    if (ids_.empty()) return kNone;
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (ids_[i] == id) return at_[i];
      if (ids_[i] == 0) return kNone;
    }
  }

 private:
  // Fibonacci hashing: a thread's consecutive ids spread over the table.
  [[nodiscard]] std::size_t home(std::uint64_t id) const noexcept {
    return static_cast<std::size_t>((id * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  std::pmr::vector<std::uint64_t> ids_;
  ScratchArray<std::uint32_t> at_;  // read only where ids_ holds an id
  std::size_t mask_ = 0;
  unsigned shift_ = 63;
};

// An open span handed over in a part: it carries the events (and log lines) recorded since
// its previous appearance and, in full, its attributes, strings, tags and token counts. The
// node forgets the events it handed over, so a long-lived span that keeps logging neither
// grows without bound nor repeats its history in every part.
SpanExtra take_recent(SpanExtra& e) {
  std::vector<SpanEvent> events = std::exchange(e.events, {});
  SpanExtra s = e;  // everything else, in full
  s.events = std::move(events);
  return s;
}

// Sorts [from, to) (span positions) by less, which orders by start(k) and then by span
// id. The spans of one ring arrive in start order, so siblings from several threads are a
// few sorted runs. They are merged at once: the runs' next spans are kept in start order,
// and the earliest goes out. Threads that take turns (a pool's waves of tasks) put each
// run's next span behind the others, found by one comparison (a parent with 1,024
// children on 16 threads: about one comparison a child, where merging pairwise would take
// four). Lists of many short runs are sorted.
template <class Less, class Start>
void sort_runs(std::uint32_t* from, std::uint32_t* to, Less less, Start start, std::pmr::memory_resource* mr) {
  const auto n = static_cast<std::size_t>(to - from);
  std::size_t i = 1;
  while (i < n && !less(from[i], from[i - 1])) ++i;
  if (i >= n) return;  // one run: in order already (most lists), nothing allocated
  std::pmr::vector<std::uint32_t> bounds(mr);  // where each run begins, then n
  bounds.push_back(0);
  for (; i < n; ++i) {
    if (!less(from[i], from[i - 1])) continue;
    if (bounds.size() > n / 8 || bounds.size() >= 64) {
      std::sort(from, to, less);
      return;
    }
    bounds.push_back(static_cast<std::uint32_t>(i));
  }
  bounds.push_back(static_cast<std::uint32_t>(n));
  struct Head {
    std::int64_t start;  // of the run's next span
    std::uint32_t at;    // the run's next span, in from
    std::uint32_t end;   // the run's end, in from
  };
  auto before = [&](const Head& a, const Head& b) {
    return a.start != b.start ? a.start < b.start : less(from[a.at], from[b.at]);
  };
  // The runs' heads in order, earliest first: a ring of 64 (at most 64 runs, above).
  constexpr std::size_t kRing = 64;
  Head ring[kRing];
  std::size_t first = 0, size = 0;
  auto at = [&](std::size_t k) -> Head& { return ring[(first + k) % kRing]; };
  auto insert = [&](const Head& h) {
    // From the back, where it mostly goes; past a few places, by halving what is left
    // (one busy thread among idle ones puts each of its spans near the front).
    std::size_t k = size;
    for (int look = 0; k != 0 && before(h, at(k - 1)); --k) {
      if (++look == 4) {  // it goes somewhere in [0, k - 1]
        std::size_t lo = 0, hi = k - 1;
        while (lo < hi) {
          const std::size_t mid = (lo + hi) / 2;
          if (before(h, at(mid))) {
            hi = mid;
          } else {
            lo = mid + 1;
          }
        }
        k = lo;
        break;
      }
    }
    for (std::size_t j = size; j > k; --j) at(j) = at(j - 1);
    at(k) = h;
    ++size;
  };
  for (std::size_t r = 0; r + 1 < bounds.size(); ++r) insert(Head{start(from[bounds[r]]), bounds[r], bounds[r + 1]});
  std::pmr::vector<std::uint32_t> merged(n, mr);
  for (std::size_t w = 0; w < n; ++w) {
    Head h = ring[first];
    first = (first + 1) % kRing;
    --size;
    merged[w] = from[h.at];
    if (++h.at != h.end) {
      h.start = start(from[h.at]);
      insert(h);
    }
  }
  std::copy(merged.begin(), merged.end(), from);
}

std::uint32_t lost_span_name() {
  static const std::uint32_t id = intern("<lost span>", 11);
  return id;
}

}  // namespace

Assembler::Assembler(Options options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  // Config::expected_trace_spans: a spare trace's node array, the span index and one row
  // vector, each constructed in full once (which touches every page) and emptied.
  if (const std::size_t n = options_.prepared_spans; n != 0) {
    auto spare = std::make_unique<TraceState>();
    spare->rows.resize(n);
    spare->rows.clear();
    spare->nodes.resize(n);
    spare->nodes.clear();
    spare_traces_.push_back(std::move(spare));
    index_.reserve(n);
    CompactTrace t;
    t.spans.resize(n);
    pool_budget_ = std::max(pool_budget_, n * sizeof(SpanRow));
    recycle(std::move(t));
  }
  (void)lost_span_name();  // interned before it is needed
}

Assembler::~Assembler() = default;

void Assembler::recycle(CompactTrace&& t) {
  // The member lists of its groups, kept for later groups: a fan-out trace has one a wave
  // of parallel work, and each would cost an allocation and a free.
  constexpr std::size_t kSpareMembers = 1024, kMembersKept = 256;
  for (ParallelGroup& g : t.groups) {
    if (spare_members_.size() >= kSpareMembers) break;
    if (g.members.capacity() != 0 && g.members.capacity() <= kMembersKept) {
      g.members.clear();
      spare_members_.push_back(std::move(g.members));
    }
  }
  constexpr std::size_t kPoolTraces = 64;
  const std::size_t bytes = t.spans.capacity() * sizeof(SpanRow);
  if (bytes < 64 * sizeof(SpanRow) || pool_.size() >= kPoolTraces || pool_bytes_ + bytes > pool_budget_)
    return;  // small vectors come cheaply from malloc; the pool stays bounded
  t.clear();
  pool_bytes_ += bytes;
  pool_.push_back(std::move(t));
}

inline Assembler::Ref Assembler::at(std::uint32_t owner, std::uint32_t index) noexcept {
  if (owner == 0) return {&waiting_[index], &waiting_rows_[index], nullptr};
  return at(*by_number_[owner], index);
}

inline Assembler::Ref Assembler::at(TraceState& ts, std::uint32_t index) noexcept {
  return {&ts.nodes[index], &ts.rows[index], &ts};
}

// Where span_id sits on the ring's stack of open spans, innermost first; open_depth_ if not.
inline std::size_t Assembler::open_position(std::uint64_t span_id) const noexcept {
  for (std::size_t i = open_depth_; i-- > 0;)
    if (open_[i].id == span_id) return i;
  return open_depth_;
}

Assembler::Ref Assembler::find_node(std::uint64_t span_id) {
  if (const std::size_t i = open_position(span_id); i != open_depth_) return at(*open_[i].trace, open_[i].index);
  const auto* slot = index_.find(span_id);
  return slot != nullptr ? at(slot->owner, slot->index) : Ref{};
}

inline Assembler::Ref Assembler::ended_node(std::uint64_t span_id) {
  const std::size_t i = open_position(span_id);  // the top, mostly; else it ends before a span begun inside it
  if (i == open_depth_) return find_node(span_id);
  const Ref r = at(*open_[i].trace, open_[i].index);
  if (i + 1 != open_depth_) std::copy(open_ + i + 1, open_ + open_depth_, open_ + i);
  --open_depth_;
  return r;
}

void Assembler::index_node(Node& n, std::uint64_t span_id, std::uint32_t owner, std::uint32_t at) {
  auto& slot = index_.insert(span_id);
  slot.owner = owner;
  slot.index = at;
  n.indexed = true;
}

void Assembler::settle_open() {
  for (std::size_t i = 0; i < open_depth_; ++i) {
    const OpenSpan& o = open_[i];
    Node& n = o.trace->nodes[o.index];
    if (!n.indexed) index_node(n, o.id, o.trace->number, o.index);
  }
  open_depth_ = 0;
}

Assembler::Ref Assembler::waiting_node(std::uint64_t span_id) {
  std::uint32_t i;
  if (!waiting_free_.empty()) {
    i = waiting_free_.back();
    waiting_free_.pop_back();
  } else {
    i = static_cast<std::uint32_t>(waiting_.size());
    waiting_.emplace_back();
    waiting_rows_.emplace_back();
  }
  index_node(waiting_[i], span_id, 0, i);
  ++waiting_live_;
  waiting_rows_[i].span_id = span_id;
  return {&waiting_[i], &waiting_rows_[i], nullptr};
}

Assembler::TraceState& Assembler::trace_of(const TraceId& id) {
  if (last_trace_ != nullptr && last_trace_->id == id) return *last_trace_;
  auto& slot = traces_[id];
  if (!slot) {
    if (!spare_traces_.empty()) {
      // The roomiest: a trace that grew large once is likely to come again (a decode
      // loop's trace per request), and growing its node array again means copying it
      // into fresh memory, which costs the drainer milliseconds at tens of thousands of spans.
      auto roomiest = std::max_element(spare_traces_.begin(), spare_traces_.end(), [](const auto& a, const auto& b) {
        return a->rows.capacity() < b->rows.capacity();
      });
      slot = std::move(*roomiest);
      *roomiest = std::move(spare_traces_.back());
      spare_traces_.pop_back();
    } else {
      slot = std::make_unique<TraceState>();
    }
    slot->reset(id, ++trace_seq_);
    if (ClosedTrace& c = closed_slot(id); c.id == id) {
      // A late span of a trace already handed over: its next part. Its root has ended.
      slot->next_part = c.next_part;
      slot->root_ended = true;
      c = ClosedTrace{};
    }
    if (free_numbers_.empty()) {
      slot->number = static_cast<std::uint32_t>(by_number_.size());
      by_number_.push_back(slot.get());
    } else {
      slot->number = free_numbers_.back();
      free_numbers_.pop_back();
      by_number_[slot->number] = slot.get();
    }
  }
  last_trace_ = slot.get();
  return *slot;
}

void Assembler::became_closable(TraceState& ts) {
  ts.closable_pass = pass_;
  if (!ts.candidate) {
    ts.candidate = true;
    candidates_.push_back(ts.id);
  }
}

inline void Assembler::check_grown(TraceState& ts) {
  if (!ts.closable()) grew(ts);
}

inline void Assembler::grew(TraceState& ts) {
  if (!ts.grown && ts.ended + ts.pending_events >= options_.partial_trace_spans) {
    ts.grown = true;  // handed over at the end of this pass: memory stays bounded
    grown_.push_back(ts.id);
  }
}

void Assembler::on_begin(const Record& r, std::uint64_t thread) {
  ++begins_;
  const TraceId id{r.payload.begin.trace_hi, r.payload.begin.trace_lo};
  TraceState& ts = last_trace_ != nullptr && last_trace_->id == id ? *last_trace_ : trace_of(id);
  const auto at = static_cast<std::uint32_t>(ts.nodes.size());
  // Only while some span's records wait for its begin can this be one of them: else the
  // begin needs no lookup. A span id the index holds begun again (only a damaged or
  // hostile record log holds one) is another span with the same id.
  SpanIndex::Slot* slot = waiting_live_ != 0 ? index_.find(r.span_id) : nullptr;
  if (slot != nullptr && slot->owner == 0) {  // records of this span came first: they join it now
    ts.nodes.push_back(std::move(waiting_[slot->index]));
    ts.rows.push_back(waiting_rows_[slot->index]);
    waiting_[slot->index] = Node{};
    waiting_rows_[slot->index] = SpanRow{};
    waiting_free_.push_back(slot->index);
    --waiting_live_;
    slot->owner = ts.number;
    slot->index = at;
  } else {
    ts.nodes.emplace_back();
    ts.rows.emplace_back();
  }

  Node& n = ts.nodes.back();
  SpanRow& row = ts.rows.back();
  row.span_id = r.span_id;
  n.begun = true;
  n.records = 0;
  // A resumed root segment carries no trace-root flag but, like the root, no parent.
  n.is_root = (r.flags & kTraceRoot) != 0 || r.payload.begin.parent_id == 0;
  row.parent_id = r.payload.begin.parent_id;
  row.name = r.key;
  row.kind = r.aux < kKindCount ? static_cast<Kind>(r.aux) : Kind::custom;
  if (row.kind == Kind::custom && r.payload.begin.kind_name_id != 0) {
    SpanExtra& e = n.more();
    if (e.kind_name.empty()) e.kind_name = std::string(name_of(r.payload.begin.kind_name_id));
  }
  ts.note_thread(thread);
  if (n.extra && n.extra->end_thread_id == thread) n.extra->end_thread_id = 0;  // it ended where it began
  if (n.extra && n.extra->end_thread_id != 0) ts.note_thread(n.extra->end_thread_id);
  row.start_ns = (r.flags & kWallClock) ? static_cast<std::int64_t>(r.ts) : clock_.to_wall_ns(r.ts);
  row.thread_id = thread;
  if (r.flags & kWallClock) row.flags |= kSpanOneShot;
  if (r.flags & kLateBegin) row.flags |= kSpanLostRecords | kSpanLateBegin;  // written at its end: what came between was lost
  if (n.is_root) row.flags |= kSpanTraceRoot;
  if (r.key == kOverflowNameId) row.flags |= kSpanNameOverflow;
  if (name_was_repaired(r.key) || (r.payload.begin.kind_name_id != 0 && name_was_repaired(r.payload.begin.kind_name_id)))
    row.flags |= kSpanInvalidUtf8;

  if (at == 0) ts.first_ns = row.start_ns;
  if (n.is_root && !ts.has_root_name) {
    ts.root_name_id = row.name;
    ts.root_span_id = row.span_id;
    ts.has_root_name = true;
  }
  if (n.ended) {  // its end came first
    ++ts.ended;
    ts.last_end_ns = std::max(ts.last_end_ns, row.end_ns);
    if (n.is_root) ts.root_ended = true;
    if (row.flags & kSpanSuspended) ++ts.suspended;
    if (ts.closable()) became_closable(ts);
  } else {  // the trace has an open span now: not closable
    ++ts.open;
    if (open_depth_ < kOpenSpans) {
      open_[open_depth_++] = OpenSpan{r.span_id, &ts, at};
    } else if (!n.indexed) {  // nested deeper than the stack holds
      index_node(n, r.span_id, ts.number, at);
    }
  }
}

void Assembler::on_end(std::uint64_t span_id, std::uint64_t ts_raw, std::uint8_t flags,
                       std::uint16_t status, std::uint64_t thread) {
  Ref found = ended_node(span_id);
  if (!found) found = waiting_node(span_id);
  Node& n = *found.node;
  TraceState* ts = found.owner;
  if (!n.begun) ++n.records;
  if (n.ended) return;
  SpanRow& row = *found.row;
  n.ended = true;
  row.end_ns = (flags & kWallClock) ? static_cast<std::int64_t>(ts_raw) : clock_.to_wall_ns(ts_raw);
  if (thread != row.thread_id) {  // or its begin has not come yet
    n.more().end_thread_id = thread;
    if (ts != nullptr) ts->note_thread(thread);
  }
  row.status = status <= static_cast<std::uint16_t>(Status::incomplete) ? static_cast<Status>(status)
                                                                        : Status::failed;
  if (flags & kLostRecords) row.flags |= kSpanLostRecords;
  if (flags & kThrown) {
    row.flags |= kSpanThrown;
    SpanExtra& d = n.more();
    if (d.error_message.empty()) d.error_message = "exception escaped the span's scope";
  }
  if (flags & kSuspended) {
    row.flags |= kSpanSuspended;
    SpanExtra& e = n.more();
    if (e.segment_of == 0) e.segment_of = row.span_id;
  }
  row.flags &= ~static_cast<std::uint32_t>(kSpanIncomplete | kSpanContinued);
  if (ts != nullptr) {
    --ts->open;
    ++ts->ended;
    ts->last_end_ns = std::max(ts->last_end_ns, row.end_ns);
    if (n.is_root) ts->root_ended = true;
    if (flags & kSuspended) ++ts->suspended;
    if (ts->closable()) {
      became_closable(*ts);
    } else {
      grew(*ts);
    }
  }
}

void Assembler::mark_crash(std::uint64_t span_id, const std::string& description) {
  const Ref f = span_id != 0 ? find_node(span_id) : Ref{};
  if (!f || !f.node->begun || f.node->ended) return;
  f.row->flags |= kSpanCrashed;
  f.node->more().error_message = "crashed here: " + description;
}

inline bool Assembler::enter(const Record& r, std::uint64_t thread) {
  if (thread != open_thread_) [[unlikely]] {  // another ring: its own open spans
    settle_open();
    open_thread_ = thread;
  }
  if (r.span_id == 0) [[unlikely]] {  // never written for a live span
    ++orphan_records_;
    return false;
  }
  return true;
}

inline bool Assembler::on_lifecycle(const Record& r, std::uint64_t thread) {
  switch (r.type) {
    case RecType::begin:
      on_begin(r, thread);
      return true;
    case RecType::next:  // ends a span of a chain and begins its sibling at the same instant
      if (r.payload.begin.ended_span != 0)
        on_end(r.payload.begin.ended_span, r.ts, 0, static_cast<std::uint16_t>(Status::ok), thread);
      on_begin(r, thread);
      return true;
    case RecType::end:
      on_end(r.span_id, r.ts, r.flags, r.aux, thread);
      return true;
    default:
      return false;
  }
}

void Assembler::on_record(const Record& r, std::uint64_t thread) {
  if (enter(r, thread) && !on_lifecycle(r, thread)) on_detail(r, std::string());
}

void Assembler::on_record(const Record& r, std::uint64_t thread, std::string&& text) {
  if (enter(r, thread) && !on_lifecycle(r, thread)) on_detail(r, std::move(text));
}

void Assembler::on_detail(const Record& r, std::string&& text) {
  Ref found = find_node(r.span_id);
  if (!found) found = waiting_node(r.span_id);
  Node& n = *found.node;
  SpanRow& row = *found.row;
  TraceState* ts = found.owner;
  if (!n.begun) ++n.records;
  if (r.type != RecType::tokens && r.type != RecType::link && r.type != RecType::span_link) {  // r.key: a key or an event
    if (r.key == kOverflowNameId) row.flags |= kSpanNameOverflow;
    if (name_was_repaired(r.key)) row.flags |= kSpanInvalidUtf8;
  }
  // A new event on a span still open counts towards its trace's partial hand-over, so a
  // long-lived span that keeps logging is handed over in parts like one with children.
  auto add_event = [&](SpanEvent&& e) {
    n.more().events.push_back(std::move(e));
    if (ts != nullptr && !n.ended) {
      ++ts->pending_events;
      check_grown(*ts);
    }
  };
  switch (r.type) {
    case RecType::attr_int:
    case RecType::attr_double:
    case RecType::attr_bool: {
      SpanExtra& d = n.more();
      auto& to = (r.flags & kOnEvent) && !d.events.empty() ? d.events.back().attrs : d.attrs;
      set_attribute(to, name_of(r.key), value_of(r), false);
      return;
    }
    case RecType::string: {
      if (r.flags & kTruncated) row.flags |= kSpanTruncated;
      if (repair_utf8(text)) row.flags |= kSpanInvalidUtf8;
      SpanExtra& d = n.more();
      switch (static_cast<StrKind>(r.aux)) {
        case StrKind::attr_value: {
          auto& to = (r.flags & kOnEvent) && !d.events.empty() ? d.events.back().attrs : d.attrs;
          set_attribute(to, name_of(r.key), AttrValue{AttrValue::Type::string, 0, 0, std::move(text)},
                        (r.flags & kTruncated) != 0);
          return;
        }
        case StrKind::input: d.input = std::move(text); return;
        case StrKind::output: d.output = std::move(text); return;
        case StrKind::model: d.model = std::move(text); return;
        case StrKind::tag: d.tags.push_back(std::move(text)); return;
        case StrKind::error_message: d.error_message = std::move(text); return;
        case StrKind::error_data: d.error_data = std::move(text); return;
        case StrKind::kind_name: d.kind_name = std::move(text); return;
        case StrKind::log: {
          SpanEvent e;
          e.name = "log";
          e.time_ns = clock_.to_wall_ns(r.ts);
          e.attrs.push_back(Attribute{"message", AttrValue{AttrValue::Type::string, 0, 0, std::move(text)},
                                      (r.flags & kTruncated) != 0});
          add_event(std::move(e));
          return;
        }
      }
      return;
    }
    case RecType::event: {
      SpanEvent e;
      e.name = std::string(name_of(r.key));
      e.time_ns = clock_.to_wall_ns(r.ts);
      add_event(std::move(e));
      return;
    }
    case RecType::tokens: {
      SpanExtra& d = n.more();
      d.has_tokens = true;
      d.tokens = TokenUsage{r.payload.tokens.input, r.payload.tokens.output, r.payload.tokens.cached_input};
      return;
    }
    case RecType::span_link:
      n.more().links.push_back(
          SpanLink{TraceId{r.payload.span_link.trace_hi, r.payload.span_link.trace_lo}, r.payload.span_link.span_id});
      return;
    case RecType::link:
      n.more().segment_of = r.payload.link.first_span_id;
      n.more().segment_index = r.payload.link.segment_index;
      if (ts != nullptr) {  // always: a link follows its span's begin on the same ring
        --ts->suspended;    // the waiting segment was resumed
        if (ts->closable()) became_closable(*ts);
      }
      return;
    default:
      ++orphan_records_;  // an unknown record type: never written by this version
      return;
  }
}

void Assembler::end_of_pass(std::vector<CompactTrace>& out, std::int64_t now_ns) {
  ++pass_;
  settle_open();  // nodes may move below
  // Close traces that have been closable since an earlier pass: every ring has since been
  // read again past the point where the root ended, so nothing that happened before the
  // root's end can still be missing.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < candidates_.size(); ++i) {
    auto it = traces_.find(candidates_[i]);
    if (it == traces_.end()) continue;
    TraceState& ts = *it->second;
    if (!ts.closable()) {
      ts.candidate = false;
      continue;
    }
    if (ts.closable_pass + 1 < pass_) {
      emit(ts, false, out, false, now_ns, false);
      close_trace(ts);
      continue;
    }
    candidates_[kept++] = candidates_[i];
  }
  candidates_.resize(kept);

  // Endless roots: hand over the finished part of traces that grew past the span limit
  // (noticed as their spans end or log) or, checked now and then, past the age limit.
  for (const TraceId& id : grown_) {
    auto it = traces_.find(id);
    if (it == traces_.end()) continue;
    it->second->grown = false;
    if (!it->second->closable()) emit_part(*it->second, out, now_ns);
  }
  grown_.clear();
  if (now_ns - last_partial_check_ns_ >= 50'000'000) {
    last_partial_check_ns_ = now_ns;
    std::vector<TraceState*> old;
    for (auto& [id, ts] : traces_) {
      if (ts->closable() || (ts->ended == 0 && ts->pending_events == 0)) continue;
      if (now_ns - ts->first_ns >= options_.partial_trace_age_ns) old.push_back(ts.get());
    }
    std::sort(old.begin(), old.end(), [](const TraceState* a, const TraceState* b) { return a->seq < b->seq; });
    for (TraceState* ts : old) emit_part(*ts, out, now_ns);
  }
  scratch_.release();
}

void Assembler::end_of_pass(std::vector<AssembledTrace>& out, std::int64_t now_ns) {
  std::vector<CompactTrace> compact;
  end_of_pass(compact, now_ns);
  for (CompactTrace& t : compact) {
    t.thread_names.clear();  // ids only: the drainer names them
    out.push_back(t.to_assembled());
  }
}

void Assembler::hand_over_open(SpanRow& row, std::int64_t now_ns, bool continued) noexcept {
  row.flags |= kSpanIncomplete | (continued ? kSpanContinued : 0u);
  row.end_ns = std::max(now_ns, row.start_ns);
  row.status = Status::incomplete;
}

void Assembler::reopen(SpanRow& row) noexcept {
  row.flags &= ~static_cast<std::uint32_t>(kSpanIncomplete | kSpanContinued);
  row.status = Status::ok;
  row.end_ns = 0;
  row.extra = SpanRow::kNoExtra;
  row.group = -1;
}

void Assembler::moved_open(TraceState& ts, Node& n, std::uint64_t span_id, std::uint32_t from, std::uint32_t to) {
  // Every open span is indexed once its ring's stack is settled; its slot may be gone with
  // another span begun with the same id, or name that span (then it stays as it is).
  SpanIndex::Slot* slot = n.indexed ? index_.find(span_id) : nullptr;
  if (slot == nullptr) {
    index_node(n, span_id, ts.number, to);
  } else if (slot->owner == ts.number && slot->index == from) {
    slot->index = to;
  }
}

void Assembler::forget_handed_over(TraceState& ts, bool keep_open) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < ts.nodes.size(); ++i) {
    Node& n = ts.nodes[i];
    if (n.ended || !keep_open) {
      if (n.indexed) index_.erase(ts.rows[i].span_id, ts.number, static_cast<std::uint32_t>(i));
      continue;
    }
    if (kept != i) {
      ts.nodes[kept] = std::move(n);
      ts.rows[kept] = ts.rows[i];
    }
    reopen(ts.rows[kept]);
    moved_open(ts, ts.nodes[kept], ts.rows[kept].span_id, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(kept));
    ++kept;
  }
  ts.nodes.resize(kept);
  ts.rows.resize(kept);
  after_part(ts);
}

void Assembler::after_part(TraceState& ts) {
  ts.ended = 0;
  ts.pending_events = 0;
  ts.last_end_ns = 0;
  ts.threads.clear();
  ts.last_thread = 0;
  for (const SpanRow& row : ts.rows) ts.note_thread(row.thread_id);
}

void Assembler::emit_part(TraceState& ts, std::vector<CompactTrace>& out, std::int64_t now_ns) {
  if (ts.ended == 0 && ts.pending_events == 0) return;  // nothing new since the previous part
  const std::int64_t last_end = ts.last_end_ns;
  emit(ts, true, out, true, now_ns, true);
  // The age limit counts from the last part handed over.
  ts.first_ns = last_end != 0 ? std::max(last_end, ts.first_ns) : now_ns;
}

void Assembler::flush(std::vector<CompactTrace>& out, std::int64_t now_ns, bool final) {
  settle_open();  // nodes may move below
  std::vector<TraceState*> order;
  order.reserve(traces_.size());
  for (auto& [id, ts] : traces_) order.push_back(ts.get());
  std::sort(order.begin(), order.end(), [](const TraceState* a, const TraceState* b) { return a->seq < b->seq; });
  for (TraceState* tsp : order) {
    TraceState& ts = *tsp;
    const bool complete = ts.closable();
    const bool continues = !complete && !final;
    if (ts.nodes.empty()) {  // everything already handed over in earlier parts
      if (continues && ts.suspended > 0) continue;  // an operation waits to be resumed
      // The parts so far said more would follow: an empty last part says none does.
      if (ts.next_part != 0) emit(ts, false, out, false, now_ns, false);
      close_trace(ts);
      continue;
    }
    // It continues while a span is open or a suspended operation waits to be resumed. With
    // neither, the trace is whole as it is (a root lost whole never ends): its lost
    // parents get placeholders.
    const bool more = continues && (ts.open > 0 || ts.suspended > 0);
    emit(ts, more, out, !final, now_ns, continues);
    if (!more) close_trace(ts);
  }
  candidates_.clear();
  grown_.clear();
  for (auto& [id, ts] : traces_) ts->candidate = ts->grown = false;
  scratch_.release();
  if (final) {
    // Records whose span never began (begun before this recorder, or never): counted, dropped.
    for (const Node& n : waiting_) orphan_records_ += n.records;
    waiting_.clear();
    waiting_rows_.clear();
    waiting_free_.clear();
    waiting_live_ = 0;
    index_.clear();
    traces_.clear();
    by_number_.assign(1, nullptr);
    free_numbers_.clear();
    last_trace_ = nullptr;
    std::fill(closed_.begin(), closed_.end(), ClosedTrace{});
  }
}

void Assembler::flush(std::vector<AssembledTrace>& out, std::int64_t now_ns, bool final) {
  std::vector<CompactTrace> compact;
  flush(compact, now_ns, final);
  for (CompactTrace& t : compact) {
    t.thread_names.clear();  // ids only: the drainer names them
    out.push_back(t.to_assembled());
  }
}

void Assembler::close_trace(TraceState& ts) {
  for (std::size_t i = 0; i < ts.nodes.size(); ++i)
    if (ts.nodes[i].indexed) index_.erase(ts.rows[i].span_id, ts.number, static_cast<std::uint32_t>(i));
  ts.nodes.clear();  // frees what the spans still held; the capacity stays for the next trace
  ts.rows.clear();
  if (last_trace_ == &ts) last_trace_ = nullptr;
  by_number_[ts.number] = nullptr;
  free_numbers_.push_back(ts.number);
  if (ts.next_part != 0) closed_slot(ts.id) = ClosedTrace{ts.id, ts.next_part};
  auto it = traces_.find(ts.id);
  if (spare_traces_.size() < 16 && ts.rows.capacity() <= std::max<std::size_t>(65536, options_.prepared_spans))
    spare_traces_.push_back(std::move(it->second));
  traces_.erase(it);
}

bool Assembler::depth_first_without_overlap(const TraceState& ts, bool first_part) {
  // The path from the part's root to the row before, as a plain array: every row pushes
  // one entry, so the trace's size bounds it.
  if (path_.size() < ts.rows.size() + 1) path_.resize(ts.rows.size() + 1);
  PathStep* const bottom = path_.data();
  PathStep* top = bottom;  // one past the innermost
  std::size_t roots = 0;
  for (const SpanRow& x : ts.rows) {
    while (top != bottom && top[-1].id != x.parent_id) --top;
    if (top == bottom) {
      // The root of the part, alone: a second one (a parent that came later, say) needs
      // sorting. Where nothing of the trace went before, a root with a parent that is not
      // the trace's lost it or has it in another trace: placeholder or orphan, below. In a
      // later part, its parent went in an earlier one (every span still held, open or
      // not, is in the part).
      if (++roots > 1) return false;
      if (x.parent_id != 0 && first_part && !(x.flags & (kSpanTraceRoot | kSpanPlaceholder))) return false;
    } else {
      PathStep& p = top[-1];
      if (x.start_ns < p.last_start || (x.start_ns == p.last_start && x.span_id < p.last_id)) return false;
      const bool length = x.end_ns > x.start_ns;
      if (length && x.start_ns < p.reach) return false;  // overlaps an earlier sibling: a parallel group
      p.last_start = x.start_ns;
      p.last_id = x.span_id;
      if (length) p.reach = std::max(p.reach, x.end_ns);
    }
    *top++ = PathStep{x.span_id, INT64_MIN, 0, INT64_MIN};
  }
  return true;
}

CompactTrace Assembler::take_pooled(std::size_t spans) {
  CompactTrace t;
  for (std::size_t i = pool_.size(); i-- > 0;) {
    if (pool_[i].spans.capacity() < spans) continue;
    pool_bytes_ -= pool_[i].spans.capacity() * sizeof(SpanRow);
    t = std::move(pool_[i]);
    pool_.erase(pool_.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  return t;
}

void Assembler::emit(TraceState& ts, bool partial, std::vector<CompactTrace>& out, bool keep_open,
                     std::int64_t now_ns, bool continued) {
  const bool first_part = ts.next_part == 0;
  const bool whole = !partial && first_part;
  std::pmr::memory_resource* mr = &scratch_;
  // The open spans go as incomplete, ending now (undone on those that stay).
  if (ts.open != 0)
    for (std::size_t k = 0; k < ts.nodes.size(); ++k)
      if (!ts.nodes[k].ended) hand_over_open(ts.rows[k], now_ns, continued);
  // One thread's nested spans arrive depth-first with children in start order, and
  // siblings on one thread rarely overlap: then the rows go out in arrival order, as they
  // are held, and nothing below (parents, placeholders, sorting, groups) needs working out.
  const bool in_order = depth_first_without_overlap(ts, first_part);
  // Else parents are looked up among the spans of the part (which holds every span of the
  // trace held): most spans are never in the span index. A span's parent is mostly on the
  // path of the span before (its parent, or an ancestor: one thread's nested spans arrive
  // depth-first), and only the others are looked up by id.
  LocalIds local(mr);
  ScratchArray<std::uint32_t> parent(mr);  // position of each span's parent, or kNone
  bool lost_parent = false;  // a span, not a trace root, whose parent is not in the part
  if (!in_order) {
    const std::size_t held = ts.rows.size();
    parent.resize(held);
    // Positions: the span before and its ancestors found so far. Each span adds itself,
    // and one found by id its parent on an emptied path: held + 1 bound it.
    ScratchArray<std::uint32_t> path_of(held + 1, mr);
    std::uint32_t* const path = path_of.data();
    std::size_t depth = 0;
    const SpanRow* const rows = ts.rows.data();
    std::uint32_t* const parent_at = parent.data();
    std::uint64_t before_id = 0;  // the parent id of the span before, and its position
    std::uint32_t before = kNone;
    for (std::uint32_t k = 0; k < held; ++k) {
      const std::uint64_t parent_id = rows[k].parent_id;
      std::uint32_t p = kNone;
      if (parent_id == before_id && before != kNone) {  // a sibling of the span before
        p = before;
        --depth;  // the span before: its parent is now on top
      } else if (parent_id != 0) {
        while (depth != 0 && rows[path[depth - 1]].span_id != parent_id) --depth;
        if (depth != 0) {
          p = path[depth - 1];
        } else {
          if (!local.made()) local.make(ts.rows);
          p = local.find(parent_id);
          if (p != kNone) {
            path[depth++] = p;
          } else if (!(rows[k].flags & kSpanTraceRoot)) {
            lost_parent = true;
          }
        }
      } else {
        depth = 0;
      }
      parent_at[k] = p;
      path[depth++] = k;
      before_id = parent_id;
      before = p;
    }
  }
  // Nothing of the trace was handed over before, so a parent that is missing lost its
  // begin (its ring was full; or it is still running with its begin late, and comes in a
  // later part). A placeholder takes its id, so its children stay under their true parent.
  std::size_t made = 0;  // placeholders
  if (first_part && lost_parent) {
    for (std::size_t k = 0, n = ts.rows.size(); k < n; ++k) {
      if (ts.rows[k].parent_id == 0 || (ts.rows[k].flags & kSpanTraceRoot)) continue;
      const SpanRow x = ts.rows[k];  // a copy: placeholders grow ts.rows
      if (made != 0 && parent[k] == kNone) parent[k] = local.find(x.parent_id);  // a placeholder made for a sibling
      if (const std::uint32_t p = parent[k]; p != kNone) {
        SpanRow& pr = ts.rows[p];
        if (pr.flags & kSpanPlaceholder) {  // widen it to cover this child too
          pr.start_ns = std::min(pr.start_ns, x.start_ns);
          pr.end_ns = std::max(pr.end_ns, std::max(x.end_ns, x.start_ns));
        }
        continue;
      }
      // Held open in another trace (a context carried across), or waiting for its begin:
      // left as it is (an orphan).
      if (index_.find(x.parent_id) != nullptr) continue;
      SpanRow ph;
      ph.span_id = x.parent_id;
      ph.parent_id = ts.root_span_id != x.parent_id ? ts.root_span_id : 0;
      ph.name = lost_span_name();
      ph.kind = Kind::span;
      ph.status = Status::incomplete;
      ph.flags = kSpanPlaceholder | kSpanIncomplete | kSpanLostRecords;
      ph.start_ns = x.start_ns;
      ph.end_ns = std::max(x.end_ns, x.start_ns);
      ph.thread_id = x.thread_id;
      const auto at = static_cast<std::uint32_t>(ts.rows.size());
      ts.rows.push_back(ph);
      Node& pn = ts.nodes.emplace_back();
      pn.begun = pn.ended = true;
      // Indexed: records of the lost span that still come find it (and are ignored).
      index_node(pn, x.parent_id, ts.number, at);
      local.insert(x.parent_id, at);
      parent[k] = at;
      parent.push_back(ph.parent_id != 0 ? local.find(ph.parent_id) : kNone);
      ++placeholders_;
      ++made;
    }
    // A span the loop passed over (a trace root with a remote parent) may have its parent
    // among the placeholders.
    if (made != 0)
      for (std::size_t k = 0; k < parent.size(); ++k)
        if (parent[k] == kNone && ts.rows[k].parent_id != 0) parent[k] = local.find(ts.rows[k].parent_id);
  }

  const auto n = static_cast<std::uint32_t>(ts.rows.size());
  CompactTrace t = take_pooled(n);
  t.trace_id = ts.id;
  t.service_name = options_.service_name;
  t.process_id = options_.process_id;
  t.part = ts.next_part++;
  t.partial = partial;
  t.drops_since_previous = std::exchange(pending_drops_, DropCounts{});
  // The threads, by id; the drainer adds their names.
  t.thread_names.clear();
  for (const std::uint64_t thread : ts.threads) t.thread_names.push_back(ThreadName{thread, {}});

  auto row_of = [&](std::uint32_t k) -> SpanRow& { return ts.rows[k]; };
  // The extra of the span at k, which goes as the row at `row`.
  bool segmented = false;
  auto take_extra = [&](Node& x, SpanRow& row) {
    row.extra = static_cast<std::uint32_t>(t.extras.size());
    if (keep_open && !x.ended) {
      t.extras.push_back(take_recent(*x.extra));  // it stays open and appears again later
    } else {
      t.extras.push_back(std::move(*x.extra));
    }
    SpanExtra& e = t.extras.back();
    if (!x.ended || e.end_thread_id == row.thread_id) e.end_thread_id = 0;
    segmented |= e.segment_of != 0;
  };

  // Parallel groups: per sibling list (in start order), connected components of
  // overlapping [start, end). A span of zero length overlaps nothing, so it never joins.
  // Groups are numbered in depth-first order of their sibling list's first such member.
  struct Found {
    std::uint32_t key;    // the list's first member with a length (then: its t.spans position)
    std::uint32_t begin;  // members[begin, end)
    std::uint32_t end;
  };
  std::pmr::vector<Found> found(mr);
  // A span is in one sibling list and in at most one run of it: n bound the members.
  ScratchArray<std::uint32_t> member_list(mr);
  std::uint32_t* members = nullptr;
  std::uint32_t member_count = 0;
  // Starts and ends by position, kept apart from the rows so that sorting and the groups
  // read few cache lines.
  ScratchArray<std::int64_t> starts(mr), ends(mr);
  auto groups_of = [&](const std::uint32_t* from, const std::uint32_t* to) {
    const std::int64_t* const st = starts.data();
    const std::int64_t* const en = ends.data();
    std::uint32_t* const mem = members;
    std::uint32_t count = member_count;  // a local: the stores to mem cannot alias it
    std::uint32_t key = kNone;
    std::int64_t reach = 0;        // end of the current run so far
    std::uint32_t open_at = count;  // where the current run began
    auto close_run = [&] {
      if (count - open_at >= 2) {
        found.push_back({key, open_at, count});
      } else {
        count = open_at;  // a lone span is no group
      }
      open_at = count;
    };
    for (const std::uint32_t* it = from; it != to; ++it) {
      const std::uint32_t k = *it;
      if (en[k] <= st[k]) continue;
      if (key == kNone) key = k;
      if (count > open_at && st[k] >= reach) close_run();  // no overlap: a new run
      reach = count == open_at ? en[k] : std::max(reach, en[k]);
      mem[count++] = k;
    }
    close_run();
    member_count = count;
  };

  std::pmr::vector<std::uint32_t> pos(mr);  // where each span lands in t.spans
  if (in_order) {
    // The rows go as they are: the trace's row array is the part's, and the trace keeps
    // (a copy of) the rows of the spans still open in the pooled array it gets instead.
    std::swap(t.spans, ts.rows);
    ts.rows.clear();
    std::size_t kept = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
      Node& x = ts.nodes[k];
      SpanRow& row = t.spans[k];
      if (x.extra) take_extra(x, row);
      if (x.ended || !keep_open) {
        if (x.indexed) index_.erase(row.span_id, ts.number, k);
        continue;
      }
      reopen(ts.rows.emplace_back(row));
      if (kept != k) ts.nodes[kept] = std::move(x);
      moved_open(ts, ts.nodes[kept], row.span_id, k, static_cast<std::uint32_t>(kept));
      ++kept;
    }
    ts.nodes.resize(kept);
    after_part(ts);
  } else {
    // Children by parent (a counting sort), each list then in start order, its groups
    // found while it is at hand; then the rows go depth-first.
    std::pmr::vector<std::uint32_t> first(n + 1, 0, mr), roots(mr);
    ScratchArray<std::uint32_t> kids(mr);  // children of k: kids[first[k], first[k+1])
    starts.resize(n);
    ends.resize(n);
    // Siblings mostly come one after another: counted in a register while the parent stays.
    std::uint32_t counting = kNone, count = 0;
    std::int64_t* const st = starts.data();  // locals: the stores below cannot alias them
    std::int64_t* const en = ends.data();
    std::uint32_t* const fst = first.data();
    const std::uint32_t* const parent_at = parent.data();
    SpanRow* const rows = ts.rows.data();
    for (std::uint32_t k = 0; k < n; ++k) {
      SpanRow& x = rows[k];
      st[k] = x.start_ns;
      en[k] = x.end_ns;
      const std::uint32_t p = parent_at[k];
      if (p != counting) {
        if (counting != kNone) fst[counting + 1] += count;
        counting = p;
        count = 0;
      }
      if (p == kNone) {
        if (x.parent_id != 0 && whole && !(x.flags & (kSpanTraceRoot | kSpanPlaceholder)))
          x.flags |= kSpanOrphan;  // its parent lies in another trace
        roots.push_back(k);
      } else {
        ++count;
      }
    }
    if (counting != kNone) fst[counting + 1] += count;
    for (std::uint32_t k = 0; k < n; ++k) fst[k + 1] += fst[k];
    kids.resize(first[n]);
    {
      std::pmr::vector<std::uint32_t> fill(first.begin(), first.end() - 1, mr);
      std::uint32_t filling = kNone, at = 0;  // as counted: in a register while the parent stays
      for (std::uint32_t k = 0; k < n; ++k) {
        const std::uint32_t p = parent[k];
        if (p == kNone) continue;
        if (p != filling) {
          if (filling != kNone) fill[filling] = at;
          filling = p;
          at = fill[p];
        }
        kids[at++] = k;
      }
    }
    auto earlier = [&, st = starts.data()](std::uint32_t a, std::uint32_t b) {
      return st[a] != st[b] ? st[a] < st[b] : row_of(a).span_id < row_of(b).span_id;
    };
    member_list.resize(n);
    members = member_list.data();
    auto start_of = [st = starts.data()](std::uint32_t k) { return st[k]; };
    sort_runs(roots.data(), roots.data() + roots.size(), earlier, start_of, mr);
    for (std::uint32_t k = 0; k < n; ++k) {
      if (first[k + 1] - first[k] < 2) continue;
      sort_runs(kids.data() + first[k], kids.data() + first[k + 1], earlier, start_of, mr);
      groups_of(kids.data() + first[k], kids.data() + first[k + 1]);
    }
    if (roots.size() >= 2) {  // roots of a part: siblings when they share a parent id
      std::pmr::vector<std::uint32_t> by_parent(roots, mr);
      std::stable_sort(by_parent.begin(), by_parent.end(),
                       [&](std::uint32_t a, std::uint32_t b) { return row_of(a).parent_id < row_of(b).parent_id; });
      for (std::size_t i = 0; i < by_parent.size();) {
        std::size_t j = i + 1;
        while (j < by_parent.size() && row_of(by_parent[j]).parent_id == row_of(by_parent[i]).parent_id) ++j;
        if (j - i >= 2) groups_of(by_parent.data() + i, by_parent.data() + j);
        i = j;
      }
    }

    // Depth-first, children in start order, each row copied as it is placed.
    pos.assign(n, kNone);
    t.spans.reserve(n);
    // Every span is pushed once as a root or a child (twice at most where parents form a
    // cycle, which only a damaged record log can hold): 2n entries bound the stack.
    ScratchArray<std::uint32_t> stack(2 * static_cast<std::size_t>(n), mr);
    std::uint32_t placed = 0;
    // Places the spans on the stack, and what lies under them. Positions and counts are
    // held in locals, so that the row copies (whose stores could alias anything a
    // reference reaches) do not make every step reload them.
    auto place = [&](std::uint32_t depth) {
      std::uint32_t* const stk = stack.data();
      std::uint32_t* const at = pos.data();
      const std::uint32_t* const fst = first.data();
      const std::uint32_t* const kd = kids.data();
      const SpanRow* const rows = ts.rows.data();
      Node* const nodes = ts.nodes.data();
      std::uint32_t next = placed;
      while (depth != 0) {
        const std::uint32_t k = stk[--depth];
        if (at[k] != kNone) continue;  // met again through a cycle
        at[k] = next++;
        SpanRow& row = t.spans.emplace_back(rows[k]);  // a copy: no default construction first
        Node& x = nodes[k];
        if (x.extra) take_extra(x, row);
        if (!keep_open && x.indexed) {  // forgotten below
          index_.erase(row.span_id, ts.number, k);
          x.indexed = false;
        }
        for (std::uint32_t c = fst[k + 1]; c-- > fst[k];) stk[depth++] = kd[c];
      }
      placed = next;
    };
    std::uint32_t depth = 0;
    for (auto r = roots.rbegin(); r != roots.rend(); ++r) stack[depth++] = *r;
    place(depth);
    // Spans no root leads to: their parents form a cycle. Each goes as a root of the part.
    for (std::uint32_t k = 0; placed != n && k < n; ++k) {
      if (pos[k] != kNone) continue;
      stack[0] = k;
      place(1);
    }
    for (Found& f : found) f.key = pos[f.key];
    if (keep_open) {
      forget_handed_over(ts, true);
    } else {  // every span was placed, and is out of the index
      ts.nodes.clear();
      ts.rows.clear();
      after_part(ts);
    }
  }

  // The trace's name: its root's.
  t.root_name = kNone;
  for (const SpanRow& s : t.spans) {
    if (s.flags & kSpanTraceRoot) {
      t.root_name = s.name;
      break;
    }
  }
  if (t.root_name == kNone && ts.has_root_name) t.root_name = ts.root_name_id;
  if (t.root_name == kNone) t.root_name = t.spans.empty() ? kEmptyNameId : t.spans.front().name;

  // The groups found above, numbered in depth-first order of their sibling list.
  if (!in_order) {
    const std::int64_t* const st = starts.data();
    const std::int64_t* const en = ends.data();
    std::stable_sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.key < b.key; });
    t.groups.reserve(found.size());
    std::pmr::vector<std::int64_t> group_ends(mr);
    for (const Found& f : found) {
      ParallelGroup& g = t.groups.emplace_back();
      g.id = static_cast<std::uint32_t>(t.groups.size() - 1);
      g.parent_id = t.spans[pos[members[f.begin]]].parent_id;
      g.start_ns = st[members[f.begin]];
      const std::uint32_t count = f.end - f.begin;
      if (!spare_members_.empty()) {  // a list an earlier group's trace gave back
        g.members = std::move(spare_members_.back());
        spare_members_.pop_back();
      }
      g.members.resize(count);
      std::int64_t first_end = INT64_MAX;
      for (std::uint32_t m = 0; m < count; ++m) {
        const std::uint32_t k = members[f.begin + m];
        SpanRow& s = t.spans[pos[k]];
        s.group = static_cast<std::int32_t>(g.id);
        g.members[m] = s.span_id;
        g.end_ns = std::max(g.end_ns, en[k]);
        first_end = std::min(first_end, en[k]);
      }
      // The members come in start order. When none ends before the last starts (a wave
      // of work begun together), all run at once; else running at the i-th start are the
      // i+1 begun so far less those ended by then (an end at the same instant as a start
      // goes first).
      if (first_end > st[members[f.end - 1]]) {
        g.peak_concurrency = count;
      } else {
        group_ends.resize(count);
        for (std::uint32_t m = 0; m < count; ++m) group_ends[m] = en[members[f.begin + m]];
        std::sort(group_ends.begin(), group_ends.end());
        std::uint32_t ended = 0;
        for (std::uint32_t m = 0; m < count; ++m) {
          const std::int64_t start = st[members[f.begin + m]];
          while (ended < count && group_ends[ended] <= start) ++ended;
          g.peak_concurrency = std::max(g.peak_concurrency, m + 1 - ended);
        }
      }
    }
  }

  // Suspended/resumed operations: segments in order, with the time spent waiting.
  if (segmented) {
    std::pmr::unordered_map<std::uint64_t, std::size_t> chain_of(mr);
    std::pmr::vector<std::pmr::vector<std::size_t>> at(mr);  // t.spans positions per chain
    for (std::size_t i = 0; i < t.spans.size(); ++i) {
      const SpanRow& sp = t.spans[i];
      if (sp.extra == SpanRow::kNoExtra || t.extras[sp.extra].segment_of == 0) continue;
      auto [it, fresh] = chain_of.emplace(t.extras[sp.extra].segment_of, t.chains.size());
      if (fresh) {
        t.chains.push_back(SegmentChain{t.extras[sp.extra].segment_of, {}, 0});
        at.emplace_back();
      }
      at[it->second].push_back(i);
    }
    auto segment_index = [&](std::size_t i) { return t.extras[t.spans[i].extra].segment_index; };
    for (std::size_t c = 0; c < t.chains.size(); ++c) {
      auto& seg = at[c];
      std::stable_sort(seg.begin(), seg.end(),
                       [&](std::size_t a, std::size_t b) { return segment_index(a) < segment_index(b); });
      for (std::size_t k = 0; k < seg.size(); ++k) {
        t.chains[c].segments.push_back(t.spans[seg[k]].span_id);
        if (k > 0) t.chains[c].waited_ns += t.spans[seg[k]].start_ns - t.spans[seg[k - 1]].end_ns;
      }
    }
  }
  out.push_back(std::move(t));
}

}  // namespace strobe::detail
