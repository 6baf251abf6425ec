#pragma once
// The record log (Assembly::deferred): what the drainer hands the sinks in place of
// traces, and its replay where the log is read. Internal.
//
//   recording thread ──> ring ──> drainer: each ring's records copied as they are, whole
//                                 passes into a chunk ──> sink queue ──> FileSink: a frame
//   reader: frames ──> RecordReplay: an Assembler fed as the drainer would have fed it
//                                 ──> the traces an assembling drainer would have made
//
// A chunk is a run of 64-byte cells. Each pass puts in it, for every ring read, a batch
// cell and the ring's records; a thread cell after a ring whose thread's name changed;
// a names cell with the names interned since the previous pass (a record's name ids are
// all below intern_count() once the pass read it); then the pass's end, with its time and
// the drops counted since the previous pass. A flush, the recorder's end, a crash and a
// new clock map have cells of their own; the first chunk starts with a start cell. A
// chunk holds whole passes, so a reader replays a pass only when it has all of it.
//
// A sink that lost a chunk (a write failed, its file was removed and started anew) gets,
// before its next chunk, a resync chunk of its own: what the log had said so far that
// later chunks need (the start's values, the clock map, every name, every thread's name),
// so what it stores reads on from there and lacks only the lost chunk's records (counted
// by the sink as lost). LogState keeps that on the sink thread.
//
// Records are raw memory of this build (64 bytes, little endian): the start cell says
// which layout, and a reader of another refuses the log.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "assembler.hpp"
#include "clock.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/model.hpp"

namespace strobe::detail {

inline constexpr std::uint32_t kLogMagic = 0x474c5453;  // "STLG"
inline constexpr std::uint32_t kLogVersion = 1;          // of the cells and of Record's layout

enum class LogKind : std::uint32_t { start = 1, clock, batch, names, thread, pass, flush, crash, resync };

struct LogCell {
  std::uint32_t magic;  // kLogMagic
  LogKind kind;
  std::uint32_t count;  // batch: records that follow; names: names in the cells that follow
  std::uint32_t bytes;  // names, thread, crash: bytes in the cells that follow
  // start: generation, partial_trace_spans, partial_trace_age_ns, kLogVersion, sizeof(Record)
  // resync: the start's values, and in v[5] the spans of the chunks the sink lost so far
  //         (count: those chunks); the names that follow in its chunk restate the table from 0
  // clock: tsc, ns_per_tick (bits), anchor_ticks, anchor_wall
  // batch: the ring's owner thread       names: the first name's id
  // thread: its id (the name follows)    crash: the span running on the crashing thread
  // pass:  its time (wall ns), spans dropped, records dropped (since the previous pass)
  // flush: its time, spans dropped, records dropped, 1 when final (the recorder's end)
  std::uint64_t v[6];
};
static_assert(sizeof(LogCell) == sizeof(Record));

// A ring batch's records, encoded. Span ids count up per thread, timestamps step by a
// little, and a loop's spans share their parent, trace and kind: a begin is coded as what
// differs from the previous begin of the batch (its id +1, its parent that one's parent
// or that one, its context the same), an end by the span it ends and its time step, so
// a span costs about 8 bytes instead of two 64-byte records. Any other record goes as it
// is (a tag byte and its 64 bytes). Each batch starts from a blank state.
//
//   tag: op in the low 4 bits (0 raw, 1 begin, 2 end, 3 next), the rest by op:
//   begin/next: 0x10 id = previous id + 1, else zigzag varint of the difference;
//               0x20 parent = previous parent, 0x40 parent = previous id, else 8 bytes;
//               0x80 flags, kind, kind name, generation, trace as the previous begin's,
//                    else 1 + 2 + 4 + 4 + 16 bytes; then varint name, zigzag varint time
//                    step; next: zigzag varint of (ended span - previous id, as it was)
//   end:        0x10 the previous begin's span, else zigzag varint of the difference;
//               0x20 flags, status and key 0, else 1 + 2 bytes and a varint key;
//               then the zigzag varint time step
class LogEncoder {
 public:
  // The most bytes n records take.
  static constexpr std::size_t max_bytes(std::size_t n) noexcept { return n * (1 + sizeof(Record)); }
  // Appends r at p; returns the end.
  [[gnu::always_inline]] unsigned char* put(const Record& r, unsigned char* p) noexcept {
    switch (r.type) {
      case RecType::begin:
      case RecType::next: return put_begin(r, p);
      case RecType::end: return put_end(r, p);
      default:
        *p++ = 0;
        std::memcpy(p, &r, sizeof r);
        return p + sizeof r;
    }
  }

 private:
  static unsigned char* varint(std::uint64_t v, unsigned char* p) noexcept {
    while (v >= 0x80) {
      *p++ = static_cast<unsigned char>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<unsigned char>(v);
    return p;
  }
  static std::uint64_t zigzag(std::uint64_t difference) noexcept {
    const auto d = static_cast<std::int64_t>(difference);
    return (static_cast<std::uint64_t>(d) << 1) ^ static_cast<std::uint64_t>(d >> 63);
  }
  template <class T>
  static unsigned char* raw(const T& v, unsigned char* p) noexcept {
    std::memcpy(p, &v, sizeof v);
    return p + sizeof v;
  }
  unsigned char* put_begin(const Record& r, unsigned char* p) noexcept {
    const BeginPayload& b = r.payload.begin;
    unsigned char* tag = p++;
    unsigned t = r.type == RecType::begin ? 1 : 3;
    if (r.span_id == span_ + 1) {
      t |= 0x10;
    } else {
      p = varint(zigzag(r.span_id - span_), p);
    }
    if (b.parent_id == parent_) {
      t |= 0x20;
    } else if (b.parent_id == span_) {
      t |= 0x40;
    } else {
      p = raw(b.parent_id, p);
    }
    if (r.flags == flags_ && r.aux == aux_ && b.kind_name_id == kind_name_ && b.generation == generation_ &&
        b.trace_hi == hi_ && b.trace_lo == lo_) {
      t |= 0x80;
    } else {
      p = raw(r.flags, p);
      p = raw(r.aux, p);
      p = raw(b.kind_name_id, p);
      p = raw(b.generation, p);
      p = raw(b.trace_hi, p);
      p = raw(b.trace_lo, p);
      flags_ = r.flags, aux_ = r.aux, kind_name_ = b.kind_name_id, generation_ = b.generation;
      hi_ = b.trace_hi, lo_ = b.trace_lo;
    }
    p = varint(r.key, p);
    p = varint(zigzag(r.ts - ts_), p);
    if (r.type == RecType::next) p = varint(zigzag(b.ended_span - span_), p);
    *tag = static_cast<unsigned char>(t);
    span_ = r.span_id, parent_ = b.parent_id, ts_ = r.ts;
    return p;
  }
  unsigned char* put_end(const Record& r, unsigned char* p) noexcept {
    unsigned char* tag = p++;
    unsigned t = 2;
    if (r.span_id == span_) {
      t |= 0x10;
    } else {
      p = varint(zigzag(r.span_id - span_), p);
    }
    if (r.flags == 0 && r.aux == 0 && r.key == 0) {
      t |= 0x20;
    } else {
      p = raw(r.flags, p);
      p = raw(r.aux, p);
      p = varint(r.key, p);
    }
    p = varint(zigzag(r.ts - ts_), p);
    *tag = static_cast<unsigned char>(t);
    ts_ = r.ts;
    return p;
  }

  std::uint64_t span_ = 0, parent_ = 0, ts_ = 0, hi_ = 0, lo_ = 0;
  std::uint32_t kind_name_ = 0, generation_ = 0;
  std::uint16_t aux_ = 0;
  std::uint8_t flags_ = 0;
};

// The records of one encoded batch (the inverse of LogEncoder), into out (resized to
// `count`). Throws RecordLogError when the bytes do not decode to exactly count records.
void decode_records(const unsigned char* data, std::size_t size, std::size_t count, std::vector<Record>& out);

// The drainer's side: cells appended to a chunk (Record-aligned storage).
class LogChunk {
 public:
  LogChunk() = default;
  LogChunk(LogChunk&& o) noexcept { *this = std::move(o); }
  LogChunk& operator=(LogChunk&& o) noexcept {
    cells_ = std::move(o.cells_);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    records_ = o.records_, begins_ = o.begins_, batches_ = o.batches_;
    write_ = nullptr;
    return *this;
  }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t bytes() const noexcept { return size_ * sizeof(Record); }
  [[nodiscard]] const void* data() const noexcept { return cells_.get(); }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  [[nodiscard]] std::uint64_t begins() const noexcept { return begins_; }
  [[nodiscard]] bool has_batches() const noexcept { return batches_ != 0; }
  // Room for `cells` cells, every page of it written once now (a first touch of memory
  // costs microseconds a page on some machines: a drainer that met it mid-pass could
  // stall long enough for a busy ring to fill).
  void prepare(std::size_t cells);
  void clear() noexcept {
    size_ = 0;
    records_ = begins_ = batches_ = 0;
  }

  void cell(LogKind kind, std::initializer_list<std::uint64_t> v, std::uint32_t count = 0, std::uint32_t bytes = 0);
  // A batch of n records of thread's ring, each given to put() in ring order, then
  // end_batch() (one batch at a time).
  void batch(std::uint64_t thread, std::size_t n);
  [[gnu::always_inline]] void put(const Record& r) noexcept {
    begins_ += r.type == RecType::begin || r.type == RecType::next;
    write_ = encoder_.put(r, write_);
  }
  void end_batch() noexcept;
  // A cell, then text in whole cells.
  void text(LogKind kind, std::uint64_t v0, const char* text, std::size_t size, std::uint32_t count = 0);
  // The names [first, end) of the process's intern table.
  void names(std::uint32_t first, std::uint32_t end);

 private:
  // n more cells at the end (not initialised); where they start. Grows by doubling and
  // keeps its memory: a chunk back from the sinks is refilled without allocating.
  Record* grow(std::size_t n);

  std::unique_ptr<Record[]> cells_;
  std::size_t size_ = 0, capacity_ = 0;
  LogEncoder encoder_;
  std::size_t batch_cell_ = 0;       // of the batch being written
  unsigned char* write_ = nullptr;   // where its next record goes
  std::uint64_t records_ = 0, begins_ = 0, batches_ = 0;
};

// Chunks of the log a sink did not store, and the spans they held: running totals.
struct LogLoss {
  std::uint64_t chunks = 0;
  std::uint64_t spans = 0;
};

// What the chunks given to the sinks so far said that a later chunk builds on, kept by
// the sink thread (it reads the cells' headers only, a few hundred a chunk).
class LogState {
 public:
  // After a chunk went to the sinks (written or not).
  void observe(const LogChunk& chunk);
  // Whether the log has started (a resync has something to restate).
  [[nodiscard]] bool started() const noexcept { return started_; }
  // Into out (cleared): a resync cell with the start's values and the sink's losses so
  // far, the latest clock map, the names [0, names so far) of the process's intern table
  // and every thread's latest name.
  void resync(LogChunk& out, const LogLoss& lost) const;

 private:
  bool started_ = false, have_clock_ = false;
  std::uint64_t start_[6]{}, clock_[6]{};
  std::uint32_t names_ = 0;
  std::unordered_map<std::uint64_t, std::string> threads_;
};

class RecordLogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The reader's side: chunks in, the traces an assembling drainer would have handed over
// out. Interns the log's names (under ids of this process, mapped from the log's).
class RecordReplay {
 public:
  RecordReplay(std::string service_name, std::uint32_t process_id);
  ~RecordReplay();
  RecordReplay(const RecordReplay&) = delete;
  RecordReplay& operator=(const RecordReplay&) = delete;

  // One chunk, 64-byte aligned. A chunk that is not a whole run of well-formed cells
  // throws RecordLogError naming the cell; whatever came before it was replayed.
  void feed(const void* data, std::size_t size);
  // The log ended (no final flush cell: the process died, or the file was cut): spans
  // still open are handed over incomplete.
  void finish();
  // The traces handed over so far, in order, in the drainer's form (names as this
  // process interned them, threads named); the caller takes them and gives each back
  // with recycle() once done with it.
  [[nodiscard]] std::vector<CompactTrace> take() { return std::exchange(done_, {}); }
  void recycle(CompactTrace&& trace) { assembler_->recycle(std::move(trace)); }
  // The drops no trace handed over carries (what the drainer would have given the sinks
  // with a flush: Sink::lost); the caller takes them.
  [[nodiscard]] DropCounts take_trailing_drops() noexcept { return std::exchange(trailing_, DropCounts{}); }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  [[nodiscard]] bool ended() const noexcept { return ended_; }  // the final flush was replayed
  // What the log's resyncs say its writer lost (the latest totals): a file without its end
  // frame still tells.
  [[nodiscard]] const LogLoss& writer_lost() const noexcept { return writer_lost_; }

 private:
  struct Batch {
    const unsigned char* bytes;  // encoded (LogEncoder)
    std::size_t size;
    std::size_t count;
    std::uint64_t thread;
  };
  std::vector<Record> decoded_;
  void replay_pending();
  void hand_over();

  std::string service_name_;
  std::uint32_t process_id_;
  Clock clock_;
  Clock::Map map_{};
  std::optional<Assembler> assembler_;
  std::uint32_t generation_ = 0;
  std::vector<std::uint32_t> names_;  // the log's name id -> this process's
  std::unordered_map<std::uint64_t, std::string> thread_names_;
  std::vector<Batch> pending_;  // of the pass being read
  std::vector<CompactTrace> out_;
  std::vector<CompactTrace> done_;
  std::int64_t now_ns_ = 0;
  DropCounts trailing_{};
  std::uint64_t records_ = 0;
  LogLoss writer_lost_{};
  bool ended_ = false;
};

// Feeds one ring batch to an assembler as the drainer reads a ring: times made safe for
// the clock (a damaged log's cannot overflow), begins of another generation skipped,
// strings reassembled (one cut off at the end is skipped), name ids mapped through
// `names` when given. Returns the latest wall time of its records, at least now_ns.
std::int64_t replay_batch(Assembler& assembler, const Clock& clock, const Clock::Map& map, const Record* records,
                          std::size_t count, std::uint64_t thread, std::uint32_t generation,
                          const std::vector<std::uint32_t>* names, std::int64_t now_ns);

}  // namespace strobe::detail
