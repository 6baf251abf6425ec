#pragma once
// The registry of per-thread rings.
//
//   thread's first record ──acquire()──> Entry (from the free pool, else new) ──registered
//   thread exit ──retire()──> drainer drains it to the last record ──recycle()──> free pool
//
// Entries are never freed while registered, so the consumer can hold plain pointers for
// the length of a drain pass. An Entry's slot number and cookie survive recycling: the
// next owner continues where the previous one stopped (strobe keeps its span-id counter
// there, which is what makes ids unique without atomics).

#include <concurrentqueue/concurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "strobe/ringbuf/spsc_ring.hpp"

namespace strobe::ringbuf {

template <class T, class Extra>
class RingRegistry {
 public:
  static constexpr std::uint32_t kMaxSlots = 65535;

  struct Entry {
    Entry(std::size_t capacity, std::uint32_t slot_number) : ring(capacity), slot(slot_number) {}
    SpscRing<T> ring;
    const std::uint32_t slot;
    // Set by the owning thread when it exits; read by the consumer.
    std::atomic<bool> retired{false};
    // Owned by whichever thread holds the entry; preserved across recycling.
    std::uint64_t cookie = 0;
    // Written by the owner at acquire; read by the consumer for labels.
    std::atomic<std::uint64_t> owner_thread{0};
    Extra extra{};
  };

  RingRegistry() = default;
  RingRegistry(const RingRegistry&) = delete;
  RingRegistry& operator=(const RingRegistry&) = delete;
  ~RingRegistry() {
    Entry* e = nullptr;
    while (free_.try_dequeue(e)) delete e;
    for (Entry* r : registered_) delete r;
  }

  // Any thread (a thread's first record). Takes an entry of the given capacity from the
  // free pool, or builds one (allocates and pre-faults), and registers it. An entry of
  // another capacity taken from the pool is replaced, keeping its slot and cookie.
  // Throws std::length_error when kMaxSlots entries exist, std::bad_alloc.
  Entry* acquire(std::size_t capacity, std::uint64_t owner_thread) {
    Entry* e = nullptr;
    if (free_.try_dequeue(e)) {
      if (e->ring.capacity() != capacity) {
        auto* replacement = new Entry(capacity, e->slot);
        replacement->cookie = e->cookie;
        delete e;
        e = replacement;
      }
    } else {
      const std::uint32_t slot = next_slot_.fetch_add(1, std::memory_order_relaxed);
      if (slot >= kMaxSlots) {
        next_slot_.fetch_sub(1, std::memory_order_relaxed);
        throw std::length_error("strobe: too many concurrent recording threads");
      }
      e = new Entry(capacity, slot);
    }
    e->retired.store(false, std::memory_order_relaxed);
    e->owner_thread.store(owner_thread, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);  // publishes the entry's fields to the consumer's snapshot
    registered_.push_back(e);
    return e;
  }

  // The owning thread, once, when it stops producing (thread exit). Never blocks.
  void retire(Entry* e) noexcept {
    // release: every record the owner committed is visible to a consumer that sees the flag.
    e->retired.store(true, std::memory_order_release);
  }

  // Consumer. Copies the registered entries into out (which keeps its capacity, so the
  // steady state does not allocate). Holds the lock only for the copy.
  void snapshot(std::vector<Entry*>& out) const {
    out.clear();
    std::lock_guard lock(mutex_);
    out.insert(out.end(), registered_.begin(), registered_.end());
  }

  // Consumer, for a retired entry it has drained empty: unregisters it and returns it to
  // the free pool. The caller must not touch it afterwards.
  void recycle(Entry* e) {
    {
      std::lock_guard lock(mutex_);
      auto it = std::find(registered_.begin(), registered_.end(), e);
      if (it == registered_.end()) return;
      registered_.erase(it);
    }
    free_.enqueue(e);
  }

  // Any thread. Registered entries (live plus retired-not-yet-recycled).
  [[nodiscard]] std::size_t registered_count() const {
    std::lock_guard lock(mutex_);
    return registered_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Entry*> registered_;
  moodycamel::ConcurrentQueue<Entry*> free_;
  std::atomic<std::uint32_t> next_slot_{0};
};

}  // namespace strobe::ringbuf
