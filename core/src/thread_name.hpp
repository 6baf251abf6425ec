#pragma once
// Thread names (strobe::set_thread_name), kept in each thread's ring entry. Internal.

#include "strobe/detail/thread_state.hpp"

namespace strobe::detail {

// The calling thread, which owns t.entry (just attached to it): writes its name there,
// the one set_thread_name() gave it, else its OS name (pthread_getname_np).
void name_attached_thread(ThreadState& t) noexcept;

}  // namespace strobe::detail
