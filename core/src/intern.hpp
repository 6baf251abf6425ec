#pragma once
// The process-wide intern table: string <-> small integer id. Ids are never reused.

#include <atomic>
#include <cstdint>
#include <string_view>

namespace strobe::detail {

inline constexpr std::uint32_t kEmptyNameId = 0;      // ""
inline constexpr std::uint32_t kOverflowNameId = 1;  // what intern() returns once the table is full
inline constexpr std::uint32_t kMaxNames = 1u << 18;

// Any thread. The text of id; "" for an id never handed out. Valid for the process's life.
std::string_view name_of(std::uint32_t id) noexcept;

// Any thread. Number of ids handed out.
std::uint32_t intern_count() noexcept;

// fork(): the table's lock is held across it, so the child never inherits it locked.
void intern_lock_for_fork() noexcept;
void intern_unlock_after_fork() noexcept;

// Any thread. True when the text given for id was not valid UTF-8: name_of(id) is the
// repaired text (U+FFFD for each bad sequence) and spans using it are flagged
// kSpanInvalidUtf8. One bit per id.
inline std::atomic<std::uint64_t> g_repaired_names[kMaxNames / 64] = {};
[[nodiscard]] inline bool name_was_repaired(std::uint32_t id) noexcept {
  // relaxed: set before the id is published (release) to whoever interned it.
  return id < kMaxNames && (g_repaired_names[id / 64].load(std::memory_order_relaxed) >> (id % 64) & 1) != 0;
}

// The recovery mode's names log (see recovery.hpp). Called under the table's lock with
// every name in id order: those interned so far at once, then each new one when it is
// inserted, before its id is returned to anyone. The text is as given (before any UTF-8
// repair): interning the texts again in id order gives the same ids. Null stops it.
using InternObserver = void (*)(void* context, std::uint32_t id, const char* text, std::size_t size) noexcept;
void observe_interned(InternObserver observer, void* context) noexcept;

// Names asked for once the table was full (each got kOverflowNameId). Process-wide.
inline std::atomic<std::uint64_t> g_names_overflowed{0};

}  // namespace strobe::detail
