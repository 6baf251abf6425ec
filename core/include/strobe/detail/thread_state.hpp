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
};

extern constinit thread_local ThreadState t_state;

// The active recorder's generation; 0 when none is active. Written only by Recorder.
inline std::atomic<std::uint32_t> g_generation{0};
// Calls with a defined no-op result (double end, ...); see Stats::misuse.
inline std::atomic<std::uint64_t> g_misuse{0};

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

// A fresh non-zero 128-bit trace id; no atomics.
void new_trace_id(ThreadState& t, std::uint64_t& hi, std::uint64_t& lo) noexcept;

// Interning (thread-safe; a known string is found without allocating).
std::uint32_t intern(const char* data, std::size_t size) noexcept;

}  // namespace strobe::detail
