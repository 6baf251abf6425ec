// CompactTrace's conversions to plain values.

#include "strobe/model.hpp"

#include "intern.hpp"

namespace strobe {

std::string_view name_text(std::uint32_t id) noexcept { return detail::name_of(id); }

SpanData CompactTrace::span_data(std::size_t i) const {
  const SpanRow& r = spans[i];
  SpanData d;
  if (r.extra != SpanRow::kNoExtra) {
    const SpanExtra& x = extras[r.extra];
    d.kind_name = x.kind_name;
    d.end_thread_id = x.end_thread_id;
    d.segment_of = x.segment_of;
    d.segment_index = x.segment_index;
    d.error_message = x.error_message;
    d.error_data = x.error_data;
    d.input = x.input;
    d.output = x.output;
    d.model = x.model;
    d.tags = x.tags;
    d.has_tokens = x.has_tokens;
    d.tokens = x.tokens;
    d.attrs = x.attrs;
    d.events = x.events;
    d.links = x.links;
  }
  if (d.end_thread_id == 0 && !(r.flags & kSpanIncomplete)) d.end_thread_id = r.thread_id;  // 0: it never ended
  d.span_id = r.span_id;
  d.parent_id = r.parent_id;
  d.name = std::string(name_text(r.name));
  d.kind = r.kind;
  d.start_ns = r.start_ns;
  d.end_ns = r.end_ns;
  d.status = r.status;
  d.thread_id = r.thread_id;
  d.group = r.group;
  d.flags = r.flags;
  return d;
}

AssembledTrace CompactTrace::to_assembled() const {
  AssembledTrace t;
  t.trace_id = trace_id;
  t.root_name = std::string(name_text(root_name));
  t.service_name = std::string(service_name);
  t.process_id = process_id;
  t.part = part;
  t.partial = partial;
  t.spans.reserve(spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) t.spans.push_back(span_data(i));
  t.groups = groups;
  t.chains = chains;
  t.drops_since_previous = drops_since_previous;
  t.thread_names = thread_names;
  return t;
}

void CompactTrace::clear() noexcept {
  trace_id = {};
  root_name = 0;
  part = 0;
  partial = false;
  spans.clear();
  extras.clear();
  groups.clear();
  chains.clear();
  drops_since_previous = {};
  thread_names.clear();
}

}  // namespace strobe
