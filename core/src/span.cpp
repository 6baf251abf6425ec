// Span's out-of-line members: attributes, strings, chains, suspend/resume, one-shot spans.

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <typeinfo>
#include <new>

#include "strobe/span.hpp"

#include "chunked.hpp"
#include "clock.hpp"
#include "intern.hpp"

namespace strobe {
namespace {

// The record that makes span a resumed segment of the operation begun by first.
void write_link_record(detail::Record& r, std::uint64_t span, std::uint64_t previous, std::uint64_t first,
                       std::uint32_t index) noexcept {
  r.type = detail::RecType::link;
  r.flags = 0;
  r.aux = 0;
  r.key = 0;
  r.span_id = span;
  r.ts = 0;
  r.payload.link.previous_span_id = previous;
  r.payload.link.first_span_id = first;
  r.payload.link.segment_index = index;
}

}  // namespace

void Span::write_link(detail::Record& r, const detail::LinkPayload& link) const noexcept {
  write_link_record(r, id_, link.previous_span_id, link.first_span_id, link.segment_index);
}

namespace {

// The decimal digits of an unsigned value above INT64_MAX (Value::Type::u64).
class Digits {
 public:
  explicit Digits(std::uint64_t v) noexcept : end_(std::to_chars(buf_, buf_ + sizeof buf_, v).ptr) {}
  [[nodiscard]] std::string_view text() const noexcept { return {buf_, static_cast<std::size_t>(end_ - buf_)}; }

 private:
  char buf_[20];
  char* end_;
};

void misuse() noexcept {
  // relaxed: a statistic.
  detail::g_misuse.fetch_add(1, std::memory_order_relaxed);
}

// One cell per suspended operation, holding the suspended segment's id until the first
// resume() of any copy of its token takes it (compare-and-swap to 0), so that a second
// resume is a counted no-op. Cells come in chunks that are never freed (ChunkedArray: a
// stale token may read one any time later); a taken cell is reused through a lock-free
// free list whose head carries a tag against ABA. A token suspended and never resumed keeps its cell; past
// 4096 * 1024 of those, tokens get no cell and a second resume goes unnoticed.
class ResumeCells {
 public:
  // The cell (1-based; 0: none to be had) now holding span.
  std::uint32_t claim(std::uint64_t span) noexcept {
    std::uint32_t at = pop();
    if (at == 0) {
      const std::uint32_t n = next_.fetch_add(1, std::memory_order_relaxed);
      if (cells_.at(n) == nullptr) return 0;  // past the capacity, or no memory
      at = n + 1;
    }
    cell(at).span.store(span, std::memory_order_release);
    return at;
  }

  // True for the first resume of the token whose cell holds span (or that has no cell).
  bool take(std::uint32_t at, std::uint64_t span) noexcept {
    if (at == 0) return true;
    std::uint64_t expected = span;
    if (!cell(at).span.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return false;
    push(at);
    return true;
  }

 private:
  struct Cell {
    std::atomic<std::uint64_t> span{0};
    std::atomic<std::uint32_t> next{0};  // in the free list
  };

  Cell& cell(std::uint32_t at) noexcept { return *cells_.at(at - 1); }  // claimed: its chunk exists

  std::uint32_t pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto at = static_cast<std::uint32_t>(head);
      if (at == 0) return 0;
      const std::uint64_t next = ((head >> 32) + 1) << 32 | cell(at).next.load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel)) return at;
    }
  }
  void push(std::uint32_t at) noexcept {
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      cell(at).next.store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
      if (head_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | at, std::memory_order_acq_rel)) return;
    }
  }

  detail::ChunkedArray<Cell, 4096, 1024> cells_;
  std::atomic<std::uint32_t> next_{0};
  std::atomic<std::uint64_t> head_{0};  // tag << 32 | first free cell
};

constinit ResumeCells g_resume_cells;

}  // namespace

void Span::misuse_if_ended() const noexcept {
  if (owner_ != nullptr && (state_ & kEndedFlag)) misuse();
}

void Span::end_slow(std::uint8_t record_flags) noexcept {
  state_ |= kEndedFlag;
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  if (&t == owner_) {
    restore_current(t);
  } else if (owner_ != nullptr && (state_ & kCurrentFlag)) {
    restore_current(t);  // current here too (a coroutine carried it): what it replaced is now
    // Ended away from its thread, where it may still be current: that thread's next span
    // must not become its child. Word is left for it (owner_ may be gone: not touched).
    if (state_ & kOwnPrevFlag) {
      detail::post_ended_elsewhere(id_, prev_hi_, prev_lo_, prev_span_, prev_generation_);
    } else {
      detail::post_ended_elsewhere(id_, trace_.hi, trace_.lo, parent_, generation_);
    }
  }
  // Another thread, or the recorder changed: record on the calling thread's ring if it
  // belongs to the same recorder; a span that outlived its recorder ends as a no-op (its
  // ended_at() read on the last recorder's clock).
  const bool recorded = detail::attached() && t.generation == generation_;
  const std::uint64_t ts = recorded ? detail::now(t) : detail::now_published_ticks();
  end_ts_ = ts;
  if (!recorded) return;
  // Exceptions in flight are counted per thread: on another thread the count says nothing
  // of this span's scope, so an end there never reads as a thrown exception.
  const int uncaught = &t == owner_ ? std::uncaught_exceptions() : uncaught_;
  if (state_ & kDroppedFlag) {
    // Its begin was dropped: written now, at its start time and flagged late, with the end,
    // from the room kept for ends. Only when that fails too is the span lost whole.
    const bool segment = (state_ & kSegmentFlag) != 0;  // a resumed segment: its link too
    const std::uint32_t n = segment ? 3 : 2;
    if (t.ring->reserve(n)) {  // the drop policy (a begin drops under no other): never waits
      write_begin(t.ring->slot(0), start_ts_, static_cast<std::uint8_t>(lost_flags_ | detail::kLateBegin));
      // The previous segment's id is not kept: the chain is rebuilt from first_span_id.
      if (segment) write_link_record(t.ring->slot(1), id_, 0, seg_first_, seg_index_);
      write_end(t.ring->slot(n - 1), ts, record_flags, uncaught);
      t.ring->commit(n);
    } else {
      detail::count_lost_span(t);
    }
    return;
  }
  if (detail::claim(t, 1, true, false)) {
    write_end(t.ring->slot(0), ts, record_flags, uncaught);
    t.ring->commit(1);
  }
}

void Span::begin_dropped(detail::ThreadState& t, std::uint8_t mode, std::uint8_t prev_flag,
                         std::uint8_t record_flags, std::uint64_t ts) noexcept {
  state_ = static_cast<std::uint8_t>(kDroppedFlag | prev_flag);
  start_ts_ = ts;
  lost_flags_ = record_flags;
  if (mode & kCurrentFlag) {
    state_ |= kCurrentFlag;
    t.cur_trace_hi = trace_.hi;
    t.cur_trace_lo = trace_.lo;
    t.cur_span = id_;
    t.cur_generation = generation_;
  }
}

bool Span::writable(std::uint32_t records) noexcept {
  if (owner_ == nullptr) return false;
  if (state_ & kEndedFlag) {
    misuse();
    return false;
  }
  detail::ThreadState& t = detail::t_state;
  if (&t != owner_ && !detail::attached()) return false;
  if (t.generation != generation_) return false;  // outlived its recorder
  if (state_ & kDroppedFlag) {
    detail::count_dropped(t, records);
    return false;
  }
  return true;
}

Span::Span(Name name, std::string_view custom_kind, std::initializer_list<Attr> attrs) noexcept {
  const Kind k = kind_from_string(custom_kind);
  const std::uint32_t kind_name =
      k == Kind::custom ? detail::intern(custom_kind.data(), custom_kind.size()) : 0;
  begin(name.id(), k, kind_name, kCurrentFlag, 0);
  if (attrs.size() != 0 && recording()) this->attrs(attrs);
}

Span& Span::attr(Name key, Value v) noexcept { return attr_id(key.id(), v); }

Span& Span::attr_id(std::uint32_t key, Value v) noexcept {
  if (v.type() == Value::Type::string) return string(detail::StrKind::attr_value, v.as_string(), key);
  if (v.type() == Value::Type::u64) {
    Digits d(v.as_uint());
    return string(detail::StrKind::attr_value, d.text(), key);
  }
  if (!writable(1)) return *this;
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  if (!detail::claim(t, 1, false, false)) {
    state_ |= kLostFlag;
    return *this;
  }
  write_attr(t.ring->slot(0), key, v, 0);
  t.ring->commit(1);
  return *this;
}

Span& Span::attrs(std::initializer_list<Attr> list) noexcept {
  for (const Attr& a : list) attr_id(intern(a.key), a.value);
  return *this;
}

Span& Span::event(Name name, std::initializer_list<Attr> list) noexcept {
  return event_id(name.id(), list);
}
Span& Span::event(std::string_view name, std::initializer_list<Attr> list) noexcept {
  return event_id(intern(name), list);
}

namespace {

// An event record: its name and time; its attributes follow (flagged kOnEvent).
void write_event(detail::Record& r, std::uint64_t span, std::uint32_t name, std::uint64_t ts) noexcept {
  r.type = detail::RecType::event;
  r.flags = 0;
  r.aux = 0;
  r.key = name;
  r.span_id = span;
  r.ts = ts;
}

}  // namespace

Span& Span::event_in_parts(detail::ThreadState& t, std::uint32_t name, std::uint64_t ts,
                           std::initializer_list<Attr> list) noexcept {
  // An event whose attributes together would not fit the ring: the event, then each
  // attribute in a commit of its own (a part handed over in between may separate them).
  if (!detail::claim(t, 1, false, false)) {
    detail::count_dropped(t, static_cast<std::uint32_t>(list.size()));  // nothing to attach to
    state_ |= kLostFlag;
    return *this;
  }
  write_event(t.ring->slot(0), id_, name, ts);
  t.ring->commit(1);
  for (const Attr& a : list) event_attr(t, a);
  return *this;
}

void Span::event_attr(detail::ThreadState& t, const Attr& a) noexcept {
  const std::uint32_t key = intern(a.key);
  if (a.value.type() == Value::Type::string || a.value.type() == Value::Type::u64) {
    Digits d(a.value.as_uint());
    const std::string_view sv = a.value.type() == Value::Type::string ? a.value.as_string() : d.text();
    if (!detail::write_string(t, id_, detail::StrKind::attr_value, key, detail::kOnEvent, sv.data(), sv.size()))
      state_ |= kLostFlag;
    return;
  }
  if (!detail::claim(t, 1, false, false)) {
    state_ |= kLostFlag;
    return;
  }
  write_attr(t.ring->slot(0), key, a.value, detail::kOnEvent);
  t.ring->commit(1);
}

Span& Span::event_id(std::uint32_t name, std::initializer_list<Attr> list) noexcept {
  const auto given = static_cast<std::uint32_t>(1 + list.size());
  if (!writable(given)) return *this;
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  const std::uint64_t ts = detail::now(t);
  // The event and its first kJoined attributes go in one commit: the drainer sees them
  // together, so a part handed over in between never takes the event without them.
  constexpr std::size_t kJoined = 16;
  struct Item {
    std::uint32_t key;
    bool is_string;  // a string value, or a u64's decimal digits
    std::uint8_t flags;
    detail::StringCut cut;
    std::string_view text;
    char digits[24];
  };
  Item items[kJoined];
  std::uint32_t records = 1;
  std::size_t joined = 0;
  for (const Attr& a : list) {
    if (joined == kJoined) break;
    Item& it = items[joined++];
    it.key = intern(a.key);
    it.flags = detail::kOnEvent;
    it.cut = detail::StringCut{0, 1};
    it.is_string = a.value.type() == Value::Type::string || a.value.type() == Value::Type::u64;
    if (a.value.type() == Value::Type::string) {
      it.text = a.value.as_string();
    } else if (a.value.type() == Value::Type::u64) {
      const char* end = std::to_chars(it.digits, it.digits + sizeof it.digits, a.value.as_uint()).ptr;
      it.text = std::string_view(it.digits, static_cast<std::size_t>(end - it.digits));
    }
    if (it.is_string) it.cut = detail::cut_string(t, it.text.data(), it.text.size(), it.flags);
    records += it.cut.records;
  }
  // Joined, it must fit the ring beside the headroom: long strings go in commits of their own.
  if (records + t.headroom > t.ring->capacity() / 2) return event_in_parts(t, name, ts, list);
  if (!detail::claim(t, records, false, false)) {
    // The claim counted what it was for; the attributes past kJoined are lost with them.
    detail::count_dropped(t, static_cast<std::uint32_t>(given - 1 - joined));
    state_ |= kLostFlag;
    return *this;
  }
  write_event(t.ring->slot(0), id_, name, ts);
  std::uint32_t at = 1;
  const Attr* a = list.begin();
  for (std::size_t i = 0; i < joined; ++i, ++a) {
    const Item& it = items[i];
    if (it.is_string) {
      detail::fill_string(t, at, id_, detail::StrKind::attr_value, it.key, it.flags, 0, it.text.data(), it.cut,
                          it.text.size());
    } else {
      write_attr(t.ring->slot(at), it.key, a->value, detail::kOnEvent);
    }
    at += it.cut.records;
  }
  t.ring->commit(records);
  for (; a != list.end(); ++a) event_attr(t, *a);  // past kJoined: a commit each
  return *this;
}

Span& Span::string(detail::StrKind kind, std::string_view text, std::uint32_t key) noexcept {
  if (!writable(1 + detail::continuation_records(static_cast<std::uint32_t>(
                        std::min<std::size_t>(text.size(), detail::t_state.max_string)))))
    return *this;
  if (!detail::write_string(detail::t_state, id_, kind, key, 0, text.data(), text.size()))
    state_ |= kLostFlag;
  return *this;
}

Span& Span::log(std::string_view text) noexcept { return string(detail::StrKind::log, text); }
Span& Span::input(std::string_view text) noexcept { return string(detail::StrKind::input, text); }
Span& Span::output(std::string_view text) noexcept { return string(detail::StrKind::output, text); }
Span& Span::model(std::string_view id) noexcept {
  if (live()) model_ = intern(id);  // models are few: resume() carries it to the next segment
  return string(detail::StrKind::model, id);
}
Span& Span::tag(std::string_view tag) noexcept { return string(detail::StrKind::tag, tag); }

Span& Span::fail(std::string_view message) noexcept {
  if (live()) state_ |= kFailedFlag;
  return string(detail::StrKind::error_message, message);
}

Span& Span::record_exception(const std::exception& e) noexcept {
  if (!live()) return *this;
  const char* what = e.what();
  const std::string_view message = what != nullptr ? std::string_view(what) : std::string_view();
  fail(message);
  int status = 0;
  char* demangled = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
  attr("exception.type", Value(std::string_view(status == 0 && demangled ? demangled : typeid(e).name())));
  std::free(demangled);
  return attr("exception.message", Value(message));
}

Span& Span::record_exception(const std::exception_ptr& e) noexcept {
  if (!live() || !e) return *this;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return record_exception(x);
  } catch (...) {
    int status = 0;
    const std::type_info* type = abi::__cxa_current_exception_type();
    char* demangled = type ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
    fail("an exception not derived from std::exception");
    attr("exception.type", Value(std::string_view(demangled && status == 0 ? demangled : type ? type->name() : "unknown")));
    std::free(demangled);
  }
  return *this;
}

Span& Span::provider(std::string_view name) noexcept { return attr("gen_ai.provider.name", Value(name)); }
Span& Span::response_model(std::string_view id) noexcept { return attr("gen_ai.response.model", Value(id)); }
Span& Span::tool_call_id(std::string_view id) noexcept { return attr("gen_ai.tool.call.id", Value(id)); }
Span& Span::conversation_id(std::string_view id) noexcept { return attr("gen_ai.conversation.id", Value(id)); }

Span& Span::finish_reasons(std::initializer_list<std::string_view> reasons) noexcept {
  if (!live()) return *this;
  // A JSON array of strings, as exporters write string arrays; quotes and controls escaped.
  char buf[512];
  std::size_t n = 0;
  auto put = [&](char c) {
    if (n < sizeof buf) buf[n++] = c;
  };
  put('[');
  bool first = true;
  for (std::string_view r : reasons) {
    if (!first) put(',');
    first = false;
    put('"');
    for (const char c : r) {
      if (c == '"' || c == '\\') put('\\');
      if (static_cast<unsigned char>(c) < 0x20) continue;
      put(c);
    }
    put('"');
  }
  put(']');
  if (n == sizeof buf) return fail("finish_reasons: more than 512 bytes");
  return attr("gen_ai.response.finish_reasons", Value(std::string_view(buf, n)));
}

Span& Span::request(const GenAiRequest& p) noexcept {
  if (p.temperature >= 0) attr("gen_ai.request.temperature", Value(p.temperature));
  if (p.top_p >= 0) attr("gen_ai.request.top_p", Value(p.top_p));
  if (p.max_tokens >= 0) attr("gen_ai.request.max_tokens", Value(p.max_tokens));
  if (p.seed >= 0) attr("gen_ai.request.seed", Value(p.seed));
  return *this;
}

Span& Span::more_tokens(std::int64_t reasoning_output, std::int64_t cache_creation_input) noexcept {
  attr("gen_ai.usage.reasoning.output_tokens", Value(reasoning_output));
  return attr("gen_ai.usage.cache_creation.input_tokens", Value(cache_creation_input));
}

Span& Span::error(std::string_view message, std::string_view data) noexcept {
  fail(message);
  return string(detail::StrKind::error_data, data);
}

detail::Record* Span::own_record(detail::ThreadState& t, detail::RecType type) noexcept {
  if (!detail::claim(t, 1, false, false)) {
    state_ |= kLostFlag;
    return nullptr;
  }
  detail::Record& r = t.ring->slot(0);
  r.type = type;
  r.flags = 0;
  r.aux = 0;
  r.key = 0;
  r.span_id = id_;
  r.ts = 0;
  return &r;
}

Span& Span::tokens(TokenUsage usage) noexcept {
  if (!writable(1)) return *this;
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  if (detail::Record* r = own_record(t, detail::RecType::tokens)) {
    r->payload.tokens.input = usage.input;
    r->payload.tokens.output = usage.output;
    r->payload.tokens.cached_input = usage.cached_input;
    t.ring->commit(1);
  }
  return *this;
}

Span& Span::link(const Context& to) noexcept {
  if (!to.valid() || !writable(1)) return *this;
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  if (detail::Record* r = own_record(t, detail::RecType::span_link)) {
    r->payload.span_link.trace_hi = to.trace_id().hi;
    r->payload.span_link.trace_lo = to.trace_id().lo;
    r->payload.span_link.span_id = to.span_id();
    t.ring->commit(1);
  }
  return *this;
}

Span& Span::next_slow(Name name, Kind kind) noexcept {
  // Everything else (a root, a failed or dropped span, a full ring, another thread):
  // end, then begin a sibling the ordinary way.
  if (owner_ == nullptr) return *this;
  const bool was_current = (state_ & kCurrentFlag) != 0;
  const bool root = parent_ == 0;
  const std::uint32_t kind_name = kind == kind_ ? kind_name_ : 0;
  finish();
  Span sibling;
  sibling.begin(name.id(), kind, kind_name, static_cast<std::uint8_t>((was_current ? kCurrentFlag : 0) |
                                                              (root ? kRootFlag : 0)),
                0);
  end_if_live();
  take(sibling);
  return *this;
}

SuspendToken Span::suspend() noexcept {
  SuspendToken tok;
  if (!live()) {
    misuse_if_ended();
    return tok;
  }
  tok.trace_ = trace();
  tok.span_ = id_;
  const bool segment = (state_ & kSegmentFlag) != 0;
  tok.first_ = segment ? seg_first_ : id_;
  tok.parent_ = parent_;
  tok.name_ = name_;
  tok.kind_name_ = kind_name_;
  tok.kind_ = kind_;
  tok.generation_ = generation_;
  tok.segment_ = segment ? seg_index_ : 0;
  tok.model_ = model_;
  tok.remote_root_ = (state_ & kRootFlag) != 0;
  // A segment whose begin was dropped still suspends (its begin is written now, late, if
  // there is room): the operation goes on in the segments resumed from the token.
  end_now(detail::kSuspended);
  tok.cell_ = g_resume_cells.claim(tok.span_);
  return tok;
}

Span resume(const SuspendToken& token) noexcept {
  Span s;
  if (!token.valid() || !detail::attached()) return s;
  detail::ThreadState& t = detail::t_state;
  if (detail::reentrant_begin(t)) return s;  // a signal handler interrupting this thread
  detail::Section section(t);
  if (t.generation != token.generation_) return s;  // suspended under another recorder
  if (!g_resume_cells.take(token.cell_, token.span_)) {  // this token (or a copy) was resumed
    misuse();
    return s;
  }
  s.trace_ = Span::RawTraceId{token.trace_.hi, token.trace_.lo};
  s.parent_ = token.parent_;
  detail::LinkPayload link{};
  link.previous_span_id = token.span_;
  link.first_span_id = token.first_;
  link.segment_index = token.segment_ + 1;
  s.begin_common(t, token.name_, token.kind_, token.kind_name_, Span::kCurrentFlag,
                 token.remote_root_ ? detail::kTraceRoot : std::uint8_t{0}, detail::now(t), true, &link);
  if (token.remote_root_) s.state_ |= Span::kRootFlag;
  s.seg_first_ = token.first_;
  s.seg_index_ = token.segment_ + 1;
  s.state_ |= Span::kSegmentFlag;
  if (!s.recording()) return s;  // its begin and link are written when it ends
  if (token.model_ != 0) s.model(detail::name_of(token.model_));  // the model goes on with it
  return s;
}

Span trace(std::string_view agent_name, std::initializer_list<Attr> attrs) noexcept {
  return Span(Name(agent_name).id(), Kind::agent, 0, attrs,
              Span::kCurrentFlag | Span::kRootFlag, 0);
}

Span start_span(Name name, Kind kind, StartOptions options,
                std::initializer_list<Attr> attrs) noexcept {
  const auto mode = static_cast<std::uint8_t>((options.mark_as_current ? Span::kCurrentFlag : 0) |
                                              (options.new_trace ? Span::kRootFlag : 0));
  return Span(name.id(), kind, 0, attrs, mode, 0);
}

namespace {
std::int64_t wall_ns(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::chrono::system_clock::time_point time_point_of(std::int64_t wall_ns) noexcept {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(wall_ns)));
}
// start + duration, a negative duration as 0, saturated at the largest time.
std::int64_t end_after(std::int64_t start_ns, std::chrono::nanoseconds duration) noexcept {
  const std::int64_t d = std::max<std::int64_t>(0, duration.count());
  return start_ns > INT64_MAX - d ? INT64_MAX : start_ns + d;
}
}  // namespace

std::chrono::system_clock::time_point Span::started_at() const noexcept {
  return owner_ != nullptr ? time_point_of(detail::published_wall_ns(start_ts_)) : std::chrono::system_clock::time_point{};
}

std::chrono::system_clock::time_point Span::ended_at() const noexcept {
  return owner_ != nullptr && (state_ & kEndedFlag) ? time_point_of(detail::published_wall_ns(end_ts_))
                                                     : std::chrono::system_clock::time_point{};
}

Context detail::record_completed(std::string_view name, Kind kind, std::int64_t start_ns, std::int64_t end_ns,
                                 const RecordOptions& o) noexcept {
  if (!detail::attached()) return Context();
  detail::ThreadState& t = detail::t_state;
  if (detail::reentrant_begin(t)) return Context();  // a signal handler interrupting this thread
  detail::Section section(t);
  detail::settle_current(t);
  Span s;
  std::uint8_t flags = detail::kWallClock;
  const bool remote = t.cur_generation >= detail::kRemoteUnsampled && (t.cur_trace_hi | t.cur_trace_lo) != 0;
  // Not sampled upstream: nothing recorded, and what it returns keeps spans under it unsampled.
  if (remote && t.cur_generation == detail::kRemoteUnsampled) return current();
  if (remote) {  // a root of this process's part of the caller's trace
    s.trace_ = Span::RawTraceId{t.cur_trace_hi, t.cur_trace_lo};
    s.parent_ = t.cur_span;
    flags |= detail::kTraceRoot;
  } else if ((t.cur_trace_hi | t.cur_trace_lo) == 0 || t.cur_generation != t.generation) {
    detail::new_trace_id(t, s.trace_.hi, s.trace_.lo);
    s.parent_ = 0;
    flags |= detail::kTraceRoot;
  } else {
    s.trace_ = Span::RawTraceId{t.cur_trace_hi, t.cur_trace_lo};
    s.parent_ = t.cur_span;
  }
  s.begin_common(t, Name(name).id(), kind, 0, 0, flags, static_cast<std::uint64_t>(start_ns), true);
  const Context ctx = s.context();  // its children name it even when its records were lost
  const bool has_tokens = o.tokens != TokenUsage{};
  if (!s.recording()) {
    s.state_ |= Span::kEndedFlag;
    // The begin was counted; so are what would have followed it, and its end: a one-shot
    // span has no later chance.
    const auto records = [&](std::string_view text) -> std::uint32_t {
      if (text.empty()) return 0;
      const auto kept = static_cast<std::uint32_t>(std::min<std::size_t>(text.size(), t.max_string));
      return 1 + detail::continuation_records(kept);
    };
    detail::count_dropped(t, static_cast<std::uint32_t>(o.attrs.size()) + records(o.input) + records(o.output) +
                                 records(o.model) + records(o.error) + (has_tokens ? 1 : 0));
    detail::count_lost_span(t);
    return ctx;
  }
  s.attrs(o.attrs);
  if (!o.input.empty()) s.input(o.input);
  if (!o.output.empty()) s.output(o.output);
  if (!o.model.empty()) s.model(o.model);
  if (has_tokens) s.tokens(o.tokens);
  if (!o.error.empty()) s.fail(o.error);
  const Status status = o.error.empty() ? o.status : Status::failed;
  s.state_ |= Span::kEndedFlag;
  if (!detail::claim(t, 1, true, false)) return ctx;
  detail::Record& r = t.ring->slot(0);
  s.write_end(r, static_cast<std::uint64_t>(std::max(start_ns, end_ns)), detail::kWallClock,
              detail::uncaught_exceptions(t));
  r.aux = static_cast<std::uint16_t>(status);
  t.ring->commit(1);
  return ctx;
}

Context record_span(std::string_view name, Kind kind, std::chrono::nanoseconds duration,
                    RecordOptions options) noexcept {
  if (!detail::attached()) return Context();
  // Now on the recorder's clock, as the drainer converts its spans' ticks: a one-shot span
  // that ends now sits exactly among the spans around it.
  const std::int64_t end = detail::published_wall_ns(detail::now_published_ticks());
  const std::int64_t d = std::max<std::int64_t>(0, duration.count());
  return detail::record_completed(name, kind, end < INT64_MIN + d ? INT64_MIN : end - d, end, options);
}

Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::system_clock::time_point end, RecordOptions options) noexcept {
  return detail::record_completed(name, kind, wall_ns(start), wall_ns(end), options);
}

Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::nanoseconds duration, RecordOptions options) noexcept {
  return detail::record_completed(name, kind, wall_ns(start), end_after(wall_ns(start), duration), options);
}

Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::nanoseconds duration, Status status, std::initializer_list<Attr> attrs) noexcept {
  return detail::record_completed(name, kind, wall_ns(start), end_after(wall_ns(start), duration),
                                  RecordOptions{.status = status, .attrs = attrs});
}

Context current() noexcept {
  detail::ThreadState& t = detail::t_state;
  if (detail::current_ended_elsewhere(t)) {
    detail::Section section(t);
    detail::settle_current(t);
  }
  return Context(TraceId{t.cur_trace_hi, t.cur_trace_lo}, t.cur_span, t.cur_generation);
}

Context detail::exchange_current(const Context& ctx) noexcept {
  detail::ThreadState& t = detail::t_state;
  detail::Section section(t);
  detail::settle_current(t);
  const Context was(TraceId{t.cur_trace_hi, t.cur_trace_lo}, t.cur_span, t.cur_generation);
  t.cur_trace_hi = ctx.trace_.hi;
  t.cur_trace_lo = ctx.trace_.lo;
  t.cur_span = ctx.span_;
  t.cur_generation = ctx.generation_;
  return was;
}

void Span::begin_under_remote(detail::ThreadState& t, std::uint32_t name_id, Kind kind, std::uint32_t kind_name_id,
                              std::uint8_t mode, std::uint8_t record_flags) noexcept {
  if (t.cur_generation == detail::kRemoteUnsampled) return;  // the caller did not sample it
  trace_ = RawTraceId{t.cur_trace_hi, t.cur_trace_lo};
  parent_ = t.cur_span;
  begin_common(t, name_id, kind, kind_name_id, mode, static_cast<std::uint8_t>(record_flags | detail::kTraceRoot),
               detail::now(t), true);
  state_ |= kRootFlag;  // its sibling (next()) and its segments are roots under the remote span too
}

namespace {

// Lowercase hex only, as W3C Trace Context requires.
bool parse_hex(std::string_view s, std::uint64_t& out) noexcept {
  out = 0;
  for (const char c : s) {
    unsigned v;
    if (c >= '0' && c <= '9') {
      v = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return false;
    }
    out = out << 4 | v;
  }
  return true;
}

void put_hex(char* out, std::uint64_t v, int digits) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 15];
}

}  // namespace

Context Context::from_traceparent(std::string_view h) noexcept {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55
  constexpr std::size_t kLength = 55;
  if (h.size() < kLength || h[2] != '-' || h[35] != '-' || h[52] != '-') return {};
  std::uint64_t version = 0, hi = 0, lo = 0, span = 0, flags = 0;
  if (!parse_hex(h.substr(0, 2), version) || version == 0xff) return {};
  // Version 00 is exactly 55 characters; a later version may append "-"-led fields.
  if (version == 0 ? h.size() != kLength : (h.size() > kLength && h[kLength] != '-')) return {};
  if (!parse_hex(h.substr(3, 16), hi) || !parse_hex(h.substr(19, 16), lo) || !parse_hex(h.substr(36, 16), span) ||
      !parse_hex(h.substr(53, 2), flags))
    return {};
  if ((hi | lo) == 0 || span == 0) return {};
  const bool sampled = (flags & 1) != 0;
  return Context(TraceId{hi, lo}, span, sampled ? detail::kRemoteSampled : detail::kRemoteUnsampled);
}

std::string Context::traceparent() const {
  if (!valid()) return {};
  std::string out(55, '-');
  out[0] = out[1] = '0';
  put_hex(&out[3], trace_.hi, 16);
  put_hex(&out[19], trace_.lo, 16);
  put_hex(&out[36], span_, 16);
  out[53] = '0';
  out[54] = generation_ == detail::kRemoteUnsampled ? '0' : '1';
  return out;
}

ContextScope::ContextScope(const Context& ctx) noexcept : owner_(&detail::t_state) {
  detail::Section section(*owner_);
  prev_hi_ = owner_->cur_trace_hi;
  prev_lo_ = owner_->cur_trace_lo;
  prev_span_ = owner_->cur_span;
  prev_generation_ = owner_->cur_generation;
  owner_->cur_trace_hi = ctx.trace_.hi;
  owner_->cur_trace_lo = ctx.trace_.lo;
  owner_->cur_span = ctx.span_;
  owner_->cur_generation = ctx.generation_;
}

ContextScope::~ContextScope() {
  if (&detail::t_state != owner_) return;  // destroyed on another thread: leave both alone
  detail::Section section(*owner_);
  owner_->cur_trace_hi = prev_hi_;
  owner_->cur_trace_lo = prev_lo_;
  owner_->cur_span = prev_span_;
  owner_->cur_generation = prev_generation_;
}

}  // namespace strobe
