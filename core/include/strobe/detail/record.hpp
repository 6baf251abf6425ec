#pragma once
// The 64-byte record that travels through a thread's ring. Internal: the layout may
// change between versions; files never contain records.

#include <cstdint>
#include <type_traits>

namespace strobe::detail {

enum class RecType : std::uint8_t {
  begin = 1,    // span begins: key = name id, aux = kind, ts; payload.begin
  end,          // span ends: aux = Status, ts
  attr_int,     // key = attribute key id; payload.i64
  attr_double,  // key = attribute key id; payload.f64
  attr_bool,    // key = attribute key id; payload.i64 (0/1)
  string,       // aux = StrKind, key = key id (attributes); payload.str, then continuations
  event,        // key = event name id, ts; later attr records flagged kOnEvent attach to it
  tokens,       // payload.tokens
  link,         // the span resumes a suspended one: payload.link
  next,         // a begin that also ends payload.begin.ended_span (status ok) at ts: one
                // record per link of a chain of adjacent spans (Span::next)
  span_link,    // the span links to another span (Span::link): payload.span_link
};

// What a string record carries.
enum class StrKind : std::uint16_t {
  attr_value, input, output, log, model, tag, error_message, error_data, kind_name
};

// Record flags.
inline constexpr std::uint8_t kOnEvent = 1;      // attribute of the span's latest event
inline constexpr std::uint8_t kTruncated = 2;    // string cut to the maximum length
inline constexpr std::uint8_t kWallClock = 4;    // ts is wall-clock ns, not clock ticks
inline constexpr std::uint8_t kTraceRoot = 8;    // begin: the span starts a new trace
inline constexpr std::uint8_t kSuspended = 32;   // end: the segment suspends (Span::suspend)
inline constexpr std::uint8_t kThrown = 64;      // end: an exception escaped the span's scope
inline constexpr std::uint8_t kLostRecords = 128;  // end: some of the span's records were dropped
// begin: written when the span ended, its begin having found the ring full; ts is the
// span's start. What it recorded in between was dropped.
inline constexpr std::uint8_t kLateBegin = 128;

inline constexpr std::uint32_t kInlineString = 32;  // string bytes carried in the header record

struct BeginPayload {
  std::uint64_t trace_hi;
  std::uint64_t trace_lo;
  std::uint64_t parent_id;
  std::uint32_t kind_name_id;  // Kind::custom: interned kind name, else 0
  std::uint32_t generation;    // the recorder the span was begun under
  std::uint64_t ended_span;    // RecType::next: the sibling this begin ends; else unset
};

struct StringPayload {
  std::uint32_t length;           // bytes stored (after truncation)
  std::uint32_t original_length;  // bytes given (saturated)
  char inline_bytes[kInlineString];
};

struct TokensPayload {
  std::int64_t input, output, cached_input;
  std::uint64_t reserved[2];
};

struct LinkPayload {
  std::uint64_t previous_span_id;  // the segment this one resumes
  std::uint64_t first_span_id;     // the first segment of the logical operation
  std::uint32_t segment_index;     // 0 for the first segment
  std::uint32_t reserved0;
  std::uint64_t reserved1[2];
};

struct SpanLinkPayload {
  std::uint64_t trace_hi;
  std::uint64_t trace_lo;
  std::uint64_t span_id;
  std::uint64_t reserved[2];
};

struct alignas(64) Record {
  RecType type;
  std::uint8_t flags;
  std::uint16_t aux;
  std::uint32_t key;
  std::uint64_t span_id;
  std::uint64_t ts;
  union {
    BeginPayload begin;
    StringPayload str;
    TokensPayload tokens;
    LinkPayload link;
    SpanLinkPayload span_link;
    std::int64_t i64;
    double f64;
    unsigned char raw[40];
  } payload;
};
static_assert(sizeof(Record) == 64 && alignof(Record) == 64);
static_assert(std::is_trivially_copyable_v<Record>);
static_assert(sizeof(BeginPayload) == 40 && sizeof(StringPayload) == 40 &&
              sizeof(TokensPayload) == 40 && sizeof(LinkPayload) == 40 && sizeof(SpanLinkPayload) == 40);

// A string longer than kInlineString continues in whole raw records (64 bytes each)
// written in the same commit right after its header record.
[[nodiscard]] constexpr std::uint32_t continuation_records(std::uint32_t length) noexcept {
  return length <= kInlineString ? 0 : (length - kInlineString + 63) / 64;
}

}  // namespace strobe::detail
