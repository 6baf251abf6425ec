#include "intern.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "strobe/span.hpp"
#include "strobe/detail/utf8.hpp"

namespace strobe::detail {
namespace {

struct Entry {
  std::uint64_t hash;
  std::uint32_t id;
  std::uint32_t size;
  const char* shown;  // the text name() gives: text, or its UTF-8 repair after it
  std::uint32_t shown_size;
  char text[1];  // size bytes as given (what lookups match), then a terminating zero
};

std::uint64_t hash_bytes(const char* p, std::size_t n) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a final mix for the low bits
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

// Open addressing with lock-free lookups: an entry, once published, never moves or changes,
// so readers need no lock; inserts serialise on a mutex. Twice as many slots as names keeps
// probes short.
static constinit thread_local bool t_inserting = false;  // this thread holds InternTable's lock

class InternTable {
 public:
  static constexpr std::size_t kSlots = std::size_t{kMaxNames} * 2;

  InternTable() {
    insert_locked("", hash_bytes("", 0));
    insert_locked("<too many names>", hash_bytes("<too many names>", 16));
  }

  std::uint32_t intern(const char* p, std::size_t n) noexcept {
    const std::uint64_t h = hash_bytes(p, n);
    if (const Entry* e = find(p, n, h)) return e->id;
    // A signal handler interrupting this thread while it holds the lock below: a new name
    // now would deadlock. It reads "<too many names>" instead.
    if (t_inserting) return kOverflowNameId;
    FlagScope inserting(t_inserting);
    std::lock_guard lock(mutex_);
    if (const Entry* e = find(p, n, h)) return e->id;  // another thread won the race
    if (count_.load(std::memory_order_relaxed) >= kMaxNames) return overflow();
    const Entry* e = insert_locked(std::string_view(p, n), h);
    return e ? e->id : overflow();
  }

  // The table is full: the name reads "<too many names>", counted (Stats::names_overflowed)
  // and flagged on the span (kSpanNameOverflow).
  static std::uint32_t overflow() noexcept {
    // relaxed: a statistic.
    g_names_overflowed.fetch_add(1, std::memory_order_relaxed);
    return kOverflowNameId;
  }

  std::string_view name(std::uint32_t id) const noexcept {
    if (id >= kMaxNames) return {};
    // acquire: pairs with the release in insert_locked, so the text is complete.
    const Entry* e = by_id_[id].load(std::memory_order_acquire);
    return e ? std::string_view(e->shown, e->shown_size) : std::string_view{};
  }

  std::uint32_t count() const noexcept { return count_.load(std::memory_order_acquire); }
  std::mutex& mutex() noexcept { return mutex_; }

  void observe(InternObserver observer, void* context) noexcept {
    FlagScope inserting(t_inserting);
    std::lock_guard lock(mutex_);
    if (observer != nullptr) {
      const std::uint32_t n = count_.load(std::memory_order_relaxed);
      for (std::uint32_t id = 0; id < n; ++id) {
        const Entry* e = by_id_[id].load(std::memory_order_relaxed);
        observer(context, id, e->text, e->size);
      }
    }
    observer_ = observer;
    observer_context_ = context;
  }

 private:
  const Entry* find(const char* p, std::size_t n, std::uint64_t h) const noexcept {
    for (std::size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      // acquire: an entry seen here was fully written before it was published.
      const Entry* e = slots_[i].load(std::memory_order_acquire);
      if (e == nullptr) return nullptr;
      if (e->hash == h && e->size == n && std::memcmp(e->text, p, n) == 0) return e;
    }
  }

  const Entry* insert_locked(std::string_view s, std::uint64_t h) noexcept {
    if (s.size() > 0xffffffffu / 4) return nullptr;
    // Invalid UTF-8 is matched as given but shown repaired (at most 3 bytes per byte).
    std::string repaired;
    bool bad = false;
    try {
      repaired.assign(s);
      bad = repair_utf8(repaired);
    } catch (...) {
      return nullptr;
    }
    const std::size_t extra = bad ? repaired.size() + 1 : 0;
    auto* e = static_cast<Entry*>(std::malloc(sizeof(Entry) + s.size() + extra));
    if (e == nullptr) return nullptr;
    e->hash = h;
    e->size = static_cast<std::uint32_t>(s.size());
    std::memcpy(e->text, s.data(), s.size());
    e->text[s.size()] = '\0';
    e->shown = e->text;
    e->shown_size = e->size;
    if (bad) {
      char* shown = e->text + s.size() + 1;
      std::memcpy(shown, repaired.data(), repaired.size());
      shown[repaired.size()] = '\0';
      e->shown = shown;
      e->shown_size = static_cast<std::uint32_t>(repaired.size());
    }
    e->id = count_.load(std::memory_order_relaxed);
    if (bad && e->id < kMaxNames)
      g_repaired_names[e->id / 64].fetch_or(std::uint64_t{1} << (e->id % 64), std::memory_order_relaxed);
    std::size_t i = h & (kSlots - 1);
    while (slots_[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & (kSlots - 1);
    // release: publish the fully written entry to lock-free readers.
    by_id_[e->id].store(e, std::memory_order_release);
    slots_[i].store(e, std::memory_order_release);
    count_.store(e->id + 1, std::memory_order_release);
    if (observer_ != nullptr) observer_(observer_context_, e->id, e->text, e->size);
    return e;
  }

  std::mutex mutex_;
  std::atomic<std::uint32_t> count_{0};
  std::atomic<const Entry*> slots_[kSlots]{};
  std::atomic<const Entry*> by_id_[kMaxNames]{};
  InternObserver observer_ = nullptr;  // under mutex_
  void* observer_context_ = nullptr;
};

InternTable& table() {
  static auto* t = new InternTable();  // never destroyed: spans may run during static teardown
  return *t;
}

}  // namespace

std::uint32_t intern(const char* data, std::size_t size) noexcept {
  return table().intern(data, size);
}
std::string_view name_of(std::uint32_t id) noexcept { return table().name(id); }
std::uint32_t intern_count() noexcept { return table().count(); }
void observe_interned(InternObserver observer, void* context) noexcept { table().observe(observer, context); }
void intern_lock_for_fork() noexcept { table().mutex().lock(); }
void intern_unlock_after_fork() noexcept { table().mutex().unlock(); }

}  // namespace strobe::detail

std::string_view strobe::Name::str() const noexcept { return detail::name_of(id_); }
