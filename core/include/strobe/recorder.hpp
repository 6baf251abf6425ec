#pragma once
// The Recorder: owns the drainer thread and the sinks for as long as it lives.

#if defined(STROBE_DISABLE)
// STROBE_DISABLE: a Recorder that starts nothing (strobe/disabled.hpp).
#include "strobe/disabled.hpp"
#else

#include <memory>
#include <string_view>

#include "strobe/sink.hpp"
#include "strobe/types.hpp"

namespace strobe {

namespace detail {
class RecorderCore;
}

class Recorder {
 public:
  // Validates config (ConfigError, before anything starts), calibrates the clock and
  // starts the drainer. At most one Recorder is active at a time: a second throws
  // ConfigError while the first lives.
  explicit Recorder(Config config = {});
  // Drains every ring, hands all traces (open ones marked incomplete) to the sinks, flushes
  // them and stops. Spans still open afterwards end as no-ops.
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Any thread but a sink's. Synchronous: everything recorded before the call has been
  // assembled and handed to the sinks (open traces as incomplete parts) and the sinks
  // flushed when it returns.
  void flush();

  // Any thread. Counters since start; exact after flush().
  [[nodiscard]] Stats stats() const;

  // The Config it runs with (the service name made valid UTF-8); `assembly` says what
  // `automatic` became: in_process or deferred.
  [[nodiscard]] const Config& config() const noexcept;

  // True while a Recorder is active in this process.
  [[nodiscard]] static bool active() noexcept;

 private:
  std::unique_ptr<detail::RecorderCore> core_;
};

// Names the calling thread in traces: exports and the HTML page show it, and the file
// keeps it beside the thread's id. A thread never named has the name its OS gave it
// (pthread_getname_np) when it first recorded; "" goes back to that. Any thread, any
// time, with or without an active Recorder; the name holds for the thread's life, across
// recorders, from the next drainer pass on (one name per thread in a trace: the latest).
// At most 64 bytes are kept (cut between UTF-8 sequences). Takes a lock: not for the hot
// path, nor for a signal handler.
void set_thread_name(std::string_view name) noexcept;

}  // namespace strobe

#endif  // STROBE_DISABLE
