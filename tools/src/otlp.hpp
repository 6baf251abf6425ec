#pragma once
// OpenTelemetry OTLP/JSON for strobe traces (the protobuf JSON mapping): ids as lowercase
// hex, 64-bit integers and times as decimal strings, enums as integers, lowerCamelCase
// keys; kinds and attributes mapped to the GenAI semantic conventions.

#include <strobe/model.hpp>
#include <strobe/serialize/format.hpp>

#include <string>
#include <unordered_map>

#include "common.hpp"
#include "json.hpp"

namespace strobe::tool::otlp {

inline constexpr int kSpanKindInternal = 1;
inline constexpr int kSpanKindClient = 3;
inline constexpr int kStatusUnset = 0;
inline constexpr int kStatusError = 2;

// The GenAI operation for a kind ("" when none) and the OTLP span name.
inline const char* operation(Kind k) {
  switch (k) {
    case Kind::llm: return "chat";
    case Kind::tool: return "execute_tool";
    case Kind::retrieval: return "retrieval";
    case Kind::agent: return "invoke_agent";
    case Kind::plan: return "plan";
    default: return "";
  }
}

inline std::string span_name(const SpanData& s) {
  const std::string op = operation(s.kind);
  if (op.empty()) return s.name;
  if (s.kind == Kind::llm) return s.model.empty() ? op : op + " " + s.model;
  return op + " " + s.name;
}

template <class W>
void k(W& w, const char* key) {
  w.Key(key);
}
template <class W>
void s(W& w, const std::string& v) {
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

template <class W>
void attr_str(W& w, const char* key, const std::string& v) {
  w.StartObject();
  k(w, "key");
  w.String(key);
  k(w, "value");
  w.StartObject();
  k(w, "stringValue");
  s(w, v);
  w.EndObject();
  w.EndObject();
}
template <class W>
void attr_int(W& w, const char* key, std::int64_t v) {
  w.StartObject();
  k(w, "key");
  w.String(key);
  k(w, "value");
  w.StartObject();
  k(w, "intValue");
  s(w, std::to_string(v));
  w.EndObject();
  w.EndObject();
}
template <class W>
void attr_value(W& w, const std::string& key, const AttrValue& v) {
  w.StartObject();
  k(w, "key");
  s(w, key);
  k(w, "value");
  w.StartObject();
  switch (v.type) {
    case AttrValue::Type::i64: k(w, "intValue"); s(w, std::to_string(v.i)); break;
    case AttrValue::Type::f64: k(w, "doubleValue"); number(w, v.d); break;
    case AttrValue::Type::boolean: k(w, "boolValue"); w.Bool(v.i != 0); break;
    case AttrValue::Type::string: k(w, "stringValue"); s(w, v.s); break;
  }
  w.EndObject();
  w.EndObject();
}

template <class W>
void span(W& w, const AssembledTrace& t, const SpanData& sp, const std::unordered_map<std::uint64_t, std::uint64_t>& previous_segment) {
  const std::string trace_hex = t.trace_id.to_hex();
  w.StartObject();
  k(w, "traceId"); s(w, trace_hex);
  k(w, "spanId"); s(w, hex64(sp.span_id));
  if (sp.parent_id != 0) { k(w, "parentSpanId"); s(w, hex64(sp.parent_id)); }
  k(w, "name"); s(w, span_name(sp));
  k(w, "kind"); w.Int(sp.kind == Kind::llm || sp.kind == Kind::retrieval ? kSpanKindClient : kSpanKindInternal);
  k(w, "startTimeUnixNano"); s(w, std::to_string(sp.start_ns));
  k(w, "endTimeUnixNano"); s(w, std::to_string(sp.end_ns));
  k(w, "attributes");
  w.StartArray();
  const std::string op = operation(sp.kind);
  if (!op.empty()) attr_str(w, "gen_ai.operation.name", op);
  if (!sp.model.empty()) attr_str(w, "gen_ai.request.model", sp.model);
  if (sp.kind == Kind::tool) attr_str(w, "gen_ai.tool.name", sp.name);
  if (sp.kind == Kind::agent) attr_str(w, "gen_ai.agent.name", sp.name);
  if (sp.has_tokens) {
    attr_int(w, "gen_ai.usage.input_tokens", sp.tokens.input);
    attr_int(w, "gen_ai.usage.output_tokens", sp.tokens.output);
    attr_int(w, "gen_ai.usage.cache_read.input_tokens", sp.tokens.cached_input);
  }
  attr_str(w, "strobe.kind", sp.kind == Kind::custom && !sp.kind_name.empty() ? sp.kind_name : to_string(sp.kind));
  // The thread that began it (OpenTelemetry general attributes).
  if (sp.thread_id != 0) attr_int(w, "thread.id", static_cast<std::int64_t>(sp.thread_id));
  if (const std::string_view thread = t.thread_name(sp.thread_id); !thread.empty()) attr_str(w, "thread.name", std::string(thread));
  if (span_name(sp) != sp.name) attr_str(w, "strobe.span.name", sp.name);
  if (!sp.input.empty()) attr_str(w, "strobe.input", sp.input);
  if (!sp.output.empty()) attr_str(w, "strobe.output", sp.output);
  if (sp.status == Status::failed) attr_str(w, "error.type", (sp.flags & kSpanThrown) ? "exception" : "error");
  if (!sp.error_data.empty()) attr_str(w, "strobe.error.data", sp.error_data);
  if (sp.status == Status::incomplete) {
    w.StartObject(); k(w, "key"); w.String("strobe.incomplete"); k(w, "value"); w.StartObject(); k(w, "boolValue"); w.Bool(true); w.EndObject(); w.EndObject();
  }
  if (sp.segment_of != 0) attr_int(w, "strobe.segment.index", sp.segment_index);
  if (!sp.tags.empty()) {
    w.StartObject(); k(w, "key"); w.String("strobe.tags"); k(w, "value"); w.StartObject(); k(w, "arrayValue"); w.StartObject(); k(w, "values"); w.StartArray();
    for (const std::string& tag : sp.tags) { w.StartObject(); k(w, "stringValue"); s(w, tag); w.EndObject(); }
    w.EndArray(); w.EndObject(); w.EndObject(); w.EndObject();
  }
  for (const Attribute& a : sp.attrs) attr_value(w, a.key, a.value);
  w.EndArray();
  if (!sp.events.empty()) {
    k(w, "events");
    w.StartArray();
    for (const SpanEvent& e : sp.events) {
      w.StartObject();
      k(w, "timeUnixNano"); s(w, std::to_string(e.time_ns));
      k(w, "name"); s(w, e.name);
      k(w, "attributes");
      w.StartArray();
      for (const Attribute& a : e.attrs) attr_value(w, a.key, a.value);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  if (auto it = previous_segment.find(sp.span_id); it != previous_segment.end()) {
    k(w, "links");
    w.StartArray();
    w.StartObject();
    k(w, "traceId"); s(w, trace_hex);
    k(w, "spanId"); s(w, hex64(it->second));
    k(w, "attributes");
    w.StartArray();
    attr_str(w, "strobe.link.type", "resumes");
    w.EndArray();
    w.EndObject();
    w.EndArray();
  }
  k(w, "status");
  w.StartObject();
  if (sp.status == Status::failed) {
    k(w, "code"); w.Int(kStatusError);
    if (!sp.error_message.empty()) { k(w, "message"); s(w, sp.error_message); }
  } else {
    k(w, "code"); w.Int(kStatusUnset);
  }
  w.EndObject();
  w.EndObject();
}

// Segment k of a suspended operation links to segment k-1 (or to the first segment
// when the previous one lies in an earlier part of the trace).
inline std::unordered_map<std::uint64_t, std::uint64_t> previous_segments(const AssembledTrace& t) {
  std::unordered_map<std::uint64_t, std::uint64_t> prev;
  for (const SegmentChain& c : t.chains) {
    for (std::size_t i = 0; i < c.segments.size(); ++i) {
      if (i > 0) {
        prev[c.segments[i]] = c.segments[i - 1];
      } else if (c.segments[0] != c.first_span_id) {
        prev[c.segments[0]] = c.first_span_id;
      }
    }
  }
  return prev;
}

// One TracesData object holding the spans [from, to) of t.
template <class W>
void traces_data(W& w, const serialize::FileInfo& info, const AssembledTrace& t, std::size_t from, std::size_t to) {
  const auto prev = previous_segments(t);
  w.StartObject();
  k(w, "resourceSpans");
  w.StartArray();
  w.StartObject();
  k(w, "resource");
  w.StartObject();
  k(w, "attributes");
  w.StartArray();
  attr_str(w, "service.name", info.service_name);
  attr_int(w, "process.pid", info.process_id);
  if (!info.host_name.empty()) attr_str(w, "host.name", info.host_name);
  w.EndArray();
  w.EndObject();
  k(w, "scopeSpans");
  w.StartArray();
  w.StartObject();
  k(w, "scope");
  w.StartObject();
  k(w, "name"); w.String("strobe");
  k(w, "version"); w.String("0.1.0");
  w.EndObject();
  k(w, "spans");
  w.StartArray();
  for (std::size_t i = from; i < to; ++i) span(w, t, t.spans[i], prev);
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
}

}  // namespace strobe::tool::otlp
