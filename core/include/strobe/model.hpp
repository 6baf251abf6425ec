#pragma once
// Assembled traces: what the drainer hands to sinks, in two forms.
//
//   CompactTrace   what the drainer builds: one 64-byte SpanRow per span (ids, interned
//                  name id, kind, status, times, thread, flags), the rest (attributes,
//                  events, strings, tokens) only for the spans that have any. Sinks that
//                  write or send traces (FileSink) read it directly.
//   AssembledTrace plain values, every string resolved: CompactTrace::to_assembled(). What
//                  Sink::consume() receives by default (CallbackSink, MemorySink, tests).
//
// Times are wall-clock nanoseconds since the Unix epoch.

#include <cstdint>
#include <string>
#include <string_view>
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
  kSpanOrphan = 256,      // its parent id names a span of another trace; a root of its subtree
  // A stand-in for a span whose begin record was dropped (ring full): named "<lost span>",
  // it keeps the span's id so its children stay under their true parent. Its own parent
  // is unknown: it hangs under the trace root (parent_id 0 in a part without the root).
  kSpanPlaceholder = 512,
  // Still open when this part of a long-lived trace was handed over: end_ns is the
  // hand-over time, and the span appears again in a later part (not a loss, not a failure).
  kSpanContinued = 1024,
  // A name or attribute key of the span did not fit the intern table
  // (Stats::names_overflowed): it reads "<too many names>".
  kSpanNameOverflow = 2048,
  // Its begin record found the ring full and was written when it ended (with
  // kSpanLostRecords): what it recorded in between (attributes, events) was dropped.
  kSpanLateBegin = 4096,
  // Running on the thread that crashed when the process crashed (the crash flush): its
  // error message names the signal and address.
  kSpanCrashed = 8192,
};

// A span's link to another span, of this trace or any other (Span::link): a cause that is
// not the parent (the request a batch job serves, the message a consumer handles).
struct SpanLink {
  TraceId trace_id;
  std::uint64_t span_id = 0;
  friend bool operator==(const SpanLink&, const SpanLink&) = default;
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
  std::vector<SpanLink> links;      // in the order they were added
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
  // Spans lost whole: their begin found the ring full, and so did the late begin written at
  // their end (Stats::spans_dropped).
  std::uint64_t spans = 0;
  std::uint64_t records = 0;  // every record not written, begins included
  // Spans assembled but never given to the sinks: the sink queue was full (the sinks fell
  // behind, OverflowPolicy::drop). Counted when the next trace is queued (or, when none
  // is, given to the sinks at the next flush: Sink::lost).
  std::uint64_t sink_spans = 0;
  DropCounts& operator+=(const DropCounts& o) noexcept {
    spans += o.spans;
    records += o.records;
    sink_spans += o.sink_spans;
    return *this;
  }
  friend bool operator==(const DropCounts&, const DropCounts&) = default;
};

// An OS thread's name in a trace: what strobe::set_thread_name() chose, else the name the
// OS gave the thread when it first recorded.
struct ThreadName {
  std::uint64_t thread_id = 0;
  std::string name;
  friend bool operator==(const ThreadName&, const ThreadName&) = default;
};

// The text of an interned name id (CompactTrace's span names, attribute keys, event and
// kind names). Any thread; the view stays valid for the life of the process.
[[nodiscard]] std::string_view name_text(std::uint32_t id) noexcept;

// The fields every span has, in one cache line. Trivially copyable.
struct SpanRow {
  std::uint64_t span_id = 0;
  std::uint64_t parent_id = 0;  // 0 for a root
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::uint64_t thread_id = 0;  // OS thread that began it
  std::uint32_t name = 0;       // interned: name_text(name)
  std::uint32_t flags = 0;      // SpanFlags
  std::uint32_t extra = kNoExtra;  // index into CompactTrace::extras
  std::int32_t group = -1;         // index into CompactTrace::groups, or -1
  Kind kind = Kind::span;
  Status status = Status::ok;
  static constexpr std::uint32_t kNoExtra = 0xffffffffu;
  [[nodiscard]] std::int64_t duration_ns() const noexcept { return end_ns - start_ns; }
  friend bool operator==(const SpanRow&, const SpanRow&) = default;
};

// What only some spans have. Strings are resolved; the names of attributes and events
// are their text.
struct SpanExtra {
  std::string kind_name;            // Kind::custom
  std::uint64_t end_thread_id = 0;  // 0: the thread that began it
  std::uint64_t segment_of = 0;     // see SpanData
  std::uint32_t segment_index = 0;
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
  std::vector<SpanLink> links;
  friend bool operator==(const SpanExtra&, const SpanExtra&) = default;
};

struct AssembledTrace;

// A trace (or part) as the drainer builds it; see the top of this file.
struct CompactTrace {
  TraceId trace_id;
  std::uint32_t root_name = 0;     // interned name id
  std::string_view service_name;   // the recorder's; valid while it runs
  std::uint32_t process_id = 0;
  std::uint32_t part = 0;
  bool partial = false;
  std::vector<SpanRow> spans;      // depth-first, children in start order
  std::vector<SpanExtra> extras;   // SpanRow::extra indexes it
  std::vector<ParallelGroup> groups;
  std::vector<SegmentChain> chains;
  DropCounts drops_since_previous;
  // The names of the threads its spans began or ended on, those that have one, by
  // thread id.
  std::vector<ThreadName> thread_names;

  // Plain values: every string resolved, each span's extras folded in.
  [[nodiscard]] AssembledTrace to_assembled() const;
  // The span at i with its extras folded in.
  [[nodiscard]] SpanData span_data(std::size_t i) const;
  // Empties it, keeping the vectors' capacity.
  void clear() noexcept;
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
  // The names of the threads its spans began or ended on, those that have one, by
  // thread id (SpanData::thread_id, end_thread_id).
  std::vector<ThreadName> thread_names;

  // The name of thread `thread_id` in this trace; "" when it has none.
  [[nodiscard]] std::string_view thread_name(std::uint64_t thread_id) const noexcept {
    for (const ThreadName& t : thread_names)
      if (t.thread_id == thread_id) return t.name;
    return {};
  }
  friend bool operator==(const AssembledTrace&, const AssembledTrace&) = default;
};

}  // namespace strobe
