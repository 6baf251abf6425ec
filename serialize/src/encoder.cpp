#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "strobe/serialize/writer.hpp"
#include "strobe_generated.h"

namespace strobe::serialize {

struct Encoder::Impl {
  flatbuffers::FlatBufferBuilder fbb{1 << 20};
  std::deque<std::string> string_store;  // stable addresses for the views below
  std::unordered_map<std::string_view, std::uint32_t> strings;
  std::vector<std::string_view> string_order;
  std::unordered_map<std::uint64_t, std::uint32_t> threads;
  std::vector<std::uint64_t> thread_order;
  std::vector<std::uint32_t> thread_names;  // string indexes, parallel to thread_order (may be shorter)
  std::vector<flatbuffers::Offset<fb::Trace>> traces;
  std::size_t spans = 0;
  bool finished = false;
  Encoder::Lost lost;
  static constexpr std::uint32_t kNoIndex = 0xffffffffu;
  const SpanExtra kNoExtra{};
  std::uint32_t generation = 0;  // of the batch: name_gen entries of older batches are stale
  std::vector<std::uint32_t> name_gen, name_index;
  std::uint64_t last_thread = 0;
  std::uint32_t last_thread_index = kNoIndex;

  // scratch, reused across traces
  std::vector<fb::Attr> attrs;
  std::vector<flatbuffers::Offset<fb::SpanDetail>> details;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> by_id;  // (span id, index), sorted

  // The index of span `id` in the trace being added; built only for traces that have
  // groups or chains (a map node per span cost more than encoding the span).
  std::uint32_t index_of(std::uint64_t id) const {
    auto it = std::lower_bound(by_id.begin(), by_id.end(), std::pair<std::uint64_t, std::uint32_t>{id, 0});
    if (it == by_id.end() || it->first != id) throw std::invalid_argument("strobe: a group or chain names a span the trace lacks");
    return it->second;
  }

  Impl() { reset(); }

  void reset() {
    fbb.Clear();
    ++generation;
    last_thread_index = kNoIndex;
    string_store.clear();
    strings.clear();
    string_order.clear();
    threads.clear();
    thread_order.clear();
    thread_names.clear();
    traces.clear();
    spans = 0;
    finished = false;
    str("");  // index 0 is ""
  }

  std::uint32_t str(std::string_view s) {
    auto it = strings.find(s);
    if (it != strings.end()) return it->second;
    const std::string& stored = string_store.emplace_back(s);
    const auto id = static_cast<std::uint32_t>(string_order.size());
    strings.emplace(stored, id);
    string_order.push_back(stored);
    return id;
  }

  std::uint32_t thread(std::uint64_t tid) {
    // try_emplace: libstdc++'s emplace builds a node (malloc + free) even for a known key.
    auto [it, fresh] = threads.try_emplace(tid, static_cast<std::uint32_t>(thread_order.size()));
    if (fresh) thread_order.push_back(tid);
    return it->second;
  }

  fb::Attr attr(const Attribute& a) {
    std::uint64_t v = 0;
    fb::AttrType type = fb::AttrType::Int;
    switch (a.value.type) {
      case AttrValue::Type::i64: v = static_cast<std::uint64_t>(a.value.i); break;
      case AttrValue::Type::f64:
        type = fb::AttrType::Double;
        std::memcpy(&v, &a.value.d, 8);
        break;
      case AttrValue::Type::boolean:
        type = fb::AttrType::Bool;
        v = a.value.i != 0 ? 1 : 0;
        break;
      case AttrValue::Type::string:
        type = fb::AttrType::String;
        v = str(a.value.s);
        break;
    }
    return fb::Attr(str(a.key), type, a.truncated, v);
  }

  flatbuffers::Offset<flatbuffers::Vector<const fb::Attr*>> attr_vector(const std::vector<Attribute>& list) {
    attrs.clear();
    for (const Attribute& a : list) attrs.push_back(attr(a));
    return fbb.CreateVectorOfStructs(attrs);
  }

  // X: SpanData or SpanExtra (the same field names).
  template <class X>
  static bool has_more(const X& s) {
    return !s.kind_name.empty() || !s.error_message.empty() || !s.error_data.empty() || !s.input.empty() ||
           !s.output.empty() || !s.model.empty() || !s.tags.empty() || s.has_tokens || !s.attrs.empty() ||
           !s.events.empty() || !s.links.empty();
  }

  // The detail entry of span i: flags, the thread that ended it when another (0: the same),
  // and what x holds beyond the columns.
  template <class X>
  flatbuffers::Offset<fb::SpanDetail> detail(std::size_t i, std::uint32_t flags, std::uint64_t other_end_thread,
                                             const X& s) {
    std::vector<flatbuffers::Offset<fb::Event>> events;
    for (const SpanEvent& e : s.events) {
      auto ea = attr_vector(e.attrs);
      events.push_back(fb::CreateEvent(fbb, str(e.name), e.time_ns, ea));
    }
    auto ev = events.empty() ? 0 : fbb.CreateVector(events);
    auto av = s.attrs.empty() ? 0 : attr_vector(s.attrs);
    flatbuffers::Offset<flatbuffers::Vector<std::uint32_t>> tv = 0;
    if (!s.tags.empty()) {
      std::vector<std::uint32_t> tags;
      for (const std::string& tag : s.tags) tags.push_back(str(tag));
      tv = fbb.CreateVector(tags);
    }
    flatbuffers::Offset<flatbuffers::Vector<const fb::Link*>> lv = 0;
    if (!s.links.empty()) {
      std::vector<fb::Link> links;
      links.reserve(s.links.size());
      for (const SpanLink& l : s.links) links.emplace_back(fb::TraceId(l.trace_id.hi, l.trace_id.lo), l.span_id);
      lv = fbb.CreateVectorOfStructs(links);
    }
    const fb::Tokens tokens(s.tokens.input, s.tokens.output, s.tokens.cached_input);
    const std::uint32_t kind_name = s.kind_name.empty() ? 0 : str(s.kind_name);
    const std::uint32_t error_message = s.error_message.empty() ? 0 : str(s.error_message);
    const std::uint32_t error_data = s.error_data.empty() ? 0 : str(s.error_data);
    const std::uint32_t input = s.input.empty() ? 0 : str(s.input);
    const std::uint32_t output = s.output.empty() ? 0 : str(s.output);
    const std::uint32_t model = s.model.empty() ? 0 : str(s.model);
    const std::uint32_t end_thread = other_end_thread != 0 ? thread(other_end_thread) + 1 : 0;
    fb::SpanDetailBuilder b(fbb);
    b.add_index(static_cast<std::uint32_t>(i));
    if (flags) b.add_flags(flags);
    if (kind_name) b.add_kind_name(kind_name);
    if (end_thread) b.add_end_thread(end_thread);
    if (error_message) b.add_error_message(error_message);
    if (error_data) b.add_error_data(error_data);
    if (input) b.add_input(input);
    if (output) b.add_output(output);
    if (model) b.add_model(model);
    if (!s.tags.empty()) b.add_tags(tv);
    if (s.has_tokens) b.add_tokens(&tokens);
    if (!s.attrs.empty()) b.add_attrs(av);
    if (!s.events.empty()) b.add_events(ev);
    if (!s.links.empty()) b.add_links(lv);
    return b.Finish();
  }

  // The batch index of interned name `id`, resolved once per batch.
  std::uint32_t name(std::uint32_t id) {
    if (id >= name_gen.size()) {
      name_gen.resize(std::max<std::size_t>(id + 1, name_gen.size() * 2), 0);
      name_index.resize(name_gen.size());
    }
    if (name_gen[id] != generation) {
      name_gen[id] = generation;
      name_index[id] = str(name_text(id));
    }
    return name_index[id];
  }

  std::uint32_t thread_cached(std::uint64_t tid) {
    if (tid != last_thread || last_thread_index == kNoIndex) {
      last_thread = tid;
      last_thread_index = thread(tid);
    }
    return last_thread_index;
  }

  // The span columns of the trace being added, written in place in the builder once every
  // other table of the trace is (a later table could move the buffer).
  struct Columns {
    std::uint64_t* id;
    std::uint64_t* parent;
    std::uint32_t* name;
    std::uint32_t* thread;
    std::uint8_t* kind;
    std::uint8_t* status;
    std::int64_t* start;
    std::int64_t* dur;
  };

  // When trace t (AssembledTrace or CompactTrace) has groups or chains, indexes its span
  // ids. Returns its span count.
  template <class Trace>
  std::size_t start_trace(const Trace& t) {
    if (finished) reset();
    const std::size_t n = t.spans.size();
    details.clear();
    by_id.clear();
    if (!t.groups.empty() || !t.chains.empty()) {
      by_id.reserve(n);
      for (std::size_t i = 0; i < n; ++i) by_id.emplace_back(t.spans[i].span_id, static_cast<std::uint32_t>(i));
      std::sort(by_id.begin(), by_id.end());
    }
    return n;
  }

  // Row i of the columns from span s (SpanData or SpanRow), its name and thread mapped.
  template <class Span>
  static void set_columns(const Columns& c, std::size_t i, const Span& s, std::uint32_t name_index,
                          std::uint32_t thread_index) {
    c.id[i] = s.span_id;
    c.parent[i] = s.parent_id;
    c.name[i] = name_index;
    c.kind[i] = static_cast<std::uint8_t>(s.kind);
    c.status[i] = static_cast<std::uint8_t>(s.status);
    c.start[i] = s.start_ns;
    // Wrapping: defined for any pair of times, and undone exactly by SpanView::end_ns().
    c.dur[i] = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.end_ns) - static_cast<std::uint64_t>(s.start_ns));
    c.thread[i] = thread_index;
  }

  // The batch's name of each thread named in trace t (one name a thread: the latest).
  void name_threads(const std::vector<ThreadName>& names) {
    for (const ThreadName& tn : names) {
      const std::uint32_t i = thread(tn.thread_id);
      if (i >= thread_names.size()) thread_names.resize(i + 1, 0);
      thread_names[i] = str(tn.name);
    }
  }

  void add(const AssembledTrace& t) {
    const std::size_t n = start_trace(t);
    name_threads(t.thread_names);
    for (std::size_t i = 0; i < n; ++i) {
      const SpanData& s = t.spans[i];
      const std::uint64_t other_end = s.end_thread_id != 0 && s.end_thread_id != s.thread_id ? s.end_thread_id : 0;
      if (s.flags == 0 && other_end == 0 && !has_more(s)) continue;
      details.push_back(detail(i, s.flags, other_end, s));
    }
    finish_trace(
        t.trace_id, str(t.root_name), t.part, t.partial, t.drops_since_previous, t.groups, t.chains, n,
        [&](std::size_t i) { return t.spans[i].segment_index; },
        [&](const Columns& c) {
          for (std::size_t i = 0; i < n; ++i) set_columns(c, i, t.spans[i], str(t.spans[i].name), thread(t.spans[i].thread_id));
        });
  }

  void add(const CompactTrace& t) {
    const std::size_t n = start_trace(t);
    name_threads(t.thread_names);
    for (std::size_t i = 0; i < n; ++i) {
      const SpanRow& s = t.spans[i];
      if (s.extra == SpanRow::kNoExtra) {
        if (s.flags != 0) details.push_back(detail(i, s.flags, 0, kNoExtra));
        continue;
      }
      const SpanExtra& x = t.extras[s.extra];
      const std::uint64_t other_end = x.end_thread_id != s.thread_id ? x.end_thread_id : 0;
      if (s.flags == 0 && other_end == 0 && !has_more(x)) continue;
      details.push_back(detail(i, s.flags, other_end, x));
    }
    finish_trace(
        t.trace_id, name(t.root_name), t.part, t.partial, t.drops_since_previous, t.groups, t.chains, n,
        [&](std::size_t i) {
          const SpanRow& s = t.spans[i];
          return s.extra == SpanRow::kNoExtra ? 0u : t.extras[s.extra].segment_index;
        },
        [&](const Columns& c) {
          for (std::size_t i = 0; i < n; ++i) {
            const SpanRow& s = t.spans[i];
            set_columns(c, i, s, name(s.name), thread_cached(s.thread_id));
          }
        });
  }

  template <class T>
  T* column(flatbuffers::Offset<flatbuffers::Vector<T>> v) {
    return reinterpret_cast<T*>(flatbuffers::GetMutableTemporaryPointer(fbb, v)->Data());
  }

  // The trace's table, after add() made the details: segment_index(i) is span i's number,
  // and fill(columns) writes the rows into the columns.
  template <class SegmentIndex, class Fill>
  void finish_trace(const TraceId& trace_id, std::uint32_t root, std::uint32_t part, bool partial,
                    const DropCounts& dropped, const std::vector<ParallelGroup>& trace_groups,
                    const std::vector<SegmentChain>& trace_chains, std::size_t n, SegmentIndex segment_index,
                    Fill fill) {
    std::vector<flatbuffers::Offset<fb::Group>> groups;
    for (const ParallelGroup& g : trace_groups) {
      std::vector<std::uint32_t> members;
      for (std::uint64_t id : g.members) members.push_back(index_of(id));
      groups.push_back(fb::CreateGroup(fbb, fbb.CreateVector(members), g.start_ns, g.end_ns, g.peak_concurrency));
    }
    std::vector<flatbuffers::Offset<fb::Chain>> chains;
    for (const SegmentChain& c : trace_chains) {
      std::vector<std::uint32_t> segs, numbers;
      for (std::uint64_t id : c.segments) {
        const std::uint32_t i = index_of(id);
        segs.push_back(i);
        numbers.push_back(segment_index(i));
      }
      auto v_segs = fbb.CreateVector(segs);
      auto v_numbers = fbb.CreateVector(numbers);
      chains.push_back(fb::CreateChain(fbb, c.first_span_id, v_segs, v_numbers, c.waited_ns));
    }
    const fb::TraceId tid(trace_id.hi, trace_id.lo);
    const fb::Drops drops(dropped.spans, dropped.records);
    auto v_details = details.empty() ? 0 : fbb.CreateVector(details);
    auto v_groups = groups.empty() ? 0 : fbb.CreateVector(groups);
    auto v_chains = chains.empty() ? 0 : fbb.CreateVector(chains);
    // The columns, written in place: no copy of each through a vector of its own.
    auto uninit = [&]<class T>(T*) {
      T* unused = nullptr;
      return fbb.CreateUninitializedVector<T>(n, &unused);
    };
    auto v_id = uninit(static_cast<std::uint64_t*>(nullptr));
    auto v_parent = uninit(static_cast<std::uint64_t*>(nullptr));
    auto v_name = uninit(static_cast<std::uint32_t*>(nullptr));
    auto v_kind = uninit(static_cast<std::uint8_t*>(nullptr));
    auto v_status = uninit(static_cast<std::uint8_t*>(nullptr));
    auto v_start = uninit(static_cast<std::int64_t*>(nullptr));
    auto v_dur = uninit(static_cast<std::int64_t*>(nullptr));
    auto v_thread = uninit(static_cast<std::uint32_t*>(nullptr));
    fill(Columns{column(v_id), column(v_parent), column(v_name), column(v_thread), column(v_kind), column(v_status),
                 column(v_start), column(v_dur)});
    fb::TraceBuilder b(fbb);
    b.add_trace_id(&tid);
    b.add_root_name(root);
    b.add_part(part);
    b.add_partial(partial);
    b.add_drops(&drops);
    b.add_span_id(v_id);
    b.add_parent_id(v_parent);
    b.add_name(v_name);
    b.add_kind(v_kind);
    b.add_status(v_status);
    b.add_start_ns(v_start);
    b.add_duration_ns(v_dur);
    b.add_thread(v_thread);
    if (!details.empty()) b.add_details(v_details);
    if (!groups.empty()) b.add_groups(v_groups);
    if (!chains.empty()) b.add_chains(v_chains);
    if (dropped.sink_spans != 0) b.add_sink_dropped_spans(dropped.sink_spans);
    traces.push_back(b.Finish());
    spans += n;
  }

  std::span<const std::uint8_t> finish() {
    if (finished) reset();
    std::vector<flatbuffers::Offset<flatbuffers::String>> strs;
    strs.reserve(string_order.size());
    for (std::string_view s : string_order) strs.push_back(fbb.CreateString(s.data(), s.size()));
    auto v_strings = fbb.CreateVector(strs);
    auto v_threads = fbb.CreateVector(thread_order);
    auto v_traces = fbb.CreateVector(traces);
    flatbuffers::Offset<flatbuffers::Vector<std::uint32_t>> v_names = 0;
    if (!thread_names.empty()) {
      thread_names.resize(thread_order.size(), 0);
      v_names = fbb.CreateVector(thread_names);
    }
    fbb.Finish(fb::CreateBatch(fbb, v_strings, v_threads, v_traces, lost.frames, lost.traces, lost.spans, v_names));
    finished = true;
    return {fbb.GetBufferPointer(), fbb.GetSize()};
  }
};

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;
void Encoder::set_lost(const Lost& lost) noexcept { impl_->lost = lost; }
void Encoder::add(const AssembledTrace& trace) { impl_->add(trace); }
void Encoder::add(const CompactTrace& trace) { impl_->add(trace); }
std::size_t Encoder::trace_count() const noexcept { return impl_->finished ? 0 : impl_->traces.size(); }
std::size_t Encoder::span_count() const noexcept { return impl_->finished ? 0 : impl_->spans; }
std::span<const std::uint8_t> Encoder::finish() { return impl_->finish(); }

}  // namespace strobe::serialize
