#pragma once
// Assembled traces: what the drainer hands to sinks. Plain values, strings resolved,
// times in wall-clock nanoseconds since the Unix epoch.

#include <cstdint>
#include <string>
#include <vector>

#include "strobe/types.hpp"

namespace strobe {

struct AttrValue {
  enum class Type : std::uint8_t { i64, f64, boolean, string };
  Type type = Type::i64;
  std::int64_t i = 0;  // i64, and boolean as 0/1
  double d = 0;
  std::string s;
  friend bool operator==(const AttrValue&, const AttrValue&) = default;
};

struct Attribute {
  std::string key;
  AttrValue value;
  bool truncated = false;  // a string value cut to Config::max_string_bytes
  friend bool operator==(const Attribute&, const Attribute&) = default;
};

struct SpanEvent {
  std::string name;  // "log" for Span::log(), with the text in attribute "message"
  std::int64_t time_ns = 0;
  std::vector<Attribute> attrs;
  friend bool operator==(const SpanEvent&, const SpanEvent&) = default;
};

// Flags on a SpanData.
enum SpanFlags : std::uint32_t {
  kSpanTruncated = 1,     // some string of the span was cut to the maximum length
  kSpanInvalidUtf8 = 2,   // some string held invalid UTF-8, replaced by U+FFFD
  kSpanIncomplete = 4,    // had not ended when handed over; end_ns is the hand-over time
  kSpanLostRecords = 8,   // some of its records were dropped (ring full)
  kSpanSuspended = 16,    // ended by suspend(): the operation waits for resume()
  kSpanThrown = 32,       // an exception escaped its scope
  kSpanOneShot = 64,      // recorded by record_span()
  kSpanTraceRoot = 128,   // began a trace
  kSpanOrphan = 256,      // its parent never arrived; shown under the trace root
};

struct SpanData {
  std::uint64_t span_id = 0;
  std::uint64_t parent_id = 0;  // 0 for a root
  std::string name;
  Kind kind = Kind::span;
  std::string kind_name;  // Kind::custom: the custom kind's name
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  Status status = Status::ok;
  std::string error_message;
  std::string error_data;
  std::string input;
  std::string output;
  std::string model;
  std::vector<std::string> tags;
  bool has_tokens = false;
  TokenUsage tokens;
  std::vector<Attribute> attrs;
  std::vector<SpanEvent> events;
  std::uint64_t thread_id = 0;      // OS thread that began it
  std::uint64_t end_thread_id = 0;  // OS thread that ended it
  // Suspended/resumed operations: every segment names the first one; 0 when not segmented.
  std::uint64_t segment_of = 0;
  std::uint32_t segment_index = 0;
  std::int32_t group = -1;  // index into AssembledTrace::groups, or -1
  std::uint32_t flags = 0;
  [[nodiscard]] std::int64_t duration_ns() const noexcept { return end_ns - start_ns; }
  friend bool operator==(const SpanData&, const SpanData&) = default;
};

// Siblings whose [start, end) intervals overlap, transitively (connected components of
// the overlap graph, two or more members). Touching intervals do not overlap.
struct ParallelGroup {
  std::uint32_t id = 0;
  std::uint64_t parent_id = 0;
  std::vector<std::uint64_t> members;  // in start order
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::uint32_t peak_concurrency = 0;
  friend bool operator==(const ParallelGroup&, const ParallelGroup&) = default;
};

// The segments of one suspended/resumed logical operation, in order.
struct SegmentChain {
  std::uint64_t first_span_id = 0;
  std::vector<std::uint64_t> segments;  // span ids, segment 0 first
  std::int64_t waited_ns = 0;           // total time between segments
  friend bool operator==(const SegmentChain&, const SegmentChain&) = default;
};

struct DropCounts {
  std::uint64_t spans = 0;
  std::uint64_t records = 0;
  friend bool operator==(const DropCounts&, const DropCounts&) = default;
};

struct AssembledTrace {
  TraceId trace_id;
  std::string root_name;
  std::string service_name;
  std::uint32_t process_id = 0;
  // A trace handed over before it completed (flush, or an endless root) comes in numbered
  // parts; `partial` is set on every part but the last.
  std::uint32_t part = 0;
  bool partial = false;
  std::vector<SpanData> spans;  // depth-first, children in start order
  std::vector<ParallelGroup> groups;
  std::vector<SegmentChain> chains;
  DropCounts drops_since_previous;  // drops observed since the previous trace was emitted
  friend bool operator==(const AssembledTrace&, const AssembledTrace&) = default;
};

}  // namespace strobe
