#pragma once
// Spans: the recording API. Everything here is noexcept; with no active Recorder every
// call is a cheap no-op.

#if defined(STROBE_DISABLE)
// STROBE_DISABLE: the same API as no-ops (strobe/disabled.hpp); nothing below is seen.
#include "strobe/disabled.hpp"
#else

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "strobe/detail/thread_state.hpp"
#include "strobe/types.hpp"

namespace strobe {

// An interned string: span names, attribute keys, event names. Interning a string once
// (a function-local static, as STROBE_SPAN does) makes every later use an integer copy.
// Thread-safe; interning an already-known string does not allocate.
class Name {
 public:
  explicit Name(std::string_view s) noexcept : id_(detail::intern(s.data(), s.size())) {}
  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
  // The interned text; valid for the life of the process.
  [[nodiscard]] std::string_view str() const noexcept;

 private:
  std::uint32_t id_;
};

namespace detail {
// A call site's name for STROBE_SPAN: name() returns its Name (STROBE_DETAIL_SITE_NAME).
template <class F>
struct CallSite {
  F name;
};
template <class F>
CallSite(F) -> CallSite<F>;

// A call site's name text. kConstant: it is a constant expression (a literal, a constexpr
// string), so the site interns it once, into a function-local static.
template <bool kConstant_>
struct SiteText {
  static constexpr bool kConstant = kConstant_;
  std::string_view text;
};
// Reads every character: constant only when the whole text is.
constexpr std::uint32_t text_probe(std::string_view s) noexcept {
  std::uint32_t h = 0;
  for (const char c : s) h = h * 31 + static_cast<unsigned char>(c);
  return h;
}
}  // namespace detail

// An attribute value: integer, floating point, bool or string. Strings are copied into
// the ring when recorded, so the view need only outlive the call.
//
// Integers keep their value: an unsigned one above INT64_MAX (which no trace format holds
// as an integer) is recorded as its decimal digits, a string attribute. A pointer is
// refused at compile time (it would otherwise become a bool); pass its text or a number.
class Value {
 public:
  // u64: an unsigned value above INT64_MAX (as_uint()), recorded as its decimal digits.
  enum class Type : std::uint8_t { i64, f64, boolean, string, u64 };
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  Value(I v) noexcept : type_(Type::i64), i_(static_cast<std::int64_t>(v)) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (v > static_cast<I>(INT64_MAX)) type_ = Type::u64;
    }
  }
  template <class T>
    requires(!std::same_as<std::remove_cv_t<T>, char>)
  Value(T*) = delete;  // a pointer: say what it means (its text, or a number)
  Value(std::nullptr_t) = delete;
  template <std::floating_point F>
  Value(F v) noexcept : type_(Type::f64), d_(static_cast<double>(v)) {}
  Value(bool v) noexcept : type_(Type::boolean), i_(v ? 1 : 0) {}
  Value(std::string_view v) noexcept : type_(Type::string), s_(v) {}
  Value(const char* v) noexcept : type_(Type::string), s_(v ? v : "") {}
  Value(const std::string& v) noexcept : type_(Type::string), s_(v) {}

  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] std::int64_t as_int() const noexcept { return i_; }
  [[nodiscard]] std::uint64_t as_uint() const noexcept { return static_cast<std::uint64_t>(i_); }
  [[nodiscard]] double as_double() const noexcept { return d_; }
  [[nodiscard]] bool as_bool() const noexcept { return i_ != 0; }
  [[nodiscard]] std::string_view as_string() const noexcept { return s_; }

 private:
  Type type_;
  union {
    std::int64_t i_;
    double d_;
  };
  std::string_view s_;
};

struct Attr {
  std::string_view key;
  Value value;
};

class Context;
namespace detail {
// Makes ctx the calling thread's current context; returns the one it replaces. For
// strobe/coroutine.hpp (CoContext), which moves a coroutine's context with it.
Context exchange_current(const Context& ctx) noexcept;
}  // namespace detail

// Where new spans attach: a trace and the span that becomes their parent. Captured with
// current() and adopted on another thread (or coroutine) with ContextScope, or taken from
// the caller of this process (W3C Trace Context) and handed to the next one.
class Context {
 public:
  Context() = default;
  [[nodiscard]] TraceId trace_id() const noexcept { return trace_; }
  [[nodiscard]] std::uint64_t span_id() const noexcept { return span_; }
  [[nodiscard]] bool valid() const noexcept { return trace_.valid(); }

  // The context of a caller in another process, from its W3C `traceparent` header
  // ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", lowercase; a later version's
  // header is read by the same first four fields). Adopted with ContextScope, it makes
  // the spans begun under it join the caller's trace: the first is a root of this
  // process's part of it (kSpanTraceRoot), whose parent is the caller's span; its trace
  // completes like any other. When the caller did not sample the trace (flags 00), spans
  // begun under it are not recorded, and traceparent() passes the header on unsampled.
  // Invalid (valid() false) when the header is malformed: a wrong length or separator,
  // uppercase or non-hex digits, version ff, an all-zero trace or span id. A
  // `tracestate` header is the caller's to forward unchanged: strobe adds no entry.
  [[nodiscard]] static Context from_traceparent(std::string_view header) noexcept;
  // The `traceparent` header for an outgoing call made under this context: its trace, its
  // span as the callee's parent, sampled unless the context came unsampled. "" when the
  // context is invalid.
  [[nodiscard]] std::string traceparent() const;
  // Taken from a traceparent header (not begun in this process).
  [[nodiscard]] bool remote() const noexcept { return valid() && generation_ >= detail::kRemoteUnsampled; }
  // Spans begun under it are recorded (false only for a remote context its caller did not sample).
  [[nodiscard]] bool sampled() const noexcept { return valid() && generation_ != detail::kRemoteUnsampled; }

 private:
  friend class Span;
  friend class ContextScope;
  friend Context current() noexcept;
  friend Context detail::exchange_current(const Context& ctx) noexcept;
  Context(TraceId t, std::uint64_t s, std::uint32_t g) : trace_(t), span_(s), generation_(g) {}
  TraceId trace_{};
  std::uint64_t span_ = 0;
  std::uint32_t generation_ = 0;  // a context of an earlier recorder is ignored
};

// Attaches the calling thread to the active recorder now — takes its ring and touches
// its pages — so that its first span does not pay for that (a ring of 2 MiB costs about
// a millisecond of page faults). Call it when a worker thread starts. False when no
// recorder is active.
inline bool prepare_thread() noexcept { return detail::attached(); }

// The calling thread's current context (invalid when no span is current).
[[nodiscard]] Context current() noexcept;

// Makes `ctx` the calling thread's current context for the scope's life, then restores
// the previous one. Spans begun inside become children of ctx's span, on this thread's
// ring. Use it on the thread (or coroutine resumption) that does work handed over.
class ContextScope {
 public:
  explicit ContextScope(const Context& ctx) noexcept;
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  detail::ThreadState* owner_;
  std::uint64_t prev_hi_, prev_lo_, prev_span_;
  std::uint32_t prev_generation_;
};

class SuspendToken;
class Span;
[[nodiscard]] Span resume(const SuspendToken& token) noexcept;

// Returned by Span::suspend(); resume(token) opens the next segment of the same logical
// operation, on any thread, any time later. Copyable; a token may be resumed once: a
// second resume() of it or of any copy gives a no-op handle and counts as misuse.
class SuspendToken {
 public:
  SuspendToken() = default;
  [[nodiscard]] bool valid() const noexcept { return span_ != 0; }
  [[nodiscard]] std::uint64_t span_id() const noexcept { return span_; }
  [[nodiscard]] std::uint32_t segment_index() const noexcept { return segment_; }

 private:
  friend class Span;
  friend Span resume(const SuspendToken& token) noexcept;
  TraceId trace_{};
  std::uint64_t span_ = 0, first_ = 0, parent_ = 0;
  std::uint32_t name_ = 0, kind_name_ = 0, generation_ = 0, segment_ = 0;
  std::uint32_t cell_ = 0;  // shared by the token's copies: the first resume() takes it
  std::uint32_t model_ = 0;  // the suspended segment's model(), given to the next one
  Kind kind_ = Kind::span;
  bool remote_root_ = false;  // a root under a remote parent: its segments are too
};

// Designators go in this order: {.mark_as_current = true, .new_trace = true}.
struct StartOptions {
  bool mark_as_current = false;  // make the span the thread's current one until it ends
  bool new_trace = false;        // start a new trace even when a span is current
};

// What record_span() records besides the span's name, kind and times. Every field may be
// left out, and every one has a default, so a partial list draws no -Wextra warning;
// designators go in this order: {.input, .output, .model, .tokens, .status, .error,
// .attrs}, as in {.input = prompt, .model = "gpt-4", .error = "timed out"}. Strings are
// copied when recorded: they need only outlive the call.
struct RecordOptions {
  std::string_view input{};     // as Span::input(), when not empty
  std::string_view output{};    // as Span::output()
  std::string_view model{};     // as Span::model()
  TokenUsage tokens{};          // as Span::tokens(), unless all three are 0
  Status status = Status::ok;   // failed: as Span::fail() without a message
  std::string_view error{};     // not empty: status failed with this message (Span::fail())
  std::initializer_list<Attr> attrs{};
};

namespace detail {
// record_span(): records a completed span from wall-clock ns start to end (end >= start).
Context record_completed(std::string_view name, Kind kind, std::int64_t start_ns,
                         std::int64_t end_ns, const RecordOptions& options) noexcept;
}  // namespace detail

// A move-only handle to a recording span. Ends when finish() is called or, failing that,
// when it is destroyed; an exception escaping the scope marks it failed. A handle made
// with no active recorder (or whose begin was dropped) ignores every call.
class Span {
 public:
  Span() noexcept = default;
  // Begins a span as a child of the current context and makes it current.
  [[gnu::always_inline]] explicit Span(Name name, Kind kind = Kind::span,
                                       std::initializer_list<Attr> attrs = {}) noexcept
      : Span(name.id(), kind, 0, attrs, kCurrentFlag, 0) {}
  Span(Name name, std::string_view custom_kind, std::initializer_list<Attr> attrs = {}) noexcept;
  // STROBE_SPAN's form: the call site's name is looked up only when a recorder is active,
  // so a call site with none costs one load and a branch.
  template <class Site>
  [[gnu::always_inline]] explicit Span(detail::CallSite<Site> site, Kind kind = Kind::span,
                                       std::initializer_list<Attr> attrs = {}) noexcept {
    if (!detail::attached()) [[unlikely]] return;
    begin_attached(site.name().id(), kind, 0, kCurrentFlag, 0);
    if (attrs.size() != 0 && recording()) this->attrs(attrs);
  }
  template <class Site>
  Span(detail::CallSite<Site> site, std::string_view custom_kind,
       std::initializer_list<Attr> attrs = {}) noexcept
      : Span(site.name(), custom_kind, attrs) {}

  Span(Span&& o) noexcept { take(o); }
  Span& operator=(Span&& o) noexcept {
    if (this != &o) {
      end_if_live();
      take(o);
    }
    return *this;
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  [[gnu::always_inline]] ~Span() { end_if_live(); }

  // Any thread. Ends the span (status ok unless failed); a second call is a counted no-op.
  // On another thread than the one that began it, the end is recorded there and neither
  // thread's current context changes.
  void finish() noexcept {
    if (!live()) [[unlikely]] {
      misuse_if_ended();
      return;
    }
    end_now();
  }

  // Owner thread, any time before the end. Each call writes one record (a string longer
  // than 32 bytes continues in more). A number or bool under an interned key is written
  // inline: no call, no clock read.
  template <class T>
    requires(std::integral<T> || std::floating_point<T>)
  [[gnu::always_inline]] Span& attr(Name key, T v) noexcept {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<T>(INT64_MAX)) [[unlikely]] return attr_id(key.id(), Value(v));  // as digits
    }
    detail::ThreadState& t = detail::t_state;
    detail::Section section(t);
    if (detail::Record* r = own_slots(t, 1)) [[likely]] {
      write_attr(*r, key.id(), Value(v), 0);
      t.ring->commit(1);
      return *this;
    }
    return attr_id(key.id(), Value(v));  // no-op handle, misuse, another thread, full ring
  }
  // A string of up to 32 bytes under an interned key: one record, written inline.
  template <class S>
    requires(std::is_convertible_v<const S&, std::string_view> && !std::is_same_v<S, Value>)
  [[gnu::always_inline]] Span& attr(Name key, const S& v) noexcept {
    const std::string_view text(v);
    detail::ThreadState& t = detail::t_state;
    if (text.size() <= detail::kInlineString && text.size() <= t.max_string) {
      detail::Section section(t);
      if (detail::Record* r = own_slots(t, 1)) [[likely]] {
        detail::write_string_header(*r, id_, detail::StrKind::attr_value, key.id(), 0, 0, text.data(),
                                    static_cast<std::uint32_t>(text.size()), text.size());
        t.ring->commit(1);
        return *this;
      }
    }
    return attr_id(key.id(), Value(text));  // longer, no-op handle, misuse, full ring
  }
  Span& attr(Name key, Value v) noexcept;
  Span& attr(std::string_view key, Value v) noexcept { return attr_id(intern(key), v); }
  Span& attrs(std::initializer_list<Attr> list) noexcept;
  // An event at this instant; later attributes given here attach to it.
  Span& event(Name name, std::initializer_list<Attr> list = {}) noexcept;
  Span& event(std::string_view name, std::initializer_list<Attr> list = {}) noexcept;
  Span& log(std::string_view text) noexcept;  // an event named "log" with the text
  Span& input(std::string_view text) noexcept;
  Span& output(std::string_view text) noexcept;
  Span& model(std::string_view id) noexcept;
  Span& tokens(TokenUsage usage) noexcept;
  // Links this span to another one — of this trace or any other, in this process or, by
  // a Context::from_traceparent(), another — that caused it without being its parent (the
  // requests a batch serves, the message a consumer handles). One record per link; an
  // invalid context is ignored. Exported as OTLP span links and Chrome flow arrows.
  Span& link(const Context& to) noexcept;
  Span& tag(std::string_view tag) noexcept;
  Span& fail(std::string_view message) noexcept;  // status failed with a message
  // Status failed, with the exception's what() as the message and its type and message as
  // the attributes exception.type / exception.message (OpenTelemetry). For a catch block:
  // an exception that merely escapes a scope cannot be inspected on its way out. The
  // exception_ptr form takes std::current_exception() inside catch (...).
  Span& record_exception(const std::exception& e) noexcept;
  Span& record_exception(const std::exception_ptr& e) noexcept;
  // GenAI (OpenTelemetry semantic conventions), as attributes under their standard keys:
  // gen_ai.provider.name, gen_ai.response.model, gen_ai.response.finish_reasons (a JSON
  // array), gen_ai.request.*, gen_ai.tool.call.id, gen_ai.conversation.id, and the token
  // counts tokens() does not hold (gen_ai.usage.reasoning.output_tokens,
  // gen_ai.usage.cache_creation.input_tokens).
  Span& provider(std::string_view name) noexcept;
  Span& response_model(std::string_view id) noexcept;
  Span& finish_reasons(std::initializer_list<std::string_view> reasons) noexcept;
  Span& request(const GenAiRequest& params) noexcept;
  Span& tool_call_id(std::string_view id) noexcept;
  Span& conversation_id(std::string_view id) noexcept;
  Span& more_tokens(std::int64_t reasoning_output, std::int64_t cache_creation_input) noexcept;
  Span& error(std::string_view message, std::string_view data) noexcept;

  // Owner thread. Ends this span and begins its next sibling with ONE clock read, keeping
  // the kind: a chain of k adjacent stages costs k+1 timestamps instead of 2k.
  [[gnu::always_inline]] Span& next(Name name) noexcept { return next(name, kind_); }
  [[gnu::always_inline]] Span& next(Name name, Kind kind) noexcept {
    detail::ThreadState& t = detail::t_state;
    {
      detail::Section section(t);
      detail::Record* r = own_slots(t, 1);  // first: the fields below are set only when live
      if (r != nullptr && !(state_ & (kFailedFlag | kLostFlag | kSegmentFlag | kRootFlag)) && parent_ != 0 &&
          detail::uncaught_exceptions(t) == uncaught_) [[likely]] {
        // One clock read and one record end this span (status ok) and begin the next.
        const std::uint64_t ts = detail::now(t);
        const std::uint64_t old = id_;
        id_ = t.id_base | ++t.next_local;
        name_ = name.id();
        start_ts_ = ts;
        if (kind != kind_) kind_name_ = 0;  // a custom kind's name carries over to the sibling
        kind_ = kind;
        write_begin(*r, ts, 0, detail::RecType::next);
        r->payload.begin.ended_span = old;
        t.ring->commit(1);
        if ((state_ & kCurrentFlag) && t.cur_span == old) t.cur_span = id_;
        return *this;
      }
    }
    return next_slow(name, kind);  // a root, failed, lost records, full ring, another thread
  }

  // Ends this segment (the operation now waits); resume(token) opens the next one.
  [[nodiscard]] SuspendToken suspend() noexcept;

  [[nodiscard]] bool recording() const noexcept { return live() && !(state_ & kDroppedFlag); }
  // 0 (and an empty context) for a no-op handle.
  [[nodiscard]] std::uint64_t span_id() const noexcept { return owner_ ? id_ : 0; }
  [[nodiscard]] std::uint64_t parent_id() const noexcept { return owner_ ? parent_ : 0; }
  [[nodiscard]] TraceId trace_id() const noexcept { return owner_ ? trace() : TraceId{}; }
  [[nodiscard]] Context context() const noexcept {
    return owner_ ? Context(trace(), id_, generation_) : Context();
  }
  // When the span began and ended, in wall-clock time: the clock and conversion that give
  // SpanData::start_ns / end_ns once it is assembled. ended_at() is the epoch
  // (time_point{}) while the span is open; both are the epoch for a no-op handle. After next(), the
  // times are the sibling's. Any thread; no record is written.
  [[nodiscard]] std::chrono::system_clock::time_point started_at() const noexcept;
  [[nodiscard]] std::chrono::system_clock::time_point ended_at() const noexcept;

 private:
  friend Span start_span(Name, Kind, StartOptions, std::initializer_list<Attr>) noexcept;
  friend Span trace(std::string_view, std::initializer_list<Attr>) noexcept;
  friend Span resume(const SuspendToken&) noexcept;
  friend Context detail::record_completed(std::string_view, Kind, std::int64_t, std::int64_t,
                                          const RecordOptions&) noexcept;

  static constexpr std::uint8_t kEndedFlag = 1, kDroppedFlag = 2, kFailedFlag = 4,
                                kCurrentFlag = 8, kRootFlag = 16, kLostFlag = 32;
  // state_ only: prev_* hold the context to restore (else it is trace_, parent_,
  // generation_: a child restores its parent); seg_first_/seg_index_ are set (a resumed
  // segment). Fields a span does not need are never written.
  static constexpr std::uint8_t kOwnPrevFlag = 64, kSegmentFlag = 128;

  [[gnu::always_inline]] Span(std::uint32_t name_id, Kind kind, std::uint32_t kind_name_id,
                              std::initializer_list<Attr> attrs, std::uint8_t mode,
                              std::uint8_t record_flags) noexcept {
    begin(name_id, kind, kind_name_id, mode, record_flags);
    if (attrs.size() != 0 && recording()) this->attrs(attrs);
  }

  static std::uint32_t intern(std::string_view s) noexcept {
    return detail::intern(s.data(), s.size());
  }

  [[nodiscard]] bool live() const noexcept { return owner_ != nullptr && !(state_ & kEndedFlag); }
  [[nodiscard]] TraceId trace() const noexcept { return TraceId{trace_.hi, trace_.lo}; }

  // Begins under the calling thread's current context (a new trace when there is none or
  // mode has kRootFlag).
  [[gnu::always_inline]] void begin(std::uint32_t name_id, Kind kind, std::uint32_t kind_name_id,
                                    std::uint8_t mode, std::uint8_t record_flags) noexcept {
    if (!detail::attached()) [[unlikely]] return;
    begin_attached(name_id, kind, kind_name_id, mode, record_flags);
  }

  // begin() once the calling thread is attached to the active recorder.
  [[gnu::always_inline]] void begin_attached(std::uint32_t name_id, Kind kind,
                                             std::uint32_t kind_name_id, std::uint8_t mode,
                                             std::uint8_t record_flags) noexcept {
    detail::ThreadState& t = detail::t_state;
    if (detail::reentrant_begin(t)) [[unlikely]] return;  // a signal handler interrupting this thread
    detail::Section section(t);
    detail::settle_current(t);
    const bool root = (mode & kRootFlag) || (t.cur_trace_hi | t.cur_trace_lo) == 0 ||
                      t.cur_generation != t.generation;  // none, or left over from an earlier recorder
    if (root) {
      if (t.cur_generation >= detail::kRemoteUnsampled && !(mode & kRootFlag) &&
          (t.cur_trace_hi | t.cur_trace_lo) != 0) [[unlikely]] {
        begin_under_remote(t, name_id, kind, kind_name_id, mode, record_flags);
        return;
      }
      detail::new_trace_id(t, trace_.hi, trace_.lo);
      parent_ = 0;
      record_flags |= detail::kTraceRoot;
    } else {  // a child of the current context: ending it restores (trace_, parent_)
      trace_ = RawTraceId{t.cur_trace_hi, t.cur_trace_lo};
      parent_ = t.cur_span;
    }
    begin_common(t, name_id, kind, kind_name_id, mode, record_flags, detail::now(t), root);
  }

  // begin_attached() under a context from a traceparent header: a root of this process's
  // part of the caller's trace, a child of the caller's span; nothing when unsampled.
  void begin_under_remote(detail::ThreadState& t, std::uint32_t name_id, Kind kind, std::uint32_t kind_name_id,
                          std::uint8_t mode, std::uint8_t record_flags) noexcept;

  // trace_ and parent_ are set; writes the begin record stamped ts. save_prev: the
  // calling thread's current context is not (trace_, parent_), so keep it to restore.
  [[gnu::always_inline]] void begin_common(detail::ThreadState& t, std::uint32_t name_id,
                                           Kind kind, std::uint32_t kind_name_id,
                                           std::uint8_t mode, std::uint8_t record_flags,
                                           std::uint64_t ts, bool save_prev,
                                           const detail::LinkPayload* link = nullptr) noexcept {
    // Callers hold a detail::Section and checked t.busy before taking it. A resumed
    // segment's link record goes in the same commit as its begin: a begin without its
    // link would leave the trace waiting for the resume forever.
    owner_ = &t;
    generation_ = t.generation;
    name_ = name_id;
    kind_ = kind;
    kind_name_ = kind_name_id;
    id_ = t.id_base | ++t.next_local;
    uncaught_ = detail::uncaught_exceptions(t);
    model_ = 0;
    std::uint8_t prev_flag = 0;
    if (save_prev) {
      prev_hi_ = t.cur_trace_hi;
      prev_lo_ = t.cur_trace_lo;
      prev_span_ = t.cur_span;
      prev_generation_ = t.cur_generation;
      prev_flag = kOwnPrevFlag;
    }
    const std::uint32_t records = link != nullptr ? 2 : 1;
    if (!detail::claim(t, records, false, false)) [[unlikely]] {
      begin_dropped(t, mode, prev_flag, record_flags, ts);
      return;
    }
    start_ts_ = ts;
    write_begin(t.ring->slot(0), ts, record_flags);
    if (link != nullptr) write_link(t.ring->slot(1), *link);
    t.ring->commit(records);
    if (mode & kCurrentFlag) {
      state_ = kCurrentFlag | prev_flag;
      t.cur_trace_hi = trace_.hi;
      t.cur_trace_lo = trace_.lo;
      t.cur_span = id_;
      t.cur_generation = generation_;
    }
  }

  // type: begin, or next (the caller then sets payload.begin.ended_span).
  [[gnu::always_inline]] void write_begin(detail::Record& r, std::uint64_t ts, std::uint8_t record_flags,
                                          detail::RecType type = detail::RecType::begin) const noexcept {
    r.type = type;
    r.flags = record_flags;
    r.aux = static_cast<std::uint16_t>(kind_);
    r.key = name_;
    r.span_id = id_;
    r.ts = ts;
    r.payload.begin.trace_hi = trace_.hi;
    r.payload.begin.trace_lo = trace_.lo;
    r.payload.begin.parent_id = parent_;
    r.payload.begin.kind_name_id = kind_name_;
    r.payload.begin.generation = generation_;
  }

  void write_link(detail::Record& r, const detail::LinkPayload& link) const noexcept;
  // event() when the event and its attributes would not fit one commit.
  Span& event_in_parts(detail::ThreadState& t, std::uint32_t name, std::uint64_t ts,
                       std::initializer_list<Attr> list) noexcept;
  // A record of `type` for this span in the calling thread's ring, header set (ts 0), not
  // committed; nullptr (and kLostFlag) when the ring is full. In a detail::Section.
  detail::Record* own_record(detail::ThreadState& t, detail::RecType type) noexcept;
  // One attribute of the latest event, in a commit of its own.
  void event_attr(detail::ThreadState& t, const Attr& a) noexcept;

  // uncaught_now: the ending thread's count of exceptions in flight.
  [[gnu::always_inline]] void write_end(detail::Record& r, std::uint64_t ts, std::uint8_t record_flags,
                                        int uncaught_now) const noexcept {
    r.type = detail::RecType::end;
    const bool thrown = uncaught_now > uncaught_;
    r.flags = static_cast<std::uint8_t>(record_flags | (thrown ? detail::kThrown : 0) |
                                        ((state_ & kLostFlag) ? detail::kLostRecords : 0));
    r.aux = static_cast<std::uint16_t>(((state_ & kFailedFlag) || thrown) ? Status::failed
                                                                         : Status::ok);
    r.key = 0;
    r.span_id = id_;
    r.ts = ts;
  }

  [[gnu::always_inline]] void end_now(std::uint8_t record_flags = 0) noexcept {
    detail::ThreadState& t = detail::t_state;
    if (&t != owner_ || t.generation != generation_ || (state_ & kDroppedFlag)) [[unlikely]] {
      end_slow(record_flags);
      return;
    }
    state_ |= kEndedFlag;
    detail::Section section(t);
    const std::uint64_t ts = detail::now(t);
    end_ts_ = ts;
    if (detail::claim(t, 1, true, false)) [[likely]] {
      write_end(t.ring->slot(0), ts, record_flags, detail::uncaught_exceptions(t));
      t.ring->commit(1);
    }
    restore_current(t);
  }

  [[gnu::always_inline]] void restore_current(detail::ThreadState& t) noexcept {
    if ((state_ & kCurrentFlag) && t.cur_span == id_) {
      if (state_ & kOwnPrevFlag) {
        t.cur_trace_hi = prev_hi_;
        t.cur_trace_lo = prev_lo_;
        t.cur_span = prev_span_;
        t.cur_generation = prev_generation_;
      } else {
        t.cur_trace_hi = trace_.hi;
        t.cur_trace_lo = trace_.lo;
        t.cur_span = parent_;
        t.cur_generation = generation_;
      }
    }
  }

  // The first of n free slots when this span is live and records on its own thread under
  // the thread's recorder; null otherwise (the caller takes its general path).
  [[gnu::always_inline]] detail::Record* own_slots(detail::ThreadState& t, std::uint32_t n) noexcept {
    if (&t == owner_ && !(state_ & (kEndedFlag | kDroppedFlag)) && t.generation == generation_ &&
        t.ring->reserve(n + t.headroom)) [[likely]]
      return &t.ring->slot(0);
    return nullptr;
  }

  // A number or bool attribute record of this span (v is not a string).
  [[gnu::always_inline]] void write_attr(detail::Record& r, std::uint32_t key, const Value& v,
                                         std::uint8_t flags) const noexcept {
    r.flags = flags;
    r.aux = 0;
    r.key = key;
    r.span_id = id_;
    r.ts = 0;
    switch (v.type()) {
      case Value::Type::i64:
        r.type = detail::RecType::attr_int;
        r.payload.i64 = v.as_int();
        break;
      case Value::Type::f64:
        r.type = detail::RecType::attr_double;
        r.payload.f64 = v.as_double();
        break;
      default:
        r.type = detail::RecType::attr_bool;
        r.payload.i64 = v.as_bool() ? 1 : 0;
        break;
    }
  }

  [[gnu::always_inline]] void end_if_live() noexcept {
    if (live()) end_now();
  }
  void end_slow(std::uint8_t record_flags) noexcept;
  // The begin found the ring full: the span keeps its identity (current context, id) so
  // that its children name it as their parent, and its begin is written when it ends.
  void begin_dropped(detail::ThreadState& t, std::uint8_t mode, std::uint8_t prev_flag,
                     std::uint8_t record_flags, std::uint64_t ts) noexcept;
  void misuse_if_ended() const noexcept;
  Span& attr_id(std::uint32_t key, Value v) noexcept;
  Span& next_slow(Name name, Kind kind) noexcept;
  Span& event_id(std::uint32_t name, std::initializer_list<Attr> list) noexcept;
  Span& string(detail::StrKind kind, std::string_view text, std::uint32_t key = 0) noexcept;
  // Owner-thread check shared by the attribute-like calls; counts drops and misuse.
  bool writable(std::uint32_t records) noexcept;

  void take(Span& o) noexcept {
    owner_ = o.owner_;
    state_ = o.state_;
    if (owner_ == nullptr) return;  // a no-op handle: its other fields were never set
    id_ = o.id_;
    parent_ = o.parent_;
    trace_ = o.trace_;
    if (state_ & kOwnPrevFlag) {
      prev_hi_ = o.prev_hi_;
      prev_lo_ = o.prev_lo_;
      prev_span_ = o.prev_span_;
      prev_generation_ = o.prev_generation_;
    }
    generation_ = o.generation_;
    name_ = o.name_;
    kind_name_ = o.kind_name_;
    if (state_ & kSegmentFlag) {
      seg_first_ = o.seg_first_;
      seg_index_ = o.seg_index_;
    }
    uncaught_ = o.uncaught_;
    kind_ = o.kind_;
    start_ts_ = o.start_ts_;
    if (state_ & kEndedFlag) end_ts_ = o.end_ts_;
    if (state_ & kDroppedFlag) lost_flags_ = o.lost_flags_;
    o.owner_ = nullptr;
    o.state_ = 0;
  }


  // Only owner_ and state_ are initialised up front: a no-op handle (no recorder) must cost
  // no more than those two stores, and every other field is read only when owner_ is set.
  detail::ThreadState* owner_ = nullptr;  // the thread that began it; null: no-op handle
  std::uint8_t state_ = 0;
  std::uint64_t id_;
  std::uint64_t parent_;
  // Not a TraceId, whose zero-initialising members would cost a no-op handle two stores.
  struct RawTraceId {
    std::uint64_t hi, lo;
  } trace_;
  std::uint64_t prev_hi_, prev_lo_, prev_span_;  // context to restore (kOwnPrevFlag)
  std::uint32_t prev_generation_;
  std::uint32_t generation_;
  std::uint32_t name_;
  std::uint32_t kind_name_;
  std::uint64_t seg_first_;  // kSegmentFlag: the operation's first segment
  std::uint32_t seg_index_;  // kSegmentFlag: this segment's index (else 0)
  int uncaught_;
  Kind kind_;
  std::uint8_t lost_flags_;   // kDroppedFlag: the begin record's flags
  std::uint32_t model_;       // interned model() id (0: none): resume() carries it on
  std::uint64_t start_ts_;    // when it began (clock ticks; record_span's: wall-clock ns)
  std::uint64_t end_ts_;      // kEndedFlag: when it ended (clock ticks)
};

// ---- free functions (the README's API table) ----

// A span under the current context (a new trace when there is none), made current.
[[nodiscard]] inline Span span(std::string_view name, Kind kind = Kind::span,
                               std::initializer_list<Attr> attrs = {}) noexcept {
  return Span(Name(name), kind, attrs);
}
[[nodiscard]] inline Span span(Name name, Kind kind = Kind::span,
                               std::initializer_list<Attr> attrs = {}) noexcept {
  return Span(name, kind, attrs);
}
// A span with a kind given by name; an unknown name is a Kind::custom span carrying it.
[[nodiscard]] inline Span span(std::string_view name, std::string_view kind,
                               std::initializer_list<Attr> attrs = {}) noexcept {
  return Span(Name(name), kind, attrs);
}

// The root of a new trace for an agent run (Kind::agent), made current.
[[nodiscard]] Span trace(std::string_view agent_name, std::initializer_list<Attr> attrs = {}) noexcept;

// Explicit start: not current unless options.mark_as_current; end it with finish().
[[nodiscard]] Span start_span(Name name, Kind kind = Kind::span, StartOptions options = {},
                              std::initializer_list<Attr> attrs = {}) noexcept;
[[nodiscard]] inline Span start_span(std::string_view name, Kind kind = Kind::span,
                                     StartOptions options = {},
                                     std::initializer_list<Attr> attrs = {}) noexcept {
  return start_span(Name(name), kind, options, attrs);
}

// Opens the next segment of a suspended operation, made current on the calling thread.
// An invalid or already-resumed token (or copy) gives a no-op handle; the second resume
// counts in Stats::misuse.
[[nodiscard]] Span resume(const SuspendToken& token) noexcept;

// A completed span recorded after the fact, in one call: a child of the current context
// (the root of a new trace when there is none), never made current, flagged kSpanOneShot.
// Returns its context: ContextScope(ctx) puts spans begun meanwhile under it, and
// ctx.span_id() names it; invalid when no recorder is active. Its children join it while
// its trace is open (its parent has not ended); a one-shot root's trace closes at once, so
// children recorded later arrive in a later part of the trace. A negative duration, or
// an end before the start, records a span of length 0.
//
// It took `duration` and ended now, on the clock the recorder stamps spans with:
//   strobe::record_span("lookup", strobe::Kind::tool, 45ms, {.input = key, .output = row});
Context record_span(std::string_view name, Kind kind, std::chrono::nanoseconds duration,
                    RecordOptions options = {}) noexcept;
// It ran from start to end (wall clock).
Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::system_clock::time_point end, RecordOptions options = {}) noexcept;
// It began at start (wall clock) and took duration.
Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::nanoseconds duration, RecordOptions options = {}) noexcept;
// The same with a status and attributes (as {.status = status, .attrs = attrs}).
Context record_span(std::string_view name, Kind kind, std::chrono::system_clock::time_point start,
                    std::chrono::nanoseconds duration, Status status,
                    std::initializer_list<Attr> attrs = {}) noexcept;

}  // namespace strobe

// ---- macros: call-site interning ----

// The Name of a call site's text: interned once (a function-local static, on the first
// call) when the text is a constant, at every call when it is known only at run time.
#define STROBE_DETAIL_SITE_NAME(site_text)                                \
  [strobe_text_ = ::strobe::detail::SiteText<__builtin_constant_p(        \
       ::strobe::detail::text_probe(site_text))>{(site_text)}]() noexcept \
      -> ::strobe::Name {                                                 \
    if constexpr (decltype(strobe_text_)::kConstant) {                    \
      static const ::strobe::Name strobe_name_{strobe_text_.text};        \
      return strobe_name_;                                                \
    } else {                                                              \
      return ::strobe::Name{strobe_text_.text};                           \
    }                                                                     \
  }
// An interned Name: once per call site for a constant text, at each call otherwise.
#define STROBE_NAME(text) (STROBE_DETAIL_SITE_NAME(text)())
// STROBE_SPAN(var, name [, kind [, {attrs}]]): a current span named at this call site.
// A constant name (a literal, a constexpr string) is interned once, on the first call
// made while a recorder is active; a name known only at run time (a std::string, a
// string_view, a const char*) is interned at each call made while one is active, as
// strobe::span(name) does.
#define STROBE_SPAN(var, name, ...)                                                      \
  ::strobe::Span var {                                                                   \
    ::strobe::detail::CallSite{STROBE_DETAIL_SITE_NAME(name)} __VA_OPT__(, ) __VA_ARGS__ \
  }
// STROBE_NEXT(var, name): var.next() with a call-site-interned name.
#define STROBE_NEXT(var, name) (var).next(STROBE_NAME(name))

#endif  // STROBE_DISABLE
