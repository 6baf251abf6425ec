// Thread names: what set_thread_name() chose, else the OS name a thread has when it
// attaches, written into the thread's ring entry, where the drainer reads it.

#include "thread_name.hpp"

#include <pthread.h>

#include <cstring>
#include <mutex>
#include <string_view>

#include "globals.hpp"
#include "strobe/recorder.hpp"

namespace strobe::detail {
namespace {

// The name set_thread_name() gave this thread: kept from before it attaches and across
// recorders. Trivially destructible, constant-initialised.
struct ChosenName {
  bool set = false;
  std::uint32_t size = 0;
  char text[kMaxThreadNameBytes] = {};
};
constinit thread_local ChosenName t_chosen{};

// The length of the longest prefix of s of at most `max` bytes that ends between UTF-8
// sequences.
std::size_t cut(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n] continues a sequence
  return n;
}

void publish(RingEntry& e, std::string_view name) noexcept {
  std::lock_guard lock(e.extra.name_mutex);
  e.extra.name_size = static_cast<std::uint32_t>(cut(name, kMaxThreadNameBytes));
  std::memcpy(e.extra.name, name.data(), e.extra.name_size);
  // relaxed: the drainer reads the name under the lock; the version only tells it to.
  e.extra.name_version.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void name_attached_thread(ThreadState& t) noexcept {
  auto* e = static_cast<RingEntry*>(t.entry);
  if (e == nullptr) return;
  if (t_chosen.set) {
    publish(*e, {t_chosen.text, t_chosen.size});
    return;
  }
  char os[kMaxThreadNameBytes] = {};  // Linux keeps 16 bytes, terminator included
  if (::pthread_getname_np(::pthread_self(), os, sizeof os) != 0) os[0] = '\0';
  publish(*e, {os, ::strnlen(os, sizeof os)});
}

}  // namespace strobe::detail

namespace strobe {

void set_thread_name(std::string_view name) noexcept {
  detail::ChosenName& c = detail::t_chosen;
  c.size = static_cast<std::uint32_t>(detail::cut(name, detail::kMaxThreadNameBytes));
  std::memcpy(c.text, name.data(), c.size);
  c.set = c.size != 0;
  // A thread that holds a ring (of this recorder or an earlier one) renames it now;
  // otherwise the name is written when it attaches.
  if (detail::t_state.entry != nullptr) detail::name_attached_thread(detail::t_state);
}

}  // namespace strobe
