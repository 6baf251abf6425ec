#pragma once
// Per-thread recording state and the inline pieces of the hot path. Internal.

#include <x86intrin.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>

#include "strobe/detail/record.hpp"
#include "strobe/ringbuf/spsc_ring.hpp"

namespace strobe::detail {

using Ring = ringbuf::SpscRing<Record>;

// A span that was its thread's current one but ended on another thread: the ending thread
// leaves its id here with the context to go back to, and the owning thread's next begin
// (or current()) moves off it, so no span becomes the child of an ended one. A few entries
// per ring slot (indexed by the span id's low bits), never freed: a thread that ends a
// span may outlive the one that began it, and this outlives both.
struct EndedElsewhere {
  std::atomic<std::uint64_t> span{0};  // 0: empty
  std::atomic<std::uint64_t> trace_hi{0}, trace_lo{0}, back_to{0};
  std::atomic<std::uint32_t> generation{0};
  std::atomic<bool> locked{false};
};
struct EndedMailbox {
  static constexpr std::size_t kEntries = 4;
  EndedElsewhere entry[kEntries];
};

// Trivially destructible and constant-initialised, so access is a plain TLS load with no
// guard or wrapper call. The thread-exit hook lives elsewhere (see attach_slow).
struct ThreadState {
  Ring* ring = nullptr;
  void* entry = nullptr;           // the registry entry owning ring
  std::uint32_t generation = 0;    // the recorder this state is attached to; 0: none
  std::uint32_t headroom = 0;      // slots only end records may use
  std::uint32_t max_string = 0;    // bytes
  bool use_tsc = false;
  bool wait_policy = false;
  std::uint64_t id_base = 0;       // (slot + 1) << 48
  std::uint64_t next_local = 0;    // span-id counter, continues across ring reuse
  std::uint64_t cur_trace_hi = 0;  // the current context
  std::uint64_t cur_trace_lo = 0;
  std::uint64_t cur_span = 0;
  std::uint32_t cur_generation = 0;  // the recorder the current context belongs to
  std::uint64_t rng = 0;           // for trace ids
  std::uint64_t os_thread = 0;
  // This thread's count of exceptions in flight, inside the C++ runtime's per-thread
  // globals (see attach_slow); null: ask std::uncaught_exceptions().
  const unsigned int* uncaught = nullptr;
  EndedMailbox* mail = nullptr;  // this thread's slot's; set when it attaches
  // Nonzero while inside a section a signal handler must not interleave with (a record
  // reserved but not committed, the current context half written): see Section.
  std::uint32_t busy = 0;
};

// The process-wide state the inline hot path reads is declared here and defined once, in
// thread_state.cpp (not as inline variables): a shared library that includes this header
// (a Python extension, built with -fvisibility=hidden and LTO, say) would otherwise hold
// a copy of its own, bind to it, and see no recorder. Default visibility for the same
// reason.
#define STROBE_DETAIL_SHARED [[gnu::visibility("default")]]

STROBE_DETAIL_SHARED extern constinit thread_local ThreadState t_state;

// Marks a section of the calling thread's recording that a signal handler must not
// interleave with. A span the handler begins meanwhile (on this thread) is dropped and
// counted (count_reentrant_span) instead of corrupting the record or context in flight.
// Only compiler ordering is needed: the handler runs on this very thread.
class Section {
 public:
  [[gnu::always_inline]] explicit Section(ThreadState& t) noexcept : t_(t) {
    ++t_.busy;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  [[gnu::always_inline]] ~Section() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    --t_.busy;
  }
  Section(const Section&) = delete;
  Section& operator=(const Section&) = delete;

 private:
  ThreadState& t_;
};

// A span begun inside a Section (from a signal handler): dropped, counted as a dropped
// span (Stats::spans_dropped, the file's drop counts) and in Stats::reentrant_spans.
void count_reentrant_span(ThreadState& t) noexcept;

// Where a span begins: true (the span dropped and counted) when a signal handler
// interrupted a Section of this thread.
[[gnu::always_inline]] inline bool reentrant_begin(ThreadState& t) noexcept {
  if (t.busy == 0) [[likely]] return false;
  count_reentrant_span(t);
  return true;
}

// Holds a thread_local flag for a scope, ordered with signal handlers on the thread: a
// handler finding it set knows it interrupted the scope (intern and attach_slow, which
// take locks a handler must not wait for).
class FlagScope {
 public:
  explicit FlagScope(bool& flag) noexcept : flag_(flag) {
    flag_ = true;
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~FlagScope() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    flag_ = false;
  }
  FlagScope(const FlagScope&) = delete;
  FlagScope& operator=(const FlagScope&) = delete;

 private:
  bool& flag_;
};

// The mailbox of ring slot `slot` (from a span id: (id >> 48) - 1); null when none could be
// made. Any thread.
EndedMailbox* ended_mailbox(std::uint32_t slot) noexcept;
// Span `span` ended on another thread while it may be current on its own: leaves the
// context to go back to (trace, back_to, generation) in its thread's mailbox.
void post_ended_elsewhere(std::uint64_t span, std::uint64_t trace_hi, std::uint64_t trace_lo,
                          std::uint64_t back_to, std::uint32_t generation) noexcept;
// A context's generation when it came from a traceparent header (Context::from_traceparent):
// valid under any recorder. A thread whose current context has one of these begins its
// spans as roots under the remote parent (or, unsampled, records nothing). No recorder's
// generation reaches them.
inline constexpr std::uint32_t kRemoteUnsampled = 0xfffffffeu;
inline constexpr std::uint32_t kRemoteSampled = 0xffffffffu;

// Owner thread: its current span ended on another thread; moves to the context left for it.
void leave_ended_current(ThreadState& t) noexcept;
// True when t's current span ended on another thread (then call leave_ended_current).
[[gnu::always_inline]] inline bool current_ended_elsewhere(const ThreadState& t) noexcept {
  // relaxed: a stale miss leaves one more span under the ended one, as before the end.
  // A remote context's span is the caller's (any 64-bit id): never one of this process's.
  return t.cur_span != 0 && t.mail != nullptr &&
         t.mail->entry[t.cur_span % EndedMailbox::kEntries].span.load(std::memory_order_relaxed) == t.cur_span &&
         t.cur_generation < kRemoteUnsampled;
}
// Before t's current context is read: off a span that ended on another thread. In a Section.
[[gnu::always_inline]] inline void settle_current(ThreadState& t) noexcept {
  if (current_ended_elsewhere(t)) [[unlikely]] leave_ended_current(t);
}

// Process-wide, defined in thread_state.cpp (see STROBE_DETAIL_SHARED).
// The active recorder's generation; 0 when none is active. Written only by Recorder.
STROBE_DETAIL_SHARED extern std::atomic<std::uint32_t> g_generation;
// Calls with a defined no-op result (double end, ...); see Stats::misuse.
STROBE_DETAIL_SHARED extern std::atomic<std::uint64_t> g_misuse;
// Stats::reentrant_spans, process-wide.
STROBE_DETAIL_SHARED extern std::atomic<std::uint64_t> g_reentrant_spans;
// Stats::ringless_spans, process-wide.
STROBE_DETAIL_SHARED extern std::atomic<std::uint64_t> g_ringless_spans;

// Attaches the calling thread to recorder `generation`: takes a ring, copies the config.
// Returns false (the call becomes a no-op) when that recorder is gone or no ring can be had.
bool attach_slow(std::uint32_t generation) noexcept;

// True when the calling thread may record: a recorder is active and t_state is attached.
[[gnu::always_inline]] inline bool attached() noexcept {
  // relaxed: a stale value only delays attaching or makes one call a no-op; attach_slow
  // synchronises with the recorder through its lock.
  const std::uint32_t g = g_generation.load(std::memory_order_relaxed);
  if (g == 0) [[unlikely]] return false;
  if (t_state.generation == g) [[likely]] return true;
  return attach_slow(g);
}

std::uint64_t steady_ticks() noexcept;

// std::uncaught_exceptions() without its two calls through the PLT: the begin and the end
// of every span ask it (an exception escaping a scope marks the span failed).
[[gnu::always_inline]] inline int uncaught_exceptions(const ThreadState& t) noexcept {
  if (t.uncaught != nullptr) [[likely]] return static_cast<int>(*t.uncaught);
  return std::uncaught_exceptions();
}

[[gnu::always_inline]] inline std::uint64_t now(const ThreadState& t) noexcept {
  if (t.use_tsc) [[likely]] return __rdtsc();
  return steady_ticks();
}

// Producer only. Reserves n slots (end records may dip into the headroom); on a full ring
// applies the overflow policy. Returns false after counting n dropped records (and a
// dropped span when is_begin).
bool claim_slow(ThreadState& t, std::uint32_t n, bool is_end, bool is_begin) noexcept;

// Producer only. True when n slots may be written through t.ring->slot(); the caller then
// commits them. Begins and attributes leave `headroom` slots free for end records, so a
// span whose begin was recorded loses its end only when a full ring meets more than
// `headroom` open spans on the thread.
[[gnu::always_inline]] inline bool claim(ThreadState& t, std::uint32_t n, bool is_end,
                                         bool is_begin) noexcept {
  if (t.ring->reserve(is_end ? n : n + t.headroom)) [[likely]] return true;
  return claim_slow(t, n, is_end, is_begin);
}

// Producer only. Counts records that belong to a dropped span.
void count_dropped(ThreadState& t, std::uint32_t records) noexcept;
// Producer only. A span lost whole: its begin was dropped (counted then), and so were the
// begin and end written for it when it ended (counted now: its end record, one span).
void count_lost_span(ThreadState& t) noexcept;

// The header record of a string: what it is, its length (size given: original) and its
// first kInlineString bytes. length <= original; the rest follows in continuations.
[[gnu::always_inline]] inline void write_string_header(Record& h, std::uint64_t span_id, StrKind kind,
                                                       std::uint32_t key, std::uint8_t flags,
                                                       std::uint64_t ts, const char* data,
                                                       std::uint32_t length, std::size_t original) noexcept {
  h.type = RecType::string;
  h.flags = flags;
  h.aux = static_cast<std::uint16_t>(kind);
  h.key = key;
  h.span_id = span_id;
  h.ts = ts;
  h.payload.str.length = length;
  h.payload.str.original_length = static_cast<std::uint32_t>(original < 0xffffffffu ? original : 0xffffffffu);
  std::memcpy(h.payload.str.inline_bytes, data, length < kInlineString ? length : kInlineString);
}

// Producer only. Writes a string record (and its continuations) for span_id; false when
// the ring had no room (the records were counted as dropped).
bool write_string(ThreadState& t, std::uint64_t span_id, StrKind kind, std::uint32_t key,
                  std::uint8_t flags, const char* data, std::size_t size) noexcept;

// A string as t's ring carries it: cut to t.max_string at a UTF-8 boundary (flags gains
// kTruncated), and the records it takes.
struct StringCut {
  std::uint32_t length;
  std::uint32_t records;
};
StringCut cut_string(const ThreadState& t, const char* data, std::size_t size, std::uint8_t& flags) noexcept;
// Producer only. Writes a string cut by cut_string into the claimed slots from `at` on
// (not committed: the caller commits it with what else it claimed).
void fill_string(ThreadState& t, std::uint32_t at, std::uint64_t span_id, StrKind kind, std::uint32_t key,
                 std::uint8_t flags, std::uint64_t ts, const char* data, StringCut cut, std::size_t size) noexcept;

// A fresh non-zero 128-bit trace id; no atomics.
void new_trace_id(ThreadState& t, std::uint64_t& hi, std::uint64_t& lo) noexcept;

// Interning (thread-safe; a known string is found without allocating).
std::uint32_t intern(const char* data, std::size_t size) noexcept;

}  // namespace strobe::detail
