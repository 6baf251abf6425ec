// The public API of span.hpp and recorder.hpp, declaration by declaration, built twice:
//   core.disabled_build  STROBE_DISABLE, linked against no strobe library at all: if any
//                        call, static or type left something of strobe_core behind, this
//                        program would not link;
//   core.enabled_build   the same source against the real API and strobe_core.
// Each static_assert names one declaration with its exact type, so both build only while
// disabled.hpp mirrors the real headers; the calls below use every form once. With no
// Recorder active both programs behave alike (every call a no-op) and print the same.
#include <strobe/coroutine.hpp>
#include <strobe/strobe.hpp>

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace {

using strobe::Attr;
using strobe::Config;
using strobe::Context;
using strobe::ContextScope;
using strobe::Kind;
using strobe::Name;
using strobe::Recorder;
using strobe::RecordOptions;
using strobe::Span;
using strobe::StartOptions;
using strobe::Stats;
using strobe::Status;
using strobe::SuspendToken;
using strobe::TokenUsage;
using strobe::TraceId;
using strobe::Value;
using Attrs = std::initializer_list<Attr>;
using SystemTime = std::chrono::system_clock::time_point;

// True, and a compile error unless `declaration` has exactly the type T.
template <class T>
constexpr bool has(T declaration) {
  return declaration != nullptr;
}

// Name
static_assert(std::is_nothrow_constructible_v<Name, std::string_view>);
static_assert(!std::is_convertible_v<std::string_view, Name>);
static_assert(has<std::uint32_t (Name::*)() const noexcept>(&Name::id));
static_assert(has<std::string_view (Name::*)() const noexcept>(&Name::str));

// Value, Attr
static_assert(std::is_same_v<std::underlying_type_t<Value::Type>, std::uint8_t>);
static_assert(Value::Type::i64 != Value::Type::f64 && Value::Type::boolean != Value::Type::string);
static_assert(std::is_nothrow_convertible_v<int, Value> && std::is_nothrow_convertible_v<std::uint8_t, Value>);
static_assert(std::is_nothrow_convertible_v<double, Value> && std::is_nothrow_convertible_v<float, Value>);
static_assert(std::is_nothrow_convertible_v<bool, Value> && std::is_nothrow_convertible_v<const char*, Value>);
static_assert(std::is_nothrow_convertible_v<std::string_view, Value>);
static_assert(std::is_nothrow_convertible_v<const std::string&, Value>);
static_assert(std::is_nothrow_convertible_v<std::uint64_t, Value> && Value::Type::u64 != Value::Type::i64);
static_assert(!std::is_convertible_v<int*, Value> && !std::is_convertible_v<const void*, Value>);
static_assert(!std::is_convertible_v<std::nullptr_t, Value> && std::is_convertible_v<char*, Value>);
static_assert(has<Value::Type (Value::*)() const noexcept>(&Value::type));
static_assert(has<std::uint64_t (Value::*)() const noexcept>(&Value::as_uint));
static_assert(has<std::int64_t (Value::*)() const noexcept>(&Value::as_int));
static_assert(has<double (Value::*)() const noexcept>(&Value::as_double));
static_assert(has<bool (Value::*)() const noexcept>(&Value::as_bool));
static_assert(has<std::string_view (Value::*)() const noexcept>(&Value::as_string));
static_assert(has<std::string_view Attr::*>(&Attr::key) && has<Value Attr::*>(&Attr::value));

// Context, current(), ContextScope, prepare_thread()
static_assert(std::is_nothrow_default_constructible_v<Context> && std::is_copy_constructible_v<Context>);
static_assert(has<TraceId (Context::*)() const noexcept>(&Context::trace_id));
static_assert(has<std::uint64_t (Context::*)() const noexcept>(&Context::span_id));
static_assert(has<bool (Context::*)() const noexcept>(&Context::valid));
static_assert(has<Context (*)(std::string_view) noexcept>(&Context::from_traceparent));
static_assert(has<std::string (Context::*)() const>(&Context::traceparent));
static_assert(has<bool (Context::*)() const noexcept>(&Context::remote));
static_assert(has<bool (Context::*)() const noexcept>(&Context::sampled));
static_assert(has<bool (*)() noexcept>(&strobe::prepare_thread));
static_assert(has<Context (*)() noexcept>(&strobe::current));
static_assert(std::is_nothrow_constructible_v<ContextScope, const Context&>);
static_assert(!std::is_convertible_v<const Context&, ContextScope>);
static_assert(!std::is_copy_constructible_v<ContextScope> && !std::is_copy_assignable_v<ContextScope>);

// SuspendToken, resume()
static_assert(std::is_nothrow_default_constructible_v<SuspendToken> && std::is_copy_constructible_v<SuspendToken>);
static_assert(has<bool (SuspendToken::*)() const noexcept>(&SuspendToken::valid));
static_assert(has<std::uint64_t (SuspendToken::*)() const noexcept>(&SuspendToken::span_id));
static_assert(has<std::uint32_t (SuspendToken::*)() const noexcept>(&SuspendToken::segment_index));
static_assert(has<Span (*)(const SuspendToken&) noexcept>(&strobe::resume));

// StartOptions, RecordOptions
static_assert(has<bool StartOptions::*>(&StartOptions::mark_as_current));
static_assert(has<bool StartOptions::*>(&StartOptions::new_trace));
static_assert(has<std::string_view RecordOptions::*>(&RecordOptions::input));
static_assert(has<std::string_view RecordOptions::*>(&RecordOptions::output));
static_assert(has<std::string_view RecordOptions::*>(&RecordOptions::model));
static_assert(has<TokenUsage RecordOptions::*>(&RecordOptions::tokens));
static_assert(has<Status RecordOptions::*>(&RecordOptions::status));
static_assert(has<std::string_view RecordOptions::*>(&RecordOptions::error));
static_assert(has<Attrs RecordOptions::*>(&RecordOptions::attrs));

// Span: construction
static_assert(std::is_nothrow_default_constructible_v<Span>);
static_assert(std::is_nothrow_constructible_v<Span, Name> && !std::is_convertible_v<Name, Span>);
static_assert(std::is_nothrow_constructible_v<Span, Name, Kind>);
static_assert(std::is_nothrow_constructible_v<Span, Name, Kind, Attrs>);
static_assert(std::is_nothrow_constructible_v<Span, Name, std::string_view>);
static_assert(std::is_nothrow_constructible_v<Span, Name, std::string_view, Attrs>);
static_assert(std::is_nothrow_move_constructible_v<Span> && std::is_nothrow_move_assignable_v<Span>);
static_assert(!std::is_copy_constructible_v<Span> && !std::is_copy_assignable_v<Span>);

// Span: members
static_assert(has<void (Span::*)() noexcept>(&Span::finish));
static_assert(has<Span& (Span::*)(Name, int) noexcept>(&Span::attr<int>));
static_assert(has<Span& (Span::*)(Name, std::uint8_t) noexcept>(&Span::attr<std::uint8_t>));
static_assert(has<Span& (Span::*)(Name, double) noexcept>(&Span::attr<double>));
static_assert(has<Span& (Span::*)(Name, const std::string&) noexcept>(&Span::attr<std::string>));
static_assert(has<Span& (Span::*)(Name, const std::string_view&) noexcept>(&Span::attr<std::string_view>));
static_assert(has<Span& (Span::*)(Name, Value) noexcept>(&Span::attr));
static_assert(has<Span& (Span::*)(std::string_view, Value) noexcept>(&Span::attr));
static_assert(has<Span& (Span::*)(Attrs) noexcept>(&Span::attrs));
static_assert(has<Span& (Span::*)(Name, Attrs) noexcept>(&Span::event));
static_assert(has<Span& (Span::*)(std::string_view, Attrs) noexcept>(&Span::event));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::log));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::input));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::output));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::model));
static_assert(has<Span& (Span::*)(TokenUsage) noexcept>(&Span::tokens));
static_assert(has<Span& (Span::*)(const Context&) noexcept>(&Span::link));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::tag));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::fail));
static_assert(has<Span& (Span::*)(const std::exception&) noexcept>(&Span::record_exception));
static_assert(has<Span& (Span::*)(const std::exception_ptr&) noexcept>(&Span::record_exception));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::provider));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::response_model));
static_assert(has<Span& (Span::*)(std::initializer_list<std::string_view>) noexcept>(&Span::finish_reasons));
static_assert(has<Span& (Span::*)(const strobe::GenAiRequest&) noexcept>(&Span::request));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::tool_call_id));
static_assert(has<Span& (Span::*)(std::string_view) noexcept>(&Span::conversation_id));
static_assert(has<Span& (Span::*)(std::int64_t, std::int64_t) noexcept>(&Span::more_tokens));
static_assert(std::is_same_v<decltype(strobe::to_hex(std::uint64_t{1})), std::string>);
static_assert(has<Span& (Span::*)(std::string_view, std::string_view) noexcept>(&Span::error));
static_assert(has<Span& (Span::*)(Name) noexcept>(&Span::next));
static_assert(has<Span& (Span::*)(Name, Kind) noexcept>(&Span::next));
static_assert(has<SuspendToken (Span::*)() noexcept>(&Span::suspend));
static_assert(has<bool (Span::*)() const noexcept>(&Span::recording));
static_assert(has<std::uint64_t (Span::*)() const noexcept>(&Span::span_id));
static_assert(has<std::uint64_t (Span::*)() const noexcept>(&Span::parent_id));
static_assert(has<TraceId (Span::*)() const noexcept>(&Span::trace_id));
static_assert(has<Context (Span::*)() const noexcept>(&Span::context));
static_assert(has<SystemTime (Span::*)() const noexcept>(&Span::started_at));
static_assert(has<SystemTime (Span::*)() const noexcept>(&Span::ended_at));

// Free functions
static_assert(has<Span (*)(std::string_view, Kind, Attrs) noexcept>(&strobe::span));
static_assert(has<Span (*)(Name, Kind, Attrs) noexcept>(&strobe::span));
static_assert(has<Span (*)(std::string_view, std::string_view, Attrs) noexcept>(&strobe::span));
static_assert(has<Span (*)(std::string_view, Attrs) noexcept>(&strobe::trace));
static_assert(has<Span (*)(Name, Kind, StartOptions, Attrs) noexcept>(&strobe::start_span));
static_assert(has<Span (*)(std::string_view, Kind, StartOptions, Attrs) noexcept>(&strobe::start_span));
static_assert(has<Context (*)(std::string_view, Kind, std::chrono::nanoseconds, RecordOptions) noexcept>(
    &strobe::record_span));
static_assert(has<Context (*)(std::string_view, Kind, SystemTime, SystemTime, RecordOptions) noexcept>(
    &strobe::record_span));
static_assert(has<Context (*)(std::string_view, Kind, SystemTime, std::chrono::nanoseconds, RecordOptions) noexcept>(
    &strobe::record_span));
static_assert(has<Context (*)(std::string_view, Kind, SystemTime, std::chrono::nanoseconds, Status, Attrs) noexcept>(
    &strobe::record_span));

// Recorder
static_assert(std::is_default_constructible_v<Recorder> && std::is_constructible_v<Recorder, Config>);
static_assert(!std::is_convertible_v<Config, Recorder>);
static_assert(!std::is_copy_constructible_v<Recorder> && !std::is_copy_assignable_v<Recorder>);
static_assert(has<void (Recorder::*)()>(&Recorder::flush));
static_assert(has<Stats (Recorder::*)() const>(&Recorder::stats));
static_assert(has<const Config& (Recorder::*)() const noexcept>(&Recorder::config));
static_assert(has<bool (*)() noexcept>(&Recorder::active));
static_assert(has<void (*)(std::string_view) noexcept>(&strobe::set_thread_name));
// The recovery mode is a Config field in both builds (a disabled Recorder creates nothing).
static_assert(std::is_same_v<decltype(Config::recovery_dir), std::string> &&
              std::is_same_v<decltype(Config::recovery_journal_records), std::size_t>);
// So is deferred assembly, and the sink calls it makes.
static_assert(std::is_same_v<decltype(Config::assembly), strobe::Assembly> &&
              std::is_same_v<decltype(strobe::RecorderInfo::records), bool>);
static_assert(has<bool (strobe::Sink::*)() const noexcept>(&strobe::Sink::takes_records));
static_assert(has<void (strobe::Sink::*)(const void*, std::size_t, std::uint64_t, std::uint64_t)>(&strobe::Sink::consume_records));

#if defined(STROBE_DISABLE)
static_assert(std::is_empty_v<Span> && std::is_empty_v<Name> && std::is_empty_v<Context>,
              "a disabled handle holds no state");
#endif

// Every call form once, the way the README and the examples write them. Returns the sum
// of what the handles report: 0 in both builds when no recorder is active.
int work(int n) {
  int seen = 0;
  STROBE_SPAN(step, "decode_step", Kind::llm);
  step.attr("token_index", n).attr(STROBE_NAME("model"), "tiny").attr(STROBE_NAME("p"), 0.5);
  step.attr(STROBE_NAME("value"), Value(n)).attrs({{"a", true}, {"b", "x"}});
  step.tokens({.input = 100, .output = 200}).tokens(TokenUsage{1, 2, 3});
  step.input("prompt").output("answer").log("line").tag("t").model("m");
  step.event("e").event("e", {{"k", 1}}).event(STROBE_NAME("e2"), {{"k", 2.5}});
  STROBE_NEXT(step, "mlp");
  step.next(STROBE_NAME("attention")).next(STROBE_NAME("mlp"), Kind::step);
  seen += step.recording() + static_cast<int>(step.span_id() + step.parent_id());
  seen += step.trace_id().valid() + step.context().valid();

  STROBE_SPAN(bare, "bare");
  bare.finish();
  STROBE_SPAN(lookup, "lookup", "vector-db", {{"source", "db"}});
  const std::string tool = "tool." + std::to_string(n);
  STROBE_SPAN(call, tool, Kind::tool);  // a name known at run time
  call.fail("failed").error("error", "data");
  Span moved = std::move(call);  // a STROBE_SPAN moved into a Span
  const SuspendToken token = moved.suspend();
  seen += token.valid() + static_cast<int>(token.span_id() + token.segment_index());
  Span resumed = strobe::resume(token);
  seen += resumed.recording();

  auto root = strobe::trace("agent", {{"run", n}});
  auto plain = strobe::span("plain");
  auto typed = strobe::span("typed", Kind::retrieval, {{"source", "api"}});
  auto custom = strobe::span("custom", "vector-db");
  auto named = strobe::span(STROBE_NAME("named"), Kind::step);
  auto started = strobe::start_span("explicit");
  auto current = strobe::start_span(std::string("current"), Kind::action,
                                    {.mark_as_current = true, .new_trace = true}, {{"k", 2}});
  auto by_name = strobe::start_span(STROBE_NAME("by_name"), Kind::tool, {.new_trace = true});
  started.finish();
  seen += root.recording() + plain.recording() + typed.recording() + custom.recording();
  seen += named.recording() + current.recording() + by_name.recording();
  {
    const Context ctx = strobe::current();
    ContextScope adopt(ctx);
    Span child(Name("child"), Kind::step, {{"k", 1}});
    Span other(Name("other"), "vector-db");
    seen += ctx.valid() + static_cast<int>(ctx.span_id()) + ctx.trace_id().valid();
    seen += child.recording() + other.recording();
  }
  strobe::record_span("one_shot", Kind::tool, std::chrono::system_clock::now(),
                      std::chrono::milliseconds(1));
  strobe::record_span("one_shot", Kind::tool, std::chrono::system_clock::now(),
                      std::chrono::milliseconds(1), Status::failed, {{"k", 3}});
  const Context one_shot = strobe::record_span(
      "ended_now", Kind::llm, std::chrono::milliseconds(45),
      {.input = "prompt", .output = "answer", .model = "m", .tokens = {.input = 1, .output = 2},
       .error = "timed out", .attrs = {{"k", 4}}});
  seen += one_shot.valid() + static_cast<int>(one_shot.span_id());
  const SystemTime t0 = std::chrono::system_clock::now();
  seen += strobe::record_span("between", Kind::tool, t0, t0 + std::chrono::milliseconds(2)).valid();
  seen += strobe::record_span("begun_at", Kind::tool, t0, std::chrono::milliseconds(2),
                              {.status = Status::failed}).valid();
  seen += strobe::record_span("bare", Kind::step, std::chrono::microseconds(3)).valid();
  seen += (bare.started_at() != SystemTime{}) + (bare.ended_at() != SystemTime{});
  strobe::set_thread_name("worker");
  seen += strobe::prepare_thread() + strobe::Recorder::active();
  const Name interned("interned");
  (void)interned.id();
  (void)interned.str();
  return seen;
}

}  // namespace

// Built and linked in both programs; run only where it starts nothing (STROBE_DISABLE).
Stats record_under_a_recorder() {
  Recorder recorder({.overflow = strobe::OverflowPolicy::wait, .service_name = "disabled"});
  (void)work(-1);
  recorder.flush();
  return recorder.config().service_name == "disabled" ? recorder.stats() : Stats{.misuse = 1};
}

// CoContext: the same API either way; carry() of an awaiter yields something awaitable.
static_assert(std::is_nothrow_default_constructible_v<strobe::CoContext>);
static_assert(!std::is_copy_constructible_v<strobe::CoContext>);
struct ReadyAwaiter {
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  int await_resume() const noexcept { return 0; }
};
static_assert(requires(strobe::CoContext& co) {
  { co.carry(ReadyAwaiter{}).await_resume() } -> std::same_as<int>;
});

int main() {
  int sum = 0;
  for (int i = 0; i < 10; ++i) sum += work(i);
#if defined(STROBE_DISABLE)
  const Stats stats = record_under_a_recorder();
  sum += static_cast<int>(stats.spans_recorded + stats.misuse);
#endif
  if (sum != 0) {
    std::printf("unexpected: the handles reported %d\n", sum);
    return 1;
  }
  std::puts("every call a no-op");
  return 0;
}
