#pragma once
// The OTLP protobuf writer of mapping.hpp's calls, with protozero. Field numbers from the
// official opentelemetry-proto (opentelemetry/proto/trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto,
// collector/trace/v1/trace_service.proto).
//
// A KeyValue and its AnyValue are written with their sizes computed first, so protozero
// writes each length once and never moves bytes back.

#include <protozero/pbf_writer.hpp>
#include <protozero/varint.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mapping.hpp"

namespace strobe::serialize::otlp::detail {

namespace pb {
// ExportTraceServiceRequest
inline constexpr protozero::pbf_tag_type kRequestResourceSpans = 1;
// ResourceSpans
inline constexpr protozero::pbf_tag_type kResourceSpansResource = 1;
inline constexpr protozero::pbf_tag_type kResourceSpansScopeSpans = 2;
// Resource
inline constexpr protozero::pbf_tag_type kResourceAttributes = 1;
// ScopeSpans
inline constexpr protozero::pbf_tag_type kScopeSpansScope = 1;
inline constexpr protozero::pbf_tag_type kScopeSpansSpans = 2;
// InstrumentationScope
inline constexpr protozero::pbf_tag_type kScopeName = 1;
inline constexpr protozero::pbf_tag_type kScopeVersion = 2;
// Span
inline constexpr protozero::pbf_tag_type kSpanTraceId = 1;
inline constexpr protozero::pbf_tag_type kSpanSpanId = 2;
inline constexpr protozero::pbf_tag_type kSpanParentSpanId = 4;
inline constexpr protozero::pbf_tag_type kSpanName = 5;
inline constexpr protozero::pbf_tag_type kSpanKind = 6;
inline constexpr protozero::pbf_tag_type kSpanStartTime = 7;  // fixed64
inline constexpr protozero::pbf_tag_type kSpanEndTime = 8;    // fixed64
inline constexpr protozero::pbf_tag_type kSpanAttributes = 9;
inline constexpr protozero::pbf_tag_type kSpanEvents = 11;
inline constexpr protozero::pbf_tag_type kSpanLinks = 13;
inline constexpr protozero::pbf_tag_type kSpanStatus = 15;
// Span.Event
inline constexpr protozero::pbf_tag_type kEventTime = 1;  // fixed64
inline constexpr protozero::pbf_tag_type kEventName = 2;
inline constexpr protozero::pbf_tag_type kEventAttributes = 3;
// Span.Link
inline constexpr protozero::pbf_tag_type kLinkTraceId = 1;
inline constexpr protozero::pbf_tag_type kLinkSpanId = 2;
inline constexpr protozero::pbf_tag_type kLinkAttributes = 4;
// Status
inline constexpr protozero::pbf_tag_type kStatusMessage = 2;
inline constexpr protozero::pbf_tag_type kStatusCode = 3;
// KeyValue
inline constexpr protozero::pbf_tag_type kKeyValueKey = 1;
inline constexpr protozero::pbf_tag_type kKeyValueValue = 2;
// AnyValue
inline constexpr protozero::pbf_tag_type kAnyString = 1;
inline constexpr protozero::pbf_tag_type kAnyBool = 2;
inline constexpr protozero::pbf_tag_type kAnyInt = 3;
inline constexpr protozero::pbf_tag_type kAnyDouble = 4;
inline constexpr protozero::pbf_tag_type kAnyArray = 5;
// ArrayValue
inline constexpr protozero::pbf_tag_type kArrayValues = 1;
}  // namespace pb

// Bytes of a length-delimited field with a one-byte tag (every field number here is < 16).
inline std::size_t delimited_size(std::size_t n) noexcept {
  return 1 + static_cast<std::size_t>(protozero::length_of_varint(n)) + n;
}

// Ids are bytes, big-endian: the order in which their hex form is written.
inline void put_id(protozero::pbf_writer& w, protozero::pbf_tag_type tag, std::uint64_t v) {
  char b[8];
  for (int i = 7; i >= 0; --i, v >>= 8) b[i] = static_cast<char>(v & 0xff);
  w.add_bytes(tag, b, sizeof b);
}
inline void put_trace_id(protozero::pbf_writer& w, protozero::pbf_tag_type tag, const TraceId& t) {
  char b[16];
  std::uint64_t hi = t.hi, lo = t.lo;
  for (int i = 7; i >= 0; --i, hi >>= 8, lo >>= 8) {
    b[i] = static_cast<char>(hi & 0xff);
    b[8 + i] = static_cast<char>(lo & 0xff);
  }
  w.add_bytes(tag, b, sizeof b);
}

// KeyValue fields in `parent` under `tag`.
inline void put_kv_string(protozero::pbf_writer& parent, protozero::pbf_tag_type tag, std::string_view key, std::string_view v) {
  const std::size_t any = delimited_size(v.size());
  protozero::pbf_writer kv(parent, tag, delimited_size(key.size()) + delimited_size(any));
  kv.add_string(pb::kKeyValueKey, key.data(), key.size());
  protozero::pbf_writer av(kv, pb::kKeyValueValue, any);
  av.add_string(pb::kAnyString, v.data(), v.size());
}
inline void put_kv_int(protozero::pbf_writer& parent, protozero::pbf_tag_type tag, std::string_view key, std::int64_t v) {
  const std::size_t any = 1 + static_cast<std::size_t>(protozero::length_of_varint(static_cast<std::uint64_t>(v)));
  protozero::pbf_writer kv(parent, tag, delimited_size(key.size()) + delimited_size(any));
  kv.add_string(pb::kKeyValueKey, key.data(), key.size());
  protozero::pbf_writer av(kv, pb::kKeyValueValue, any);
  av.add_int64(pb::kAnyInt, v);
}
inline void put_kv_bool(protozero::pbf_writer& parent, protozero::pbf_tag_type tag, std::string_view key, bool v) {
  protozero::pbf_writer kv(parent, tag, delimited_size(key.size()) + delimited_size(2));
  kv.add_string(pb::kKeyValueKey, key.data(), key.size());
  protozero::pbf_writer av(kv, pb::kKeyValueValue, 2);
  av.add_bool(pb::kAnyBool, v);
}
inline void put_kv_double(protozero::pbf_writer& parent, protozero::pbf_tag_type tag, std::string_view key, double v) {
  protozero::pbf_writer kv(parent, tag, delimited_size(key.size()) + delimited_size(9));
  kv.add_string(pb::kKeyValueKey, key.data(), key.size());
  protozero::pbf_writer av(kv, pb::kKeyValueValue, 9);
  av.add_double(pb::kAnyDouble, v);
}
inline void put_kv_value(protozero::pbf_writer& parent, protozero::pbf_tag_type tag, std::string_view key, const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: put_kv_int(parent, tag, key, v.i); break;
    case AttrValue::Type::f64: put_kv_double(parent, tag, key, v.d); break;
    case AttrValue::Type::boolean: put_kv_bool(parent, tag, key, v.i != 0); break;
    case AttrValue::Type::string: put_kv_string(parent, tag, key, v.s); break;
  }
}

// Writes one Span message's fields into `out` (appended).
class ProtoSpanWriter {
 public:
  explicit ProtoSpanWriter(std::string& out) : w_(out) {}

  void span_begin(const TraceId& trace, std::uint64_t span_id, std::uint64_t parent_id, std::string_view name_head,
                  std::string_view name_tail, int kind, std::int64_t start, std::int64_t end) {
    put_trace_id(w_, pb::kSpanTraceId, trace);
    put_id(w_, pb::kSpanSpanId, span_id);
    if (parent_id != 0) put_id(w_, pb::kSpanParentSpanId, parent_id);
    if (name_tail.empty()) {
      w_.add_string(pb::kSpanName, name_head.data(), name_head.size());
    } else {
      w_.add_bytes_vectored(pb::kSpanName, name_head, std::string_view(" "), name_tail);
    }
    w_.add_enum(pb::kSpanKind, kind);
    w_.add_fixed64(pb::kSpanStartTime, static_cast<std::uint64_t>(start));
    w_.add_fixed64(pb::kSpanEndTime, static_cast<std::uint64_t>(end));
  }
  void attr_str(std::string_view key, std::string_view v) { put_kv_string(w_, pb::kSpanAttributes, key, v); }
  void attr_int(std::string_view key, std::int64_t v) { put_kv_int(w_, pb::kSpanAttributes, key, v); }
  void attr_bool(std::string_view key, bool v) { put_kv_bool(w_, pb::kSpanAttributes, key, v); }
  void attr_value(std::string_view key, const AttrValue& v) { put_kv_value(w_, pb::kSpanAttributes, key, v); }
  void attr_strings(std::string_view key, const std::vector<std::string>& values) {
    protozero::pbf_writer kv(w_, pb::kSpanAttributes);
    kv.add_string(pb::kKeyValueKey, key.data(), key.size());
    protozero::pbf_writer av(kv, pb::kKeyValueValue);
    protozero::pbf_writer array(av, pb::kAnyArray);
    for (const std::string& s : values) {
      protozero::pbf_writer item(array, pb::kArrayValues, delimited_size(s.size()));
      item.add_string(pb::kAnyString, s);
    }
  }
  void event(std::int64_t time, std::string_view name, const std::vector<Attribute>& attrs) {
    protozero::pbf_writer e(w_, pb::kSpanEvents);
    e.add_fixed64(pb::kEventTime, static_cast<std::uint64_t>(time));
    e.add_string(pb::kEventName, name.data(), name.size());
    for (const Attribute& a : attrs) put_kv_value(e, pb::kEventAttributes, a.key, a.value);
  }
  void link(const TraceId& trace, std::uint64_t span_id, std::string_view key, std::string_view value) {
    protozero::pbf_writer l(w_, pb::kSpanLinks);
    put_trace_id(l, pb::kLinkTraceId, trace);
    put_id(l, pb::kLinkSpanId, span_id);
    put_kv_string(l, pb::kLinkAttributes, key, value);
  }
  void status(int code, std::string_view message) {
    // An empty Status (unset, no message) is left out; readers see the default: unset.
    if (code == 0 && message.empty()) return;
    protozero::pbf_writer st(w_, pb::kSpanStatus);
    if (!message.empty()) st.add_string(pb::kStatusMessage, message.data(), message.size());
    if (code != 0) st.add_enum(pb::kStatusCode, code);
  }
  void span_end() {}

 private:
  protozero::pbf_writer w_;
};

}  // namespace strobe::serialize::otlp::detail
