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
  std::vector<flatbuffers::Offset<fb::Trace>> traces;
  std::size_t spans = 0;
  bool finished = false;

  // scratch, reused across traces
  std::vector<std::uint64_t> col_id, col_parent;
  std::vector<std::uint32_t> col_name, col_thread;
  std::vector<std::uint8_t> col_kind, col_status;
  std::vector<std::int64_t> col_start, col_dur;
  std::vector<fb::Attr> attrs;
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
    string_store.clear();
    strings.clear();
    string_order.clear();
    threads.clear();
    thread_order.clear();
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

  static bool needs_detail(const SpanData& s) {
    return s.flags != 0 || !s.kind_name.empty() || (s.end_thread_id != 0 && s.end_thread_id != s.thread_id) ||
           !s.error_message.empty() || !s.error_data.empty() || !s.input.empty() || !s.output.empty() ||
           !s.model.empty() || !s.tags.empty() || s.has_tokens || !s.attrs.empty() || !s.events.empty();
  }

  void add(const AssembledTrace& t) {
    if (finished) reset();
    const std::size_t n = t.spans.size();
    col_id.resize(n);
    col_parent.resize(n);
    col_name.resize(n);
    col_thread.resize(n);
    col_kind.resize(n);
    col_status.resize(n);
    col_start.resize(n);
    col_dur.resize(n);
    by_id.clear();
    if (!t.groups.empty() || !t.chains.empty()) {
      by_id.reserve(n);
      for (std::size_t i = 0; i < n; ++i) by_id.emplace_back(t.spans[i].span_id, static_cast<std::uint32_t>(i));
      std::sort(by_id.begin(), by_id.end());
    }
    std::vector<flatbuffers::Offset<fb::SpanDetail>> details;
    for (std::size_t i = 0; i < n; ++i) {
      const SpanData& s = t.spans[i];
      col_id[i] = s.span_id;
      col_parent[i] = s.parent_id;
      col_name[i] = str(s.name);
      col_kind[i] = static_cast<std::uint8_t>(s.kind);
      col_status[i] = static_cast<std::uint8_t>(s.status);
      col_start[i] = s.start_ns;
      // Wrapping: defined for any pair of times, and undone exactly by SpanView::end_ns().
      col_dur[i] = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.end_ns) - static_cast<std::uint64_t>(s.start_ns));
      col_thread[i] = thread(s.thread_id);
      if (!needs_detail(s)) continue;
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
      const fb::Tokens tokens(s.tokens.input, s.tokens.output, s.tokens.cached_input);
      fb::SpanDetailBuilder b(fbb);
      b.add_index(static_cast<std::uint32_t>(i));
      if (s.flags) b.add_flags(s.flags);
      if (!s.kind_name.empty()) b.add_kind_name(str(s.kind_name));
      if (s.end_thread_id != 0 && s.end_thread_id != s.thread_id) b.add_end_thread(thread(s.end_thread_id) + 1);
      if (!s.error_message.empty()) b.add_error_message(str(s.error_message));
      if (!s.error_data.empty()) b.add_error_data(str(s.error_data));
      if (!s.input.empty()) b.add_input(str(s.input));
      if (!s.output.empty()) b.add_output(str(s.output));
      if (!s.model.empty()) b.add_model(str(s.model));
      if (!s.tags.empty()) b.add_tags(tv);
      if (s.has_tokens) b.add_tokens(&tokens);
      if (!s.attrs.empty()) b.add_attrs(av);
      if (!s.events.empty()) b.add_events(ev);
      details.push_back(b.Finish());
    }
    std::vector<flatbuffers::Offset<fb::Group>> groups;
    for (const ParallelGroup& g : t.groups) {
      std::vector<std::uint32_t> members;
      for (std::uint64_t id : g.members) members.push_back(index_of(id));
      groups.push_back(fb::CreateGroup(fbb, fbb.CreateVector(members), g.start_ns, g.end_ns, g.peak_concurrency));
    }
    std::vector<flatbuffers::Offset<fb::Chain>> chains;
    for (const SegmentChain& c : t.chains) {
      std::vector<std::uint32_t> segs, numbers;
      for (std::uint64_t id : c.segments) {
        const std::uint32_t i = index_of(id);
        segs.push_back(i);
        numbers.push_back(t.spans[i].segment_index);
      }
      auto v_segs = fbb.CreateVector(segs);
      auto v_numbers = fbb.CreateVector(numbers);
      chains.push_back(fb::CreateChain(fbb, c.first_span_id, v_segs, v_numbers, c.waited_ns));
    }
    const fb::TraceId tid(t.trace_id.hi, t.trace_id.lo);
    const fb::Drops drops(t.drops_since_previous.spans, t.drops_since_previous.records);
    auto v_id = fbb.CreateVector(col_id);
    auto v_parent = fbb.CreateVector(col_parent);
    auto v_name = fbb.CreateVector(col_name);
    auto v_kind = fbb.CreateVector(col_kind);
    auto v_status = fbb.CreateVector(col_status);
    auto v_start = fbb.CreateVector(col_start);
    auto v_dur = fbb.CreateVector(col_dur);
    auto v_thread = fbb.CreateVector(col_thread);
    auto v_details = details.empty() ? 0 : fbb.CreateVector(details);
    auto v_groups = groups.empty() ? 0 : fbb.CreateVector(groups);
    auto v_chains = chains.empty() ? 0 : fbb.CreateVector(chains);
    const std::uint32_t root = str(t.root_name);
    fb::TraceBuilder b(fbb);
    b.add_trace_id(&tid);
    b.add_root_name(root);
    b.add_part(t.part);
    b.add_partial(t.partial);
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
    fbb.Finish(fb::CreateBatch(fbb, v_strings, v_threads, v_traces));
    finished = true;
    return {fbb.GetBufferPointer(), fbb.GetSize()};
  }
};

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;
void Encoder::add(const AssembledTrace& trace) { impl_->add(trace); }
std::size_t Encoder::trace_count() const noexcept { return impl_->finished ? 0 : impl_->traces.size(); }
std::size_t Encoder::span_count() const noexcept { return impl_->finished ? 0 : impl_->spans; }
std::span<const std::uint8_t> Encoder::finish() { return impl_->finish(); }

}  // namespace strobe::serialize
