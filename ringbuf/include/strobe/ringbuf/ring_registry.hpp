#pragma once
// The registry of per-thread rings.
//
//   thread's first record ──acquire()──> Entry (from the free pool, else new) ──registered
//   thread exit ──retire()──> drainer drains it to the last record ──recycle()──> free pool
//                                               (or, past max_spare free rings, freed)
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
#include <climits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "strobe/ringbuf/spsc_ring.hpp"

namespace strobe::ringbuf {

template <class T, class Extra>
class RingRegistry {
 public:
  static constexpr std::uint32_t kMaxSlots = 65535;

  // Where rings' memory comes from when not from the heap (strobe's recovery mode: file
  // mappings). Called by whichever thread acquires or frees an entry, under no lock of the
  // registry's; an implementation synchronises itself.
  class RingStorage {
   public:
    virtual ~RingStorage() = default;
    // A ring of `capacity` slots for registry slot `slot`, built in memory this owns.
    // Throws (std::bad_alloc, std::system_error) when it cannot.
    virtual SpscRing<T>* make(std::size_t capacity, std::uint32_t slot) = 0;
    // The ring's owner changed (acquire): os thread id.
    virtual void owned(SpscRing<T>* ring, std::uint64_t owner_thread) noexcept = 0;
    // Destroys a ring make() returned; nobody uses it any more.
    virtual void destroy(SpscRing<T>* ring) noexcept = 0;
  };

  struct Entry {
    Entry(std::size_t capacity, std::uint32_t slot_number, RingStorage* from)
        : ring(from != nullptr ? *from->make(capacity, slot_number) : *new SpscRing<T>(capacity)),
          slot(slot_number),
          storage(from) {}
    ~Entry() {
      if (storage != nullptr) {
        storage->destroy(&ring);
      } else {
        delete &ring;
      }
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    SpscRing<T>& ring;
    const std::uint32_t slot;
    // Where ring lives: null for the heap.
    RingStorage* const storage;
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

  // Bytes of ring memory held: registered entries and the free pool's.
  [[nodiscard]] std::size_t ring_bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  // Free rings kept for reuse.
  [[nodiscard]] std::size_t spare_count() const noexcept { return spare_.load(std::memory_order_relaxed); }

  // fork(): held across it (pthread_atfork), so the child never inherits it locked.
  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

  // Any thread. Frees every ring in the free pool (their slots and cookies are kept for
  // later entries). Registered entries are never freed: their threads may still write.
  void release_spare() {
    Entry* e = nullptr;
    while (free_.try_dequeue(e)) {
      spare_.fetch_sub(1, std::memory_order_relaxed);
      forget(e);
    }
  }

  // Any thread (a thread's first record). Takes an entry of the given capacity and storage
  // (null: the heap) from the free pool, or builds one (allocates and pre-faults), and
  // registers it. An entry of another capacity or storage taken from the pool is
  // replaced, keeping its slot and cookie. Throws std::length_error when kMaxSlots
  // entries exist, std::bad_alloc, or what the storage throws.
  Entry* acquire(std::size_t capacity, std::uint64_t owner_thread, RingStorage* storage = nullptr) {
    Entry* e = nullptr;
    if (free_.try_dequeue(e)) {
      spare_.fetch_sub(1, std::memory_order_relaxed);
      if (e->ring.capacity() != capacity || e->storage != storage) {
        Entry* replacement = nullptr;
        try {
          replacement = make(capacity, e->slot, storage);
        } catch (...) {
          spare_.fetch_add(1, std::memory_order_relaxed);
          free_.enqueue(e);
          throw;
        }
        replacement->cookie = e->cookie;
        destroy(e);
        e = replacement;
      }
    } else if (std::pair<std::uint32_t, std::uint64_t> kept; take_free_slot(kept)) {
      try {
        e = make(capacity, kept.first, storage);
      } catch (...) {
        std::lock_guard lock(mutex_);
        free_slots_.push_back(kept);
        throw;
      }
      e->cookie = kept.second;
    } else {
      const std::uint32_t slot = next_slot_.fetch_add(1, std::memory_order_relaxed);
      if (slot >= kMaxSlots) {
        next_slot_.fetch_sub(1, std::memory_order_relaxed);
        throw std::length_error("strobe: too many concurrent recording threads");
      }
      try {
        e = make(capacity, slot, storage);
      } catch (...) {
        std::lock_guard lock(mutex_);
        free_slots_.emplace_back(slot, 0);
        throw;
      }
    }
    e->retired.store(false, std::memory_order_relaxed);
    e->owner_thread.store(owner_thread, std::memory_order_relaxed);
    if (storage != nullptr) storage->owned(&e->ring, owner_thread);
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
  // the free pool, or frees its ring when the pool already holds max_spare (keeping its
  // slot and cookie). The caller must not touch it afterwards.
  void recycle(Entry* e, std::size_t max_spare = SIZE_MAX) {
    {
      std::lock_guard lock(mutex_);
      auto it = std::find(registered_.begin(), registered_.end(), e);
      if (it == registered_.end()) return;
      registered_.erase(it);
    }
    if (spare_.load(std::memory_order_relaxed) >= max_spare) {
      forget(e);
      return;
    }
    spare_.fetch_add(1, std::memory_order_relaxed);
    free_.enqueue(e);
  }

  // Any thread. Registered entries (live plus retired-not-yet-recycled).
  [[nodiscard]] std::size_t registered_count() const {
    std::lock_guard lock(mutex_);
    return registered_.size();
  }

 private:
  Entry* make(std::size_t capacity, std::uint32_t slot, RingStorage* storage) {
    auto* e = new Entry(capacity, slot, storage);
    bytes_.fetch_add(capacity * sizeof(T), std::memory_order_relaxed);
    return e;
  }
  void destroy(Entry* e) noexcept {
    bytes_.fetch_sub(e->ring.capacity() * sizeof(T), std::memory_order_relaxed);
    delete e;
  }
  // Frees an unregistered entry, keeping its slot and cookie for a later one.
  void forget(Entry* e) {
    {
      std::lock_guard lock(mutex_);
      free_slots_.emplace_back(e->slot, e->cookie);
    }
    destroy(e);
  }
  bool take_free_slot(std::pair<std::uint32_t, std::uint64_t>& out) {
    std::lock_guard lock(mutex_);
    if (free_slots_.empty()) return false;
    out = free_slots_.back();
    free_slots_.pop_back();
    return true;
  }

  mutable std::mutex mutex_;
  std::vector<Entry*> registered_;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> free_slots_;  // slots whose ring was freed
  moodycamel::ConcurrentQueue<Entry*> free_;
  std::atomic<std::size_t> spare_{0};
  std::atomic<std::size_t> bytes_{0};
  std::atomic<std::uint32_t> next_slot_{0};
};

}  // namespace strobe::ringbuf
