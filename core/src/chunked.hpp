#pragma once
// A lock-free array that grows in chunks made on first use and never freed, so any thread
// may keep reading an element it was told about (a copied token, a mailbox of a thread that
// has exited). Internal.

#include <atomic>
#include <cstddef>
#include <new>

namespace strobe::detail {

template <class T, std::size_t kPerChunk, std::size_t kChunks>
class ChunkedArray {
 public:
  static constexpr std::size_t kCapacity = kPerChunk * kChunks;

  // Element i, its chunk made now if need be (any thread); null past the capacity or when
  // no memory could be had.
  T* at(std::size_t i) noexcept {
    if (i >= kCapacity) return nullptr;
    std::atomic<T*>& slot = chunks_[i / kPerChunk];
    T* c = slot.load(std::memory_order_acquire);
    if (c == nullptr) {
      T* fresh = new (std::nothrow) T[kPerChunk];
      if (fresh == nullptr) return nullptr;
      if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
        c = fresh;
      } else {
        delete[] fresh;  // another thread made it first; c is theirs
      }
    }
    return &c[i % kPerChunk];
  }

 private:
  std::atomic<T*> chunks_[kChunks] = {};
};

}  // namespace strobe::detail
