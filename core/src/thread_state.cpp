// The hot path's slow paths: attaching a thread, a full ring, strings, trace ids.

#include <sys/syscall.h>
#include <unistd.h>

#include <cxxabi.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <random>
#include <thread>

#include "chunked.hpp"
#include "globals.hpp"
#include "strobe/detail/thread_state.hpp"
#include "thread_name.hpp"

namespace strobe::detail {

constinit thread_local ThreadState t_state{};
constinit std::atomic<std::uint32_t> g_generation{0};
constinit std::atomic<std::uint64_t> g_misuse{0};
constinit std::atomic<std::uint64_t> g_reentrant_spans{0};
constinit std::atomic<std::uint64_t> g_ringless_spans{0};

Globals& globals() noexcept {
  static auto* g = new Globals();
  return *g;
}

namespace {

// Its destructor retires the thread's ring at thread exit. Kept apart from t_state so
// that t_state stays trivially destructible (a plain TLS access on the hot path).
struct ExitHook {
  bool exited = false;
  void arm() noexcept {}
  ~ExitHook() {
    exited = true;
    ThreadState& t = t_state;
    if (t.entry != nullptr) {
      auto* e = static_cast<RingEntry*>(t.entry);
      e->cookie = t.next_local;
      globals().registry.retire(e);
    }
    t = ThreadState{};
  }
};
thread_local ExitHook t_exit_hook;

std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

// The Itanium C++ ABI (which GCC's and Clang's runtimes follow) keeps the count that
// std::uncaught_exceptions() returns in a per-thread __cxa_eh_globals { caughtExceptions;
// uncaughtExceptions; }. Its address is fixed for the thread's life, so the hot path can
// read the count directly. Checked against the library once; null (use the library
// call) when they disagree.
namespace {
const unsigned int* abi_uncaught_count() noexcept {
  struct EhGlobals {
    void* caught_exceptions;
    unsigned int uncaught_exceptions;
  };
  const auto* g = reinterpret_cast<const EhGlobals*>(abi::__cxa_get_globals());
  if (g == nullptr || static_cast<int>(g->uncaught_exceptions) != std::uncaught_exceptions()) return nullptr;
  return &g->uncaught_exceptions;
}
}  // namespace

static constinit thread_local bool t_attaching = false;  // in attach_slow, holding the globals lock

bool attach_slow(std::uint32_t generation) noexcept {
  if (t_exit_hook.exited) return false;  // a span in another thread_local's destructor
  if (t_attaching) {  // a signal handler interrupting this very call (holding the lock)
    g_reentrant_spans.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    return false;
  }
  FlagScope attaching(t_attaching);
  Section section(t_state);
  Globals& g = globals();
  std::lock_guard lock(g.mutex);
  if (!g.active || g.generation != generation) return false;
  ThreadState& t = t_state;
  auto* entry = static_cast<RingEntry*>(t.entry);
  if (entry == nullptr || entry->ring.capacity() != g.attach.ring_capacity || entry->storage != g.attach.storage) {
    if (t.os_thread == 0) t.os_thread = static_cast<std::uint64_t>(::syscall(SYS_gettid));
    RingEntry* fresh = nullptr;
    try {
      fresh = g.registry.acquire(g.attach.ring_capacity, t.os_thread, g.attach.storage);
    } catch (...) {
      // No memory or too many threads: this call records nothing, counted (the next one
      // tries again).
      g_ringless_spans.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      return false;
    }
    if (entry != nullptr) {  // a ring of the previous recorder's size or storage: hand it back
      entry->cookie = t.next_local;
      g.registry.retire(entry);
    }
    entry = fresh;
    t.entry = entry;
    t.ring = &entry->ring;
    t.id_base = std::uint64_t{entry->slot + 1u} << 48;
    t.next_local = entry->cookie;
    t.mail = ended_mailbox(entry->slot);
    if (t.mail != nullptr)  // a previous thread of the slot may have left word
      for (EndedElsewhere& e : t.mail->entry) e.span.store(0, std::memory_order_relaxed);
    t_exit_hook.arm();  // odr-use registers the thread-exit destructor
    name_attached_thread(t);
  }
  t.generation = generation;
  t.headroom = g.attach.headroom;
  t.max_string = g.attach.max_string;
  t.use_tsc = g.attach.use_tsc;
  t.wait_policy = g.attach.wait_policy;
  if (t.uncaught == nullptr) t.uncaught = abi_uncaught_count();
  if (t.rng == 0) {
    std::random_device rd;
    t.rng = (std::uint64_t{rd()} << 32) ^ rd() ^ (t.id_base * 0x9e3779b97f4a7c15ull);
  }
  return true;
}

bool claim_slow(ThreadState& t, std::uint32_t n, bool is_end, bool is_begin) noexcept {
  const std::uint32_t need = is_end ? n : n + t.headroom;
  if (need <= t.ring->capacity() && t.wait_policy) {
    for (std::uint32_t spins = 0;; ++spins) {
      if (t.ring->reserve(need)) return true;
      // relaxed: a stale generation costs one more round; the recorder is gone or going.
      if (g_generation.load(std::memory_order_relaxed) != t.generation) break;
      if (spins < 256) {
        _mm_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }
  auto* e = static_cast<RingEntry*>(t.entry);
  bump(e->extra.records_dropped, n);
  if (is_begin) bump(e->extra.spans_dropped, 1);
  return false;
}

void count_lost_span(ThreadState& t) noexcept {
  if (t.entry == nullptr) return;
  auto* e = static_cast<RingEntry*>(t.entry);
  bump(e->extra.spans_dropped, 1);
  bump(e->extra.records_dropped, 1);  // its end; the late begin retried the begin already counted
}

void count_reentrant_span(ThreadState& t) noexcept {
  // relaxed: statistics. The ring counters are the owning thread's; a handler bumping one
  // while the code it interrupted bumps it too can lose one count, never corrupt it.
  g_reentrant_spans.fetch_add(1, std::memory_order_relaxed);
  if (t.entry == nullptr) return;
  auto* e = static_cast<RingEntry*>(t.entry);
  bump(e->extra.spans_dropped, 1);
  bump(e->extra.records_dropped, 1);
}

namespace {

// One per ring slot (Registry::kMaxSlots), in chunks of 256 made as slots come into use.
constinit ChunkedArray<EndedMailbox, 256, (Registry::kMaxSlots + 255) / 256> g_mailboxes;

// A spin lock that gives up: a signal handler on a thread holding it must not hang.
bool try_lock(std::atomic<bool>& l) noexcept {
  for (int i = 0; i < 1000; ++i) {
    if (!l.exchange(true, std::memory_order_acquire)) return true;
    _mm_pause();
  }
  return false;
}

}  // namespace

EndedMailbox* ended_mailbox(std::uint32_t slot) noexcept { return g_mailboxes.at(slot); }

void post_ended_elsewhere(std::uint64_t span, std::uint64_t trace_hi, std::uint64_t trace_lo,
                          std::uint64_t back_to, std::uint32_t generation) noexcept {
  const std::uint64_t slot = span >> 48;
  if (slot == 0) return;
  EndedMailbox* m = ended_mailbox(static_cast<std::uint32_t>(slot - 1));
  if (m == nullptr) return;
  EndedElsewhere& e = m->entry[span % EndedMailbox::kEntries];
  if (!try_lock(e.locked)) return;
  e.trace_hi.store(trace_hi, std::memory_order_relaxed);
  e.trace_lo.store(trace_lo, std::memory_order_relaxed);
  e.back_to.store(back_to, std::memory_order_relaxed);
  e.generation.store(generation, std::memory_order_relaxed);
  e.span.store(span, std::memory_order_relaxed);
  e.locked.store(false, std::memory_order_release);
}

void leave_ended_current(ThreadState& t) noexcept {
  // The context it goes back to may have ended elsewhere too: a few rounds.
  for (int round = 0; round < 8 && current_ended_elsewhere(t); ++round) {
    EndedElsewhere& e = t.mail->entry[t.cur_span % EndedMailbox::kEntries];
    if (!try_lock(e.locked)) return;
    if (e.span.load(std::memory_order_relaxed) == t.cur_span) {
      t.cur_trace_hi = e.trace_hi.load(std::memory_order_relaxed);
      t.cur_trace_lo = e.trace_lo.load(std::memory_order_relaxed);
      t.cur_span = e.back_to.load(std::memory_order_relaxed);
      t.cur_generation = e.generation.load(std::memory_order_relaxed);
      e.span.store(0, std::memory_order_relaxed);
    }
    e.locked.store(false, std::memory_order_release);
  }
}

void count_dropped(ThreadState& t, std::uint32_t records) noexcept {
  if (t.entry == nullptr) return;
  bump(static_cast<RingEntry*>(t.entry)->extra.records_dropped, records);
}

StringCut cut_string(const ThreadState& t, const char* data, std::size_t size, std::uint8_t& flags) noexcept {
  std::size_t len = size;
  if (len > t.max_string) {
    len = t.max_string;
    // Cut at a UTF-8 boundary: never leave a partial sequence behind.
    while (len > 0 && (static_cast<unsigned char>(data[len]) & 0xC0) == 0x80) --len;
    flags |= kTruncated;
  }
  const auto length = static_cast<std::uint32_t>(len);
  return StringCut{length, 1 + continuation_records(length)};
}

void fill_string(ThreadState& t, std::uint32_t at, std::uint64_t span_id, StrKind kind, std::uint32_t key,
                 std::uint8_t flags, std::uint64_t ts, const char* data, StringCut cut, std::size_t size) noexcept {
  write_string_header(t.ring->slot(at), span_id, kind, key, flags, ts, data, cut.length, size);
  std::size_t off = kInlineString;
  for (std::uint32_t i = 1; i < cut.records; ++i, off += sizeof(Record)) {
    std::memcpy(static_cast<void*>(&t.ring->slot(at + i)), data + off,
                std::min<std::size_t>(sizeof(Record), cut.length - off));
  }
}

bool write_string(ThreadState& t, std::uint64_t span_id, StrKind kind, std::uint32_t key,
                  std::uint8_t flags, const char* data, std::size_t size) noexcept {
  const StringCut cut = cut_string(t, data, size, flags);
  const std::uint64_t ts = kind == StrKind::log ? now(t) : 0;  // only a log line is an instant
  Section section(t);
  if (!claim(t, cut.records, false, false)) return false;
  fill_string(t, 0, span_id, kind, key, flags, ts, data, cut, size);
  t.ring->commit(cut.records);
  return true;
}

void new_trace_id(ThreadState& t, std::uint64_t& hi, std::uint64_t& lo) noexcept {
  do {
    hi = splitmix(t.rng);
    lo = splitmix(t.rng);
  } while ((hi | lo) == 0);
}

}  // namespace strobe::detail
