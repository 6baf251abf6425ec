#pragma once
// The one OTLP mapping of a strobe span: which OTLP name, kind, attributes, events,
// links and status it gets. Both writers (json_writer.hpp, proto_writer.hpp) implement
// the calls below; map_span() makes them in the same order for either.
//
//   span_begin(trace, span_id, parent_id, name_head, name_tail, kind, start, end)
//       the OTLP name is name_head, then " " and name_tail when name_tail is not empty
//   attr_str / attr_int / attr_bool / attr_value / attr_strings (key, value)
//   event(time, name, attrs)    after the attributes
//   link(trace, span_id, key, value)   after the events: one link with one attribute
//   status(code, message)
//   span_end()

#include <strobe/model.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strobe::serialize::otlp::detail {

inline constexpr int kSpanKindInternal = 1;
inline constexpr int kSpanKindClient = 3;
inline constexpr int kStatusUnset = 0;
inline constexpr int kStatusError = 2;

// A span as either form of a trace gives it (SpanData, or SpanRow + SpanExtra): views
// into the trace, nothing copied.
struct SpanIn {
  std::uint64_t span_id = 0;
  std::uint64_t parent_id = 0;
  std::string_view name;
  Kind kind = Kind::span;
  std::string_view kind_name;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  Status status = Status::ok;
  std::uint32_t flags = 0;
  std::uint64_t thread_id = 0;
  std::string_view thread_name;
  std::string_view error_message, error_data, input, output, model;
  const std::vector<std::string>* tags = nullptr;
  bool has_tokens = false;
  TokenUsage tokens;
  const std::vector<Attribute>* attrs = nullptr;
  const std::vector<SpanEvent>* events = nullptr;
  std::uint64_t segment_of = 0;
  std::uint32_t segment_index = 0;
  std::uint64_t resumes = 0;  // the segment this one resumes (an OTLP link), 0: none
  const std::vector<SpanLink>* links = nullptr;  // Span::link()
};

// The GenAI operation of a kind ("" when none).
inline std::string_view operation(Kind k) noexcept {
  switch (k) {
    case Kind::llm: return "chat";
    case Kind::tool: return "execute_tool";
    case Kind::retrieval: return "retrieval";
    case Kind::agent: return "invoke_agent";
    case Kind::plan: return "plan";
    default: return "";
  }
}

// The OTLP name as head + " " + tail (tail may be empty): "chat {model}" for a model
// call, "{operation} {name}" for the other GenAI kinds, the span's name otherwise.
struct NameParts {
  std::string_view head, tail;
  [[nodiscard]] bool equals(std::string_view s) const noexcept {
    if (tail.empty()) return s == head;
    return s.size() == head.size() + 1 + tail.size() && s.substr(0, head.size()) == head && s[head.size()] == ' ' &&
           s.substr(head.size() + 1) == tail;
  }
};
inline NameParts name_parts(Kind kind, std::string_view name, std::string_view model) noexcept {
  const std::string_view op = operation(kind);
  if (op.empty()) return {name, {}};
  if (kind == Kind::llm) return {op, model};
  return {op, name};
}

// A JSON string literal of s (RFC 8259 escapes; s is valid UTF-8), appended to out.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\f': out.push_back('f'); break;
      case '\n': out.push_back('n'); break;
      case '\r': out.push_back('r'); break;
      case '\t': out.push_back('t'); break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

// gen_ai.input.messages / gen_ai.output.messages (GenAI semantic conventions: a JSON
// array of messages, each with a role and parts) for a model call's input and output:
// one text part each. The output message's required finish_reason is "error" for a
// failed span, else "stop".
inline void input_messages(std::string& out, std::string_view text) {
  out.assign(R"([{"role":"user","parts":[{"type":"text","content":)");
  append_json_string(out, text);
  out.append("}]}]");
}
inline void output_messages(std::string& out, std::string_view text, bool failed) {
  out.assign(R"([{"role":"assistant","parts":[{"type":"text","content":)");
  append_json_string(out, text);
  out.append(failed ? R"(}],"finish_reason":"error"}])" : R"(}],"finish_reason":"stop"}])");
}

template <class W>
void map_span(W& w, const TraceId& trace, const SpanIn& s, std::string& scratch) {
  const NameParts name = name_parts(s.kind, s.name, s.model);
  const int kind = s.kind == Kind::llm || s.kind == Kind::retrieval ? kSpanKindClient : kSpanKindInternal;
  w.span_begin(trace, s.span_id, s.parent_id, name.head, name.tail, kind, s.start_ns, s.end_ns);
  const std::string_view op = operation(s.kind);
  if (!op.empty()) w.attr_str("gen_ai.operation.name", op);
  if (!s.model.empty()) w.attr_str("gen_ai.request.model", s.model);
  if (s.kind == Kind::tool) w.attr_str("gen_ai.tool.name", s.name);
  if (s.kind == Kind::agent) w.attr_str("gen_ai.agent.name", s.name);
  if (s.has_tokens) {
    w.attr_int("gen_ai.usage.input_tokens", s.tokens.input);
    w.attr_int("gen_ai.usage.output_tokens", s.tokens.output);
    w.attr_int("gen_ai.usage.cache_read.input_tokens", s.tokens.cached_input);
  }
  w.attr_str("strobe.kind", s.kind == Kind::custom && !s.kind_name.empty() ? s.kind_name : std::string_view(to_string(s.kind)));
  // The thread that began it (OpenTelemetry general attributes).
  if (s.thread_id != 0) w.attr_int("thread.id", static_cast<std::int64_t>(s.thread_id));
  if (!s.thread_name.empty()) w.attr_str("thread.name", s.thread_name);
  if (!name.equals(s.name)) w.attr_str("strobe.span.name", s.name);
  // A model call's input and output are its messages; any other span's are strobe's own.
  if (!s.input.empty()) {
    if (s.kind == Kind::llm) {
      input_messages(scratch, s.input);
      w.attr_str("gen_ai.input.messages", scratch);
    } else {
      w.attr_str("strobe.input", s.input);
    }
  }
  if (!s.output.empty()) {
    if (s.kind == Kind::llm) {
      output_messages(scratch, s.output, s.status == Status::failed);
      w.attr_str("gen_ai.output.messages", scratch);
    } else {
      w.attr_str("strobe.output", s.output);
    }
  }
  if (s.status == Status::failed) w.attr_str("error.type", (s.flags & kSpanThrown) ? "exception" : "error");
  if (!s.error_data.empty()) w.attr_str("strobe.error.data", s.error_data);
  if (s.status == Status::incomplete) w.attr_bool("strobe.incomplete", true);
  if (s.segment_of != 0) w.attr_int("strobe.segment.index", s.segment_index);
  if (s.tags && !s.tags->empty()) w.attr_strings("strobe.tags", *s.tags);
  if (s.attrs)
    for (const Attribute& a : *s.attrs) w.attr_value(a.key, a.value);
  if (s.events)
    for (const SpanEvent& e : *s.events) w.event(e.time_ns, e.name, e.attrs);
  if (s.resumes != 0) w.link(trace, s.resumes, "strobe.link.type", "resumes");
  if (s.links)
    for (const SpanLink& l : *s.links) w.link(l.trace_id, l.span_id, "strobe.link.type", "link");
  if (s.status == Status::failed) {
    w.status(kStatusError, s.error_message);
  } else {
    w.status(kStatusUnset, {});
  }
  w.span_end();
}

}  // namespace strobe::serialize::otlp::detail
