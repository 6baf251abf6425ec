#pragma once
// The OTLP protobuf writer of mapping.hpp's calls. Field numbers from the official
// opentelemetry-proto (opentelemetry/proto/trace/v1/trace.proto, common/v1/common.proto,
// resource/v1/resource.proto, collector/trace/v1/trace_service.proto).
//
// Hand-rolled rather than protozero's pbf_writer: into a std::string, protozero appends
// each varint byte by byte and sizes nested messages by moving their bytes back, which
// measured ~300 ns a plain span on the sender thread (strobe_otlp_bench, 1 M spans/s);
// this writer sizes every KeyValue and AnyValue before writing it and writes through a
// raw pointer into room it made beforehand. Every field number here is below 16, so a
// tag is one byte. A plain span of a CompactTrace is written once per template and then
// copied (request_writer.cpp, SpanTemplate); OtlpSink copies it straight into libcurl's
// upload buffer (proto_request.hpp): ~70-85 ns a span on the sender, HTTP included.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mapping.hpp"

namespace strobe::serialize::otlp::detail {

namespace pb {
// ExportTraceServiceRequest
inline constexpr std::uint32_t kRequestResourceSpans = 1;
// ResourceSpans
inline constexpr std::uint32_t kResourceSpansResource = 1;
inline constexpr std::uint32_t kResourceSpansScopeSpans = 2;
// Resource
inline constexpr std::uint32_t kResourceAttributes = 1;
// ScopeSpans
inline constexpr std::uint32_t kScopeSpansScope = 1;
inline constexpr std::uint32_t kScopeSpansSpans = 2;
// InstrumentationScope
inline constexpr std::uint32_t kScopeName = 1;
inline constexpr std::uint32_t kScopeVersion = 2;
// Span
inline constexpr std::uint32_t kSpanTraceId = 1;
inline constexpr std::uint32_t kSpanSpanId = 2;
inline constexpr std::uint32_t kSpanParentSpanId = 4;
inline constexpr std::uint32_t kSpanName = 5;
inline constexpr std::uint32_t kSpanKind = 6;
inline constexpr std::uint32_t kSpanStartTime = 7;  // fixed64
inline constexpr std::uint32_t kSpanEndTime = 8;    // fixed64
inline constexpr std::uint32_t kSpanAttributes = 9;
inline constexpr std::uint32_t kSpanEvents = 11;
inline constexpr std::uint32_t kSpanLinks = 13;
inline constexpr std::uint32_t kSpanStatus = 15;
// Span.Event
inline constexpr std::uint32_t kEventTime = 1;  // fixed64
inline constexpr std::uint32_t kEventName = 2;
inline constexpr std::uint32_t kEventAttributes = 3;
// Span.Link
inline constexpr std::uint32_t kLinkTraceId = 1;
inline constexpr std::uint32_t kLinkSpanId = 2;
inline constexpr std::uint32_t kLinkAttributes = 4;
// Status
inline constexpr std::uint32_t kStatusMessage = 2;
inline constexpr std::uint32_t kStatusCode = 3;
// KeyValue
inline constexpr std::uint32_t kKeyValueKey = 1;
inline constexpr std::uint32_t kKeyValueValue = 2;
// AnyValue
inline constexpr std::uint32_t kAnyString = 1;
inline constexpr std::uint32_t kAnyBool = 2;
inline constexpr std::uint32_t kAnyInt = 3;
inline constexpr std::uint32_t kAnyDouble = 4;
inline constexpr std::uint32_t kAnyArray = 5;
// ArrayValue
inline constexpr std::uint32_t kArrayValues = 1;
}  // namespace pb


// A growing byte buffer written through a raw pointer; `size` bytes are valid.
class PbBuf {
 public:
  explicit PbBuf(std::string& s) : s_(s), n_(s.size()) {}
  ~PbBuf() { s_.resize(n_); }
  PbBuf(const PbBuf&) = delete;
  PbBuf& operator=(const PbBuf&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  // Room for k more bytes.
  char* room(std::size_t k) {
    if (n_ + k > s_.size()) s_.resize(n_ + k + 256);  // beyond the capacity, std::string doubles it
    return s_.data() + n_;
  }
  void advance(std::size_t k) noexcept { n_ += k; }
  char* at(std::size_t offset) noexcept { return s_.data() + offset; }

  static std::size_t varint_size(std::uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 0x80) {
      v >>= 7;
      ++n;
    }
    return n;
  }
  static char* write_varint(char* p, std::uint64_t v) noexcept {
    while (v >= 0x80) {
      *p++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
    return p;
  }

  void tag(std::uint32_t field, int wire) {
    *room(1) = static_cast<char>((field << 3) | static_cast<std::uint32_t>(wire));
    advance(1);
  }
  void varint(std::uint64_t v) {
    char* p = room(10);
    advance(static_cast<std::size_t>(write_varint(p, v) - p));
  }
  void varint_field(std::uint32_t field, std::uint64_t v) {
    char* p = room(11);
    *p = static_cast<char>(field << 3);
    advance(static_cast<std::size_t>(write_varint(p + 1, v) - p));
  }
  void fixed64_field(std::uint32_t field, std::uint64_t v) {
    char* p = room(9);
    *p = static_cast<char>((field << 3) | 1);
    for (int i = 0; i < 8; ++i) p[1 + i] = static_cast<char>((v >> (8 * i)) & 0xff);
    advance(9);
  }
  // A length-delimited field's tag and length; `length` bytes of it must follow.
  void head(std::uint32_t field, std::size_t length) {
    char* p = room(11 + length);  // room for what follows too
    *p = static_cast<char>((field << 3) | 2);
    advance(static_cast<std::size_t>(write_varint(p + 1, length) - p));
  }
  void raw(const void* data, std::size_t n) {
    std::memcpy(room(n), data, n);
    advance(n);
  }
  void bytes_field(std::uint32_t field, std::string_view v) {
    head(field, v.size());
    raw(v.data(), v.size());
  }
  // A nested message of unknown size: open() reserves one length byte, close() writes
  // the length, moving the message's bytes only when it needs more than one.
  std::size_t open(std::uint32_t field) {
    tag(field, 2);
    room(1);
    advance(1);
    return n_;
  }
  void close(std::size_t start) {
    const std::size_t len = n_ - start;
    const std::size_t need = varint_size(len);
    if (need > 1) {
      room(need - 1);
      std::memmove(at(start + need - 1), at(start), len);
      advance(need - 1);
    }
    write_varint(at(start - 1), len);
  }

 private:
  std::string& s_;
  std::size_t n_;
};

// Bytes of a length-delimited field with a one-byte tag.
inline std::size_t delimited_size(std::size_t n) noexcept { return 1 + PbBuf::varint_size(n) + n; }

// Ids are bytes, big-endian: the order in which their hex form is written.
inline void put_id(PbBuf& b, std::uint32_t field, std::uint64_t v) {
  b.head(field, 8);
  char* p = b.room(8);
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
  b.advance(8);
}
inline void put_trace_id(PbBuf& b, std::uint32_t field, const TraceId& t) {
  b.head(field, 16);
  char* p = b.room(16);
  std::uint64_t hi = t.hi, lo = t.lo;
  for (int i = 7; i >= 0; --i, hi >>= 8, lo >>= 8) {
    p[i] = static_cast<char>(hi & 0xff);
    p[8 + i] = static_cast<char>(lo & 0xff);
  }
  b.advance(16);
}

// A KeyValue under `field`: the key, then an AnyValue of `any` bytes the caller writes.
inline void put_kv_head(PbBuf& b, std::uint32_t field, std::string_view key, std::size_t any) {
  b.head(field, delimited_size(key.size()) + delimited_size(any));
  b.bytes_field(pb::kKeyValueKey, key);
  b.head(pb::kKeyValueValue, any);
}
inline void put_kv_string(PbBuf& b, std::uint32_t field, std::string_view key, std::string_view v) {
  put_kv_head(b, field, key, delimited_size(v.size()));
  b.bytes_field(pb::kAnyString, v);
}
inline void put_kv_int(PbBuf& b, std::uint32_t field, std::string_view key, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);  // int64: two's complement, 10 bytes when negative
  put_kv_head(b, field, key, 1 + PbBuf::varint_size(u));
  b.varint_field(pb::kAnyInt, u);
}
inline void put_kv_bool(PbBuf& b, std::uint32_t field, std::string_view key, bool v) {
  put_kv_head(b, field, key, 2);
  b.varint_field(pb::kAnyBool, v ? 1 : 0);
}
inline void put_kv_double(PbBuf& b, std::uint32_t field, std::string_view key, double v) {
  put_kv_head(b, field, key, 9);
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  b.fixed64_field(pb::kAnyDouble, bits);
}
inline void put_kv_value(PbBuf& b, std::uint32_t field, std::string_view key, const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: put_kv_int(b, field, key, v.i); break;
    case AttrValue::Type::f64: put_kv_double(b, field, key, v.d); break;
    case AttrValue::Type::boolean: put_kv_bool(b, field, key, v.i != 0); break;
    case AttrValue::Type::string: put_kv_string(b, field, key, v.s); break;
  }
}

// Writes one Span message's fields into `out` (appended).
class ProtoSpanWriter {
 public:
  explicit ProtoSpanWriter(std::string& out) : b_(out), base_(out.size()) {}

  // Where span_begin() put the start time's 8 bytes (the end time's follow 1 byte
  // later), from where the writer began: a span template patches them there.
  [[nodiscard]] std::size_t start_time_at() const noexcept { return start_at_; }

  void span_begin(const TraceId& trace, std::uint64_t span_id, std::uint64_t parent_id, std::string_view name_head,
                  std::string_view name_tail, int kind, std::int64_t start, std::int64_t end) {
    put_trace_id(b_, pb::kSpanTraceId, trace);
    put_id(b_, pb::kSpanSpanId, span_id);
    if (parent_id != 0) put_id(b_, pb::kSpanParentSpanId, parent_id);
    if (name_tail.empty()) {
      b_.bytes_field(pb::kSpanName, name_head);
    } else {
      b_.head(pb::kSpanName, name_head.size() + 1 + name_tail.size());
      b_.raw(name_head.data(), name_head.size());
      b_.raw(" ", 1);
      b_.raw(name_tail.data(), name_tail.size());
    }
    b_.varint_field(pb::kSpanKind, static_cast<std::uint64_t>(kind));
    start_at_ = b_.size() - base_ + 1;
    b_.fixed64_field(pb::kSpanStartTime, static_cast<std::uint64_t>(start));
    b_.fixed64_field(pb::kSpanEndTime, static_cast<std::uint64_t>(end));
  }
  void attr_str(std::string_view key, std::string_view v) { put_kv_string(b_, pb::kSpanAttributes, key, v); }
  void attr_int(std::string_view key, std::int64_t v) { put_kv_int(b_, pb::kSpanAttributes, key, v); }
  void attr_bool(std::string_view key, bool v) { put_kv_bool(b_, pb::kSpanAttributes, key, v); }
  void attr_value(std::string_view key, const AttrValue& v) { put_kv_value(b_, pb::kSpanAttributes, key, v); }
  void attr_strings(std::string_view key, const std::vector<std::string>& values) {
    std::size_t array = 0;
    for (const std::string& s : values) array += delimited_size(delimited_size(s.size()));
    put_kv_head(b_, pb::kSpanAttributes, key, delimited_size(array));
    b_.head(pb::kAnyArray, array);
    for (const std::string& s : values) {
      b_.head(pb::kArrayValues, delimited_size(s.size()));
      b_.bytes_field(pb::kAnyString, s);
    }
  }
  void event(std::int64_t time, std::string_view name, const std::vector<Attribute>& attrs) {
    const std::size_t e = b_.open(pb::kSpanEvents);
    b_.fixed64_field(pb::kEventTime, static_cast<std::uint64_t>(time));
    b_.bytes_field(pb::kEventName, name);
    for (const Attribute& a : attrs) put_kv_value(b_, pb::kEventAttributes, a.key, a.value);
    b_.close(e);
  }
  void link(const TraceId& trace, std::uint64_t span_id, std::string_view key, std::string_view value) {
    const std::size_t l = b_.open(pb::kSpanLinks);
    put_trace_id(b_, pb::kLinkTraceId, trace);
    put_id(b_, pb::kLinkSpanId, span_id);
    put_kv_string(b_, pb::kLinkAttributes, key, value);
    b_.close(l);
  }
  void status(int code, std::string_view message) {
    // An empty Status (unset, no message) is left out; readers see the default: unset.
    if (code == 0 && message.empty()) return;
    const std::size_t st = b_.open(pb::kSpanStatus);
    if (!message.empty()) b_.bytes_field(pb::kStatusMessage, message);
    if (code != 0) b_.varint_field(pb::kStatusCode, static_cast<std::uint64_t>(code));
    b_.close(st);
  }
  void span_end() {}

 private:
  PbBuf b_;
  std::size_t base_;
  std::size_t start_at_ = 0;
};

}  // namespace strobe::serialize::otlp::detail
