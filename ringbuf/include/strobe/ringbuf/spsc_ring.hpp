#pragma once
// A bounded single-producer / single-consumer ring of fixed-size, trivially copyable
// slots (strobe uses 64-byte records).
//
//   producer thread                               consumer thread (the drainer)
//   reserve(n) -> slot(0..n-1) = ... -> commit(n)   available() -> peek(i) -> release(n)
//
// Positions are 64-bit counters that only grow, so "full" and "empty" never alias.
// Each side keeps a private copy of the other side's position and refreshes it only
// when that copy says the ring looks full (producer) or empty (consumer), so the common
// case touches no cache line the other thread writes.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

namespace strobe::ringbuf {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied as raw bytes");

 public:
  // Any thread. Allocates capacity * sizeof(T) bytes, aligned to a cache line, and
  // touches every page now so the producer never pays a first-touch page fault.
  // Throws std::invalid_argument unless capacity is a power of two >= 2 (nothing is
  // allocated then), std::bad_alloc when memory is short.
  explicit SpscRing(std::size_t capacity)
      : capacity_(checked(capacity)), mask_(capacity - 1), slots_(allocate(capacity)) {}

  // Any thread. A ring over the caller's slots: capacity * sizeof(T) bytes, aligned to a
  // cache line, outliving the ring, used as they are (neither cleared nor freed). strobe's
  // recovery mode places such a ring, positions and slots, in a shared file mapping, so
  // another process can read what a killed one left; the ring's code is the same.
  SpscRing(std::size_t capacity, T* slots)
      : capacity_(checked(capacity)), mask_(capacity - 1), slots_(slots), owns_slots_(false) {}

  ~SpscRing() {
    if (owns_slots_) ::operator delete(slots_, std::align_val_t{kCacheLine});
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Any thread; never changes.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // ---- producer side: exactly one thread at a time ----

  // Producer only. True when n slots are free past the write position; then slot(0..n-1)
  // may be written and commit(n) publishes them. Never blocks, never allocates.
  [[nodiscard]] bool reserve(std::size_t n) noexcept {
    const std::uint64_t head = producer_.head_local;
    if (head + n - producer_.tail_cache <= capacity_) return true;
    // acquire: the consumer's release() store of tail happens after it finished reading
    // those slots, so reusing them cannot race with its reads.
    producer_.tail_cache = tail_.load(std::memory_order_acquire);
    return head + n - producer_.tail_cache <= capacity_;
  }

  // Producer only. Free slots as of the last refresh of the consumer position, refreshed
  // now. Never blocks.
  [[nodiscard]] std::size_t free_slots() noexcept {
    producer_.tail_cache = tail_.load(std::memory_order_acquire);  // as in reserve()
    return capacity_ - static_cast<std::size_t>(producer_.head_local - producer_.tail_cache);
  }

  // Producer only, after a successful reserve(n) and for i < n: the i-th slot past the
  // write position. The slot holds stale bytes; write every field the consumer reads.
  [[nodiscard]] T& slot(std::size_t i) noexcept {
    return slots_[(producer_.head_local + i) & mask_];
  }

  // Producer only. Publishes n reserved slots to the consumer.
  void commit(std::size_t n) noexcept {
    // Claims the lines kPrefetchAhead slots past each committed one for writing now, so
    // that taking them back from the consumer's cache overlaps the producer's work
    // instead of stalling a later slot() write (see kPrefetchAhead).
    for (std::size_t i = n > kPrefetchAhead ? n - kPrefetchAhead : 0; i < n; ++i)
      prefetch_for_write(&slots_[(producer_.head_local + kPrefetchAhead + i) & mask_]);
    producer_.head_local += n;
    // release: the slot contents written before this store are visible to a consumer
    // that reads the new head with acquire.
    head_.store(producer_.head_local, std::memory_order_release);
  }

  // Producer only. Copies one slot in; false (nothing written) when the ring is full.
  [[nodiscard]] bool try_push(const T& value) noexcept {
    if (!reserve(1)) return false;
    slot(0) = value;
    commit(1);
    return true;
  }

  // ---- consumer side: exactly one thread at a time ----

  // Consumer only. Number of published slots not yet released. Never blocks.
  [[nodiscard]] std::size_t available() noexcept {
    // acquire: pairs with commit()'s release, so the slots up to head are fully written.
    consumer_.head_cache = head_.load(std::memory_order_acquire);
    return static_cast<std::size_t>(consumer_.head_cache - consumer_.tail_local);
  }

  // Consumer only, for i < available(): the i-th published slot past the read position.
  [[nodiscard]] const T& peek(std::size_t i) const noexcept {
    return slots_[(consumer_.tail_local + i) & mask_];
  }

  // Consumer only. Hands n slots back to the producer in one store (release in batches:
  // one cross-core line transfer per drain pass, not per record).
  void release(std::size_t n) noexcept {
    consumer_.tail_local += n;
    // release: our reads of the slots happen before the producer may overwrite them.
    tail_.store(consumer_.tail_local, std::memory_order_release);
  }

  // Consumer only. The read position: slots released since the ring was made.
  [[nodiscard]] std::uint64_t read_position() const noexcept { return consumer_.tail_local; }

  // Consumer only. Discards everything published so far; returns how many slots.
  std::size_t discard_all() noexcept {
    const std::size_t n = available();
    release(n);
    return n;
  }

  // Any thread; a snapshot (exact only when both sides are quiescent).
  [[nodiscard]] std::size_t size_approx() const noexcept {
    return static_cast<std::size_t>(head_.load(std::memory_order_relaxed) -
                                    tail_.load(std::memory_order_relaxed));
  }

  // Where the write and read positions (uint64 each) sit in the object, for a reader of a
  // ring placed in a file by another process (see the constructor taking slots).
  static std::size_t head_offset() noexcept;
  static std::size_t tail_offset() noexcept;

 private:
  static std::size_t checked(std::size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0)
      throw std::invalid_argument("strobe: ring capacity must be a power of two >= 2");
    if (capacity > (std::size_t{1} << 32))
      throw std::invalid_argument("strobe: ring capacity must be at most 2^32 slots");
    return capacity;
  }

  // How far ahead of the write position commit() prefetches: 1 KiB. A slot being reused
  // was last read by the consumer, on another core, so the producer's first store to it
  // has to take the line back from that core's cache. On the 2-vCPU EPYC VM strobe is
  // measured on, whenever the host placed the vCPUs apart that made a span (two records)
  // cost 42-59 ns instead of the 22-24 ns of the same stores into private memory; with
  // each line claimed 16 slots early it costs 23-24 ns in those periods (4 slots ahead
  // was already enough there; 16 leaves room for slower hosts).
  static constexpr std::size_t kPrefetchAhead = sizeof(T) >= 1024 ? 1 : 1024 / sizeof(T);
  // A hint only: never faults, never changes what any thread reads.
  static void prefetch_for_write(const T* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetchw %0" : : "m"(*reinterpret_cast<const char*>(p)));
#else
    __builtin_prefetch(p, 1, 3);
#endif
  }

  static T* allocate(std::size_t capacity) {
    const std::size_t bytes = capacity * sizeof(T);
    void* p = ::operator new(bytes, std::align_val_t{kCacheLine});
    std::memset(p, 0, bytes);  // pre-fault every page now, off the hot path
    return static_cast<T*>(p);
  }

  // Written by the producer, read by the consumer when it refreshes.
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  // Producer-private line.
  struct alignas(kCacheLine) Producer {
    std::uint64_t head_local = 0;
    std::uint64_t tail_cache = 0;
  } producer_;
  // Written by the consumer, read by the producer when it refreshes.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  // Consumer-private line.
  struct alignas(kCacheLine) Consumer {
    std::uint64_t tail_local = 0;
    std::uint64_t head_cache = 0;
  } consumer_;
  // Read-only after construction.
  alignas(kCacheLine) const std::size_t capacity_;
  const std::size_t mask_;
  T* const slots_;
  const bool owns_slots_ = true;
};

template <class T>
std::size_t SpscRing<T>::head_offset() noexcept {
  static_assert(std::is_standard_layout_v<SpscRing<T>>, "offsetof needs a standard-layout ring");
  return offsetof(SpscRing<T>, head_);
}
template <class T>
std::size_t SpscRing<T>::tail_offset() noexcept {
  return offsetof(SpscRing<T>, tail_);
}

}  // namespace strobe::ringbuf
