#pragma once
// CPU time split between the calling thread and every other thread of the process (in
// strobe's examples and benchmarks: the drainer and the sinks it runs), measured since
// construction. Unlike wall time it hardly depends on what else the machine runs.

#include <time.h>

#include <cstdint>

namespace demo {

inline std::int64_t cpu_ns(clockid_t clock) noexcept {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Construct and read on the same thread: that thread's CPU is "this thread", the rest of
// the process's is "others".
class CpuSplit {
 public:
  CpuSplit() noexcept : process0_(cpu_ns(CLOCK_PROCESS_CPUTIME_ID)), thread0_(cpu_ns(CLOCK_THREAD_CPUTIME_ID)) {}
  [[nodiscard]] std::int64_t this_thread_ns() const noexcept { return cpu_ns(CLOCK_THREAD_CPUTIME_ID) - thread0_; }
  [[nodiscard]] std::int64_t others_ns() const noexcept {
    const std::int64_t thread = this_thread_ns();
    return cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - process0_ - thread;
  }

 private:
  std::int64_t process0_, thread0_;
};

}  // namespace demo
