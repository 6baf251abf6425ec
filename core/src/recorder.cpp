// The Recorder and its drainer thread.

#include "strobe/recorder.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cerrno>
#include <bit>
#include <cstring>
#include <exception>
#include <iterator>
#include <string>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "assembler.hpp"
#include "clock.hpp"
#include "globals.hpp"
#include "intern.hpp"
#include "record_log.hpp"
#include "recovery.hpp"
#include "strobe/detail/utf8.hpp"
#include "strobe/span.hpp"

namespace strobe {
namespace detail {

class RecorderCore {
 public:
  RecorderCore(Config config, bool use_tsc, std::uint32_t generation)
      : config_(std::move(config)),
        generation_(generation),
        deferred_(config_.assembly == Assembly::deferred),
        clock_(use_tsc),
        assembler_({config_.service_name, static_cast<std::uint32_t>(::getpid()),
                    config_.partial_trace_spans,
                    std::chrono::duration_cast<std::chrono::nanoseconds>(config_.partial_trace_age).count(),
                    // Deferred: nothing is assembled here, so no memory is prepared for it.
                    config_.assembly == Assembly::deferred ? 0 : config_.expected_trace_spans},
                   clock_),
        // Read now: the drainer refines the slope (recalibrate) as it runs.
        ns_per_tick_at_start_(clock_.ns_per_tick()) {
    if (deferred_) {
      // The chunk being filled and two spares, each room for a chunk's worth and a whole
      // ring's batch on top, touched now rather than by the drainer mid-pass.
      const std::size_t cells = kChunkBytes / sizeof(Record) + LogEncoder::max_bytes(config_.ring_capacity) / sizeof(Record) + 2;
      log_.prepare(cells);
      for (int k = 0; k < 2; ++k) {
        LogChunk spare;
        spare.prepare(cells);
        returned_logs_.push_back(std::move(spare));
      }
    }
  }

  // Called with globals().mutex held, before the generation is published: whatever the
  // rings hold was recorded under an earlier recorder and is discarded.
  void adopt_rings() {
    globals().registry.snapshot(snapshot_);
    for (RingEntry* e : snapshot_) {
      e->ring.discard_all();
      e->extra.base_records = e->extra.records_dropped.load(std::memory_order_relaxed);
      e->extra.base_spans = e->extra.spans_dropped.load(std::memory_order_relaxed);
      e->extra.name_seen = 0;  // this recorder's drainer has yet to read the thread's name
    }
  }

  void start() {
    // Opened here, before the constructor returns: a file's header is written before
    // anything is recorded, so a process killed at once still leaves a readable file.
    open_sinks();
    sink_thread_ = std::thread([this] { run_sinks(); });
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(wake_mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();  // it queued the last traces and the stop
    if (sink_thread_.joinable()) sink_thread_.join();
    {
      std::lock_guard lock(wake_mutex_);
      stopped_ = true;
    }
    done_.notify_all();
  }

  void flush() {
    if (forked_) return;  // a forked child: the drainer did not come along
    const auto self = std::this_thread::get_id();
    if (self == thread_.get_id() || self == sink_thread_.get_id()) return;  // from a sink: would deadlock
    std::unique_lock lock(wake_mutex_);
    const std::uint64_t ticket = ++flush_requested_;
    wake_.notify_all();
    done_.wait(lock, [&] { return flush_completed_ >= ticket || stopped_; });
  }

  Stats stats() const {
    Stats s;
    {
      std::lock_guard lock(stats_mutex_);
      s = totals_;
      std::vector<RingEntry*> entries;
      globals().registry.snapshot(entries);
      add_ring_drops(entries, s);
    }
    s.misuse = g_misuse.load(std::memory_order_relaxed) - misuse_base_;
    s.reentrant_spans = g_reentrant_spans.load(std::memory_order_relaxed) - reentrant_base_;
    s.ringless_spans = g_ringless_spans.load(std::memory_order_relaxed) - ringless_base_;
    s.spans_dropped += s.ringless_spans;
    s.ring_bytes = globals().registry.ring_bytes();
    s.names_overflowed = g_names_overflowed.load(std::memory_order_relaxed) - names_base_;
    s.drainer_cpu_ns = thread_cpu_ns(drainer_clock_);
    s.sink_cpu_ns = thread_cpu_ns(sink_clock_);
    return s;
  }

  // What the rings dropped (under stats_mutex_): their counters since they were taken.
  static void add_ring_drops(const std::vector<RingEntry*>& entries, Stats& s) noexcept {
    for (const RingEntry* e : entries) {
      s.records_dropped += e->extra.records_dropped.load(std::memory_order_relaxed) - e->extra.base_records;
      s.spans_dropped += e->extra.spans_dropped.load(std::memory_order_relaxed) - e->extra.base_spans;
      if (!e->retired.load(std::memory_order_relaxed)) ++s.rings_live;
    }
  }

  const Config& config() const noexcept { return config_; }

  // The crash flush (crash handlers below): from the crashing thread. Asks the drainer to
  // hand over everything and waits, sleeping, until the sinks flushed or the timeout
  // passed. False when this thread is the drainer or the sink thread (nothing to wait for).
  bool crash_flush(int signal, std::uint64_t address, const char* what) noexcept {
    const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
    if (self == drainer_tid_.load(std::memory_order_relaxed) || self == sink_tid_.load(std::memory_order_relaxed))
      return false;
    g_generation.store(0, std::memory_order_relaxed);  // every thread's next span is a no-op
    crash_span_.store(t_state.cur_span, std::memory_order_relaxed);
    crash_address_.store(address, std::memory_order_relaxed);
    // The description, by hand (snprintf is not async-signal-safe).
    std::size_t at = 0;
    auto put = [&](const char* text) {
      for (; *text != '\0' && at + 1 < sizeof crash_text_; ++text) crash_text_[at++] = *text;
    };
    if (what != nullptr) {
      put("std::terminate: ");
      put(what);
    } else {
      put(signal == SIGSEGV ? "SIGSEGV" : signal == SIGBUS ? "SIGBUS" : signal == SIGILL ? "SIGILL"
          : signal == SIGFPE ? "SIGFPE" : "SIGABRT");
      if (address != 0) {
        char hex[19] = "0x";
        int digits = 0;
        for (std::uint64_t v = address; v != 0; v >>= 4) ++digits;
        for (int k = 0; k < digits; ++k) hex[2 + k] = "0123456789abcdef"[(address >> (4 * (digits - 1 - k))) & 15];
        hex[2 + digits] = '\0';
        put(" at ");
        put(hex);
      }
    }
    crash_text_[at] = '\0';
    crash_signal_.store(signal, std::memory_order_release);  // release: the fields above first
    const auto ms = config_.crash_flush_timeout.count();
    for (std::int64_t waited = 0; waited < ms * 4 && !crash_done_.load(std::memory_order_acquire); ++waited) {
      const timespec quarter{0, 250'000};  // nanosleep: async-signal-safe
      ::nanosleep(&quarter, nullptr);
    }
    return true;
  }

  std::uint64_t misuse_base_ = 0;
  std::uint64_t names_base_ = 0;
  std::uint64_t reentrant_base_ = 0;
  std::uint64_t ringless_base_ = 0;
  bool forked_ = false;  // this is a copy in a forked child (see fork_child)
  // Config::recovery_dir's files; null when off. Never freed: rings in its files may
  // outlive the recorder (running threads keep theirs); Globals::retired_recovery keeps it after.
  RecoveryStore* recovery_ = nullptr;
  std::mutex& stats_mutex() noexcept { return stats_mutex_; }

 private:
  // A signal handler cannot notify a condition variable: the drainer sees a crash when
  // its nap ends (at most 4 x drain_interval).
  bool crashing() const noexcept { return crash_signal_.load(std::memory_order_relaxed) != 0; }

  // The drainer, on a crash: what the rings hold, every open trace (final), the span that
  // was running on the crashing thread marked, the sinks told and flushed; then the
  // crashing thread may go on dying.
  void crash_hand_over() {
    drain_pass(true);
    drain_pass(true);
    assembler_.mark_crash(crash_span_.load(std::memory_order_relaxed), crash_text_);
    hand_over_all(true, kCrashTicket);
    {
      std::unique_lock lock(wake_mutex_);
      done_.wait(lock, [&] { return flush_completed_ >= kCrashTicket; });
    }
    // The sink thread ends too: if the process lives on after all (a signal ignored,
    // raised and survived), the Recorder's end joins both threads as usual; recording
    // stays off.
    stop_sinks();
    crash_done_.store(true, std::memory_order_release);
  }

  // The sink thread ends once it has handed what is queued to the sinks.
  void stop_sinks() {
    {
      std::lock_guard lock(queue_mutex_);
      sinks_stop_ = true;
      wake_sinks_ = true;
    }
    queue_ready_.notify_all();
  }

  void run() {
    drainer_tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    ::pthread_setname_np(::pthread_self(), "strobe-drainer");
    publish_clock(drainer_clock_);
    if (deferred_) {
      log_.cell(LogKind::start, {generation_, config_.partial_trace_spans,
                                 static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     config_.partial_trace_age).count()),
                                 kLogVersion, sizeof(Record)});
      log_clock();
    }
    int idle = 0;
    auto previous_pass_start = std::chrono::steady_clock::now();
    auto previous_pass_end = previous_pass_start;
    bool after_backlog = false;
    std::uint64_t passes = 0;
    for (;;) {
      std::uint64_t flush_ticket = 0;
      bool stopping = false;
      {
        std::lock_guard lock(wake_mutex_);
        flush_ticket = flush_requested_;
        stopping = stopping_;
      }
      // window: the time in which this pass's records came, since the previous pass began
      // (it read each ring at some point in it). After a backlog, since it ended: a ring
      // may have been full all through that pass, a producer under the wait policy
      // blocked, and counting the pass would take what came after it for a trickle
      // (recording as fast as it can, strobe_serialize_bench's BM_EndToEnd then napped the
      // full 4 x drain_interval after every few passes and ran at half its rate). Since
      // the end in every case: naps a little short, the paced drainer 54-57 -> 62-65 ns.
      const auto pass_start = std::chrono::steady_clock::now();
      const auto window = std::chrono::duration_cast<std::chrono::nanoseconds>(
          pass_start - (after_backlog ? previous_pass_end : previous_pass_start));
      previous_pass_start = pass_start;
      const std::size_t n = drain_pass();
      previous_pass_end = std::chrono::steady_clock::now();
      after_backlog = false;
      if (crash_signal_.load(std::memory_order_acquire) != 0) [[unlikely]] {
        crash_hand_over();
        return;  // the process is ending; nothing else is drained
      }
      if (stopping) break;
      if (flush_ticket > flush_seen_) {
        // Everything recorded before flush() was published before the request, so this
        // pass and one more (see Assembler::end_of_pass) have seen it. The sink thread
        // completes the flush once the sinks have it all.
        drain_pass(true);
        hand_over_all(false, flush_ticket);
        flush_seen_ = flush_ticket;
        continue;
      }
      if ((++passes & 1023) == 0) {
        clock_.recalibrate();
        if (deferred_) log_clock();
      }
      // What fills first is the busiest ring: with two threads at the same rate, a pass's
      // records over all rings would halve every nap (twice the wake-ups of one thread).
      const std::size_t busiest = busiest_;
      if (busiest >= config_.ring_capacity / 8) {  // a backlog: keep up without a pause
        idle = 0;
        after_backlog = true;
        continue;
      }
      if (n > 0) {
        // A trickle: let it gather before the next pass. Tailing a producer record by
        // record pulls the ring's write position to this core after nearly every commit,
        // and every wake-up costs the drainer's core (next to the recording thread) a
        // fixed cost that on this VM is worth about a thousand records: nap until the
        // busiest ring would hold a quarter of its capacity at the rate this pass saw, at
        // most 4 x drain_interval. At 1 M spans/s under one endless root
        // (strobe_paced_bench), an eighth of a ring and at most drain_interval meant
        // naps of 1 ms and 74-85 ns of drainer CPU a span; this, 60-72 beside it. The
        // price: a burst four times the rate the pass saw, within a nap, fills a ring.
        // A pass that found threads exited naps at most drain_interval, so that their
        // rings go back to the pool for threads to come (100,000 short-lived threads,
        // 10 at a time: the pool kept 42 rings after it with 4 x drain_interval, 7-8
        // with this).
        idle = 0;
        const auto gather = static_cast<std::int64_t>(config_.ring_capacity / 4);
        const auto fill = window * gather / static_cast<std::int64_t>(std::max<std::size_t>(busiest, 1));
        const int intervals = std::exchange(rings_recycled_, false) ? 1 : kNapIntervals;
        const auto nap = std::min<std::chrono::nanoseconds>(config_.drain_interval * intervals, fill);
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, nap, [&] { return stopping_ || flush_requested_ > flush_seen_ || crashing(); });
        continue;
      }
      if (++idle <= config_.drain_spin_passes) {
        for (int i = 0; i < 64; ++i) _mm_pause();
        continue;
      }
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, config_.drain_interval,
                     [&] { return stopping_ || flush_requested_ > flush_seen_ || crashing(); });
    }
    drain_pass(true);
    drain_pass(true);
    hand_over_all(true, 0);
    stop_sinks();
    retire_clock(drainer_clock_);
  }

  // The sink thread: each queued trace to every sink, in order.
  void run_sinks() {
    sink_tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    ::pthread_setname_np(::pthread_self(), "strobe-sinks");
    // Below the drainer: when the two share a core, the one that keeps the rings from
    // overflowing goes first, and the sinks catch up in the queue (Linux: a thread's own
    // nice value; elsewhere, or without permission, this does nothing).
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
    publish_clock(sink_clock_);
    std::vector<QueueItem> batch;
    // Deferred assembly: sinks that lost a chunk of the log (it threw) get a resync before
    // their next one (record_log.hpp), so what they store reads on past the loss.
    // It also carries the chunks the sink lost so far and their spans, so a file that
    // never gets its end frame (SIGKILL) still says what its writer failed to write.
    std::vector<char> resync(config_.sinks.size(), 0);
    std::vector<LogLoss> log_lost(config_.sinks.size());
    LogState log_state;
    LogChunk resync_chunk;
    for (;;) {
      bool stop = false;
      {
        std::unique_lock lock(queue_mutex_);
        // Woken for a flush, the stop, or a queue an eighth full; else it looks as often
        // as the drainer naps at most: a wake-up per pass of the drainer cost more than
        // the sinks' work, and one every drain_interval while the drainer naps four
        // found nothing three times in four (strobe_paced_bench: the sink thread's CPU a
        // span a fifth over what it had been; looking every 4 x, a fifth under).
        // Deferred assembly wakes it for every chunk (a chunk is many passes' work), so
        // it need not look on its own.
        queue_ready_.wait_for(lock, config_.drain_interval * (deferred_ ? kChunkPasses : kNapIntervals),
                              [&] { return wake_sinks_ || sinks_stop_; });
        wake_sinks_ = false;
        if (queue_.empty() && !sinks_stop_) continue;
        batch.swap(queue_);
        stop = sinks_stop_ && batch.empty();
      }
      if (stop) break;
      std::size_t spans = 0;
      std::uint64_t errors = 0, flushed = 0;
      for (QueueItem& item : batch) {
        if (item.flush_ticket != kTraceItem) {
          const DropCounts& trailing = item.trace.drops_since_previous;
          for (std::size_t k = 0; k < config_.sinks.size(); ++k) {
            Sink& sink = *config_.sinks[k];
            try {
              if (trailing.spans != 0 || trailing.records != 0 || trailing.sink_spans != 0) sink.lost(trailing);
              if (item.flush_ticket == kCrashTicket)
                sink.crashed(CrashInfo{crash_signal_.load(std::memory_order_relaxed),
                                       crash_address_.load(std::memory_order_relaxed), crash_text_});
              sink.flush();
            } catch (...) {
              ++errors;
              resync[k] = deferred_;  // a flush that failed may have lost what it held, or the file
            }
          }
          flushed = std::max(flushed, item.flush_ticket);
          continue;
        }
        spans += item.weight;
        for (std::size_t k = 0; k < config_.sinks.size(); ++k) {
          Sink& sink = *config_.sinks[k];
          try {
            if (!item.log.empty()) {
              if (resync[k] != 0 && log_state.started()) {
                log_state.resync(resync_chunk, log_lost[k]);
                sink.consume_records(resync_chunk.data(), resync_chunk.bytes(), 0, 0);
              }
              resync[k] = 0;
              sink.consume_records(item.log.data(), item.log.bytes(), item.log.records(), item.log.begins());
            } else {
              sink.consume_compact(item.trace);
            }
          } catch (...) {
            ++errors;
            resync[k] = deferred_;
            if (!item.log.empty()) {  // the chunk did not reach it (or its resync did not)
              ++log_lost[k].chunks;
              log_lost[k].spans += item.log.begins();
            }
          }
        }
        if (!item.log.empty()) log_state.observe(item.log);
      }
      {
        std::lock_guard lock(queue_mutex_);
        queued_spans_ -= std::min(queued_spans_, spans);
        for (QueueItem& item : batch) {
          if (item.flush_ticket != kTraceItem) continue;
          if (!item.log.empty()) {
            if (returned_logs_.size() < kReturnedLogsMax) returned_logs_.push_back(std::move(item.log));
          } else if (returned_.size() < kReturnedMax) {
            returned_.push_back(std::move(item.trace));
          }
        }
      }
      queue_space_.notify_all();
      batch.clear();
      if (errors != 0) {
        std::lock_guard lock(stats_mutex_);
        totals_.sink_errors += errors;
      }
      if (flushed != 0) {
        {
          std::lock_guard lock(wake_mutex_);
          flush_completed_ = std::max(flush_completed_, flushed);
        }
        done_.notify_all();
      }
    }
    retire_clock(sink_clock_);
  }

  void open_sinks() {
    RecorderInfo info;
    info.service_name = config_.service_name;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) info.host_name = host;
    info.process_id = static_cast<std::uint32_t>(::getpid());
    info.start_ns = realtime_ns();
    info.clock = clock_.uses_tsc() ? "tsc" : "steady";
    info.ns_per_tick = ns_per_tick_at_start_;
    info.records = deferred_;
    for (auto& sink : config_.sinks) {
      try {
        sink->open(info);
      } catch (...) {
        std::lock_guard lock(stats_mutex_);
        ++totals_.sink_errors;
      }
    }
  }

  // One pass over every registered ring. Returns the number of records consumed.
  // Deferred assembly leaves the records in the rings while the sink queue is full, unless
  // `all` (a flush, the end, a crash: what was recorded before must go, the queue waits).
  std::size_t drain_pass(bool all = false) {
    globals().registry.snapshot(snapshot_);
    const bool read = !deferred_ || all || queue_has_room();
    const std::size_t logged = log_.bytes();
    std::size_t total = 0;
    busiest_ = 0;
    for (RingEntry* e : snapshot_) {
      // acquire: pairs with retire(); a retired ring's records are all published.
      const bool retired = e->retired.load(std::memory_order_acquire);
      if (read) {
        const std::size_t got = deferred_ ? log_ring(*e) : drain_ring(*e);
        total += got;
        busiest_ = std::max(busiest_, got * config_.ring_capacity / e->ring.capacity());
      }
      refresh_thread_name(*e);
      if (retired && e->ring.available() == 0) {
        std::lock_guard lock(stats_mutex_);
        totals_.records_dropped += e->extra.records_dropped.load(std::memory_order_relaxed) - e->extra.base_records;
        totals_.spans_dropped += e->extra.spans_dropped.load(std::memory_order_relaxed) - e->extra.base_spans;
        e->extra.records_dropped.store(0, std::memory_order_relaxed);
        e->extra.spans_dropped.store(0, std::memory_order_relaxed);
        e->extra.base_records = e->extra.base_spans = 0;
        ++totals_.rings_retired;
        forget_thread_name(*e);
        // Spare rings for threads to come: as many as are registered now, plus two, so
        // the pool follows the peak of threads recording at once and shrinks after churn.
        globals().registry.recycle(e, globals().registry.registered_count() + 2);
        rings_recycled_ = true;
      }
    }
    if (deferred_) {
      end_log_pass(LogKind::pass, logged);
      // A chunk of whole passes goes when it is large, when the rings ran dry, or after
      // kChunkPasses passes (a trickle still reaches the file).
      if (log_.bytes() >= kChunkBytes || total == 0 || ++chunk_passes_ >= kChunkPasses) queue_log(false);
      return total;
    }
    assembler_.add_drops(drops_delta());
    assembler_.end_of_pass(out_, clock_.to_wall_ns(clock_.now_ticks()));
    deliver();
    return total;
  }

  // ---- deferred assembly (record_log.hpp) ----

  // A ring's records, copied to the log as they are.
  std::size_t log_ring(RingEntry& e) {
    Ring& ring = e.ring;
    const std::size_t avail = ring.available();
    if (avail == 0) return 0;
    log_.batch(e.owner_thread.load(std::memory_order_relaxed), avail);
    // Strings are whole (committed together). Prefetched as drain_ring's (--defer:
    // drainer 24-30 -> 22-26 ns a span).
    for (std::size_t i = 0; i < avail; ++i) {
      if (i + kAhead < avail) __builtin_prefetch(&ring.peek(i + kAhead));
      log_.put(ring.peek(i));
    }
    log_.end_batch();
    if (recovery_ != nullptr) recovery_->drained(e, avail, clock_);
    ring.release(avail);
    return avail;
  }

  void log_clock() {
    const Clock::Map m = clock_.map();
    log_.cell(LogKind::clock, {m.tsc, std::bit_cast<std::uint64_t>(m.ns_per_tick), m.anchor_ticks,
                               static_cast<std::uint64_t>(m.anchor_wall)});
  }

  // The names interned since the previous pass, then the pass's (or flush's) end, when
  // the pass logged anything since `logged` bytes or saw drops (an idle pass needs none:
  // the replay's next pass closes what it would have closed).
  void end_log_pass(LogKind kind, std::size_t logged, bool final = false) {
    const std::uint32_t interned = intern_count();  // after the rings: covers every id read
    if (interned > names_logged_) {
      log_.names(names_logged_, interned);
      names_logged_ = interned;
    }
    const DropCounts d = drops_delta();
    if (kind == LogKind::pass && log_.bytes() == logged && d.spans == 0 && d.records == 0) return;
    const auto now = static_cast<std::uint64_t>(clock_.to_wall_ns(clock_.now_ticks()));
    log_.cell(kind, {now, d.spans, d.records, final ? 1u : 0u});
  }

  bool queue_has_room() {
    std::lock_guard lock(queue_mutex_);
    return queued_spans_ < config_.sink_queue_spans;
  }

  // Queues the log's chunk for the sinks (its weight against sink_queue_spans: one for
  // every 128 bytes) and takes an empty one back. lossless: waits for room (a flush, the end).
  void queue_log(bool lossless) {
    chunk_passes_ = 0;
    if (log_.empty()) return;
    const std::size_t weight = (log_.bytes() + 127) / 128;
    const std::uint64_t begins = log_.begins();
    bool wake = false;
    {
      std::unique_lock lock(queue_mutex_);
      if (lossless && queued_spans_ != 0 && queued_spans_ + weight > config_.sink_queue_spans) {
        wake_sinks_ = true;
        queue_ready_.notify_all();
        queue_space_.wait(lock, [&] { return queued_spans_ == 0 || queued_spans_ + weight <= config_.sink_queue_spans; });
      }
      queued_spans_ += weight;
      QueueItem item{{}, kTraceItem, weight, {}};
      item.log = std::move(log_);
      queue_.push_back(std::move(item));
      log_ = LogChunk{};
      if (!returned_logs_.empty()) {
        log_ = std::move(returned_logs_.back());
        returned_logs_.pop_back();
      }
      wake = !wake_sinks_;
      wake_sinks_ = true;
    }
    log_.clear();  // a chunk back from the sinks keeps its capacity
    if (wake) queue_ready_.notify_all();
    std::lock_guard lock(stats_mutex_);
    totals_.spans_recorded += begins;
  }

  // How many records ahead of the one being read a pass prefetches.
  static constexpr std::size_t kAhead = 8;

  std::size_t drain_ring(RingEntry& e) {
    Ring& ring = e.ring;
    const std::size_t avail = ring.available();
    const std::uint64_t thread = e.owner_thread.load(std::memory_order_relaxed);
    std::size_t i = 0;
    while (i < avail) {
      // The records were written on the recording thread's core: asking for the lines a
      // few records ahead overlaps their transfer with assembling (strobe_paced_bench:
      // drainer 85-89 -> 78-80 ns a span).
      if (i + kAhead < avail) __builtin_prefetch(&ring.peek(i + kAhead));
      const Record& r = ring.peek(i);
      if (r.type != RecType::string) {
        if ((r.type != RecType::begin && r.type != RecType::next) ||
            r.payload.begin.generation == generation_) {
          assembler_.on_record(r, thread);
        }
        ++i;
        continue;
      }
      // A string: header plus continuations, committed together, so all are here.
      const std::uint32_t len = r.payload.str.length;
      const std::uint32_t cont = continuation_records(len);
      if (i + 1 + cont > avail) break;  // cannot happen with a well-behaved producer
      std::string text;
      text.resize(len);
      std::memcpy(text.data(), r.payload.str.inline_bytes, std::min<std::uint32_t>(len, kInlineString));
      std::size_t off = kInlineString;
      for (std::uint32_t k = 1; k <= cont; ++k, off += sizeof(Record)) {
        std::memcpy(text.data() + off, static_cast<const void*>(&ring.peek(i + k)),
                    std::min<std::size_t>(sizeof(Record), len - off));
      }
      assembler_.on_record(r, thread, std::move(text));
      i += 1 + cont;
    }
    if (recovery_ != nullptr) recovery_->drained(e, i, clock_);  // journaled before the space is given back
    ring.release(i);  // one store per pass: space goes back in bulk
    return i;
  }

  // The name in the entry of a ring just drained, when it changed. Read after the ring:
  // a name its thread set before the records read is then visible.
  void refresh_thread_name(RingEntry& e) {
    // relaxed: a stale version defers the copy to the next pass; the lock orders the copy.
    if (e.extra.name_version.load(std::memory_order_relaxed) == e.extra.name_seen) return;
    std::string name;
    {
      std::lock_guard lock(e.extra.name_mutex);
      name.assign(e.extra.name, e.extra.name_size);
      e.extra.name_seen = e.extra.name_version.load(std::memory_order_relaxed);
    }
    repair_utf8(name);
    if (deferred_) log_.text(LogKind::thread, e.owner_thread.load(std::memory_order_relaxed), name.data(), name.size());
    KnownName& known = thread_names_[e.owner_thread.load(std::memory_order_relaxed)];
    known.name = std::move(name);
    known.entry = &e;
    known.exited = false;
  }

  // A retired ring, drained: when its thread exited (it did not just move to a ring of
  // another size), the name stays for the spans still held, until kExitedNamesKept
  // threads exited after it (bounded memory under churn).
  void forget_thread_name(const RingEntry& e) {
    const std::uint64_t thread = e.owner_thread.load(std::memory_order_relaxed);
    auto it = thread_names_.find(thread);
    if (it == thread_names_.end() || it->second.entry != &e) return;
    it->second.exited = true;
    exited_threads_.push_back(thread);
    while (exited_threads_.size() > kExitedNamesKept) {
      auto oldest = thread_names_.find(exited_threads_.front());
      if (oldest != thread_names_.end() && oldest->second.exited) thread_names_.erase(oldest);
      exited_threads_.pop_front();
    }
  }

  // Names the threads the assembler listed in t.thread_names (those its spans began or
  // ended on); those without a name are left out.
  void name_threads(CompactTrace& t) {
    detail::name_threads(t, [&](std::uint64_t thread) -> const std::string* {
      auto it = thread_names_.find(thread);
      return it == thread_names_.end() ? nullptr : &it->second.name;
    });
  }

  // The drops since the previous call. Drainer only, every pass: the counters alone (what
  // stats() adds, the threads' CPU clocks among it, costs two system calls).
  DropCounts drops_delta() {
    Stats s;
    {
      std::lock_guard lock(stats_mutex_);
      s.spans_dropped = totals_.spans_dropped;
      s.records_dropped = totals_.records_dropped;
      // Rings as registered now (the pass may have recycled some, their drops moved to
      // totals_); only the drainer frees entries, so they stay valid while read here.
      globals().registry.snapshot(drops_snapshot_);
      add_ring_drops(drops_snapshot_, s);
    }
    s.spans_dropped += g_ringless_spans.load(std::memory_order_relaxed) - ringless_base_;
    DropCounts now{s.spans_dropped, s.records_dropped};
    DropCounts d{now.spans - std::min(now.spans, reported_drops_.spans),
                 now.records - std::min(now.records, reported_drops_.records)};
    reported_drops_ = now;
    return d;
  }

  // flush_ticket: queued after the traces, so the sink thread flushes the sinks and
  // completes that flush() (0: shutdown, which flushes too).
  // Everything goes to the sinks, whatever the policy: a flush waits for room in the
  // queue, and the drops that no trace handed over carries (they happened after the last
  // one, or came with traces the full queue dropped) go to the sinks with the flush.
  void hand_over_all(bool final, std::uint64_t flush_ticket) {
    if (deferred_) {
      if (flush_ticket == kCrashTicket)
        log_.text(LogKind::crash, crash_span_.load(std::memory_order_relaxed), crash_text_, std::strlen(crash_text_));
      end_log_pass(LogKind::flush, log_.bytes(), final);
      queue_log(true);
    } else {
      assembler_.add_drops(drops_delta());
      assembler_.flush(out_, clock_.to_wall_ns(clock_.now_ticks()), final);
      deliver(true);
    }
    {
      std::lock_guard lock(queue_mutex_);
      QueueItem item{{}, flush_ticket == 0 ? std::uint64_t{1} << 63 : flush_ticket, 0, {}};
      item.trace.drops_since_previous = assembler_.take_drops();
      item.trace.drops_since_previous += std::exchange(carried_drops_, DropCounts{});
      queue_.push_back(std::move(item));
      wake_sinks_ = true;
    }
    queue_ready_.notify_all();
  }

  // Queues what the assembler emitted for the sink thread, and takes back the storage of
  // traces the sinks are done with.
  void deliver(bool lossless = false) {
    if (out_.empty()) {
      publish_counters();
      return;
    }
    for (CompactTrace& t : out_) name_threads(t);
    std::uint64_t spans = 0, traces = 0, dropped = 0;
    bool wake = false;
    lossless |= config_.overflow == OverflowPolicy::wait;
    {
      std::unique_lock lock(queue_mutex_);
      for (CompactTrace& t : out_) {
        // Its weight in the queue: a row per span, and one per event (a long-lived span's
        // log lines come in parts of few spans and many events).
        std::size_t n = t.spans.size();
        for (const SpanExtra& x : t.extras) n += x.events.size();
        if (queued_spans_ != 0 && queued_spans_ + n > config_.sink_queue_spans) {
          if (lossless) {
            wake_sinks_ = true;
            queue_ready_.notify_all();
            queue_space_.wait(lock, [&] { return queued_spans_ == 0 || queued_spans_ + n <= config_.sink_queue_spans; });
          } else {
            // The sinks fell behind: drop this trace, counted, and keep its drop counts for
            // the next trace that reaches them. A span continued in a later part is lost
            // only when it ends in the part dropped, or with the events it carried there.
            std::uint64_t lost = 0;
            for (const SpanRow& row : t.spans)
              lost += !(row.flags & kSpanContinued) ||
                      (row.extra != SpanRow::kNoExtra && !t.extras[row.extra].events.empty());
            dropped += lost;
            carried_drops_ += t.drops_since_previous;
            carried_drops_.sink_spans += lost;
            continue;
          }
        }
        t.drops_since_previous += std::exchange(carried_drops_, DropCounts{});
        queued_spans_ += n;
        for (const SpanRow& row : t.spans) spans += (row.flags & kSpanContinued) ? 0 : 1;  // counted once, at its end
        ++traces;
        queue_.push_back(QueueItem{std::move(t), kTraceItem, n, {}});
      }
      returned_.swap(recycled_);
      wake = queued_spans_ >= config_.sink_queue_spans / 8 && !wake_sinks_;
      wake_sinks_ |= wake;
    }
    if (wake) queue_ready_.notify_all();
    {
      std::lock_guard lock(stats_mutex_);
      totals_.spans_assembled += spans;
      totals_.traces_emitted += traces;
      totals_.sink_spans_dropped += dropped;
    }
    for (CompactTrace& t : recycled_) assembler_.recycle(std::move(t));
    recycled_.clear();
    out_.clear();
    publish_counters();
  }

  void publish_counters() {
    if (deferred_) return;  // spans_recorded: counted as the log's chunks are queued
    std::lock_guard lock(stats_mutex_);
    totals_.spans_recorded = assembler_.begins();
    totals_.orphan_records = assembler_.orphan_records();
    totals_.placeholders = assembler_.placeholders();
  }

  // A thread's CPU clock, published by the thread itself so that stats() can read it
  // while the thread runs (and after it ended: the last reading stays).
  struct ThreadClock {
    std::atomic<bool> set{false};
    clockid_t id{};
    std::atomic<std::uint64_t> last{0};
  };
  static void publish_clock(ThreadClock& c) {
    clockid_t id{};
    if (::pthread_getcpuclockid(::pthread_self(), &id) != 0) return;
    c.id = id;
    c.set.store(true, std::memory_order_release);  // release: id is written before
  }
  static std::uint64_t thread_cpu_ns(const ThreadClock& c) {
    // acquire: pairs with publish_clock's release.
    if (!c.set.load(std::memory_order_acquire)) return c.last.load(std::memory_order_relaxed);
    timespec ts{};
    if (::clock_gettime(c.id, &ts) != 0) return c.last.load(std::memory_order_relaxed);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
  }
  static void retire_clock(ThreadClock& c) {
    c.last.store(thread_cpu_ns(c), std::memory_order_relaxed);
    c.set.store(false, std::memory_order_release);
  }

  Config config_;
  std::uint32_t generation_;
  const bool deferred_;  // Config::assembly == deferred
  LogChunk log_;         // drainer-only: the record log's chunk being filled
  std::uint32_t names_logged_ = 0;  // drainer-only: names [0, this) are in the log
  ThreadClock drainer_clock_;
  Clock clock_;
  Assembler assembler_;
  const double ns_per_tick_at_start_;  // for RecorderInfo (declared after clock_)
  std::thread thread_;
  std::thread sink_thread_;
  ThreadClock sink_clock_;
  std::vector<RingEntry*> snapshot_;
  // The most records the latest pass read from one ring, scaled to Config::ring_capacity.
  std::size_t busiest_ = 0;
  bool rings_recycled_ = false;  // a pass gave a retired ring back since the drainer last napped
  std::vector<RingEntry*> drops_snapshot_;  // drops_delta's, kept for its capacity
  // Drainer-only: the threads' names by OS thread id, and the threads that exited, oldest
  // first, whose names go once kExitedNamesKept more have exited.
  struct KnownName {
    std::string name;
    const RingEntry* entry = nullptr;  // whose name it is
    bool exited = false;
  };
  static constexpr std::size_t kExitedNamesKept = 4096;
  std::unordered_map<std::uint64_t, KnownName> thread_names_;
  std::deque<std::uint64_t> exited_threads_;
  std::vector<CompactTrace> out_;
  std::vector<CompactTrace> recycled_;  // drainer-only: storage back from the sink thread

  // The sink queue. An item is a trace, or (flush_ticket != kTraceItem) a flush of every
  // sink that completes that flush() ticket.
  static constexpr std::uint64_t kTraceItem = 0;
  static constexpr std::uint64_t kCrashTicket = std::uint64_t{1} << 62;  // the crash flush's
  std::atomic<int> crash_signal_{0};
  std::atomic<std::uint64_t> crash_address_{0};
  std::atomic<std::uint64_t> crash_span_{0};
  std::atomic<bool> crash_done_{false};
  char crash_text_[200] = {};
  std::atomic<pid_t> drainer_tid_{0};
  std::atomic<pid_t> sink_tid_{0};
  static constexpr std::size_t kReturnedMax = 64;
  struct QueueItem {
    CompactTrace trace;
    std::uint64_t flush_ticket = kTraceItem;
    std::size_t weight = 0;  // what it counts against sink_queue_spans
    LogChunk log;            // deferred assembly: a chunk of the record log in place of a trace
  };
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 20;
  static constexpr int kChunkPasses = 64;
  // The longest nap after a trickle, in drain_intervals (see run()).
  static constexpr int kNapIntervals = 4;
  int chunk_passes_ = 0;  // drainer-only: passes in log_
  // Chunks kept for refilling (each keeps its memory: steady state allocates nothing).
  static constexpr std::size_t kReturnedLogsMax = 8;
  std::vector<LogChunk> returned_logs_;  // consumed chunks, for the drainer to refill
  std::mutex queue_mutex_;
  std::condition_variable queue_ready_;  // the sink thread waits for items
  std::condition_variable queue_space_;  // the drainer (wait policy) waits for room
  std::vector<QueueItem> queue_;
  std::size_t queued_spans_ = 0;
  bool sinks_stop_ = false;
  bool wake_sinks_ = false;  // the sink thread has something it must not wait for
  std::vector<CompactTrace> returned_;  // consumed traces, for the drainer to recycle
  DropCounts carried_drops_{};          // drainer-only: of traces the full queue dropped
  DropCounts reported_drops_{};

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::uint64_t flush_requested_ = 0;
  std::uint64_t flush_completed_ = 0;
  std::uint64_t flush_seen_ = 0;  // drainer-only

  mutable std::mutex stats_mutex_;
  Stats totals_{};
};

namespace {

void validate(const Config& c, bool& use_tsc) {
  const std::size_t cap = c.ring_capacity;
  if (cap < 64 || (cap & (cap - 1)) != 0)
    throw ConfigError("strobe: Config::ring_capacity must be a power of two >= 64, got " +
                      std::to_string(cap));
  if (cap > (std::size_t{1} << 24))
    throw ConfigError("strobe: Config::ring_capacity must be at most 2^24 records (1 GiB)");
  if (c.max_string_bytes == 0)
    throw ConfigError("strobe: Config::max_string_bytes must be > 0");
  if (c.drain_interval.count() <= 0 || c.drain_interval > std::chrono::seconds(10))
    throw ConfigError("strobe: Config::drain_interval must be in (0, 10 s]");
  if (c.drain_spin_passes < 0) throw ConfigError("strobe: Config::drain_spin_passes must be >= 0");
  if (c.partial_trace_spans == 0) throw ConfigError("strobe: Config::partial_trace_spans must be > 0");
  if (c.partial_trace_age.count() <= 0) throw ConfigError("strobe: Config::partial_trace_age must be > 0");
  if (c.sink_queue_spans == 0) throw ConfigError("strobe: Config::sink_queue_spans must be > 0");
  if (c.crash_flush_timeout < std::chrono::milliseconds(0) || c.crash_flush_timeout > std::chrono::minutes(1))
    throw ConfigError("strobe: Config::crash_flush_timeout must be within [0 ms, 60 s]");
  if (c.expected_trace_spans > (std::size_t{1} << 22))
    throw ConfigError("strobe: Config::expected_trace_spans must be at most 2^22, got " +
                      std::to_string(c.expected_trace_spans));
  if (c.assembly != Assembly::automatic && c.assembly != Assembly::in_process && c.assembly != Assembly::deferred)
    throw ConfigError("strobe: Config::assembly must be automatic, in_process or deferred");
  for (const auto& s : c.sinks) {
    if (!s) throw ConfigError("strobe: Config::sinks holds a null sink");
    if (c.assembly == Assembly::deferred && !s->takes_records())
      throw ConfigError("strobe: Config::assembly = deferred: every sink must take the record log "
                        "(Sink::takes_records; a FileSink without rotate_bytes does)");
  }
  if (!c.recovery_dir.empty()) {
    const std::size_t j = c.recovery_journal_records;
    if (j < 2 * cap || (j & (j - 1)) != 0 || j > (std::size_t{1} << 28))
      throw ConfigError("strobe: Config::recovery_journal_records must be a power of two, at least twice "
                        "ring_capacity and at most 2^28, got " + std::to_string(j));
  }
  switch (c.clock) {
    case ClockSource::automatic: use_tsc = tsc_is_invariant(); break;
    case ClockSource::tsc:
      if (!tsc_is_invariant())
        throw ConfigError("strobe: ClockSource::tsc asked for, but this CPU's TSC is not invariant");
      use_tsc = true;
      break;
    case ClockSource::steady: use_tsc = false; break;
  }
}

}  // namespace
}  // namespace detail

namespace detail {
namespace {

RecorderCore* g_active_core = nullptr;  // under globals().mutex

// fork() while recording: the child gets only the forking thread, no drainer or sink
// thread. Every lock a child could need (the globals, the registry, the intern table, the
// recorder's statistics) is held across fork() so none is inherited locked; the child
// then turns recording off for good, and its copy of the Recorder neither waits for
// threads that are not there nor writes to the parent's sinks.
void fork_prepare() noexcept {
  Globals& g = globals();
  g.mutex.lock();
  if (g_active_core != nullptr) g_active_core->stats_mutex().lock();
  g.registry.lock_for_fork();
  intern_lock_for_fork();
}

void fork_unlock() noexcept {
  Globals& g = globals();
  intern_unlock_after_fork();
  g.registry.unlock_after_fork();
  if (g_active_core != nullptr) g_active_core->stats_mutex().unlock();
  g.mutex.unlock();
}

void fork_child() noexcept {
  Globals& g = globals();
  if (g.active) {
    g.forked_child = true;
    g_generation.store(0, std::memory_order_relaxed);
    if (g_active_core != nullptr) g_active_core->forked_ = true;
  }
  t_state.generation = 0;  // spans begun before the fork end as no-ops
  fork_unlock();
}

// ---- the crash flush's handlers (Config::crash_flush) ----
//
// Installed by the first Recorder that asks, kept while it lives. A handler runs on the
// crashing thread: it only stores into atomics, sleeps (nanosleep) and reads its own
// thread's state; the drainer, a normal thread, does the work. Then the previous
// disposition takes over: a handler the program had is called; the default one kills
// the process (a fault by re-running the faulting instruction, anything else raised
// again). A second crash meanwhile, or a crash of the drainer or sink thread (which could
// not hand over), passes straight through.

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
std::atomic<RecorderCore*> g_crash_core{nullptr};
std::atomic<bool> g_crashing{false};
struct sigaction g_previous[std::size(kCrashSignals)];
bool g_crash_installed = false;  // under globals().mutex
std::terminate_handler g_previous_terminate = nullptr;

std::size_t crash_slot(int sig) noexcept {
  for (std::size_t k = 0; k < std::size(kCrashSignals); ++k)
    if (kCrashSignals[k] == sig) return k;
  return 0;
}

// The previous disposition is the default: the process dies of the signal. Only then is
// there a crash to flush for; a handler of the program's own may recover (a runtime that
// handles its faults, a guard around a mapped file), so it runs first and alone.
bool dies_of(int sig) noexcept {
  const struct sigaction& prev = g_previous[crash_slot(sig)];
  return prev.sa_handler == SIG_DFL;
}

void pass_on(int sig, siginfo_t* info, void* context) noexcept {
  struct sigaction prev = g_previous[crash_slot(sig)];
  // SIG_DFL and SIG_IGN are read from sa_handler whatever the flags (they share storage
  // with sa_sigaction).
  const bool function = prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN;
  if (function && (prev.sa_flags & SA_RESETHAND) != 0) {
    struct sigaction reset {};
    reset.sa_handler = SIG_DFL;
    sigemptyset(&reset.sa_mask);
    ::sigaction(sig, &reset, nullptr);  // what the kernel would have done before calling it
  } else {
    ::sigaction(sig, &prev, nullptr);
  }
  if (prev.sa_handler == SIG_IGN) return;
  if (function) {
    // Called as the kernel would: with its mask blocked (and the signal too, unless it
    // asked for SA_NODEFER, which this handler's own delivery already blocks).
    sigset_t old;
    ::pthread_sigmask(SIG_BLOCK, &prev.sa_mask, &old);
    if ((prev.sa_flags & SA_SIGINFO) != 0) {
      prev.sa_sigaction(sig, info, context);
    } else {
      prev.sa_handler(sig);
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return;
  }
  // The default: a fault strikes again when the instruction re-runs; a signal sent (or
  // raised, or abort()'s) is raised again, delivered once this handler returns.
  if (info == nullptr || info->si_code <= 0 || sig == SIGABRT) ::raise(sig);
}

extern "C" void strobe_on_crash_signal(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  if (dies_of(sig) && !g_crashing.exchange(true)) {
    RecorderCore* core = g_crash_core.load(std::memory_order_acquire);
    if (core != nullptr && !core->forked_) {
      const bool fault = sig != SIGABRT && info != nullptr && info->si_code > 0;
      core->crash_flush(sig, fault ? reinterpret_cast<std::uintptr_t>(info->si_addr) : 0, nullptr);
    }
  }
  errno = saved_errno;
  pass_on(sig, info, context);
}

[[noreturn]] void on_terminate() noexcept {
  if (!g_crashing.exchange(true)) {
    RecorderCore* core = g_crash_core.load(std::memory_order_acquire);
    if (core != nullptr && !core->forked_) {
      std::string what = "no exception";
      if (const std::exception_ptr e = std::current_exception()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          what = x.what();
        } catch (...) {
          what = "an exception not derived from std::exception";
        }
      }
      core->crash_flush(SIGABRT, 0, what.c_str());
    }
  }
  if (g_previous_terminate != nullptr) g_previous_terminate();
  std::abort();
}

// Under globals().mutex.
void install_crash_handlers(RecorderCore* core) {
  g_crashing.store(false);
  g_crash_core.store(core, std::memory_order_release);
  if (g_crash_installed) return;
  struct sigaction ours {};
  ours.sa_sigaction = strobe_on_crash_signal;
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  for (std::size_t k = 0; k < std::size(kCrashSignals); ++k) ::sigaction(kCrashSignals[k], &ours, &g_previous[k]);
  g_previous_terminate = std::set_terminate(on_terminate);
  g_crash_installed = true;
}

// Under globals().mutex. What the program installed since stays.
void remove_crash_handlers() {
  g_crash_core.store(nullptr, std::memory_order_release);
  if (!g_crash_installed) return;
  for (std::size_t k = 0; k < std::size(kCrashSignals); ++k) {
    struct sigaction now {};
    ::sigaction(kCrashSignals[k], nullptr, &now);
    if ((now.sa_flags & SA_SIGINFO) != 0 && now.sa_sigaction == strobe_on_crash_signal)
      ::sigaction(kCrashSignals[k], &g_previous[k], nullptr);
  }
  if (std::get_terminate() == on_terminate) std::set_terminate(g_previous_terminate);
  g_crash_installed = false;
}

}  // namespace
}  // namespace detail

Recorder::Recorder(Config config) {
  bool use_tsc = false;
  detail::validate(config, use_tsc);
  if (config.assembly == Assembly::automatic) {  // deferred when every sink can store the log
    const bool all_take = std::all_of(config.sinks.begin(), config.sinks.end(),
                                      [](const std::shared_ptr<Sink>& s) { return s->takes_records(); });
    config.assembly = !config.sinks.empty() && all_take ? Assembly::deferred : Assembly::in_process;
  }
  detail::repair_utf8(config.service_name);  // every export names the service
  static const int fork_hooks = ::pthread_atfork(detail::fork_prepare, detail::fork_unlock, detail::fork_child);
  (void)fork_hooks;
  detail::Globals& g = detail::globals();
  std::lock_guard lock(g.mutex);
  if (g.forked_child)
    throw ConfigError("strobe: this process was forked while a Recorder was active; recording is off in it");
  if (g.active) throw ConfigError("strobe: a Recorder is already active in this process");
  const std::uint32_t generation = g.generation + 1 == 0 ? 1 : g.generation + 1;
  detail::RecoveryStore* recovery = nullptr;
  if (!config.recovery_dir.empty()) {
    try {
      recovery = new detail::RecoveryStore({config.recovery_dir, config.recovery_journal_records, generation,
                                            config.service_name, config.partial_trace_spans,
                                            std::chrono::duration_cast<std::chrono::nanoseconds>(config.partial_trace_age).count()});
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }
  }
  core_ = std::make_unique<detail::RecorderCore>(std::move(config), use_tsc, generation);
  core_->recovery_ = recovery;
  core_->adopt_rings();
  core_->misuse_base_ = detail::g_misuse.load(std::memory_order_relaxed);
  core_->names_base_ = detail::g_names_overflowed.load(std::memory_order_relaxed);
  core_->reentrant_base_ = detail::g_reentrant_spans.load(std::memory_order_relaxed);
  core_->ringless_base_ = detail::g_ringless_spans.load(std::memory_order_relaxed);
  const Config& c = core_->config();
  const std::size_t cap = c.ring_capacity;
  g.attach.ring_capacity = cap;
  g.attach.headroom = static_cast<std::uint32_t>(std::min<std::size_t>(64, cap / 4));
  // Strings are capped at a quarter of the ring, so one always fits beside the headroom.
  g.attach.max_string = static_cast<std::uint32_t>(std::min<std::size_t>(
      {c.max_string_bytes, (cap / 4 - 1) * sizeof(detail::Record) + detail::kInlineString,
       std::size_t{0xffffffffu}}));
  g.attach.use_tsc = use_tsc;
  g.attach.wait_policy = c.overflow == OverflowPolicy::wait;
  g.attach.storage = recovery;  // threads move to rings in its files at their next span
  g.generation = generation;
  g.active = true;
  detail::g_active_core = core_.get();
  core_->start();
  if (c.crash_flush) detail::install_crash_handlers(core_.get());
  // relaxed: threads that see it attach under g.mutex, which orders everything above.
  detail::g_generation.store(generation, std::memory_order_relaxed);
}

Recorder::~Recorder() {
  detail::Globals& g = detail::globals();
  {
    std::lock_guard lock(g.mutex);
    if (core_->forked_) {
      // A forked child's copy: its threads do not exist here and its sinks are the
      // parent's (a file the parent still writes). Left as it is; the process ends soon.
      (void)core_.release();
      return;
    }
    detail::g_generation.store(0, std::memory_order_relaxed);
    g.active = false;
    detail::g_active_core = nullptr;
    detail::remove_crash_handlers();
  }
  core_->stop();
  // The sinks have everything: a recovery directory has nothing left to give.
  if (core_->recovery_ != nullptr) {
    core_->recovery_->close();
    std::lock_guard lock(g.mutex);
    g.retired_recovery.push_back(core_->recovery_);
  }
  g.registry.release_spare();  // the free pool's rings; rings of running threads stay theirs
}

void Recorder::flush() { core_->flush(); }
Stats Recorder::stats() const { return core_->stats(); }
const Config& Recorder::config() const noexcept { return core_->config(); }
bool Recorder::active() noexcept { return detail::g_generation.load(std::memory_order_relaxed) != 0; }

}  // namespace strobe
