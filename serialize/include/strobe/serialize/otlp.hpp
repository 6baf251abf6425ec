#pragma once
// OpenTelemetry OTLP for strobe traces: one mapping (span names and attributes under the
// GenAI semantic conventions, kinds, events, links between resumed segments, status,
// resource) with two writers, the protobuf encoding of ExportTraceServiceRequest
// (http/protobuf) and its JSON form (http/json, the protobuf JSON mapping: lowercase hex
// ids, 64-bit integers as decimal strings, enums as integers). `strobe export --format
// otlp`, `strobe push` and OtlpSink (otlp_sink.hpp) all write through it. Library
// strobe::otlp.
//
//   strobe::serialize::otlp::RequestWriter w(strobe::serialize::otlp::Protocol::protobuf);
//   w.begin(strobe::serialize::otlp::resource_of(file_info));
//   w.begin_trace(trace);
//   for (std::size_t i = 0; i < trace.spans.size(); ++i) w.add(i);
//   w.end();
//   post(w.data());

#include <strobe/model.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strobe {
struct RecorderInfo;
}

namespace strobe::serialize {
struct FileInfo;
}

namespace strobe::serialize::otlp {

namespace detail {
class ProtoBatch;
}

enum class Protocol : std::uint8_t {
  protobuf,  // "http/protobuf": Content-Type application/x-protobuf
  json,      // "http/json": Content-Type application/json
};
enum class Compression : std::uint8_t { none, gzip };

[[nodiscard]] const char* content_type(Protocol p) noexcept;
// "http/protobuf", "http/json"; parse_protocol accepts those two spellings only.
[[nodiscard]] const char* to_string(Protocol p) noexcept;
[[nodiscard]] bool parse_protocol(std::string_view text, Protocol& out) noexcept;
// "none", "gzip".
[[nodiscard]] const char* to_string(Compression c) noexcept;
[[nodiscard]] bool parse_compression(std::string_view text, Compression& out) noexcept;

// The version every resource names in telemetry.sdk.version and the scope's version.
inline constexpr const char* kVersion = "0.1.0";

// Resource attributes, in order (a key given twice: the first wins).
struct Resource {
  std::vector<Attribute> attributes;
  // Sets key (replacing an earlier value of it) to a string, an integer.
  Resource& set(std::string_view key, std::string_view value);
  Resource& set(std::string_view key, std::int64_t value);
  [[nodiscard]] const Attribute* find(std::string_view key) const noexcept;
};
// service.name, telemetry.sdk.{name=strobe, language=cpp, version}, host.name, process.pid.
[[nodiscard]] Resource resource_of(const FileInfo& info);
[[nodiscard]] Resource resource_of(const RecorderInfo& info);

// The OTLP span name of a span: "chat {model}", "execute_tool {name}", ...; the span's
// own name for kinds without a GenAI operation.
[[nodiscard]] std::string span_name(const SpanData& span);

// Builds one ExportTraceServiceRequest (protobuf), or one TracesData object (JSON: the
// request's JSON form, a line of `strobe export --format otlp`), span by span: one
// ResourceSpans with one ScopeSpans ("strobe"). Not thread-safe; reusable (begin() again
// after end()), keeping its buffers' capacity.
class RequestWriter {
 public:
  explicit RequestWriter(Protocol protocol);
  ~RequestWriter();
  RequestWriter(const RequestWriter&) = delete;
  RequestWriter& operator=(const RequestWriter&) = delete;

  [[nodiscard]] Protocol protocol() const noexcept;
  // Starts a request under this resource (copied).
  void begin(const Resource& resource);
  // The spans added next come from this trace; it must outlive their add() or prepare()
  // calls. A CompactTrace's names are read with name_text().
  void begin_trace(const AssembledTrace& trace);
  void begin_trace(const CompactTrace& trace);
  // Encodes span `index` of the current trace on its own and returns how many bytes
  // append_prepared() would add: a caller can end the request first when it would grow
  // past a limit.
  std::size_t prepare(std::size_t index);
  void append_prepared();
  void add(std::size_t index) {
    prepare(index);
    append_prepared();
  }
  // Appends span `index` when the request stays within `limit` bytes, or holds no span
  // yet: true. Else false, and the span is left prepared: end() this request, begin()
  // the next and append_prepared(). Protobuf writes the span straight into the request
  // (no copy). (OtlpSink's protobuf requests are not built here: their spans are written
  // into libcurl's upload buffer as it reads the body.)
  bool add_within(std::size_t index, std::size_t limit);
  // Spans appended since begin().
  [[nodiscard]] std::size_t span_count() const noexcept;
  // Bytes the request would have if it ended now (within a few bytes for protobuf).
  [[nodiscard]] std::size_t size() const noexcept;
  // Finishes the request; data() is valid until the next begin().
  void end();
  [[nodiscard]] std::string_view data() const noexcept;
  // JSON only, while a request is open: hands out (and forgets) the text written so
  // far, so a long line can be streamed to a file; data() then holds only the rest.
  [[nodiscard]] std::string take_json_text();

 private:
  friend class detail::ProtoBatch;  // OtlpSink's: spans sized first, written later
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// gzip (RFC 1952) of `in`, appended to `out` (cleared first); level 1–9. Throws
// std::runtime_error when zlib fails (out of memory).
void gzip(std::string_view in, std::string& out, int level = 6);

}  // namespace strobe::serialize::otlp
