#include "assembler.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include <dlfcn.h>

#include <new>

#include "intern.hpp"

namespace strobe::detail {

struct Assembler::Node {
  SpanData data;
  TraceId trace;
  bool begun = false;
  bool ended = false;
  bool is_root = false;
  std::uint32_t records = 0;  // records seen while the begin was still missing
};

struct Assembler::TraceState {
  TraceId id;
  std::vector<std::uint64_t> spans;  // begun spans, in arrival order
  std::size_t open = 0;              // begun, not ended
  std::size_t ended = 0;
  std::int64_t suspended = 0;        // segments suspended and not (yet seen) resumed
  std::string root_name;             // for parts that do not contain the root
  bool root_ended = false;
  bool candidate = false;
  bool grown = false;  // queued for a partial hand-over
  std::uint64_t closable_pass = 0;  // pass in which it was last seen closable
  std::int64_t first_ns = 0;
  // Complete: a root has ended, nothing is open, and no operation waits to be resumed.
  [[nodiscard]] bool closable() const noexcept { return root_ended && open == 0 && suspended <= 0; }
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

std::string resolve(std::uint32_t id) { return std::string(name_of(id)); }

Kind kind_of(std::uint16_t aux) {
  return aux < kKindCount ? static_cast<Kind>(aux) : Kind::custom;
}

}  // namespace

bool repair_utf8(std::string& s) {
  auto is_cont = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  // Fast path: valid input is left alone.
  std::size_t i = 0;
  auto seq_len = [&](std::size_t at) -> std::size_t {  // 0: invalid at `at`
    const unsigned char c = p[at];
    if (c < 0x80) return 1;
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (at + len > n) return 0;
    for (std::size_t k = 1; k < len; ++k) {
      if (!is_cont(p[at + k])) return 0;
      cp = (cp << 6) | (p[at + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;  // overlong, out of range, or a surrogate
    return len;
  };
  while (i < n) {
    const std::size_t len = seq_len(i);
    if (len == 0) break;
    i += len;
  }
  if (i == n) return false;
  std::string out(s.data(), i);
  while (i < n) {
    const std::size_t len = seq_len(i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      while (i < n && is_cont(p[i])) ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  s = std::move(out);
  return true;
}

namespace {

// mimalloc, loaded privately. Debian's libmimalloc.so exports malloc/free itself, so
// linking it would replace the whole process's allocator; opened RTLD_LOCAL its symbols
// stay out of the global scope and only the mi_heap_* functions below are used.
struct MimallocApi {
  void* (*heap_new)() = nullptr;
  void* (*heap_malloc_aligned)(void*, std::size_t, std::size_t) = nullptr;
  void (*heap_destroy)(void*) = nullptr;
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
    a.heap_new = reinterpret_cast<void* (*)()>(::dlsym(lib, "mi_heap_new"));
    a.heap_malloc_aligned =
        reinterpret_cast<void* (*)(void*, std::size_t, std::size_t)>(::dlsym(lib, "mi_heap_malloc_aligned"));
    a.heap_destroy = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_heap_destroy"));
    a.ok = a.heap_new && a.heap_malloc_aligned && a.heap_destroy;
    return a;
  }();
  return api;
}

}  // namespace

bool ScratchHeap::uses_mimalloc() noexcept { return mimalloc().ok; }

void* ScratchHeap::do_allocate(std::size_t bytes, std::size_t align) {
  const MimallocApi& mi = mimalloc();
  if (!mi.ok) return fallback_.allocate(bytes, align);  // released wholesale just the same
  if (heap_ == nullptr) heap_ = mi.heap_new();
  void* p = heap_ ? mi.heap_malloc_aligned(heap_, bytes, align) : nullptr;
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void ScratchHeap::release() noexcept {
  if (heap_ != nullptr) mimalloc().heap_destroy(heap_);
  heap_ = nullptr;
  fallback_.release();
}

Assembler::Assembler(Options options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

Assembler::~Assembler() = default;

Assembler::Node& Assembler::node(std::uint64_t span_id) {
  auto& slot = nodes_[span_id];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->data.span_id = span_id;
  }
  return *slot;
}

Assembler::TraceState& Assembler::trace_of(const TraceId& id) {
  auto& slot = traces_[id];
  if (!slot) {
    slot = std::make_unique<TraceState>();
    slot->id = id;
  }
  return *slot;
}

void Assembler::became_closable(TraceState& ts) {
  ts.closable_pass = pass_;
  if (!ts.candidate) {
    ts.candidate = true;
    candidates_.push_back(ts.id);
  }
}

void Assembler::on_record(const Record& r, std::uint64_t thread, std::string&& text) {
  if (r.type == RecType::begin) {
    ++begins_;
    Node& n = node(r.span_id);
    if (n.begun) return;  // a stale duplicate id cannot happen; ignore defensively
    n.begun = true;
    n.trace = TraceId{r.payload.begin.trace_hi, r.payload.begin.trace_lo};
    // A resumed root segment carries no trace-root flag but, like the root, no parent.
    n.is_root = (r.flags & kTraceRoot) != 0 || r.payload.begin.parent_id == 0;
    SpanData& d = n.data;
    d.parent_id = r.payload.begin.parent_id;
    d.name = resolve(r.key);
    d.kind = kind_of(r.aux);
    if (d.kind == Kind::custom) d.kind_name = resolve(r.payload.begin.kind_name_id);
    d.start_ns = (r.flags & kWallClock) ? static_cast<std::int64_t>(r.ts) : clock_.to_wall_ns(r.ts);
    d.thread_id = thread;
    if (r.flags & kWallClock) d.flags |= kSpanOneShot;
    if (n.is_root) d.flags |= kSpanTraceRoot;
    TraceState& ts = trace_of(n.trace);
    if (ts.spans.empty()) ts.first_ns = d.start_ns;
    if (n.is_root && ts.root_name.empty()) ts.root_name = d.name;
    ts.spans.push_back(r.span_id);
    if (n.ended) {
      ++ts.ended;
      if (n.is_root) ts.root_ended = true;
      if (d.flags & kSpanSuspended) ++ts.suspended;
    } else {
      ++ts.open;
    }
    n.records = 0;
    if (ts.closable()) became_closable(ts);
    return;
  }

  Node& n = node(r.span_id);
  if (!n.begun) ++n.records;
  SpanData& d = n.data;
  switch (r.type) {
    case RecType::end: {
      if (n.ended) return;
      n.ended = true;
      d.end_ns = (r.flags & kWallClock) ? static_cast<std::int64_t>(r.ts) : clock_.to_wall_ns(r.ts);
      d.end_thread_id = thread;
      d.status = r.aux <= static_cast<std::uint16_t>(Status::incomplete) ? static_cast<Status>(r.aux)
                                                                          : Status::failed;
      if (r.flags & kLostRecords) d.flags |= kSpanLostRecords;
      if (r.flags & kThrown) {
        d.flags |= kSpanThrown;
        if (d.error_message.empty()) d.error_message = "exception escaped the span's scope";
      }
      if (r.flags & kSuspended) {
        d.flags |= kSpanSuspended;
        if (d.segment_of == 0) d.segment_of = d.span_id;
      }
      d.flags &= ~static_cast<std::uint32_t>(kSpanIncomplete);
      if (n.begun) {
        TraceState& ts = trace_of(n.trace);
        --ts.open;
        ++ts.ended;
        if (n.is_root) ts.root_ended = true;
        if (r.flags & kSuspended) ++ts.suspended;
        if (ts.closable()) {
          became_closable(ts);
        } else if (ts.ended >= options_.partial_trace_spans && !ts.grown) {
          ts.grown = true;  // handed over at the end of this pass: memory stays bounded
          grown_.push_back(ts.id);
        }
      }
      return;
    }
    case RecType::attr_int:
    case RecType::attr_double:
    case RecType::attr_bool: {
      Attribute a{resolve(r.key), value_of(r), false};
      if ((r.flags & kOnEvent) && !d.events.empty()) {
        d.events.back().attrs.push_back(std::move(a));
      } else {
        d.attrs.push_back(std::move(a));
      }
      return;
    }
    case RecType::string: {
      if (r.flags & kTruncated) d.flags |= kSpanTruncated;
      if (repair_utf8(text)) d.flags |= kSpanInvalidUtf8;
      switch (static_cast<StrKind>(r.aux)) {
        case StrKind::attr_value: {
          Attribute a{resolve(r.key), AttrValue{AttrValue::Type::string, 0, 0, std::move(text)},
                      (r.flags & kTruncated) != 0};
          if ((r.flags & kOnEvent) && !d.events.empty()) {
            d.events.back().attrs.push_back(std::move(a));
          } else {
            d.attrs.push_back(std::move(a));
          }
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
          d.events.push_back(std::move(e));
          return;
        }
      }
      return;
    }
    case RecType::event: {
      SpanEvent e;
      e.name = resolve(r.key);
      e.time_ns = clock_.to_wall_ns(r.ts);
      d.events.push_back(std::move(e));
      return;
    }
    case RecType::tokens:
      d.has_tokens = true;
      d.tokens = TokenUsage{r.payload.tokens.input, r.payload.tokens.output,
                            r.payload.tokens.cached_input};
      return;
    case RecType::link:
      d.segment_of = r.payload.link.first_span_id;
      d.segment_index = r.payload.link.segment_index;
      if (n.begun) {  // always: a link follows its span's begin on the same ring
        TraceState& ts = trace_of(n.trace);
        --ts.suspended;  // the waiting segment was resumed
        if (ts.closable()) became_closable(ts);
      }
      return;
    default:
      ++orphan_records_;  // an unknown record type: never written by this version
      return;
  }
}

void Assembler::end_of_pass(std::vector<AssembledTrace>& out, std::int64_t now_ns) {
  ++pass_;
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
      std::vector<Node*> nodes;
      nodes.reserve(ts.spans.size());
      for (std::uint64_t id : ts.spans) nodes.push_back(nodes_.at(id).get());
      emit(ts, nodes, false, out);
      for (std::uint64_t id : ts.spans) nodes_.erase(id);
      erase_trace(ts.id);
      continue;
    }
    candidates_[kept++] = candidates_[i];
  }
  candidates_.resize(kept);

  // Endless roots: hand over the finished part of traces that grew past the span limit
  // (noticed as their spans end) or, checked now and then, past the age limit.
  for (const TraceId& id : grown_) {
    auto it = traces_.find(id);
    if (it == traces_.end()) continue;
    it->second->grown = false;
    if (!it->second->closable()) emit_ended(*it->second, out);
  }
  grown_.clear();
  if (now_ns - last_partial_check_ns_ >= 50'000'000) {
    last_partial_check_ns_ = now_ns;
    std::vector<TraceState*> old;
    for (auto& [id, ts] : traces_) {
      if (ts->closable() || ts->ended == 0) continue;
      if (now_ns - ts->first_ns >= options_.partial_trace_age_ns) old.push_back(ts.get());
    }
    for (TraceState* ts : old) emit_ended(*ts, out);
  }
  scratch_.release();
}

void Assembler::emit_ended(TraceState& ts, std::vector<AssembledTrace>& out) {
  std::vector<Node*> done;
  std::vector<std::uint64_t> still_open;
  for (std::uint64_t id : ts.spans) {
    Node* n = nodes_.at(id).get();
    if (n->ended) {
      done.push_back(n);
    } else {
      still_open.push_back(id);
    }
  }
  if (done.empty()) return;
  std::int64_t last_end = 0;
  for (const Node* n : done) last_end = std::max(last_end, n->data.end_ns);
  emit(ts, done, true, out);
  for (Node* n : done) nodes_.erase(n->data.span_id);
  ts.spans = std::move(still_open);
  ts.ended = 0;
  ts.first_ns = last_end;  // the age limit counts from the last part handed over
}

void Assembler::flush(std::vector<AssembledTrace>& out, std::int64_t now_ns, bool final) {
  std::vector<TraceId> ids;
  ids.reserve(traces_.size());
  for (auto& [id, ts] : traces_) ids.push_back(id);
  for (const TraceId& id : ids) {
    TraceState& ts = *traces_.at(id);
    if (ts.spans.empty()) {  // everything already handed over in earlier parts
      erase_trace(id);
      continue;
    }
    std::vector<Node*> nodes;
    std::vector<std::uint64_t> still_open;
    for (std::uint64_t sid : ts.spans) {
      Node* n = nodes_.at(sid).get();
      nodes.push_back(n);
      if (!n->ended) {
        n->data.flags |= kSpanIncomplete;
        n->data.end_ns = std::max(now_ns, n->data.start_ns);
        n->data.status = Status::incomplete;
        still_open.push_back(sid);
      }
    }
    const bool complete = ts.closable();
    emit(ts, nodes, !complete && !final, out, !final);
    for (Node* n : nodes) {
      if (n->ended || final) nodes_.erase(n->data.span_id);
    }
    if (complete || final || still_open.empty()) {
      erase_trace(id);
    } else {
      for (std::uint64_t sid : still_open) {  // they continue; their flags are reset at the end
        SpanData& d = nodes_.at(sid)->data;
        d.flags &= ~static_cast<std::uint32_t>(kSpanIncomplete);
        d.status = Status::ok;
        d.end_ns = 0;
      }
      ts.spans = std::move(still_open);
      ts.ended = 0;
    }
  }
  candidates_.clear();
  for (auto& [id, ts] : traces_) ts->candidate = false;
  scratch_.release();
  if (final) {
    // Records whose span never began (begun before this recorder, or never): counted, dropped.
    for (auto& [id, n] : nodes_) orphan_records_ += n->records;
    nodes_.clear();
    traces_.clear();
  }
}

void Assembler::erase_trace(const TraceId& id) {
  traces_.erase(id);
  if (next_part_.size() > 100000) next_part_.clear();  // bounded memory over endless runs
}

void Assembler::emit(TraceState& ts, std::vector<Node*>& nodes, bool partial,
                     std::vector<AssembledTrace>& out, bool keep_open) {
  AssembledTrace t;
  t.trace_id = ts.id;
  t.service_name = options_.service_name;
  t.process_id = options_.process_id;
  auto part_it = next_part_.find(ts.id);
  t.part = part_it == next_part_.end() ? 0 : part_it->second;
  if (partial) {
    next_part_[ts.id] = t.part + 1;
  } else if (part_it != next_part_.end()) {
    next_part_.erase(part_it);
  }
  t.partial = partial;
  t.drops_since_previous = std::exchange(pending_drops_, DropCounts{});

  // Children lists, in start order.
  std::pmr::memory_resource* mr = &scratch_;
  std::pmr::unordered_map<std::uint64_t, std::size_t> index(mr);
  index.reserve(nodes.size() * 2);
  for (std::size_t i = 0; i < nodes.size(); ++i) index.emplace(nodes[i]->data.span_id, i);
  auto earlier = [&](std::size_t a, std::size_t b) {
    const SpanData& x = nodes[a]->data;
    const SpanData& y = nodes[b]->data;
    return x.start_ns != y.start_ns ? x.start_ns < y.start_ns : x.span_id < y.span_id;
  };
  std::pmr::vector<std::pmr::vector<std::size_t>> children(nodes.size(), mr);
  std::pmr::vector<std::size_t> roots(mr);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    SpanData& d = nodes[i]->data;
    auto p = d.parent_id == 0 ? index.end() : index.find(d.parent_id);
    if (p == index.end()) {
      if (d.parent_id != 0 && !partial && t.part == 0 && !(d.flags & kSpanTraceRoot))
        d.flags |= kSpanOrphan;  // its parent's begin was lost
      roots.push_back(i);
    } else {
      children[p->second].push_back(i);
    }
  }
  std::sort(roots.begin(), roots.end(), earlier);
  for (auto& c : children) std::sort(c.begin(), c.end(), earlier);

  // Depth-first order.
  t.spans.reserve(nodes.size());
  std::pmr::vector<std::size_t> stack(roots.rbegin(), roots.rend(), mr);
  while (!stack.empty()) {
    const std::size_t i = stack.back();
    stack.pop_back();
    if (keep_open && !nodes[i]->ended) {
      t.spans.push_back(nodes[i]->data);  // it stays open and appears again in a later part
    } else {
      t.spans.push_back(std::move(nodes[i]->data));
    }
    for (auto it = children[i].rbegin(); it != children[i].rend(); ++it) stack.push_back(*it);
  }
  std::pmr::unordered_map<std::uint64_t, std::size_t> pos(mr);
  pos.reserve(t.spans.size() * 2);
  for (std::size_t i = 0; i < t.spans.size(); ++i) pos.emplace(t.spans[i].span_id, i);

  // The trace's name: its root's.
  for (const SpanData& s : t.spans) {
    if (s.flags & kSpanTraceRoot) {
      t.root_name = s.name;
      break;
    }
  }
  if (t.root_name.empty()) t.root_name = ts.root_name;
  if (t.root_name.empty() && !t.spans.empty()) t.root_name = t.spans.front().name;

  // Parallel groups: per parent, connected components of overlapping [start, end).
  // Siblings are contiguous runs in start order once grouped by parent.
  std::pmr::unordered_map<std::uint64_t, std::pmr::vector<std::size_t>> by_parent(mr);
  for (std::size_t i = 0; i < t.spans.size(); ++i) by_parent[t.spans[i].parent_id].push_back(i);
  std::pmr::vector<std::uint64_t> parents(mr);
  parents.reserve(by_parent.size());
  for (auto& [parent, sibs] : by_parent) {
    // A span of zero length overlaps nothing, so it never joins a group.
    std::erase_if(sibs, [&](std::size_t i) { return t.spans[i].end_ns <= t.spans[i].start_ns; });
    if (sibs.size() >= 2) parents.push_back(parent);
  }
  std::sort(parents.begin(), parents.end(), [&](std::uint64_t a, std::uint64_t b) {
    return by_parent[a].front() < by_parent[b].front();  // groups in depth-first order
  });
  for (std::uint64_t parent : parents) {
    std::pmr::vector<std::size_t>& sibs = by_parent[parent];
    std::sort(sibs.begin(), sibs.end(), [&](std::size_t a, std::size_t b) {
      const SpanData& x = t.spans[a];
      const SpanData& y = t.spans[b];
      return x.start_ns != y.start_ns ? x.start_ns < y.start_ns : x.span_id < y.span_id;
    });
    std::size_t i = 0;
    while (i < sibs.size()) {
      std::int64_t reach = t.spans[sibs[i]].end_ns;
      std::size_t j = i + 1;
      while (j < sibs.size() && t.spans[sibs[j]].start_ns < reach) {
        reach = std::max(reach, t.spans[sibs[j]].end_ns);
        ++j;
      }
      if (j - i >= 2) {
        ParallelGroup g;
        g.id = static_cast<std::uint32_t>(t.groups.size());
        g.parent_id = parent;
        g.start_ns = t.spans[sibs[i]].start_ns;
        g.end_ns = reach;
        std::pmr::vector<std::pair<std::int64_t, int>> edges(mr);  // ends sort before starts at a tie
        for (std::size_t k = i; k < j; ++k) {
          SpanData& m = t.spans[sibs[k]];
          m.group = static_cast<std::int32_t>(g.id);
          g.members.push_back(m.span_id);
          edges.emplace_back(m.start_ns, 1);
          edges.emplace_back(m.end_ns, -1);
        }
        std::sort(edges.begin(), edges.end());
        int running = 0;
        for (const auto& e : edges) {
          running += e.second;
          g.peak_concurrency = std::max(g.peak_concurrency, static_cast<std::uint32_t>(running));
        }
        t.groups.push_back(std::move(g));
      }
      i = j;
    }
  }

  // Suspended/resumed operations: segments in order, with the time spent waiting.
  std::pmr::unordered_map<std::uint64_t, std::size_t> chain_of(mr);
  for (const SpanData& sp : t.spans) {
    if (sp.segment_of == 0) continue;
    auto [it, fresh] = chain_of.emplace(sp.segment_of, t.chains.size());
    if (fresh) t.chains.push_back(SegmentChain{sp.segment_of, {}, 0});
    t.chains[it->second].segments.push_back(sp.span_id);
  }
  for (SegmentChain& c : t.chains) {
    std::sort(c.segments.begin(), c.segments.end(), [&](std::uint64_t a, std::uint64_t b) {
      return t.spans[pos.at(a)].segment_index < t.spans[pos.at(b)].segment_index;
    });
    for (std::size_t k = 1; k < c.segments.size(); ++k)
      c.waited_ns += t.spans[pos.at(c.segments[k])].start_ns - t.spans[pos.at(c.segments[k - 1])].end_ns;
  }
  out.push_back(std::move(t));
}

}  // namespace strobe::detail
