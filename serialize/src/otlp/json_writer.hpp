#pragma once
// The OTLP/JSON writer of mapping.hpp's calls: the protobuf JSON mapping (lowerCamelCase
// keys, ids as lowercase hex, 64-bit integers and times as decimal strings, enums as
// integers; NaN and infinities as "NaN", "Infinity", "-Infinity").

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mapping.hpp"

namespace strobe::serialize::otlp::detail {

inline void append_hex(std::string& out, std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i, v >>= 4) buf[i] = kHex[v & 15];
  out.append(buf, 16);
}

inline void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

inline void append_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append(std::isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  out.append(s);
  if (s.find_first_of(".e") == std::string_view::npos) out.append(".0");  // stays a double for any reader
}

class JsonSpanWriter {
 public:
  explicit JsonSpanWriter(std::string& out) : out_(out) {}

  void span_begin(const TraceId& trace, std::uint64_t span_id, std::uint64_t parent_id, std::string_view name_head,
                  std::string_view name_tail, int kind, std::int64_t start, std::int64_t end) {
    out_.append(R"({"traceId":")");
    append_hex(out_, trace.hi);
    append_hex(out_, trace.lo);
    out_.append(R"(","spanId":")");
    append_hex(out_, span_id);
    if (parent_id != 0) {
      out_.append(R"(","parentSpanId":")");
      append_hex(out_, parent_id);
    }
    out_.append(R"(","name":)");
    if (name_tail.empty()) {
      append_json_string(out_, name_head);
    } else {
      name_.assign(name_head);
      name_.push_back(' ');
      name_.append(name_tail);
      append_json_string(out_, name_);
    }
    out_.append(R"(,"kind":)");
    append_int(out_, kind);
    out_.append(R"(,"startTimeUnixNano":")");
    append_int(out_, start);
    out_.append(R"(","endTimeUnixNano":")");
    append_int(out_, end);
    out_.append(R"(","attributes":[)");
    first_ = true;
    section_ = Section::attributes;
  }

  void attr_str(std::string_view key, std::string_view v) {
    key_open(key);
    out_.append(R"("stringValue":)");
    append_json_string(out_, v);
    out_.append("}}");
  }
  void attr_int(std::string_view key, std::int64_t v) {
    key_open(key);
    out_.append(R"("intValue":")");
    append_int(out_, v);
    out_.append("\"}}");
  }
  void attr_bool(std::string_view key, bool v) {
    key_open(key);
    out_.append(v ? R"("boolValue":true}})" : R"("boolValue":false}})");
  }
  void attr_double(std::string_view key, double v) {
    key_open(key);
    out_.append(R"("doubleValue":)");
    append_double(out_, v);
    out_.append("}}");
  }
  void attr_value(std::string_view key, const AttrValue& v) {
    switch (v.type) {
      case AttrValue::Type::i64: attr_int(key, v.i); break;
      case AttrValue::Type::f64: attr_double(key, v.d); break;
      case AttrValue::Type::boolean: attr_bool(key, v.i != 0); break;
      case AttrValue::Type::string: attr_str(key, v.s); break;
    }
  }
  void attr_strings(std::string_view key, const std::vector<std::string>& values) {
    key_open(key);
    out_.append(R"("arrayValue":{"values":[)");
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) out_.push_back(',');
      out_.append(R"({"stringValue":)");
      append_json_string(out_, values[i]);
      out_.push_back('}');
    }
    out_.append("]}}}");
  }

  void event(std::int64_t time, std::string_view name, const std::vector<Attribute>& attrs) {
    enter(Section::events, R"(],"events":[)");
    out_.append(R"({"timeUnixNano":")");
    append_int(out_, time);
    out_.append(R"(","name":)");
    append_json_string(out_, name);
    out_.append(R"(,"attributes":[)");
    const Section outer = section_;
    first_ = true;
    for (const Attribute& a : attrs) attr_value(a.key, a.value);
    section_ = outer;
    first_ = false;
    out_.append("]}");
  }

  void link(const TraceId& trace, std::uint64_t span_id, std::string_view key, std::string_view value) {
    enter(Section::links, R"(],"links":[)");
    out_.append(R"({"traceId":")");
    append_hex(out_, trace.hi);
    append_hex(out_, trace.lo);
    out_.append(R"(","spanId":")");
    append_hex(out_, span_id);
    out_.append(R"(","attributes":[)");
    first_ = true;
    attr_str(key, value);
    first_ = false;
    out_.append("]}");
  }

  void status(int code, std::string_view message) {
    out_.append(R"(],"status":{"code":)");
    append_int(out_, code);
    if (!message.empty()) {
      out_.append(R"(,"message":)");
      append_json_string(out_, message);
    }
    out_.push_back('}');
    section_ = Section::done;
  }
  void span_end() { out_.push_back('}'); }

  // Resource attributes (the mapping's attr calls outside a span).
  void begin_list() {
    first_ = true;
    section_ = Section::attributes;
  }

 private:
  enum class Section : std::uint8_t { attributes, events, links, done };

  void key_open(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.append(R"({"key":)");
    append_json_string(out_, key);
    out_.append(R"(,"value":{)");
  }
  // Closes the array before and opens the section's array once, then separates items.
  void enter(Section s, const char* opener) {
    if (section_ != s) {
      out_.append(opener);
      section_ = s;
      first_ = true;
    }
    if (!first_) out_.push_back(',');
    first_ = false;
  }

  std::string& out_;
  std::string name_;
  bool first_ = true;
  Section section_ = Section::attributes;
};

}  // namespace strobe::serialize::otlp::detail
