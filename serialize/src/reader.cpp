#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "frame.hpp"
#include "record_log.hpp"
#include "strobe/detail/utf8.hpp"
#include "strobe/serialize/reader.hpp"
#include "strobe/serialize/writer.hpp"
#include "strobe_generated.h"

namespace strobe::serialize {
namespace {

const fb::Trace* T(const void* p) { return static_cast<const fb::Trace*>(p); }
const fb::Batch* B(const void* p) { return static_cast<const fb::Batch*>(p); }
const fb::SpanDetail* D(const void* p) { return static_cast<const fb::SpanDetail*>(p); }

template <class V>
std::size_t len(const V* v) {
  return v ? v->size() : 0;
}

// FlatBuffers' Verifier (2.0) checks a vector's length prefix for 4-byte alignment but
// not its elements (google/flatbuffers#8397): 8-byte elements may sit off an 8-byte
// boundary in a hostile buffer, and reading them is undefined behaviour. (Empty vectors
// are left alone: the builder itself writes them unaligned, and nothing is read from them.)
template <class V>
bool aligned8(const V* v) {
  return !v || v->size() == 0 || reinterpret_cast<std::uintptr_t>(v->Data()) % 8 == 0;
}

// What the Verifier cannot know: columns of equal length and every index in range.
// Returns an empty string when the batch is consistent.
std::string check_batch(const fb::Batch* b) {
  const std::size_t nstr = len(b->strings());
  const std::size_t nthr = len(b->threads());
  auto str_ok = [&](std::uint32_t i) { return i < nstr || (i == 0); };
  auto attrs_ok = [&](const flatbuffers::Vector<const fb::Attr*>* v) {
    if (!v) return true;
    if (!aligned8(v)) return false;
    for (const fb::Attr* a : *v) {
      if (!str_ok(a->key())) return false;
      if (a->type() == fb::AttrType::String && a->value() >= nstr) return false;
      if (static_cast<std::uint8_t>(a->type()) > 3) return false;
    }
    return true;
  };
  if (!aligned8(b->threads())) return "misaligned vector";
  if (const auto* names = b->thread_names()) {
    if (names->size() != nthr) return "thread names and threads of unequal length";
    for (std::uint32_t s : *names)
      if (!str_ok(s)) return "string index out of range";
  }
  if (!b->traces()) return {};
  for (const fb::Trace* t : *b->traces()) {
    const std::size_t n = len(t->span_id());
    if (!aligned8(t->span_id()) || !aligned8(t->parent_id()) || !aligned8(t->start_ns()) ||
        !aligned8(t->duration_ns()))
      return "misaligned vector";
    if (len(t->parent_id()) != n || len(t->name()) != n || len(t->kind()) != n || len(t->status()) != n ||
        len(t->start_ns()) != n || len(t->duration_ns()) != n || len(t->thread()) != n)
      return "span columns of unequal length";
    if (!str_ok(t->root_name())) return "string index out of range";
    for (std::size_t i = 0; i < n; ++i) {
      if (!str_ok(t->name()->Get(i))) return "string index out of range";
      if (t->thread()->Get(i) >= nthr) return "thread index out of range";
      if (t->kind()->Get(i) >= kKindCount) return "unknown span kind";
      if (t->status()->Get(i) > static_cast<std::uint8_t>(Status::incomplete)) return "unknown span status";
    }
    if (t->details()) {
      std::int64_t prev = -1;
      for (const fb::SpanDetail* d : *t->details()) {
        if (d->index() >= n || static_cast<std::int64_t>(d->index()) <= prev) return "span detail index out of order";
        prev = d->index();
        for (std::uint32_t s : {d->kind_name(), d->error_message(), d->error_data(), d->input(), d->output(), d->model()})
          if (!str_ok(s)) return "string index out of range";
        if (d->end_thread() > nthr) return "thread index out of range";
        if (d->tags())
          for (std::uint32_t s : *d->tags())
            if (!str_ok(s)) return "string index out of range";
        if (!attrs_ok(d->attrs())) return "attribute out of range";
        if (d->events())
          for (const fb::Event* e : *d->events())
            if (!str_ok(e->name()) || !attrs_ok(e->attrs())) return "event out of range";
        if (!aligned8(d->links())) return "misaligned vector";  // of 8-aligned structs
      }
    }
    if (t->groups())
      for (const fb::Group* g : *t->groups())
        if (g->members())
          for (std::uint32_t m : *g->members())
            if (m >= n) return "group member out of range";
    if (t->chains())
      for (const fb::Chain* c : *t->chains())
        if (c->segments())
          for (std::uint32_t m : *c->segments())
            if (m >= n) return "chain segment out of range";
  }
  return {};
}

AttrValue value_of(const fb::Attr* a, const BatchView& b) {
  AttrValue v;
  switch (a->type()) {
    case fb::AttrType::Int:
      v.type = AttrValue::Type::i64;
      v.i = static_cast<std::int64_t>(a->value());
      break;
    case fb::AttrType::Double: {
      v.type = AttrValue::Type::f64;
      const std::uint64_t bits = a->value();
      std::memcpy(&v.d, &bits, 8);
      break;
    }
    case fb::AttrType::Bool:
      v.type = AttrValue::Type::boolean;
      v.i = a->value() != 0 ? 1 : 0;
      break;
    default:
      v.type = AttrValue::Type::string;
      v.s = std::string(b.string(static_cast<std::uint32_t>(a->value())));
      break;
  }
  return v;
}

std::vector<Attribute> attrs_of(const flatbuffers::Vector<const fb::Attr*>* v, const BatchView& b) {
  std::vector<Attribute> out;
  if (!v) return out;
  out.reserve(v->size());
  for (const fb::Attr* a : *v) out.push_back(Attribute{std::string(b.string(a->key())), value_of(a, b), a->truncated()});
  return out;
}

}  // namespace

// ---- views ----

std::size_t BatchView::trace_count() const noexcept { return batch_ ? len(B(batch_)->traces()) : 0; }

std::string_view BatchView::string(std::uint32_t index) const noexcept {
  const auto* v = B(batch_)->strings();
  if (!v || index >= v->size()) return {};
  if (!repaired_.empty()) {
    auto it = std::lower_bound(repaired_.begin(), repaired_.end(), index,
                               [](const auto& r, std::uint32_t i) { return r.first < i; });
    if (it != repaired_.end() && it->first == index) return it->second;
  }
  const flatbuffers::String* s = v->Get(index);
  return s ? std::string_view(s->c_str(), s->size()) : std::string_view{};
}

std::uint64_t BatchView::thread(std::uint32_t index) const noexcept {
  const auto* v = B(batch_)->threads();
  return v && index < v->size() ? v->Get(index) : 0;
}

std::string_view BatchView::thread_name(std::uint32_t index) const noexcept {
  const auto* v = B(batch_)->thread_names();
  return v && index < v->size() ? string(v->Get(index)) : std::string_view{};
}

TraceId TraceView::trace_id() const noexcept {
  const fb::TraceId* id = T(trace_)->trace_id();
  return id ? TraceId{id->hi(), id->lo()} : TraceId{};
}
std::string_view TraceView::root_name() const noexcept { return batch_->string(T(trace_)->root_name()); }
std::uint32_t TraceView::part() const noexcept { return T(trace_)->part(); }
bool TraceView::partial() const noexcept { return T(trace_)->partial(); }
DropCounts TraceView::drops() const noexcept {
  const fb::Drops* d = T(trace_)->drops();
  DropCounts out = d ? DropCounts{d->spans(), d->records()} : DropCounts{};
  out.sink_spans = T(trace_)->sink_dropped_spans();
  return out;
}
std::size_t TraceView::span_count() const noexcept { return len(T(trace_)->span_id()); }

std::uint64_t SpanView::span_id() const noexcept { return T(trace_->trace_)->span_id()->Get(index_); }
std::uint64_t SpanView::parent_id() const noexcept { return T(trace_->trace_)->parent_id()->Get(index_); }
std::string_view SpanView::name() const noexcept {
  return trace_->batch_->string(T(trace_->trace_)->name()->Get(index_));
}
Kind SpanView::kind() const noexcept { return static_cast<Kind>(T(trace_->trace_)->kind()->Get(index_)); }
Status SpanView::status() const noexcept { return static_cast<Status>(T(trace_->trace_)->status()->Get(index_)); }
std::int64_t SpanView::start_ns() const noexcept { return T(trace_->trace_)->start_ns()->Get(index_); }
std::int64_t SpanView::duration_ns() const noexcept { return T(trace_->trace_)->duration_ns()->Get(index_); }
std::uint64_t SpanView::thread_id() const noexcept {
  return trace_->batch_->thread(T(trace_->trace_)->thread()->Get(index_));
}
std::string_view SpanView::thread_name() const noexcept {
  return trace_->batch_->thread_name(T(trace_->trace_)->thread()->Get(index_));
}

const void* SpanView::detail() const noexcept {
  const auto* ds = T(trace_->trace_)->details();
  if (!ds) return nullptr;
  // Sorted by index (checked when the batch was read).
  std::size_t lo = 0, hi = ds->size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const std::uint32_t at = ds->Get(static_cast<flatbuffers::uoffset_t>(mid))->index();
    if (at == index_) return ds->Get(static_cast<flatbuffers::uoffset_t>(mid));
    if (at < index_) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return nullptr;
}

bool SpanView::has_tokens() const noexcept {
  const void* d = detail();
  return d && D(d)->tokens();
}
TokenUsage SpanView::tokens() const noexcept {
  const void* d = detail();
  if (!d || !D(d)->tokens()) return {};
  const fb::Tokens* t = D(d)->tokens();
  return TokenUsage{t->input(), t->output(), t->cached_input()};
}
std::string_view SpanView::model() const noexcept {
  const void* d = detail();
  return d ? trace_->batch_->string(D(d)->model()) : std::string_view{};
}
std::uint32_t SpanView::flags() const noexcept {
  const void* d = detail();
  return d ? D(d)->flags() : 0;
}

SpanData SpanView::to_span_data() const {
  const BatchView& b = *trace_->batch_;
  SpanData s;
  s.span_id = span_id();
  s.parent_id = parent_id();
  s.name = std::string(name());
  s.kind = kind();
  s.status = status();
  s.start_ns = start_ns();
  s.end_ns = end_ns();
  s.thread_id = thread_id();
  s.end_thread_id = s.thread_id;
  if (const void* dp = detail()) {
    const fb::SpanDetail* d = D(dp);
    s.flags = d->flags();
    s.kind_name = std::string(b.string(d->kind_name()));
    if (d->end_thread() != 0) {
      s.end_thread_id = b.thread(d->end_thread() - 1);
    } else if (s.flags & kSpanIncomplete) {
      s.end_thread_id = 0;  // it never ended (the encoder stores no end thread for it)
    }
    s.error_message = std::string(b.string(d->error_message()));
    s.error_data = std::string(b.string(d->error_data()));
    s.input = std::string(b.string(d->input()));
    s.output = std::string(b.string(d->output()));
    s.model = std::string(b.string(d->model()));
    if (d->tags())
      for (std::uint32_t tag : *d->tags()) s.tags.emplace_back(b.string(tag));
    if (const fb::Tokens* t = d->tokens()) {
      s.has_tokens = true;
      s.tokens = TokenUsage{t->input(), t->output(), t->cached_input()};
    }
    s.attrs = attrs_of(d->attrs(), b);
    if (d->events())
      for (const fb::Event* e : *d->events())
        s.events.push_back(SpanEvent{std::string(b.string(e->name())), e->time_ns(), attrs_of(e->attrs(), b)});
    if (d->links())
      for (const fb::Link* l : *d->links()) s.links.push_back(SpanLink{TraceId{l->trace().hi(), l->trace().lo()}, l->span_id()});
  }
  return s;
}

AssembledTrace TraceView::materialize() const {
  AssembledTrace t;
  t.trace_id = trace_id();
  t.root_name = std::string(root_name());
  t.service_name = batch_->info().service_name;
  t.process_id = batch_->info().process_id;
  t.part = part();
  t.partial = partial();
  t.drops_since_previous = drops();
  const std::size_t n = span_count();
  t.spans.reserve(n);
  for (std::size_t i = 0; i < n; ++i) t.spans.push_back(span(i).to_span_data());
  const fb::Trace* ft = T(trace_);
  // The names of the threads its spans began or ended on (format 1.2), by thread id.
  if (const auto* names = B(batch_->batch_)->thread_names()) {
    std::vector<bool> used(names->size(), false);
    for (std::size_t i = 0; i < n; ++i) used[ft->thread()->Get(static_cast<flatbuffers::uoffset_t>(i))] = true;
    if (ft->details())
      for (const fb::SpanDetail* d : *ft->details())
        if (d->end_thread() != 0) used[d->end_thread() - 1] = true;
    for (std::uint32_t k = 0; k < used.size(); ++k) {
      const std::string_view name = batch_->thread_name(k);
      if (used[k] && !name.empty()) t.thread_names.push_back(ThreadName{batch_->thread(k), std::string(name)});
    }
    std::sort(t.thread_names.begin(), t.thread_names.end(),
              [](const ThreadName& a, const ThreadName& b) { return a.thread_id < b.thread_id; });
    // A thread listed twice in a batch (a foreign file) keeps its first name.
    t.thread_names.erase(std::unique(t.thread_names.begin(), t.thread_names.end(),
                                     [](const ThreadName& a, const ThreadName& b) { return a.thread_id == b.thread_id; }),
                         t.thread_names.end());
  }
  if (ft->groups()) {
    for (const fb::Group* g : *ft->groups()) {
      ParallelGroup pg;
      pg.id = static_cast<std::uint32_t>(t.groups.size());
      pg.start_ns = g->start_ns();
      pg.end_ns = g->end_ns();
      pg.peak_concurrency = g->peak();
      if (g->members()) {
        for (std::uint32_t m : *g->members()) {
          pg.members.push_back(t.spans[m].span_id);
          t.spans[m].group = static_cast<std::int32_t>(pg.id);
        }
        if (!pg.members.empty()) pg.parent_id = t.spans[*g->members()->begin()].parent_id;
      }
      t.groups.push_back(std::move(pg));
    }
  }
  if (ft->chains()) {
    for (const fb::Chain* c : *ft->chains()) {
      SegmentChain sc;
      sc.first_span_id = c->first_span_id();
      sc.waited_ns = c->waited_ns();
      if (c->segments()) {
        const auto* numbers = c->segment_index();
        for (flatbuffers::uoffset_t k = 0; k < c->segments()->size(); ++k) {
          SpanData& seg = t.spans[c->segments()->Get(k)];
          seg.segment_of = sc.first_span_id;
          seg.segment_index = numbers && k < numbers->size() ? numbers->Get(k) : k;
          sc.segments.push_back(seg.span_id);
        }
      }
      t.chains.push_back(std::move(sc));
    }
  }
  return t;
}

// ---- the reader ----

struct Reader::Impl {
  std::string path;
  int fd = -1;
  const unsigned char* data = nullptr;
  std::uint64_t size = 0;
  std::uint64_t pos = 0;
  FileInfo info;
  std::optional<ReadError> error;
  bool ended = false;
  bool done = false;
  FileEndInfo end;
  WriteLoss loss;
  std::uint64_t repaired_strings = 0;  // in the batches read so far
  std::uint64_t released = 0;  // pages before this offset were handed back to the kernel

  // Streaming keeps resident memory bounded: pages of frames already read are dropped
  // from this mapping. It is a private read-only file mapping, so a view that touches
  // them again just faults them back in from the file.
  void release_consumed() {
    static const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const std::uint64_t upto = pos & ~(page - 1);
    if (upto >= released + (std::uint64_t{8} << 20)) {
      ::madvise(const_cast<unsigned char*>(data) + released, upto - released, MADV_DONTNEED);
      released = upto;
    }
  }

  ~Impl() {
    if (data) ::munmap(const_cast<unsigned char*>(data), size);
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] void fatal(std::uint64_t at, const std::string& msg) { throw ReadError(path, at, msg); }

  void fail(std::uint64_t at, const std::string& msg) {
    error.emplace(path, at, msg);
    done = true;
  }

  // Reads the frame at pos; returns its payload, or nullptr (done set, error maybe set).
  const unsigned char* frame(FrameType& type, std::uint32_t& length) {
    if (pos == size) {
      if (!ended) fail(pos, "file ends without an end frame (truncated: the writer did not close it)");
      done = true;
      return nullptr;
    }
    if (size - pos < kFrameHeaderSize) {
      fail(pos, "truncated frame header (" + std::to_string(size - pos) + " bytes left)");
      return nullptr;
    }
    detail::FrameHeader h;
    std::memcpy(&h, data + pos, kFrameHeaderSize);
    if (crc32c(&h, 12) != h.header_crc) {
      fail(pos, "frame header checksum mismatch (corrupt data)");
      return nullptr;
    }
    if (h.type < 1 || h.type > 4) {
      fail(pos, "unknown frame type " + std::to_string(h.type));
      return nullptr;
    }
    if (h.length > kMaxFrameBytes || kFrameHeaderSize + std::uint64_t{h.length} > size - pos) {
      fail(pos, "frame claims " + std::to_string(h.length) + " bytes but only " +
                    std::to_string(size - pos - std::min<std::uint64_t>(size - pos, kFrameHeaderSize)) +
                    " remain (truncated)");
      return nullptr;
    }
    const unsigned char* payload = data + pos + kFrameHeaderSize;
    if (crc32c(payload, h.length) != h.payload_crc) {
      fail(pos, "frame payload checksum mismatch (corrupt data)");
      return nullptr;
    }
    type = static_cast<FrameType>(h.type);
    length = h.length;
    return payload;
  }

  void advance(std::uint32_t length) {
    pos = std::min<std::uint64_t>(size, pos + kFrameHeaderSize + detail::padded(length));
  }

  void read_end(const unsigned char* payload, std::uint32_t length, std::uint64_t at) {
    flatbuffers::Verifier v(payload, length);
    if (!v.VerifyBuffer<fb::FileEnd>(nullptr)) {
      fail(at, "end frame fails FlatBuffers verification");
      return;
    }
    const auto* e = flatbuffers::GetRoot<fb::FileEnd>(payload);
    end = FileEndInfo{e->traces(),        e->spans(),         e->batches(),
                      e->lost_frames(),   e->lost_traces(),   e->lost_spans(),
                      e->spans_dropped(), e->records_dropped(), e->sink_dropped_spans(),
                      e->crash_signal(),  e->crash_address(),  e->recovered()};
    loss = WriteLoss{std::max(loss.frames, end.lost_frames), std::max(loss.traces, end.lost_traces),
                     std::max(loss.spans, end.lost_spans)};
    ended = true;
    advance(length);
  }

  // A file of the record log (Assembly::deferred): assembled now, through a FileSink
  // into an unlinked temporary file that is then read in its place, so every batch, view
  // and count is what a recorder that assembled would have written. Damage in the log
  // ends the assembly there (the traces before it are kept, their open spans incomplete)
  // and is reported after the last batch, where reading meets it.
  struct Log {
    std::uint64_t size = 0;  // of the file itself
    bool ended = false;
    std::optional<ReadError> error;
  };
  std::optional<Log> log;

  // Replays the log from pos into an assembled file at `out`; its end frame says what the
  // log's did (a crash, recovered, what the log's writer failed to write). A FileSink
  // that cannot write throws std::system_error.
  Log assemble_into(const std::string& out, FileSink::Counters* written = nullptr) {
    FileSinkOptions options;
    options.path = out;
    FileSink sink(std::move(options));
    sink.open(RecorderInfo{info.service_name, info.host_name, info.process_id, info.start_ns, info.clock,
                           info.ns_per_tick, false});
    strobe::detail::RecordReplay replay(info.service_name, info.process_id);
    std::vector<strobe::detail::Record> chunk;  // 64-byte aligned, as the replay reads records
    auto pass_on = [&] {
      for (CompactTrace& t : replay.take()) {
        sink.consume_compact(t);
        replay.recycle(std::move(t));
      }
    };
    while (!done) {
      const std::uint64_t at = pos;
      FrameType type{};
      std::uint32_t length = 0;
      const unsigned char* payload = frame(type, length);
      if (!payload) break;
      if (ended) {
        fail(at, "data after the end frame");
      } else if (type == FrameType::header) {
        fail(at, "a second header frame");
      } else if (type == FrameType::batch) {
        fail(at, "a batch frame in a file of the record log");
      } else if (type == FrameType::end) {
        read_end(payload, length, at);
      } else {
        chunk.resize(length / sizeof(strobe::detail::Record) + 1);
        std::memcpy(static_cast<void*>(chunk.data()), payload, length);
        try {
          replay.feed(chunk.data(), length);
        } catch (const strobe::detail::RecordLogError& e) {
          fail(at, e.what());
        }
        pass_on();
        advance(length);
      }
    }
    replay.finish();
    pass_on();
    sink.lost(replay.take_trailing_drops());
    // The end frame's count, or what the log's resyncs say when it had none (SIGKILL).
    const strobe::detail::LogLoss& resynced = replay.writer_lost();
    sink.carry_end(Encoder::Lost{std::max(end.lost_frames, resynced.chunks), end.lost_traces,
                                 std::max(end.lost_spans, resynced.spans)},
                   end.recovered);
    if (end.crash_signal != 0) sink.crashed(CrashInfo{end.crash_signal, end.crash_address, {}});
    sink.close();
    if (written) *written = sink.counters();
    return Log{size, ended, error};
  }

  void assemble() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmp = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/strobe-assembled-XXXXXX";
    const int tfd = ::mkstemp(tmp.data());
    // What to do about it: the temporary file is several times the log's size.
    static const char* const kWhere =
        " (the log is assembled into a temporary file in $TMPDIR, several times its size: point TMPDIR at a "
        "filesystem with room, or assemble it once with `strobe assemble FILE -o OUT`)";
    if (tfd < 0)
      fatal(pos, "cannot assemble the record log: cannot create a file in " + tmp + ": " + std::strerror(errno) + kWhere);
    ::close(tfd);
    struct Unlink {
      const std::string& path;
      ~Unlink() { ::unlink(path.c_str()); }
    } unlink_at_end{tmp};
    try {
      log = assemble_into(tmp);
    } catch (const std::exception& e) {
      fatal(pos, std::string("cannot assemble the record log: ") + e.what() + kWhere);
    }
    // Read the assembled file from its first frame after the header.
    ::munmap(const_cast<unsigned char*>(data), size);
    data = nullptr;
    ::close(fd);
    fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) fatal(0, "cannot assemble the record log: cannot reopen " + tmp);
    size = static_cast<std::uint64_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) fatal(0, "cannot assemble the record log: cannot map " + tmp);
    data = static_cast<const unsigned char*>(p);
    error.reset();
    done = ended = false;
    end = {};
    loss = {};
    released = 0;
    pos = kPreambleSize;
    FrameType type{};
    std::uint32_t length = 0;
    if (frame(type, length) == nullptr || type != FrameType::header) fatal(0, "cannot assemble the record log");
    advance(length);
  }

  // At the end of an assembled file: the record log's own end, or its damage.
  void log_ended() {
    if (!log) return;
    if (log->error) {
      error = log->error;
      ended = false;
    } else if (!log->ended) {
      ended = false;
    }
  }
};

Reader::Reader(const std::string& path) : Reader(path, true) {}

Reader::Reader(const std::string& path, bool assemble_log) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m.fd < 0) m.fatal(0, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(m.fd, &st) != 0) m.fatal(0, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) m.fatal(0, "is a directory, not a strobe file");
  if (!S_ISREG(st.st_mode)) m.fatal(0, "not a regular file");
  m.size = static_cast<std::uint64_t>(st.st_size);
  if (m.size == 0) m.fatal(0, "empty file, not a strobe file");
  void* p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0);
  if (p == MAP_FAILED) m.fatal(0, std::string("cannot map: ") + std::strerror(errno));
  m.data = static_cast<const unsigned char*>(p);
  if (m.size < kPreambleSize || std::memcmp(m.data, kMagic, sizeof kMagic) != 0)
    m.fatal(0, "not a strobe file (bad magic)");
  std::memcpy(&m.info.major, m.data + 10, 2);
  std::memcpy(&m.info.minor, m.data + 12, 2);
  if (m.info.major > kFormatMajor)
    m.fatal(10, "format version " + std::to_string(m.info.major) + "." + std::to_string(m.info.minor) +
                    " is newer than this reader (" + std::to_string(kFormatMajor) + "." +
                    std::to_string(kFormatMinor) + "); upgrade strobe");
  if (m.info.major == 0) m.fatal(10, "format version 0 is not a released format");
  m.pos = kPreambleSize;
  FrameType type{};
  std::uint32_t length = 0;
  const unsigned char* payload = m.frame(type, length);
  if (!payload) m.fatal(m.error ? m.error->offset() : m.pos, m.error ? m.error->message() : "no header frame");
  if (type != FrameType::header) m.fatal(m.pos, "first frame is not a header");
  flatbuffers::Verifier v(payload, length);
  if (!v.VerifyBuffer<fb::FileHeader>(nullptr)) m.fatal(m.pos, "header fails FlatBuffers verification");
  const auto* h = flatbuffers::GetRoot<fb::FileHeader>(payload);
  auto s = [&m](const flatbuffers::String* x) {
    std::string text = x ? x->str() : std::string();
    if (strobe::detail::repair_utf8(text)) ++m.repaired_strings;
    return text;
  };
  m.info.service_name = s(h->service());
  m.info.host_name = s(h->host());
  m.info.process_id = h->process_id();
  m.info.start_ns = h->start_ns();
  m.info.clock = s(h->clock());
  m.info.ns_per_tick = h->ns_per_tick();
  m.info.writer = s(h->writer());
  m.info.records = h->records();
  m.advance(length);
  if (m.info.records && assemble_log) m.assemble();
}

Reader::~Reader() = default;

const FileInfo& Reader::info() const noexcept { return impl_->info; }
const std::optional<ReadError>& Reader::error() const noexcept { return impl_->error; }
bool Reader::ended_cleanly() const noexcept { return impl_->ended; }
const FileEndInfo& Reader::end_info() const noexcept { return impl_->end; }
WriteLoss Reader::write_loss() const noexcept { return impl_->loss; }
std::uint64_t Reader::repaired_strings() const noexcept { return impl_->repaired_strings; }
std::uint64_t Reader::size() const noexcept { return impl_->log ? impl_->log->size : impl_->size; }
const std::string& Reader::path() const noexcept { return impl_->path; }

bool Reader::next(BatchView& out) {
  Impl& m = *impl_;
  m.release_consumed();
  while (!m.done) {
    const std::uint64_t at = m.pos;
    FrameType type{};
    std::uint32_t length = 0;
    const unsigned char* payload = m.frame(type, length);
    if (!payload) {
      m.log_ended();
      return false;
    }
    if (m.ended) {
      m.fail(at, "data after the end frame");
      return false;
    }
    if (type == FrameType::header) {
      m.fail(at, "a second header frame");
      return false;
    }
    if (type == FrameType::end) {
      m.read_end(payload, length, at);
      if (m.done) return false;
      continue;
    }
    if (type == FrameType::records) {
      m.fail(at, "a records frame in a file whose header does not say records");
      return false;
    }
    // Bounded work on hostile input: depth and table count limited by the buffer's size.
    flatbuffers::Verifier v(payload, length, 64, std::max<flatbuffers::uoffset_t>(1000, length / 4));
    if (!v.VerifyBuffer<fb::Batch>(nullptr)) {
      m.fail(at, "batch fails FlatBuffers verification");
      return false;
    }
    const fb::Batch* b = flatbuffers::GetRoot<fb::Batch>(payload);
    if (const std::string bad = check_batch(b); !bad.empty()) {
      m.fail(at, "inconsistent batch: " + bad);
      return false;
    }
    m.loss = WriteLoss{std::max(m.loss.frames, b->lost_frames()), std::max(m.loss.traces, b->lost_traces()),
                       std::max(m.loss.spans, b->lost_spans())};
    out.batch_ = b;
    out.info_ = &m.info;
    out.offset_ = at;
    out.repaired_.clear();
    if (const auto* strings = b->strings()) {
      for (flatbuffers::uoffset_t i = 0; i < strings->size(); ++i) {
        const flatbuffers::String* s = strings->Get(i);
        if (s == nullptr || strobe::detail::valid_utf8(std::string_view(s->c_str(), s->size()))) continue;
        std::string text(s->c_str(), s->size());
        strobe::detail::repair_utf8(text);
        out.repaired_.emplace_back(i, std::move(text));
      }
    }
    m.repaired_strings += out.repaired_.size();
    const std::size_t n = len(b->traces());
    if (out.trace_capacity_ < n) {
      out.traces_ = std::make_unique<TraceView[]>(n);
      out.trace_capacity_ = n;
    }
    for (std::size_t i = 0; i < n; ++i) {
      out.traces_[i].trace_ = b->traces()->Get(static_cast<flatbuffers::uoffset_t>(i));
      out.traces_[i].batch_ = &out;
    }
    m.advance(length);
    return true;
  }
  return false;
}

AssembleResult assemble(const std::string& log, const std::string& out) {
  Reader reader(log, false);
  Reader::Impl& m = *reader.impl_;
  if (!m.info.records)
    throw std::invalid_argument(log + ": already assembled, not a record log (its header does not say records)");
  FileSink::Counters written;
  const Reader::Impl::Log read = m.assemble_into(out, &written);
  return AssembleResult{written.traces, written.spans, written.batches, read.error};
}

std::vector<AssembledTrace> read_all(const std::string& path, std::optional<ReadError>* error) {
  Reader r(path);
  std::vector<AssembledTrace> out;
  BatchView b;
  while (r.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) out.push_back(b.trace(i).materialize());
  if (r.error()) {
    if (error) {
      *error = r.error();
    } else {
      throw *r.error();
    }
  }
  return out;
}

}  // namespace strobe::serialize
