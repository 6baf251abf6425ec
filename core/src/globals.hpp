#pragma once
// Process-wide state shared by the hot path's slow paths and the recorder. Internal.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "strobe/detail/record.hpp"
#include "strobe/ringbuf/ring_registry.hpp"

namespace strobe::detail {

class RecoveryStore;

// Bytes of a thread name kept (set_thread_name cuts longer ones at a UTF-8 boundary).
inline constexpr std::size_t kMaxThreadNameBytes = 64;

// Per-ring drop counters: written only by the owning (producer) thread, read by anyone.
// And the owning thread's name.
struct RingExtra {
  std::atomic<std::uint64_t> records_dropped{0};
  std::atomic<std::uint64_t> spans_dropped{0};
  // The counters' values when the current recorder started; drainer-owned.
  std::uint64_t base_records = 0;
  std::uint64_t base_spans = 0;
  // The owner's name (set_thread_name, else its OS name when it attached): the owner
  // writes it under name_mutex and then bumps name_version; the drainer copies it under
  // the lock when the version differs from name_seen (drainer-owned).
  std::mutex name_mutex;
  std::atomic<std::uint32_t> name_version{0};
  std::uint32_t name_seen = 0;
  std::uint32_t name_size = 0;
  char name[kMaxThreadNameBytes] = {};
};

using Registry = ringbuf::RingRegistry<Record, RingExtra>;
using RingEntry = Registry::Entry;

// What a thread copies when it attaches to the active recorder.
struct AttachConfig {
  std::size_t ring_capacity = 0;
  std::uint32_t headroom = 0;
  std::uint32_t max_string = 0;
  bool use_tsc = false;
  bool wait_policy = false;
  // Where rings come from (Config::recovery_dir: files); null for the heap.
  Registry::RingStorage* storage = nullptr;
};

struct Globals {
  Registry registry;
  std::mutex mutex;  // guards everything below and the switch of g_generation
  bool active = false;
  std::uint32_t generation = 0;  // of the active recorder, or of the last one
  AttachConfig attach;
  // A child forked while a recorder was active: recording is off for good (the drainer and
  // sink threads did not come along), and no other recorder can start.
  bool forked_child = false;
  // Recovery directories of recorders gone: never freed, since rings in their files may
  // still be used by threads that outlived their recorder. Held here, one per recorder
  // that had one, so the memory stays reachable (and leak checkers see it as kept).
  std::vector<RecoveryStore*> retired_recovery;
};

// Never destroyed: threads and spans may outlive static destruction.
Globals& globals() noexcept;

// Producer only: adds to a counter only this thread writes (no read-modify-write needed).
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
  // relaxed: single writer; readers want a count, not ordering with other data.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace strobe::detail
