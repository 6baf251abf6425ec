// RequestWriter: the request around the spans (ResourceSpans, Resource, ScopeSpans) and
// the two writers of mapping.hpp's calls; gzip; resources.

#include <strobe/serialize/format.hpp>
#include <strobe/serialize/otlp.hpp>
#include <strobe/sink.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <unordered_map>

#include "otlp/json_writer.hpp"
#include "otlp/mapping.hpp"
#include "otlp/proto_request.hpp"
#include "otlp/proto_writer.hpp"

namespace strobe::serialize::otlp {

const char* content_type(Protocol p) noexcept {
  return p == Protocol::protobuf ? "application/x-protobuf" : "application/json";
}
const char* to_string(Protocol p) noexcept { return p == Protocol::protobuf ? "http/protobuf" : "http/json"; }
bool parse_protocol(std::string_view text, Protocol& out) noexcept {
  if (text == "http/protobuf") {
    out = Protocol::protobuf;
  } else if (text == "http/json") {
    out = Protocol::json;
  } else {
    return false;
  }
  return true;
}
const char* to_string(Compression c) noexcept { return c == Compression::gzip ? "gzip" : "none"; }
bool parse_compression(std::string_view text, Compression& out) noexcept {
  if (text == "gzip") {
    out = Compression::gzip;
  } else if (text == "none") {
    out = Compression::none;
  } else {
    return false;
  }
  return true;
}

Resource& Resource::set(std::string_view key, std::string_view value) {
  AttrValue v;
  v.type = AttrValue::Type::string;
  v.s = std::string(value);
  for (Attribute& a : attributes)
    if (a.key == key) {
      a.value = std::move(v);
      return *this;
    }
  attributes.push_back(Attribute{std::string(key), std::move(v), false});
  return *this;
}
Resource& Resource::set(std::string_view key, std::int64_t value) {
  AttrValue v;
  v.type = AttrValue::Type::i64;
  v.i = value;
  for (Attribute& a : attributes)
    if (a.key == key) {
      a.value = v;
      return *this;
    }
  attributes.push_back(Attribute{std::string(key), v, false});
  return *this;
}
const Attribute* Resource::find(std::string_view key) const noexcept {
  for (const Attribute& a : attributes)
    if (a.key == key) return &a;
  return nullptr;
}

namespace {
Resource make_resource(const std::string& service, std::uint32_t pid, const std::string& host) {
  Resource r;
  r.set("service.name", service);
  r.set("process.pid", static_cast<std::int64_t>(pid));
  if (!host.empty()) r.set("host.name", host);
  r.set("telemetry.sdk.name", "strobe");
  r.set("telemetry.sdk.language", "cpp");
  r.set("telemetry.sdk.version", kVersion);
  return r;
}
}  // namespace

Resource resource_of(const FileInfo& info) { return make_resource(info.service_name, info.process_id, info.host_name); }
Resource resource_of(const RecorderInfo& info) { return make_resource(info.service_name, info.process_id, info.host_name); }

std::string span_name(const SpanData& span) {
  const detail::NameParts n = detail::name_parts(span.kind, span.name, span.model);
  std::string out(n.head);
  if (!n.tail.empty()) {
    out.push_back(' ');
    out.append(n.tail);
  }
  return out;
}

namespace {
// A plain span's Span message (a SpanRow without extras that resumes nothing) depends,
// beside its ids and times, only on its name, kind, status, flags, thread and whether it
// has a parent; the ids and times are fixed-width and sit at fixed places. So such a span
// is written as a copy of a template with those bytes written over: an interned name's
// text, the attribute keys and the thread's attributes are encoded once, not per span.
// map_span() itself makes the template, so the bytes are those of the general path.
}  // namespace
namespace detail {
struct SpanTemplate {
  bool valid = false;
  bool has_parent = false;
  Kind kind = Kind::span;
  Status status = Status::ok;
  std::uint32_t name = 0;
  std::uint32_t flags = 0;
  std::uint64_t thread_id = 0;
  std::uint64_t checked_in = 0;  // the trace (Impl::traces) whose thread name it matches
  std::uint64_t pinned = 0;      // the batch (Impl::pin) whose spans it will be written for
  std::string thread_name;
  std::string bytes;          // ScopeSpans.spans' tag and length, then the Span
  std::size_t span_at = 0;    // of the Span in bytes
  std::size_t start_at = 0;   // ProtoSpanWriter::start_time_at()

  [[nodiscard]] bool fits(const SpanRow& r) const noexcept {
    return valid && r.name == name && r.thread_id == thread_id && r.kind == kind && r.status == status &&
           r.flags == flags && (r.parent_id != 0) == has_parent;
  }
};
}  // namespace detail
using detail::SpanTemplate;
namespace {
// Span.trace_id is the first field (tag, length, 16 bytes), span_id the second,
// parent_span_id the third when there is one: see ProtoSpanWriter::span_begin().
constexpr std::size_t kTraceIdAt = 2;
constexpr std::size_t kSpanIdAt = kTraceIdAt + 16 + 2;
constexpr std::size_t kParentIdAt = kSpanIdAt + 8 + 2;
// Direct-mapped: a program has few (name, kind, thread) combinations at a time; a
// collision costs one map_span().
constexpr std::size_t kTemplates = 256;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_head(std::string& out, std::uint32_t tag, std::size_t length) {
  out.push_back(static_cast<char>((tag << 3) | 2));
  put_varint(out, length);
}
void put_be64(char* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
void put_le64(char* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
}  // namespace

struct RequestWriter::Impl {
  Protocol protocol;
  std::string body;      // protobuf: a gap for the request's head, then the Span fields
  std::string span;      // the span prepare() encoded
  std::string scratch;   // the mapping's (message arrays)
  std::string scratch_span;  // a span template's Span
  std::string resource;  // protobuf: Resource's fields; JSON: its attributes array's items
  std::size_t gap = 0;
  std::size_t start = 0;  // of data() in body
  std::size_t spans = 0;
  bool open = false;
  const AssembledTrace* assembled = nullptr;
  const CompactTrace* compact = nullptr;
  std::unordered_map<std::uint64_t, std::uint64_t> resumes;  // segment -> the one it resumes
  // Protobuf, CompactTrace: plain spans' templates, kept across traces and requests (name
  // ids are the process's); the current trace's id as Span.trace_id's bytes.
  std::unique_ptr<std::array<SpanTemplate, kTemplates>> templates;
  std::uint64_t traces = 0;  // begin_trace() calls
  // Non-zero: a detail::ProtoBatch's, whose spans are written from their templates only
  // when libcurl asks for them; a template they use is not replaced until the next batch.
  std::uint64_t pin = 0;
  char trace_id_bytes[16] = {};

  // The template of plain span `index` (row r) of the compact trace, made when missing;
  // nullptr when its place holds another that this batch's spans use (pin).
  const SpanTemplate* template_for(std::size_t index, const SpanRow& r) {
    if (!templates) templates = std::make_unique<std::array<SpanTemplate, kTemplates>>();
    const std::uint64_t h = (r.name * 0x9e3779b97f4a7c15ull) ^ (r.thread_id * 0xc2b2ae3d27d4eb4full) ^
                            (static_cast<std::uint64_t>(r.kind) << 8) ^ (static_cast<std::uint64_t>(r.status) << 16) ^
                            (r.parent_id != 0 ? 1u : 0u);
    SpanTemplate& t = (*templates)[(h ^ (h >> 29)) % kTemplates];
    if (t.fits(r)) {
      if (t.checked_in == traces || thread_name_of(r.thread_id) == t.thread_name) {
        t.checked_in = traces;
        t.pinned = pin;
        return &t;
      }
    }
    if (pin != 0 && t.valid && t.pinned == pin) return nullptr;
    detail::SpanIn in;
    TraceId trace;
    span_in(index, in, trace);
    scratch_span.clear();
    {
      detail::ProtoSpanWriter w(scratch_span);  // sizes scratch_span when it goes
      detail::map_span(w, trace, in, scratch);
      t.start_at = w.start_time_at();
    }
    t.bytes.clear();
    put_head(t.bytes, detail::pb::kScopeSpansSpans, scratch_span.size());
    t.span_at = t.bytes.size();
    t.bytes.append(scratch_span);
    t.valid = true;
    t.has_parent = r.parent_id != 0;
    t.kind = r.kind;
    t.status = r.status;
    t.name = r.name;
    t.flags = r.flags;
    t.thread_id = r.thread_id;
    t.thread_name.assign(in.thread_name);
    t.checked_in = traces;
    t.pinned = pin;
    return &t;
  }
  // A copy of t's bytes at p becomes row r's Span.
  void patch(char* p, const SpanTemplate& t, const SpanRow& r) const noexcept {
    std::memcpy(p + kTraceIdAt, trace_id_bytes, 16);
    put_be64(p + kSpanIdAt, r.span_id);
    if (r.parent_id != 0) put_be64(p + kParentIdAt, r.parent_id);
    put_le64(p + t.start_at, static_cast<std::uint64_t>(r.start_ns));
    put_le64(p + t.start_at + 9, static_cast<std::uint64_t>(r.end_ns));
  }
  std::string_view thread_name_of(std::uint64_t thread_id) const noexcept {
    for (const ThreadName& n : compact->thread_names)
      if (n.thread_id == thread_id) return n.name;
    return {};
  }

  void links_of(const std::vector<SegmentChain>& chains) {
    resumes.clear();
    // Segment k of a suspended operation links to segment k-1 (or to the first segment
    // when the previous one lies in an earlier part of the trace).
    for (const SegmentChain& c : chains)
      for (std::size_t i = 0; i < c.segments.size(); ++i) {
        if (i > 0) {
          resumes[c.segments[i]] = c.segments[i - 1];
        } else if (c.segments[0] != c.first_span_id) {
          resumes[c.segments[0]] = c.first_span_id;
        }
      }
  }
  void span_in(std::size_t index, detail::SpanIn& in, TraceId& trace) const;
  void put_span(std::string& out, std::size_t index);
  std::uint64_t resumed_by(std::uint64_t span_id) const {
    if (resumes.empty()) return 0;
    auto it = resumes.find(span_id);
    return it == resumes.end() ? 0 : it->second;
  }
};

RequestWriter::RequestWriter(Protocol protocol) : impl_(std::make_unique<Impl>()) { impl_->protocol = protocol; }
RequestWriter::~RequestWriter() = default;

Protocol RequestWriter::protocol() const noexcept { return impl_->protocol; }

namespace {
constexpr std::string_view kScopeName = "strobe";

std::size_t scope_size() {
  return detail::delimited_size(kScopeName.size()) + detail::delimited_size(std::strlen(kVersion));
}
}  // namespace

void RequestWriter::begin(const Resource& resource) {
  Impl& m = *impl_;
  m.body.clear();
  m.resource.clear();
  m.spans = 0;
  m.start = 0;
  m.open = true;
  if (m.protocol == Protocol::protobuf) {
    detail::put_resource(resource, m.resource);
    m.gap = detail::head_bound(m.resource.size());
    m.body.assign(m.gap, '\0');
  } else {
    m.body.append(R"({"resourceSpans":[{"resource":{"attributes":[)");
    detail::JsonSpanWriter w(m.body);
    w.begin_list();
    for (const Attribute& a : resource.attributes) w.attr_value(a.key, a.value);
    m.body.append(R"(]},"scopeSpans":[{"scope":{"name":")");
    m.body.append(kScopeName);
    m.body.append(R"(","version":")");
    m.body.append(kVersion);
    m.body.append(R"("},"spans":[)");
  }
}

void RequestWriter::begin_trace(const AssembledTrace& trace) {
  impl_->assembled = &trace;
  impl_->compact = nullptr;
  impl_->links_of(trace.chains);
}
void RequestWriter::begin_trace(const CompactTrace& trace) {
  Impl& m = *impl_;
  m.compact = &trace;
  m.assembled = nullptr;
  m.links_of(trace.chains);
  ++m.traces;
  put_be64(m.trace_id_bytes, trace.trace_id.hi);
  put_be64(m.trace_id_bytes + 8, trace.trace_id.lo);
}

// Span `index` of the current trace as the mapping reads it.
void RequestWriter::Impl::span_in(std::size_t index, detail::SpanIn& in, TraceId& trace) const {
  const Impl& m = *this;
  if (m.assembled) {
    const AssembledTrace& t = *m.assembled;
    const SpanData& s = t.spans[index];
    trace = t.trace_id;
    in.span_id = s.span_id;
    in.parent_id = s.parent_id;
    in.name = s.name;
    in.kind = s.kind;
    in.kind_name = s.kind_name;
    in.start_ns = s.start_ns;
    in.end_ns = s.end_ns;
    in.status = s.status;
    in.flags = s.flags;
    in.thread_id = s.thread_id;
    in.thread_name = t.thread_name(s.thread_id);
    in.error_message = s.error_message;
    in.error_data = s.error_data;
    in.input = s.input;
    in.output = s.output;
    in.model = s.model;
    in.tags = &s.tags;
    in.has_tokens = s.has_tokens;
    in.tokens = s.tokens;
    in.attrs = &s.attrs;
    in.events = &s.events;
    in.links = &s.links;
    in.segment_of = s.segment_of;
    in.segment_index = s.segment_index;
  } else {
    const CompactTrace& t = *m.compact;
    const SpanRow& r = t.spans[index];
    trace = t.trace_id;
    in.span_id = r.span_id;
    in.parent_id = r.parent_id;
    in.name = name_text(r.name);
    in.kind = r.kind;
    in.start_ns = r.start_ns;
    in.end_ns = r.end_ns;
    in.status = r.status;
    in.flags = r.flags;
    in.thread_id = r.thread_id;
    for (const ThreadName& n : t.thread_names)
      if (n.thread_id == r.thread_id) {
        in.thread_name = n.name;
        break;
      }
    if (r.extra != SpanRow::kNoExtra) {
      const SpanExtra& x = t.extras[r.extra];
      in.kind_name = x.kind_name;
      in.error_message = x.error_message;
      in.error_data = x.error_data;
      in.input = x.input;
      in.output = x.output;
      in.model = x.model;
      in.tags = &x.tags;
      in.has_tokens = x.has_tokens;
      in.tokens = x.tokens;
      in.attrs = &x.attrs;
      in.events = &x.events;
      in.links = &x.links;
      in.segment_of = x.segment_of;
      in.segment_index = x.segment_index;
    }
  }
  in.resumes = m.resumed_by(in.span_id);
}

std::size_t RequestWriter::prepare(std::size_t index) {
  Impl& m = *impl_;
  detail::SpanIn in;
  TraceId trace;
  m.span_in(index, in, trace);
  m.span.clear();
  if (m.protocol == Protocol::protobuf) {
    {
      detail::ProtoSpanWriter w(m.span);  // sizes m.span when it goes
      detail::map_span(w, trace, in, m.scratch);
    }
    return detail::delimited_size(m.span.size());
  }
  detail::JsonSpanWriter w(m.span);
  detail::map_span(w, trace, in, m.scratch);
  return m.span.size() + 1;
}

// Span `index` of the current trace, as a ScopeSpans.spans field, appended to out.
void RequestWriter::Impl::put_span(std::string& out, std::size_t index) {
  if (compact) {
    const SpanRow& r = compact->spans[index];
    if (r.extra == SpanRow::kNoExtra && resumed_by(r.span_id) == 0) {
      if (const SpanTemplate* t = template_for(index, r)) {
        const std::size_t at = out.size() + t->span_at;
        out.append(t->bytes);
        patch(out.data() + at, *t, r);
        return;
      }
    }
  }
  // Straight into out: ScopeSpans.spans' tag, two bytes for the length (a span of 128
  // bytes to 16 KiB, the usual, needs exactly two), the Span.
  detail::SpanIn in;
  TraceId trace;
  span_in(index, in, trace);
  const std::size_t at = out.size();
  out.push_back(static_cast<char>((detail::pb::kScopeSpansSpans << 3) | 2));
  out.append(2, '\0');
  {
    detail::ProtoSpanWriter w(out);
    detail::map_span(w, trace, in, scratch);
  }
  const std::size_t length = out.size() - at - 3;
  char* p = out.data() + at + 1;
  if (length < 128) {
    p[0] = static_cast<char>(length);
    std::memmove(p + 1, p + 2, length);
    out.pop_back();
  } else if (length < 16384) {
    p[0] = static_cast<char>((length & 0x7f) | 0x80);
    p[1] = static_cast<char>(length >> 7);
  } else {
    const std::size_t need = detail::PbBuf::varint_size(length);
    out.insert(at + 3, need - 2, '\0');
    detail::PbBuf::write_varint(out.data() + at + 1, length);
  }
}

bool RequestWriter::add_within(std::size_t index, std::size_t limit) {
  Impl& m = *impl_;
  if (m.protocol == Protocol::json) {
    const std::size_t n = prepare(index);
    if (m.spans > 0 && size() + n > limit) return false;
    append_prepared();
    return true;
  }
  const std::size_t at = m.body.size();
  m.put_span(m.body, index);
  if (m.spans > 0 && m.body.size() > limit) {  // for the next request: prepared, without its tag and length
    std::size_t span = at + 1;
    while (static_cast<unsigned char>(m.body[span]) & 0x80) ++span;
    m.span.assign(m.body, span + 1);
    m.body.resize(at);
    return false;
  }
  ++m.spans;
  return true;
}

void RequestWriter::append_prepared() {
  Impl& m = *impl_;
  if (m.protocol == Protocol::protobuf) {
    put_head(m.body, detail::pb::kScopeSpansSpans, m.span.size());
  } else if (m.spans > 0) {
    m.body.push_back(',');
  }
  m.body.append(m.span);
  ++m.spans;
}

std::size_t RequestWriter::span_count() const noexcept { return impl_->spans; }

std::size_t RequestWriter::size() const noexcept {
  const Impl& m = *impl_;
  if (m.protocol == Protocol::protobuf) return m.body.size();  // the gap is about the head's size
  return m.body.size() + 6;
}

void RequestWriter::end() {
  Impl& m = *impl_;
  if (!m.open) return;
  m.open = false;
  if (m.protocol == Protocol::json) {
    m.body.append("]}]}]}");
    m.start = 0;
    return;
  }
  std::string head;
  head.reserve(m.gap);
  detail::put_request_head(m.resource, m.body.size() - m.gap, head);
  m.start = m.gap - head.size();
  std::memcpy(m.body.data() + m.start, head.data(), head.size());
}

namespace detail {

void put_resource(const Resource& resource, std::string& out) {
  PbBuf b(out);
  for (const Attribute& a : resource.attributes) put_kv_value(b, pb::kResourceAttributes, a.key, a.value);
}

// ExportTraceServiceRequest.resource_spans, ResourceSpans.resource (and the Resource),
// ResourceSpans.scope_spans, ScopeSpans.scope (and the scope): at most 11 bytes a tag and
// length.
std::size_t head_bound(std::size_t resource_size) noexcept { return 4 * 11 + resource_size + scope_size(); }

void put_request_head(std::string_view resource_fields, std::size_t spans_bytes, std::string& out) {
  const std::size_t scope_spans = delimited_size(scope_size()) + spans_bytes;
  const std::size_t resource_spans = delimited_size(resource_fields.size()) + delimited_size(scope_spans);
  out.clear();
  put_head(out, pb::kRequestResourceSpans, resource_spans);
  put_head(out, pb::kResourceSpansResource, resource_fields.size());
  out.append(resource_fields);
  put_head(out, pb::kResourceSpansScopeSpans, scope_spans);
  put_head(out, pb::kScopeSpansScope, scope_size());
  put_head(out, pb::kScopeName, kScopeName.size());
  out.append(kScopeName);
  put_head(out, pb::kScopeVersion, std::strlen(kVersion));
  out.append(kVersion);
}

namespace {
// The length of the field (tag, varint length, value) at p, n bytes there; 0: none fits.
std::size_t field_size(const char* p, std::size_t n) noexcept {
  std::size_t length = 0, i = 1;
  for (int shift = 0; i < n && shift < 64; shift += 7) {
    const auto b = static_cast<unsigned char>(p[i++]);
    length |= static_cast<std::size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return length <= n - i ? i + length : 0;
  }
  return 0;
}
}  // namespace

ProtoBatch::ProtoBatch() { clear(); }
ProtoBatch::~ProtoBatch() = default;

void ProtoBatch::clear() {
  parts_.clear();
  plan_.clear();
  other_.clear();
  bytes_ = 0;
  measured_ = nullptr;
  measured_bytes_ = 0;
  ++w_.impl_->pin;  // the templates this batch used may be replaced now
  rewind();
}

void ProtoBatch::begin_trace(const CompactTrace& trace) {
  w_.begin_trace(trace);
  compact_ = &trace;
  assembled_ = nullptr;
}
void ProtoBatch::begin_trace(const AssembledTrace& trace) {
  w_.begin_trace(trace);
  compact_ = nullptr;
  assembled_ = &trace;
}

std::size_t ProtoBatch::measure(std::size_t index) {
  RequestWriter::Impl& m = *w_.impl_;
  index_ = index;
  measured_ = nullptr;
  if (compact_) {
    const SpanRow& r = compact_->spans[index];
    if (r.extra == SpanRow::kNoExtra && m.resumed_by(r.span_id) == 0) {
      // A trace's spans come in runs of one template: the previous span's, when it fits,
      // without hashing.
      const SpanTemplate* last = plan_.empty() ? nullptr : plan_.back();
      measured_ = last && last->fits(r) && last->checked_in == m.traces ? last : m.template_for(index, r);
    }
  }
  if (measured_) {
    measured_bytes_ = measured_->bytes.size();
  } else {  // encoded now, kept for write()
    const std::size_t at = other_.size();
    m.put_span(other_, index);
    measured_bytes_ = other_.size() - at;
  }
  return measured_bytes_;
}

void ProtoBatch::rewind() {
  part_ = row_ = span_ = other_at_ = 0;
  stage_.clear();
  stage_at_ = 0;
}

std::size_t ProtoBatch::write(char* out, std::size_t room) {
  RequestWriter::Impl& m = *w_.impl_;
  std::size_t given = 0;
  if (stage_at_ < stage_.size()) {
    const std::size_t k = std::min(room, stage_.size() - stage_at_);
    std::memcpy(out, stage_.data() + stage_at_, k);
    stage_at_ += k;
    given += k;
    room -= k;
  }
  const char* trace_id = nullptr;
  while (room > 0 && span_ < plan_.size()) {
    const Part& p = parts_[part_];
    if (row_ == p.count) {
      ++part_;
      row_ = 0;
      trace_id = nullptr;
      continue;
    }
    const SpanTemplate* t = plan_[span_];
    const std::size_t n = t ? t->bytes.size() : field_size(other_.data() + other_at_, other_.size() - other_at_);
    char* to = out + given;
    if (n > room) {  // cut: the whole span into stage_, what fits from there
      stage_.resize(n);
      stage_at_ = 0;
      to = stage_.data();
    }
    if (t) {
      if (!trace_id) {
        put_be64(m.trace_id_bytes, p.compact->trace_id.hi);
        put_be64(m.trace_id_bytes + 8, p.compact->trace_id.lo);
        trace_id = m.trace_id_bytes;
      }
      std::memcpy(to, t->bytes.data(), n);
      m.patch(to + t->span_at, *t, p.compact->spans[p.first + row_]);
    } else {
      std::memcpy(to, other_.data() + other_at_, n);
      other_at_ += n;
    }
    ++row_;
    ++span_;
    if (to != out + given) {
      std::memcpy(out + given, stage_.data(), room);
      stage_at_ = room;
      given += room;
      room = 0;
    } else {
      given += n;
      room -= n;
    }
  }
  return given;
}

}  // namespace detail

std::string_view RequestWriter::data() const noexcept {
  const Impl& m = *impl_;
  return std::string_view(m.body).substr(m.start);
}

std::string RequestWriter::take_json_text() {
  if (impl_->protocol != Protocol::json) throw std::logic_error("RequestWriter::take_json_text: a protobuf request");
  return std::exchange(impl_->body, {});
}

void gzip(std::string_view in, std::string& out, int level) {
  out.clear();
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: deflateInit2 failed");
  out.resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const std::size_t produced = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate failed");
  out.resize(produced);
}

}  // namespace strobe::serialize::otlp
