// The record log (Assembly::deferred): the drainer's chunks and their replay.

#include "record_log.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "intern.hpp"
#include "strobe/detail/thread_state.hpp"
#include "strobe/detail/utf8.hpp"

namespace strobe::detail {
namespace {

constexpr std::uint32_t kRepairedName = 1u << 31;  // in a name's length word: name_was_repaired

std::size_t cells_for(std::size_t bytes) noexcept { return (bytes + sizeof(Record) - 1) / sizeof(Record); }

// The times a replay may meet, in ns: a record's clock offset beyond this (a damaged or
// hostile log) would overflow the conversion to int64 or the durations computed from it.
constexpr std::int64_t kMaxWallNs = std::int64_t{1} << 62;
constexpr double kMaxOffsetNs = 2.3e18;  // ~2^61: 73 years of ticks either side of the anchor

// r with a time the clock converts without overflow (else the anchor's).
Record sane_time(const Record& in, const Clock::Map& m) noexcept {
  Record r = in;
  if ((r.flags & kWallClock) != 0) {
    const auto wall = static_cast<std::int64_t>(r.ts);
    if (wall > kMaxWallNs || wall < -kMaxWallNs) r.ts = static_cast<std::uint64_t>(m.anchor_wall);
    return r;
  }
  const double ns = double(static_cast<std::int64_t>(r.ts - m.anchor_ticks)) * m.ns_per_tick;
  if (!(ns < kMaxOffsetNs && ns > -kMaxOffsetNs)) r.ts = m.anchor_ticks;
  return r;
}

// A record's name ids, mapped to this process's (an id the log never named: "").
void map_names(Record& r, const std::vector<std::uint32_t>& names) noexcept {
  auto map = [&](std::uint32_t id) { return id < names.size() ? names[id] : kEmptyNameId; };
  switch (r.type) {
    case RecType::begin:
    case RecType::next:
      r.payload.begin.kind_name_id = map(r.payload.begin.kind_name_id);
      [[fallthrough]];
    case RecType::attr_int:
    case RecType::attr_double:
    case RecType::attr_bool:
    case RecType::string:
    case RecType::event: r.key = map(r.key); break;
    default: break;
  }
}

}  // namespace

std::int64_t replay_batch(Assembler& assembler, const Clock& clock, const Clock::Map& map, const Record* records,
                          std::size_t count, std::uint64_t thread, std::uint32_t generation,
                          const std::vector<std::uint32_t>* names, std::int64_t now_ns) {
  for (std::size_t i = 0; i < count;) {
    Record r = sane_time(records[i], map);
    if (names != nullptr) map_names(r, *names);
    if ((r.flags & kWallClock) == 0 &&
        (r.type == RecType::begin || r.type == RecType::end || r.type == RecType::next || r.type == RecType::event))
      now_ns = std::max(now_ns, clock.to_wall_ns(r.ts));
    if (r.type != RecType::string) {
      if ((r.type != RecType::begin && r.type != RecType::next) || r.payload.begin.generation == generation)
        assembler.on_record(r, thread);
      ++i;
      continue;
    }
    // As the drainer reads a string: its header and continuations were committed
    // together; a string cut off at the end of what survived is skipped.
    const std::uint32_t len = r.payload.str.length;
    // In 64 bits: continuation_records() wraps for lengths near 2^32, which no producer
    // writes but a damaged file may hold.
    const std::uint64_t cont = len <= kInlineString ? 0 : (std::uint64_t{len} - kInlineString + 63) / 64;
    if (cont >= count - i) break;
    std::string text(len, '\0');
    std::memcpy(text.data(), r.payload.str.inline_bytes, std::min<std::uint32_t>(len, kInlineString));
    std::size_t off = kInlineString;
    for (std::uint64_t k = 1; k <= cont; ++k, off += sizeof(Record))
      std::memcpy(text.data() + off, static_cast<const void*>(&records[i + k]),
                  std::min<std::size_t>(sizeof(Record), len - off));
    assembler.on_record(r, thread, std::move(text));
    i += 1 + cont;
  }
  return now_ns;
}

// ---- the drainer's side ----

Record* LogChunk::grow(std::size_t n) {
  if (size_ + n > capacity_) {
    const std::size_t capacity = std::max({size_ + n, 2 * capacity_, std::size_t{1} << 14});
    // new Record[]: default-initialised, so no memory is written before the copy into it.
    std::unique_ptr<Record[]> cells(new Record[capacity]);
    if (size_ != 0) std::memcpy(static_cast<void*>(cells.get()), cells_.get(), size_ * sizeof(Record));
    cells_ = std::move(cells);
    capacity_ = capacity;
  }
  Record* at = cells_.get() + size_;
  size_ += n;
  return at;
}

void LogChunk::prepare(std::size_t cells) {
  if (cells > capacity_) {
    const std::size_t size = size_;
    (void)grow(cells - size_);
    size_ = size;
  }
  std::memset(static_cast<void*>(cells_.get() + size_), 0, (capacity_ - size_) * sizeof(Record));
}

void LogChunk::cell(LogKind kind, std::initializer_list<std::uint64_t> v, std::uint32_t count, std::uint32_t bytes) {
  LogCell c{kLogMagic, kind, count, bytes, {}};
  std::copy(v.begin(), v.end(), c.v);
  std::memcpy(static_cast<void*>(grow(1)), &c, sizeof c);
}

void LogChunk::batch(std::uint64_t thread, std::size_t n) {
  cell(LogKind::batch, {thread}, static_cast<std::uint32_t>(n));
  batch_cell_ = size_ - 1;
  records_ += n;
  ++batches_;
  const std::size_t room = cells_for(LogEncoder::max_bytes(n));
  write_ = reinterpret_cast<unsigned char*>(grow(room));
  size_ -= room;  // end_batch() counts what the records took
  encoder_ = LogEncoder{};
}

void LogChunk::end_batch() noexcept {
  auto* start = reinterpret_cast<unsigned char*>(cells_.get() + batch_cell_ + 1);
  const auto bytes = static_cast<std::size_t>(write_ - start);
  const std::size_t cells = cells_for(bytes);
  if (cells != 0) std::memset(write_, 0, cells * sizeof(Record) - bytes);  // the last cell's tail
  size_ += cells;
  const auto b = static_cast<std::uint32_t>(bytes);
  std::memcpy(reinterpret_cast<unsigned char*>(cells_.get() + batch_cell_) + offsetof(LogCell, bytes), &b, sizeof b);
}

namespace {

struct Decoder {
  const unsigned char* p;
  const unsigned char* end;
  [[noreturn]] static void bad() { throw RecordLogError("record log: a batch's records do not decode (damaged log)"); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (p == end) bad();
      const unsigned char c = *p++;
      v |= std::uint64_t{c & 0x7fu} << shift;
      if ((c & 0x80) == 0) return v;
    }
    bad();
  }
  std::uint64_t unzigzag() {
    const std::uint64_t v = varint();
    return (v >> 1) ^ (~(v & 1) + 1);
  }
  template <class T>
  T raw() {
    if (static_cast<std::size_t>(end - p) < sizeof(T)) bad();
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
};

}  // namespace

void decode_records(const unsigned char* data, std::size_t size, std::size_t count, std::vector<Record>& out) {
  // Every record takes two bytes at least (a tag and a time step): a count above that is
  // damage, refused before it sizes the output (a hostile count would ask for 256 GiB).
  if (count > size / 2) Decoder::bad();
  out.resize(count);
  Decoder d{data, data + size};
  std::uint64_t span = 0, parent = 0, ts = 0, hi = 0, lo = 0;
  std::uint32_t kind_name = 0, generation = 0;
  std::uint16_t aux = 0;
  std::uint8_t flags = 0;
  for (std::size_t i = 0; i < count; ++i) {
    Record& r = out[i];
    const unsigned t = d.raw<std::uint8_t>();
    const unsigned op = t & 15;
    if (op == 0) {
      r = d.raw<Record>();
      continue;
    }
    std::memset(static_cast<void*>(&r), 0, sizeof r);
    if (op == 1 || op == 3) {
      r.type = op == 1 ? RecType::begin : RecType::next;
      const std::uint64_t id = (t & 0x10) ? span + 1 : span + d.unzigzag();
      const std::uint64_t p = (t & 0x20) ? parent : (t & 0x40) ? span : d.raw<std::uint64_t>();
      if ((t & 0x80) == 0) {
        flags = d.raw<std::uint8_t>();
        aux = d.raw<std::uint16_t>();
        kind_name = d.raw<std::uint32_t>();
        generation = d.raw<std::uint32_t>();
        hi = d.raw<std::uint64_t>();
        lo = d.raw<std::uint64_t>();
      }
      const std::uint64_t key = d.varint();
      if (key > 0xffffffffu) Decoder::bad();
      r.key = static_cast<std::uint32_t>(key);
      ts += d.unzigzag();
      if (op == 3) r.payload.begin.ended_span = span + d.unzigzag();
      r.flags = flags;
      r.aux = aux;
      r.span_id = id;
      r.ts = ts;
      r.payload.begin.trace_hi = hi;
      r.payload.begin.trace_lo = lo;
      r.payload.begin.parent_id = p;
      r.payload.begin.kind_name_id = kind_name;
      r.payload.begin.generation = generation;
      span = id;
      parent = p;
    } else if (op == 2) {
      r.type = RecType::end;
      r.span_id = (t & 0x10) ? span : span + d.unzigzag();
      if ((t & 0x20) == 0) {
        r.flags = d.raw<std::uint8_t>();
        r.aux = d.raw<std::uint16_t>();
        const std::uint64_t key = d.varint();
        if (key > 0xffffffffu) Decoder::bad();
        r.key = static_cast<std::uint32_t>(key);
      }
      ts += d.unzigzag();
      r.ts = ts;
    } else {
      Decoder::bad();
    }
  }
  if (d.p != d.end) Decoder::bad();
}

void LogChunk::text(LogKind kind, std::uint64_t v0, const char* text, std::size_t size, std::uint32_t count) {
  cell(kind, {v0}, count, static_cast<std::uint32_t>(size));
  const std::size_t n = cells_for(size);
  Record* at = grow(n);
  if (n != 0) {
    std::memset(static_cast<void*>(at + n - 1), 0, sizeof(Record));  // the last cell's tail
    std::memcpy(static_cast<void*>(at), text, size);
  }
}

void LogChunk::names(std::uint32_t first, std::uint32_t end) {
  std::string packed;
  for (std::uint32_t id = first; id < end; ++id) {
    const std::string_view name = name_of(id);
    const std::uint32_t word = static_cast<std::uint32_t>(name.size()) | (name_was_repaired(id) ? kRepairedName : 0);
    packed.append(reinterpret_cast<const char*>(&word), sizeof word);
    packed.append(name);
  }
  text(LogKind::names, first, packed.data(), packed.size(), end - first);
}

// ---- the sink thread's side: what a resync restates ----

void LogState::observe(const LogChunk& chunk) {
  const auto* cells = static_cast<const Record*>(chunk.data());
  const std::size_t n = chunk.bytes() / sizeof(Record);
  for (std::size_t i = 0; i < n;) {
    LogCell c;
    std::memcpy(&c, &cells[i], sizeof c);
    const char* text = reinterpret_cast<const char*>(&cells[i + 1]);
    switch (c.kind) {
      case LogKind::start:
        started_ = true;
        std::copy(std::begin(c.v), std::end(c.v), start_);
        break;
      case LogKind::clock:
        have_clock_ = true;
        std::copy(std::begin(c.v), std::end(c.v), clock_);
        break;
      case LogKind::names: names_ = std::max(names_, static_cast<std::uint32_t>(c.v[0]) + c.count); break;
      case LogKind::thread: threads_[c.v[0]].assign(text, c.bytes); break;
      default: break;
    }
    i += 1 + cells_for(c.bytes);
  }
}

void LogState::resync(LogChunk& out, const LogLoss& lost) const {
  out.clear();
  out.cell(LogKind::resync, {start_[0], start_[1], start_[2], start_[3], start_[4], lost.spans},
           static_cast<std::uint32_t>(std::min<std::uint64_t>(lost.chunks, 0xffffffffu)));
  if (have_clock_) out.cell(LogKind::clock, {clock_[0], clock_[1], clock_[2], clock_[3], clock_[4], clock_[5]});
  if (names_ != 0) out.names(0, names_);
  for (const auto& [thread, name] : threads_) out.text(LogKind::thread, thread, name.data(), name.size());
}

// ---- the reader's side ----

RecordReplay::RecordReplay(std::string service_name, std::uint32_t process_id)
    : service_name_(std::move(service_name)), process_id_(process_id), clock_(Clock::Map{}) {}

RecordReplay::~RecordReplay() = default;

void RecordReplay::feed(const void* data, std::size_t size) {
  const auto* cells = static_cast<const Record*>(data);
  if (size % sizeof(Record) != 0) throw RecordLogError("record log: a chunk of " + std::to_string(size) + " bytes");
  const std::size_t n = size / sizeof(Record);
  // A chunk holds whole passes: a batch, names, a thread's name or a crash is followed by
  // its pass's (or flush's) end in the same chunk. The first cell of a pass still open.
  constexpr std::size_t kNoPass = ~std::size_t{0};
  std::size_t open_pass = kNoPass;
  bool restating = false;  // after a resync in this chunk: its cells restate, they open no pass
  for (std::size_t i = 0; i < n;) {
    LogCell c;
    std::memcpy(&c, &cells[i], sizeof c);
    const std::string where = "record log: cell " + std::to_string(i) + ": ";
    if (c.magic != kLogMagic) throw RecordLogError(where + "not a cell (damaged log)");
    if (ended_) throw RecordLogError(where + "after the recorder's end");
    const std::size_t follow = cells_for(c.bytes);
    if (follow > n - i - 1) throw RecordLogError(where + "runs past the chunk's end");
    const Record* body = &cells[i + 1];
    const char* text = reinterpret_cast<const char*>(body);
    if (c.kind != LogKind::start && c.kind != LogKind::resync && !assembler_)
      throw RecordLogError(where + "before the log's start");
    if (c.kind == LogKind::resync) {
      // A chunk (or more) before this was lost where the log was stored. The cells that
      // follow restate the clock map, the threads' names and the names from 0; the spans
      // held stay open (records of the lost chunk: lost, as a ring's drop). In a file
      // started anew it is the first chunk: a start (below).
      writer_lost_.chunks = std::max<std::uint64_t>(writer_lost_.chunks, c.count);
      writer_lost_.spans = std::max(writer_lost_.spans, c.v[5]);
      restating = true;
      if (assembler_) {
        if (c.v[0] != generation_ || c.v[3] != kLogVersion || c.v[4] != sizeof(Record))
          throw RecordLogError(where + "a resync of another recorder's log");
        replay_pending();
        names_.clear();
        i += 1 + follow;
        continue;
      }
    }
    switch (c.kind) {
      case LogKind::resync:  // the first chunk of a file started anew
      case LogKind::start: {
        if (assembler_) throw RecordLogError(where + "a second start");
        if (c.v[3] != kLogVersion || c.v[4] != sizeof(Record))
          throw RecordLogError(where + "written by another version of strobe (log version " + std::to_string(c.v[3]) +
                               ")");
        generation_ = static_cast<std::uint32_t>(c.v[0]);
        const std::size_t partial_spans = std::clamp<std::uint64_t>(c.v[1], 1, std::uint64_t{1} << 32);
        const auto age = static_cast<std::int64_t>(std::max<std::uint64_t>(c.v[2], 1));
        assembler_.emplace(Assembler::Options{service_name_, process_id_, partial_spans, age, 0}, clock_);
        names_.clear();
        break;
      }
      case LogKind::clock: {
        Clock::Map m;
        m.tsc = c.v[0] != 0;
        m.ns_per_tick = std::bit_cast<double>(c.v[1]);
        m.anchor_ticks = c.v[2];
        m.anchor_wall = static_cast<std::int64_t>(c.v[3]);
        if (!(m.ns_per_tick > 1e-6 && m.ns_per_tick < 1e6) || m.anchor_wall > kMaxWallNs || m.anchor_wall < -kMaxWallNs)
          throw RecordLogError(where + "a clock map out of range");
        // The drainer's clock changed from this pass on; the pass before it converts
        // with the old map, as the drainer did.
        replay_pending();
        map_ = m;
        clock_ = Clock(m);
        break;
      }
      case LogKind::batch: pending_.push_back({reinterpret_cast<const unsigned char*>(body), c.bytes, c.count, c.v[0]}); break;
      case LogKind::names: {
        if (c.v[0] != names_.size()) throw RecordLogError(where + "names out of sequence");
        std::size_t at = 0;
        for (std::uint32_t k = 0; k < c.count; ++k) {
          std::uint32_t word = 0;
          if (c.bytes - at < sizeof word) throw RecordLogError(where + "names cut short");
          std::memcpy(&word, text + at, sizeof word);
          at += sizeof word;
          const std::uint32_t len = word & ~kRepairedName;
          if (c.bytes - at < len) throw RecordLogError(where + "names cut short");
          std::string name(text + at, len);
          at += len;
          const bool repaired = repair_utf8(name) || (word & kRepairedName) != 0;
          // The table's own first ids ("" and the overflow's name) mean the same here.
          const auto log_id = static_cast<std::uint32_t>(names_.size());
          if (log_id == kEmptyNameId || log_id == kOverflowNameId) {
            names_.push_back(log_id);
            continue;
          }
          const std::uint32_t id = intern(name.data(), name.size());
          if (repaired && id < kMaxNames && id != kOverflowNameId)
            g_repaired_names[id / 64].fetch_or(std::uint64_t{1} << (id % 64), std::memory_order_relaxed);
          names_.push_back(id);
        }
        break;
      }
      case LogKind::thread: {
        std::string name(text, c.bytes);
        repair_utf8(name);
        thread_names_[c.v[0]] = std::move(name);
        break;
      }
      case LogKind::crash:
        replay_pending();
        assembler_->mark_crash(c.v[0], std::string(text, c.bytes));
        break;
      case LogKind::pass:
      case LogKind::flush: {
        replay_pending();
        now_ns_ = std::max(now_ns_, static_cast<std::int64_t>(std::clamp<std::uint64_t>(c.v[0], 0, kMaxWallNs)));
        assembler_->add_drops(DropCounts{c.v[1], c.v[2]});
        if (c.kind == LogKind::pass) {
          assembler_->end_of_pass(out_, now_ns_);
        } else {
          ended_ = c.v[3] != 0;
          assembler_->flush(out_, now_ns_, ended_);
        }
        hand_over();
        if (c.kind == LogKind::flush) trailing_ += assembler_->take_drops();
        break;
      }
      default: throw RecordLogError(where + "unknown kind " + std::to_string(static_cast<std::uint32_t>(c.kind)));
    }
    if (c.kind == LogKind::pass || c.kind == LogKind::flush) {
      open_pass = kNoPass;
    } else if (c.kind != LogKind::start && c.kind != LogKind::clock && !restating && open_pass == kNoPass) {
      open_pass = i;
    }
    i += 1 + follow;
  }
  // A pass cut short: its batches are replayed when the log is finished (what came
  // before the damage), as the error says.
  if (open_pass != kNoPass)
    throw RecordLogError("record log: cell " + std::to_string(open_pass) +
                         ": a pass that does not end in its chunk (the log was cut)");
}

void RecordReplay::replay_pending() {
  for (const Batch& b : pending_) {
    decode_records(b.bytes, b.size, b.count, decoded_);
    records_ += b.count;
    now_ns_ = replay_batch(*assembler_, clock_, map_, decoded_.data(), b.count, b.thread, generation_, &names_, now_ns_);
  }
  pending_.clear();
}

void RecordReplay::hand_over() {
  for (CompactTrace& t : out_) {
    name_threads(t, [&](std::uint64_t thread) -> const std::string* {  // as the drainer names them
      auto it = thread_names_.find(thread);
      return it == thread_names_.end() ? nullptr : &it->second;
    });
    done_.push_back(std::move(t));
  }
  out_.clear();
}

void RecordReplay::finish() {
  if (!assembler_ || ended_) return;
  try {
    replay_pending();  // what a damaged chunk held before the damage
  } catch (const RecordLogError&) {
    pending_.clear();
  }
  assembler_->end_of_pass(out_, now_ns_);
  assembler_->end_of_pass(out_, now_ns_);
  assembler_->flush(out_, now_ns_, true);
  ended_ = true;
  hand_over();
  trailing_ += assembler_->take_drops();
}


}  // namespace strobe::detail
