// strobe.Span for Python: a C++ strobe::Span inside a Python object, with the current
// span kept in a contextvars.ContextVar so that it follows asyncio tasks and threads
// started with a copied context.
//
// Two notions of "current" meet here. Python's is the ContextVar (per task); C++'s is
// strobe's thread-local context (per thread), which STROBE_SPAN in a C++ extension reads.
// Every transition made from Python (a span entered or left) sets the thread-local to
// the span that is then current in Python and remembers what it set (t_last_set). When
// a span begins and the thread-local is no longer what Python last set, C++ code has
// moved it since — a STROBE_SPAN or a ContextScope of the C++ function that called back
// into Python — and that C++ span is the deeper one: it becomes the parent. Otherwise
// the ContextVar decides, which is right when asyncio tasks interleave on one thread.

#include "span_object.hpp"

#include <strobe/recorder.hpp>
#include <strobe/span.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strobe::python {
namespace {

PyObject* g_current = nullptr;   // ContextVar("strobe.current_span")
PyObject* g_to_text = nullptr;   // strobe._to_text(obj) -> str (JSON for containers)
PyObject* g_describe = nullptr;  // strobe._describe_exception(exc) -> (type, message, traceback)
PyObject* g_decorate = nullptr;  // strobe._decorate(span, fn) -> wrapper

// What this thread's Python code last made the C++ current context (see the top).
thread_local Context t_last_set;

bool same(const Context& a, const Context& b) noexcept {
  return a.span_id() == b.span_id() && a.trace_id() == b.trace_id();
}

// Python objects a call's string_views point into, released when the call returns.
class Keep {
 public:
  Keep() = default;
  Keep(const Keep&) = delete;
  Keep& operator=(const Keep&) = delete;
  ~Keep() {
    for (PyObject* o : objects_) Py_DECREF(o);
  }
  void add(PyObject* o) { objects_.push_back(o); }

 private:
  std::vector<PyObject*> objects_;
};

// The text of o: a str as it is, anything else through strobe._to_text (JSON for dicts
// and lists, str() otherwise). False with a Python error set.
bool text_of(PyObject* o, Keep& keep, std::string_view& out) {
  if (!PyUnicode_Check(o)) {
    o = g_to_text != nullptr ? PyObject_CallOneArg(g_to_text, o) : PyObject_Str(o);
    if (o == nullptr) return false;
    keep.add(o);
    if (!PyUnicode_Check(o)) {
      PyErr_SetString(PyExc_TypeError, "strobe._to_text must return a str");
      return false;
    }
  }
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(o, &n);
  if (s == nullptr) return false;
  out = std::string_view(s, static_cast<std::size_t>(n));
  return true;
}

// An attribute value: bool, int, float and str as themselves (an int beyond 64 bits as
// its digits), anything else (None, dicts, lists) as its JSON text.
bool value_of(PyObject* v, Keep& keep, std::optional<Value>& out) {
  if (PyBool_Check(v)) {
    out.emplace(v == Py_True);
    return true;
  }
  if (PyLong_Check(v)) {
    int overflow = 0;
    const long long i = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow == 0) {
      if (i == -1 && PyErr_Occurred()) return false;
      out.emplace(static_cast<std::int64_t>(i));
      return true;
    }
    PyObject* digits = PyObject_Str(v);
    if (digits == nullptr) return false;
    keep.add(digits);
    std::string_view text;
    if (!text_of(digits, keep, text)) return false;
    out.emplace(text);
    return true;
  }
  if (PyFloat_Check(v)) {
    out.emplace(PyFloat_AS_DOUBLE(v));
    return true;
  }
  std::string_view text;
  if (!text_of(v, keep, text)) return false;
  out.emplace(text);
  return true;
}

// A dict's items as strobe Attrs (keys made str). False with a Python error set.
bool attrs_of(PyObject* dict, Keep& keep, std::vector<Attr>& out) {
  if (dict == nullptr || dict == Py_None) return true;
  if (!PyDict_Check(dict)) {
    PyErr_SetString(PyExc_TypeError, "attributes must be a dict");
    return false;
  }
  PyObject *k = nullptr, *v = nullptr;
  Py_ssize_t pos = 0;
  out.reserve(static_cast<std::size_t>(PyDict_GET_SIZE(dict)));
  while (PyDict_Next(dict, &pos, &k, &v)) {
    std::string_view key;
    std::optional<Value> value;
    if (!text_of(k, keep, key) || !value_of(v, keep, value)) return false;
    out.push_back(Attr{key, *value});
  }
  return true;
}

// strobe's calls that take attributes take an initializer_list; a Python dict's length
// is known only at run time. Up to kMaxListAttrs items are passed as one list.
constexpr std::size_t kMaxListAttrs = 32;
template <std::size_t N = 0, class F>
void with_list(const std::vector<Attr>& a, F&& f) {
  if constexpr (N > kMaxListAttrs) {
    (void)a;
    (void)f;
  } else if (a.size() == N) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      f(std::initializer_list<Attr>{a[I]...});
    }(std::make_index_sequence<N>{});
  } else {
    with_list<N + 1>(a, std::forward<F>(f));
  }
}
bool check_list_size(const std::vector<Attr>& a) {
  if (a.size() <= kMaxListAttrs) return true;
  PyErr_Format(PyExc_ValueError, "at most %zu attributes in one event or record_span call",
               kMaxListAttrs);
  return false;
}

bool kw_is(PyObject* name, const char* s) { return PyUnicode_CompareWithASCIIString(name, s) == 0; }

// The keyword arguments of a vectorcall, as (name, value): `for (auto [k, v] : keywords(...))`.
struct Keywords {
  struct It {
    PyObject* names;
    PyObject* const* values;
    Py_ssize_t i;
    std::pair<PyObject*, PyObject*> operator*() const { return {PyTuple_GET_ITEM(names, i), values[i]}; }
    It& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const It& o) const { return i != o.i; }
  };
  PyObject* names;
  PyObject* const* values;
  Py_ssize_t count;
  [[nodiscard]] It begin() const { return {names, values, 0}; }
  [[nodiscard]] It end() const { return {names, values, count}; }
};
Keywords keywords(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return {kwnames, args + nargs, kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0};
}

// ---- Span ----

enum class Mode : std::uint8_t { span, trace, resume };
enum class State : std::uint8_t { created, open, ended };

struct SpanObject {
  PyObject_HEAD
  Span span;
  Context ctx;    // its own, once begun
  Context outer;  // the thread's context before it was made current (restored after)
  PyObject* name;        // str
  PyObject* kind;        // str or null ("span")
  PyObject* attrs;       // dict or null: attributes given when it was made
  PyObject* options;     // dict or null: model, input, tags, source given when it was made
  PyObject* cv_token;    // the ContextVar's token while it is current there
  PyObject* error;       // dict {"message", "data"} once set_error/mark_failed/an exception
  PyObject* resume_of;   // Mode::resume: the SuspendToken object
  unsigned long thread;  // the thread that began it
  Mode mode;
  State state;
  bool noop;       // begun with no recorder active: every call does nothing
  bool suspended;  // ended by suspend()
  bool current;    // made current (ContextVar and thread-local)
};

struct TokenObject {
  PyObject_HEAD
  SuspendToken token;
  PyObject* name;
  PyObject* kind;
};

PyTypeObject* span_type();
PyTypeObject* token_type();

SpanObject* new_span(Mode mode, PyObject* name, PyObject* kind, PyObject* attrs, PyObject* options) {
  SpanObject* s = PyObject_New(SpanObject, span_type());
  if (s == nullptr) return nullptr;
  new (&s->span) Span();
  new (&s->ctx) Context();
  new (&s->outer) Context();
  Py_XINCREF(name);
  Py_XINCREF(kind);
  Py_XINCREF(attrs);
  Py_XINCREF(options);
  s->name = name;
  s->kind = kind;
  s->attrs = attrs;
  s->options = options;
  s->cv_token = nullptr;
  s->error = nullptr;
  s->resume_of = nullptr;
  s->thread = 0;
  s->mode = mode;
  s->state = State::created;
  s->noop = false;
  s->suspended = false;
  s->current = false;
  return s;
}

void span_dealloc(PyObject* self) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  s->span.~Span();  // a span started and never finished ends here
  Py_XDECREF(s->name);
  Py_XDECREF(s->kind);
  Py_XDECREF(s->attrs);
  Py_XDECREF(s->options);
  Py_XDECREF(s->cv_token);
  Py_XDECREF(s->error);
  Py_XDECREF(s->resume_of);
  PyObject_Free(self);
}

// The context a Python object in the ContextVar stands for.
Context context_of(PyObject* o) {
  if (o != nullptr && Py_IS_TYPE(o, span_type())) return reinterpret_cast<SpanObject*>(o)->ctx;
  return Context();
}

bool apply_attrs(SpanObject* s, PyObject* dict) {
  if (dict == nullptr || dict == Py_None) return true;
  if (!PyDict_Check(dict)) {
    PyErr_SetString(PyExc_TypeError, "attributes must be a dict");
    return false;
  }
  PyObject *k = nullptr, *v = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(dict, &pos, &k, &v)) {
    Keep keep;
    std::string_view key;
    std::optional<Value> value;
    if (!text_of(k, keep, key) || !value_of(v, keep, value)) return false;
    s->span.attr(key, *value);
  }
  return true;
}

bool add_tags(SpanObject* s, PyObject* tags) {
  if (PyUnicode_Check(tags)) {
    Keep keep;
    std::string_view t;
    if (!text_of(tags, keep, t)) return false;
    s->span.tag(t);
    return true;
  }
  PyObject* seq = PySequence_Fast(tags, "tags must be a str or a sequence of str");
  if (seq == nullptr) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  for (Py_ssize_t i = 0; i < n; ++i) {
    Keep keep;
    std::string_view t;
    if (!text_of(PySequence_Fast_GET_ITEM(seq, i), keep, t)) {
      Py_DECREF(seq);
      return false;
    }
    s->span.tag(t);
  }
  Py_DECREF(seq);
  return true;
}

// What was given when the span was made, recorded once it has begun.
bool apply_options(SpanObject* s) {
  if (!apply_attrs(s, s->attrs)) return false;
  if (s->options == nullptr) return true;
  PyObject *k = nullptr, *v = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(s->options, &pos, &k, &v)) {
    if (v == Py_None) continue;
    Keep keep;
    if (kw_is(k, "tags")) {
      if (!add_tags(s, v)) return false;
      continue;
    }
    std::string_view text;
    if (!text_of(v, keep, text)) return false;
    if (kw_is(k, "model")) s->span.model(text);
    else if (kw_is(k, "input")) s->span.input(text);
    else if (kw_is(k, "output")) s->span.output(text);
    else if (kw_is(k, "source")) s->span.attr("source", Value(text));
  }
  return true;
}

// The parent a span begun now on this thread gets (see the top of the file).
Context parent_now(const Context& cur) {
  if (!same(cur, t_last_set)) return cur;
  PyObject* v = nullptr;
  if (PyContextVar_Get(g_current, nullptr, &v) < 0) {
    PyErr_Clear();
    return Context();
  }
  const Context c = context_of(v);
  Py_XDECREF(v);
  return c;
}

// Begins the span; make_current: it becomes current in the ContextVar and on the thread.
bool begin(SpanObject* s, bool make_current) {
  if (s->state != State::created) {
    PyErr_SetString(PyExc_RuntimeError, "strobe: a span begins once");
    return false;
  }
  s->state = State::open;
  s->thread = PyThread_get_thread_ident();
  if (!Recorder::active()) {
    s->noop = true;
    return true;
  }
  const Context cur = current();
  const Context parent = parent_now(cur);
  if (!same(parent, cur)) detail::exchange_current(parent);
  switch (s->mode) {
    case Mode::span: {
      Py_ssize_t n = 0;
      const char* name = s->name != nullptr ? PyUnicode_AsUTF8AndSize(s->name, &n) : "span";
      if (name == nullptr) return false;
      if (s->name == nullptr) n = 4;
      const Name id(std::string_view(name, static_cast<std::size_t>(n)));
      if (s->kind == nullptr) {
        s->span = Span(id);
      } else {
        Py_ssize_t kn = 0;
        const char* kind = PyUnicode_AsUTF8AndSize(s->kind, &kn);
        if (kind == nullptr) return false;
        const std::string_view ktext(kind, static_cast<std::size_t>(kn));
        const Kind k = kind_from_string(ktext);
        s->span = k == Kind::custom ? Span(id, ktext) : Span(id, k);
      }
      break;
    }
    case Mode::trace: {
      Py_ssize_t n = 0;
      const char* name = PyUnicode_AsUTF8AndSize(s->name, &n);
      if (name == nullptr) return false;
      s->span = trace(std::string_view(name, static_cast<std::size_t>(n)));
      break;
    }
    case Mode::resume:
      s->span = resume(reinterpret_cast<TokenObject*>(s->resume_of)->token);
      break;
  }
  s->ctx = s->span.context();
  if (make_current) {
    s->outer = parent;
    t_last_set = s->ctx;
    s->cv_token = PyContextVar_Set(g_current, reinterpret_cast<PyObject*>(s));
    if (s->cv_token == nullptr) return false;
    s->current = true;
  } else {
    detail::exchange_current(cur);  // the thread as it was: t_last_set still describes it
  }
  return apply_options(s);
}

// Ends the span (unless suspend() did); reset_current: the ContextVar and the thread go
// back to what was current before it.
void end(SpanObject* s, bool reset_current) {
  if (s->state != State::open) return;
  s->state = State::ended;
  if (s->noop) return;
  if (!s->suspended) s->span.finish();
  if (s->current && reset_current) {
    s->current = false;
    if (PyContextVar_Reset(g_current, s->cv_token) < 0) PyErr_Clear();  // set in another context
    Py_CLEAR(s->cv_token);
    if (s->thread == PyThread_get_thread_ident()) {
      detail::exchange_current(s->outer);
      t_last_set = s->outer;
    }
  }
}

bool live(SpanObject* s) { return s->state == State::open && !s->noop && !s->suspended; }

void set_error_dict(SpanObject* s, PyObject* message, PyObject* data) {
  PyObject* d = PyDict_New();
  if (d == nullptr) {
    PyErr_Clear();
    return;
  }
  PyDict_SetItemString(d, "message", message != nullptr ? message : Py_None);
  PyDict_SetItemString(d, "data", data != nullptr ? data : Py_None);
  Py_XSETREF(s->error, d);
}

// An exception escaping the span: failed, with its type, message and traceback.
bool record_exception(SpanObject* s, PyObject* exc) {
  if (exc == nullptr || exc == Py_None || g_describe == nullptr) return true;
  PyObject* info = PyObject_CallOneArg(g_describe, exc);  // (type, message, traceback)
  if (info == nullptr) return false;
  Keep keep;
  keep.add(info);
  std::string_view type, message, tb;
  if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 3 ||
      !text_of(PyTuple_GET_ITEM(info, 0), keep, type) ||
      !text_of(PyTuple_GET_ITEM(info, 1), keep, message) ||
      !text_of(PyTuple_GET_ITEM(info, 2), keep, tb)) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "strobe._describe_exception: bad result");
    return false;
  }
  s->span.attr("exception.type", Value(type)).attr("exception.message", Value(message));
  if (s->error != nullptr) {  // mark_failed / set_error first: its message stays
    PyObject* m = PyDict_GetItemString(s->error, "message");
    PyObject* d = PyDict_GetItemString(s->error, "data");
    std::string_view mtext;
    if (m == nullptr || m == Py_None) mtext = {};
    else if (!text_of(m, keep, mtext)) return false;
    if (d == nullptr || d == Py_None) s->span.error(mtext, tb);
    return true;
  }
  std::string text(type);
  if (!message.empty()) text.append(": ").append(message);
  s->span.error(text, tb);
  PyObject* msg = PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
  PyObject* data = PyTuple_GET_ITEM(info, 2);
  set_error_dict(s, msg, data);
  Py_XDECREF(msg);
  return true;
}

// ---- Span methods ----

// begin(), and when it fails after the span began (an attribute given when it was made
// could not be converted), the span ended again: no __exit__ will come.
bool begin_or_undo(SpanObject* s, bool make_current) {
  if (begin(s, make_current)) return true;
  if (s->state == State::open) {
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    end(s, true);
    PyErr_Restore(type, value, tb);
  }
  return false;
}

PyObject* span_enter(PyObject* self, PyObject*) {
  if (!begin_or_undo(reinterpret_cast<SpanObject*>(self), true)) return nullptr;
  Py_INCREF(self);
  return self;
}

PyObject* span_exit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (nargs >= 2 && args[1] != Py_None && live(s)) {
    if (!record_exception(s, args[1])) PyErr_WriteUnraisable(self);  // the exception in flight wins
  }
  end(s, true);
  Py_RETURN_FALSE;
}

// `async with`: Plato's spans are asynchronous context managers. Entering and leaving
// never waits, so each returns an awaitable that is already done.
struct DoneObject {
  PyObject_HEAD
  PyObject* value;
};
PyTypeObject g_done_type{};  // filled in by add_span_api
void done_dealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<DoneObject*>(self)->value);
  PyObject_Free(self);
}
PyObject* done_await(PyObject* self) { return Py_NewRef(self); }
PyObject* done_next(PyObject* self) {
  PyObject* e = PyObject_CallOneArg(PyExc_StopIteration, reinterpret_cast<DoneObject*>(self)->value);
  if (e != nullptr) {
    PyErr_SetObject(PyExc_StopIteration, e);
    Py_DECREF(e);
  }
  return nullptr;
}
PyAsyncMethods done_async = {done_await, nullptr, nullptr, nullptr};
PyObject* done(PyObject* value) {
  if (value == nullptr) return nullptr;
  DoneObject* d = PyObject_New(DoneObject, &g_done_type);
  if (d == nullptr) {
    Py_DECREF(value);
    return nullptr;
  }
  d->value = value;  // takes the reference
  return reinterpret_cast<PyObject*>(d);
}
PyObject* span_aenter(PyObject* self, PyObject* arg) { return done(span_enter(self, arg)); }
PyObject* span_aexit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return done(span_exit(self, args, nargs));
}

PyObject* span_start(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool mark = false;
  if (nargs >= 1) mark = PyObject_IsTrue(args[0]) == 1;
  for (auto [k, v] : keywords(args, nargs, kwnames))
    if (kw_is(k, "mark_as_current")) mark = PyObject_IsTrue(v) == 1;
  if (!begin_or_undo(reinterpret_cast<SpanObject*>(self), mark)) return nullptr;
  Py_INCREF(self);
  return self;
}

PyObject* span_finish(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  // reset_current defaults to true: a span made current by start(mark_as_current=True)
  // and finished without resetting would leave the ContextVar on an ended span.
  bool reset = true;
  if (nargs >= 1) reset = PyObject_IsTrue(args[0]) == 1;
  for (auto [k, v] : keywords(args, nargs, kwnames))
    if (kw_is(k, "reset_current")) reset = PyObject_IsTrue(v) == 1;
  end(reinterpret_cast<SpanObject*>(self), reset);
  Py_RETURN_NONE;
}

PyObject* span_set_attribute(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "set_attribute(key, value)");
    return nullptr;
  }
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s)) {
    Keep keep;
    std::string_view key;
    std::optional<Value> value;
    if (!text_of(args[0], keep, key) || !value_of(args[1], keep, value)) return nullptr;
    s->span.attr(key, *value);
  }
  Py_RETURN_NONE;
}

PyObject* span_set_attributes(PyObject* self, PyObject* dict) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s) && !apply_attrs(s, dict)) return nullptr;
  Py_RETURN_NONE;
}

PyObject* span_add_event(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* name = nargs >= 1 ? args[0] : nullptr;
  PyObject* attrs = nargs >= 2 ? args[1] : nullptr;
  for (auto [k, v] : keywords(args, nargs, kwnames)) {
    if (kw_is(k, "name")) name = v;
    else if (kw_is(k, "attributes")) attrs = v;
    else {
      PyErr_Format(PyExc_TypeError, "add_event() got an unexpected keyword argument %R", k);
      return nullptr;
    }
  }
  if (name == nullptr) {
    PyErr_SetString(PyExc_TypeError, "add_event(name, attributes=None)");
    return nullptr;
  }
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!live(s)) Py_RETURN_NONE;
  Keep keep;
  std::string_view text;
  std::vector<Attr> list;
  if (!text_of(name, keep, text) || !attrs_of(attrs, keep, list) || !check_list_size(list)) return nullptr;
  with_list(list, [&](std::initializer_list<Attr> l) { s->span.event(text, l); });
  Py_RETURN_NONE;
}

// log(text) or log(*parts): Plato's log messages, an event "log" each.
PyObject* span_log(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!live(s)) Py_RETURN_NONE;
  Keep keep;
  std::string joined;
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    std::string_view t;
    if (!text_of(args[i], keep, t)) return nullptr;
    if (i > 0) joined.push_back(' ');
    joined.append(t);
  }
  s->span.log(joined);
  Py_RETURN_NONE;
}

template <Span& (Span::*Setter)(std::string_view) noexcept>
PyObject* span_text_setter(PyObject* self, PyObject* arg) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s)) {
    Keep keep;
    std::string_view t;
    if (!text_of(arg, keep, t)) return nullptr;
    (s->span.*Setter)(t);
  }
  Py_RETURN_NONE;
}

PyObject* span_set_token_usage(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  long long v[3] = {0, 0, 0};
  for (Py_ssize_t i = 0; i < nargs && i < 3; ++i) {
    v[i] = PyLong_AsLongLong(args[i]);
    if (v[i] == -1 && PyErr_Occurred()) return nullptr;
  }
  for (auto [k, value] : keywords(args, nargs, kwnames)) {
    int slot = -1;
    if (kw_is(k, "input_tokens") || kw_is(k, "input")) slot = 0;
    else if (kw_is(k, "output_tokens") || kw_is(k, "output")) slot = 1;
    else if (kw_is(k, "cached_input_tokens") || kw_is(k, "cached_input")) slot = 2;
    if (slot < 0) {
      PyErr_Format(PyExc_TypeError, "set_token_usage() got an unexpected keyword argument %R", k);
      return nullptr;
    }
    v[slot] = PyLong_AsLongLong(value);
    if (v[slot] == -1 && PyErr_Occurred()) return nullptr;
  }
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s)) s->span.tokens({.input = v[0], .output = v[1], .cached_input = v[2]});
  Py_RETURN_NONE;
}

PyObject* span_add_tags(PyObject* self, PyObject* tags) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s) && !add_tags(s, tags)) return nullptr;
  Py_RETURN_NONE;
}

PyObject* span_mark_failed(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!live(s)) Py_RETURN_NONE;
  Keep keep;
  std::string_view t;
  if (nargs >= 1 && args[0] != Py_None && !text_of(args[0], keep, t)) return nullptr;
  s->span.fail(t);
  set_error_dict(s, nargs >= 1 ? args[0] : nullptr, nullptr);
  Py_RETURN_NONE;
}

// set_error(message, data=None), or set_error({"message": ..., "data": ...}) as the
// OpenAI Agents SDK's SpanError.
PyObject* span_set_error(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* message = nargs >= 1 ? args[0] : nullptr;
  PyObject* data = nargs >= 2 ? args[1] : nullptr;
  for (auto [k, v] : keywords(args, nargs, kwnames)) {
    if (kw_is(k, "message")) message = v;
    else if (kw_is(k, "data")) data = v;
  }
  if (message != nullptr && PyDict_Check(message) && data == nullptr) {
    data = PyDict_GetItemString(message, "data");
    message = PyDict_GetItemString(message, "message");
  }
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!live(s)) Py_RETURN_NONE;
  Keep keep;
  std::string_view m, d;
  if (message != nullptr && message != Py_None && !text_of(message, keep, m)) return nullptr;
  if (data != nullptr && data != Py_None && !text_of(data, keep, d)) return nullptr;
  s->span.error(m, d);
  set_error_dict(s, message, data);
  Py_RETURN_NONE;
}

// Tracium's set_status("completed" | "failed"); "ok" / "error" too.
PyObject* span_set_status(PyObject* self, PyObject* status) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!PyUnicode_Check(status)) {
    PyErr_SetString(PyExc_TypeError, "set_status(str)");
    return nullptr;
  }
  if (kw_is(status, "failed") || kw_is(status, "error")) {
    if (live(s)) s->span.fail({});
    if (s->error == nullptr) set_error_dict(s, nullptr, nullptr);
  } else if (!kw_is(status, "completed") && !kw_is(status, "ok")) {
    PyErr_Format(PyExc_ValueError, "status must be 'completed' or 'failed', not %R", status);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* span_record_exception(PyObject* self, PyObject* exc) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s) && !record_exception(s, exc)) return nullptr;
  Py_RETURN_NONE;
}

PyObject* span_suspend(PyObject* self, PyObject*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  TokenObject* t = PyObject_New(TokenObject, token_type());
  if (t == nullptr) return nullptr;
  new (&t->token) SuspendToken();
  t->name = s->name;
  t->kind = s->kind;
  Py_XINCREF(t->name);
  Py_XINCREF(t->kind);
  if (live(s)) {
    t->token = s->span.suspend();
    s->suspended = true;
  }
  return reinterpret_cast<PyObject*>(t);
}

PyObject* span_link(PyObject* self, PyObject* other) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (live(s)) s->span.link(context_of(other));
  Py_RETURN_NONE;
}

PyObject* span_call(PyObject* self, PyObject* args, PyObject* kwargs) {
  // @strobe.span(...) on a function or coroutine function (strobe._decorate).
  if (g_decorate == nullptr || kwargs != nullptr || PyTuple_GET_SIZE(args) != 1 ||
      !PyCallable_Check(PyTuple_GET_ITEM(args, 0))) {
    PyErr_SetString(PyExc_TypeError, "a strobe.Span decorates one callable");
    return nullptr;
  }
  return PyObject_CallFunctionObjArgs(g_decorate, self, PyTuple_GET_ITEM(args, 0), nullptr);
}

// A fresh span with what this one was made with (the decorator's per-call span).
PyObject* span_clone(PyObject* self, PyObject* name) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  return reinterpret_cast<PyObject*>(
      new_span(s->mode, name != Py_None ? name : s->name, s->kind, s->attrs, s->options));
}

PyObject* fn_span(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* fn_record_span(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
// Tracium's trace.span(...) and trace.record_span(...): under the current span, as the
// module's functions (the handle's own span is current inside its `with`).
PyObject* span_child(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return fn_span(nullptr, args, nargs, kwnames);
}
PyObject* span_record_child(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return fn_record_span(nullptr, args, nargs, kwnames);
}

// ---- Span properties ----

PyObject* hex_or_none(std::uint64_t id) {
  if (id == 0) Py_RETURN_NONE;
  const std::string h = to_hex(id);
  return PyUnicode_FromStringAndSize(h.data(), static_cast<Py_ssize_t>(h.size()));
}

PyObject* get_span_id(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  return hex_or_none(s->ctx.span_id());
}
PyObject* get_parent_id(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  return hex_or_none(s->state == State::created ? 0 : s->span.parent_id());
}
PyObject* get_trace_id(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!s->ctx.valid()) Py_RETURN_NONE;
  const std::string h = s->ctx.trace_id().to_hex();
  return PyUnicode_FromStringAndSize(h.data(), static_cast<Py_ssize_t>(h.size()));
}
PyObject* get_name(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (s->name == nullptr) return PyUnicode_FromString("span");
  Py_INCREF(s->name);
  return s->name;
}
PyObject* get_named(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<SpanObject*>(self)->name != nullptr);
}
PyObject* get_kind(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (s->kind != nullptr) {
    Py_INCREF(s->kind);
    return s->kind;
  }
  return PyUnicode_FromString(s->mode == Mode::trace ? "agent" : "span");
}
PyObject* get_error(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (s->error == nullptr) Py_RETURN_NONE;
  Py_INCREF(s->error);
  return s->error;
}
PyObject* get_recording(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  return PyBool_FromLong(live(s) && s->span.recording());
}
PyObject* get_traceparent(PyObject* self, void*) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  const std::string h = s->ctx.traceparent();
  if (h.empty()) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(h.data(), static_cast<Py_ssize_t>(h.size()));
}

// ISO 8601 in UTC, as datetime.isoformat() writes it for an aware datetime.
PyObject* iso_or_none(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) Py_RETURN_NONE;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return PyUnicode_FromString(buf);
}
PyObject* get_started_at(PyObject* self, void*) {
  return iso_or_none(reinterpret_cast<SpanObject*>(self)->span.started_at());
}
PyObject* get_ended_at(PyObject* self, void*) {
  return iso_or_none(reinterpret_cast<SpanObject*>(self)->span.ended_at());
}

PyObject* span_repr(PyObject* self) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  PyObject* name = get_name(self, nullptr);
  PyObject* kind = get_kind(self, nullptr);
  PyObject* id = get_span_id(self, nullptr);
  PyObject* r = PyUnicode_FromFormat("<strobe.Span %R kind=%R span_id=%R%s>", name, kind, id,
                                     s->noop ? " no-op" : "");
  Py_XDECREF(name);
  Py_XDECREF(kind);
  Py_XDECREF(id);
  return r;
}

constexpr int kFast = METH_FASTCALL;
constexpr int kFastKw = METH_FASTCALL | METH_KEYWORDS;
#define STROBE_FAST(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

PyMethodDef span_methods[] = {
    {"__enter__", span_enter, METH_NOARGS, nullptr},
    {"__exit__", STROBE_FAST(span_exit), kFast, nullptr},
    {"__aenter__", span_aenter, METH_NOARGS, nullptr},
    {"__aexit__", STROBE_FAST(span_aexit), kFast, nullptr},
    {"start", STROBE_FAST(span_start), kFastKw, "start(mark_as_current=False): begin now; end with finish()"},
    {"finish", STROBE_FAST(span_finish), kFastKw, "finish(reset_current=True): end it"},
    {"set_attribute", STROBE_FAST(span_set_attribute), kFast, "set_attribute(key, value)"},
    {"set_attributes", span_set_attributes, METH_O, "set_attributes(dict)"},
    {"set_extra", span_set_attributes, METH_O, "set_extra(dict): Plato's name for set_attributes"},
    {"add_event", STROBE_FAST(span_add_event), kFastKw, "add_event(name, attributes=None)"},
    {"log", STROBE_FAST(span_log), kFast, "log(message): an event 'log' with the text"},
    {"record_input", span_text_setter<&Span::input>, METH_O, "record_input(data): str, or JSON"},
    {"record_output", span_text_setter<&Span::output>, METH_O, "record_output(data): str, or JSON"},
    {"set_input", span_text_setter<&Span::input>, METH_O, "as record_input"},
    {"set_output", span_text_setter<&Span::output>, METH_O, "as record_output"},
    {"set_model", span_text_setter<&Span::model>, METH_O, "set_model(model_id)"},
    {"set_provider", span_text_setter<&Span::provider>, METH_O, "gen_ai.provider.name"},
    {"set_response_model", span_text_setter<&Span::response_model>, METH_O, "gen_ai.response.model"},
    {"set_token_usage", STROBE_FAST(span_set_token_usage), kFastKw,
     "set_token_usage(input_tokens=0, output_tokens=0, cached_input_tokens=0)"},
    {"add_tags", span_add_tags, METH_O, "add_tags(list of str)"},
    {"add_tag", span_add_tags, METH_O, "add_tag(str)"},
    {"mark_failed", STROBE_FAST(span_mark_failed), kFast, "mark_failed(message='')"},
    {"set_error", STROBE_FAST(span_set_error), kFastKw, "set_error(message, data=None) or set_error({'message', 'data'})"},
    {"set_status", span_set_status, METH_O, "set_status('completed' | 'failed')"},
    {"record_exception", span_record_exception, METH_O, "record_exception(exc): failed, with its type, message and traceback"},
    {"suspend", span_suspend, METH_NOARGS, "suspend() -> SuspendToken: end this segment; strobe.resume(token) opens the next"},
    {"link", span_link, METH_O, "link(span): a cause that is not the parent"},
    {"span", STROBE_FAST(span_child), kFastKw, "as strobe.span (Tracium's trace.span)"},
    {"record_span", STROBE_FAST(span_record_child), kFastKw, "as strobe.record_span"},
    {"_clone", span_clone, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef span_getset[] = {
    {"span_id", get_span_id, nullptr, "16 hex digits; None for a no-op span", nullptr},
    {"id", get_span_id, nullptr, "as span_id (Tracium)", nullptr},
    {"event_id", get_span_id, nullptr, "as span_id (Plato)", nullptr},
    {"parent_id", get_parent_id, nullptr, "the parent's span_id; None for a root", nullptr},
    {"parent_span_id", get_parent_id, nullptr, "as parent_id (Tracium)", nullptr},
    {"trace_id", get_trace_id, nullptr, "32 hex digits", nullptr},
    {"name", get_name, nullptr, nullptr, nullptr},
    {"_named", get_named, nullptr, nullptr, nullptr},
    {"kind", get_kind, nullptr, nullptr, nullptr},
    {"span_type", get_kind, nullptr, "as kind", nullptr},
    {"error", get_error, nullptr, "{'message', 'data'} once failed, else None", nullptr},
    {"recording", get_recording, nullptr, "open and recorded (False for a no-op span)", nullptr},
    {"traceparent", get_traceparent, nullptr, "the W3C traceparent header for a call made under it", nullptr},
    {"started_at", get_started_at, nullptr, "ISO 8601 (UTC); None before it began", nullptr},
    {"ended_at", get_ended_at, nullptr, "ISO 8601 (UTC); None while open", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject g_span_type{};  // filled in by add_span_api
PyTypeObject g_token_type{};  // filled in by add_span_api
PyTypeObject* span_type() { return &g_span_type; }
PyTypeObject* token_type() { return &g_token_type; }

void token_dealloc(PyObject* self) {
  auto* t = reinterpret_cast<TokenObject*>(self);
  Py_XDECREF(t->name);
  Py_XDECREF(t->kind);
  PyObject_Free(self);
}
PyObject* token_get_span_id(PyObject* self, void*) {
  return hex_or_none(reinterpret_cast<TokenObject*>(self)->token.span_id());
}
PyObject* token_get_segment(PyObject* self, void*) {
  return PyLong_FromUnsignedLong(reinterpret_cast<TokenObject*>(self)->token.segment_index());
}
PyGetSetDef token_getset[] = {
    {"span_id", token_get_span_id, nullptr, "the suspended segment's span_id", nullptr},
    {"segment_index", token_get_segment, nullptr, "the suspended segment's index (0 first)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ---- module functions ----

// span(name=None, kind=None, attributes=None, *, span_type, metadata, extra, model,
// model_id, input, tags, source): a span to enter (with), start() or decorate with.
PyObject* fn_span(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "span(name, kind=None, attributes=None, **options)");
    return nullptr;
  }
  PyObject* name = nargs >= 1 ? args[0] : nullptr;
  PyObject* kind = nargs >= 2 ? args[1] : nullptr;
  PyObject* attrs = nargs >= 3 ? args[2] : nullptr;
  PyObject* more_attrs[2] = {nullptr, nullptr};
  PyObject* options = nullptr;
  for (auto [k, v] : keywords(args, nargs, kwnames)) {
    if (kw_is(k, "name")) name = v;
    else if (kw_is(k, "kind") || kw_is(k, "span_type")) kind = v;
    else if (kw_is(k, "attributes")) attrs = v;
    else if (kw_is(k, "metadata")) more_attrs[0] = v;
    else if (kw_is(k, "extra")) more_attrs[1] = v;
    else if (kw_is(k, "model") || kw_is(k, "model_id") || kw_is(k, "input") || kw_is(k, "tags") ||
             kw_is(k, "source")) {
      if (options == nullptr && (options = PyDict_New()) == nullptr) return nullptr;
      const char* key = kw_is(k, "model_id") ? "model" : PyUnicode_AsUTF8(k);
      if (PyDict_SetItemString(options, key, v) < 0) {
        Py_DECREF(options);
        return nullptr;
      }
    } else {
      PyErr_Format(PyExc_TypeError, "span() got an unexpected keyword argument %R", k);
      Py_XDECREF(options);
      return nullptr;
    }
  }
  if (name == Py_None) name = nullptr;
  if (kind == Py_None) kind = nullptr;
  if (attrs == Py_None) attrs = nullptr;
  if ((name != nullptr && !PyUnicode_Check(name)) || (kind != nullptr && !PyUnicode_Check(kind))) {
    PyErr_SetString(PyExc_TypeError, "a span's name and kind are str");
    Py_XDECREF(options);
    return nullptr;
  }
  PyObject* merged = nullptr;
  if (more_attrs[0] != nullptr || more_attrs[1] != nullptr) {
    merged = PyDict_New();
    for (PyObject* d : {attrs, more_attrs[0], more_attrs[1]})
      if (merged != nullptr && d != nullptr && d != Py_None && PyDict_Update(merged, d) < 0) Py_CLEAR(merged);
    if (merged == nullptr) {
      Py_XDECREF(options);
      return nullptr;
    }
    attrs = merged;
  }
  SpanObject* s = new_span(Mode::span, name, kind, attrs, options);
  Py_XDECREF(merged);
  Py_XDECREF(options);
  return reinterpret_cast<PyObject*>(s);
}

// trace(agent_name, attributes=None): the root of a new trace (kind agent).
PyObject* fn_trace(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* name = nargs >= 1 ? args[0] : nullptr;
  PyObject* attrs = nargs >= 2 ? args[1] : nullptr;
  PyObject* options = nullptr;
  for (auto [k, v] : keywords(args, nargs, kwnames)) {
    if (kw_is(k, "agent_name") || kw_is(k, "name")) name = v;
    else if (kw_is(k, "attributes") || kw_is(k, "metadata")) attrs = v;
    else if (kw_is(k, "tags") || kw_is(k, "input")) {
      if (options == nullptr && (options = PyDict_New()) == nullptr) return nullptr;
      PyDict_SetItem(options, k, v);
    } else {
      PyErr_Format(PyExc_TypeError, "trace() got an unexpected keyword argument %R", k);
      Py_XDECREF(options);
      return nullptr;
    }
  }
  if (name == nullptr || !PyUnicode_Check(name)) {
    PyErr_SetString(PyExc_TypeError, "trace(agent_name: str, attributes=None)");
    Py_XDECREF(options);
    return nullptr;
  }
  if (attrs == Py_None) attrs = nullptr;
  SpanObject* s = new_span(Mode::trace, name, nullptr, attrs, options);
  Py_XDECREF(options);
  return reinterpret_cast<PyObject*>(s);
}

PyObject* fn_resume(PyObject*, PyObject* token) {
  if (!Py_IS_TYPE(token, token_type())) {
    PyErr_SetString(PyExc_TypeError, "resume(token): a strobe.SuspendToken from Span.suspend()");
    return nullptr;
  }
  auto* t = reinterpret_cast<TokenObject*>(token);
  SpanObject* s = new_span(Mode::resume, t->name, t->kind, nullptr, nullptr);
  if (s != nullptr) {
    Py_INCREF(token);
    s->resume_of = token;
  }
  return reinterpret_cast<PyObject*>(s);
}

PyObject* fn_current_span(PyObject*, PyObject*) {
  PyObject* v = nullptr;
  if (PyContextVar_Get(g_current, nullptr, &v) < 0) return nullptr;
  if (v == nullptr) Py_RETURN_NONE;
  return v;
}

// record_span(name, kind="span", *, latency_ms=0, input, output, model, status, error,
// attributes / metadata, input_tokens, output_tokens, cached_input_tokens): a completed
// span that took latency_ms and ended now, a child of the current span. Returns a dict of
// its ids (span_id, trace_id).
PyObject* fn_record_span(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* name = nargs >= 1 ? args[0] : nullptr;
  PyObject* kind = nargs >= 2 ? args[1] : nullptr;
  PyObject *latency = nullptr, *input = nullptr, *output = nullptr, *model = nullptr, *status = nullptr,
           *error = nullptr, *attrs = nullptr;
  long long tokens[3] = {0, 0, 0};
  for (auto [k, v] : keywords(args, nargs, kwnames)) {
    if (kw_is(k, "name")) name = v;
    else if (kw_is(k, "kind") || kw_is(k, "span_type")) kind = v;
    else if (kw_is(k, "latency_ms")) latency = v;
    else if (kw_is(k, "input")) input = v;
    else if (kw_is(k, "output")) output = v;
    else if (kw_is(k, "model") || kw_is(k, "model_id")) model = v;
    else if (kw_is(k, "status")) status = v;
    else if (kw_is(k, "error")) error = v;
    else if (kw_is(k, "attributes") || kw_is(k, "metadata")) attrs = v;
    else if (kw_is(k, "input_tokens") || kw_is(k, "output_tokens") || kw_is(k, "cached_input_tokens")) {
      const int slot = kw_is(k, "input_tokens") ? 0 : kw_is(k, "output_tokens") ? 1 : 2;
      tokens[slot] = PyLong_AsLongLong(v);
      if (tokens[slot] == -1 && PyErr_Occurred()) return nullptr;
    } else {
      PyErr_Format(PyExc_TypeError, "record_span() got an unexpected keyword argument %R", k);
      return nullptr;
    }
  }
  if (name == nullptr || !PyUnicode_Check(name)) {
    PyErr_SetString(PyExc_TypeError, "record_span(name: str, kind='span', latency_ms=..., ...)");
    return nullptr;
  }
  if (!Recorder::active()) Py_RETURN_NONE;
  Keep keep;
  std::string_view tname, tkind = "span", tin, tout, tmodel, terr;
  if (!text_of(name, keep, tname)) return nullptr;
  if (kind != nullptr && kind != Py_None && !text_of(kind, keep, tkind)) return nullptr;
  if (input != nullptr && input != Py_None && !text_of(input, keep, tin)) return nullptr;
  if (output != nullptr && output != Py_None && !text_of(output, keep, tout)) return nullptr;
  if (model != nullptr && model != Py_None && !text_of(model, keep, tmodel)) return nullptr;
  if (error != nullptr && error != Py_None && !text_of(error, keep, terr)) return nullptr;
  Status st = Status::ok;
  if (status != nullptr && status != Py_None) {
    if (!PyUnicode_Check(status)) {
      PyErr_SetString(PyExc_TypeError, "status must be 'completed' or 'failed'");
      return nullptr;
    }
    if (kw_is(status, "failed") || kw_is(status, "error")) st = Status::failed;
    else if (!kw_is(status, "completed") && !kw_is(status, "ok")) {
      PyErr_Format(PyExc_ValueError, "status must be 'completed' or 'failed', not %R", status);
      return nullptr;
    }
  }
  double ms = 0;
  if (latency != nullptr && latency != Py_None) {
    ms = PyFloat_AsDouble(latency);
    if (ms == -1 && PyErr_Occurred()) return nullptr;
  }
  std::vector<Attr> list;
  if (!attrs_of(attrs, keep, list) || !check_list_size(list)) return nullptr;
  const Kind k = kind_from_string(tkind);
  const auto duration = std::chrono::nanoseconds(static_cast<std::int64_t>(ms * 1e6));
  const Context cur = current();
  const Context parent = parent_now(cur);
  if (!same(parent, cur)) detail::exchange_current(parent);
  Context made;
  with_list(list, [&](std::initializer_list<Attr> l) {
    made = strobe::record_span(tname, k, duration,
                               {.input = tin, .output = tout, .model = tmodel,
                                .tokens = {.input = tokens[0], .output = tokens[1], .cached_input = tokens[2]},
                                .status = st, .error = terr, .attrs = l});
  });
  if (!same(parent, cur)) detail::exchange_current(cur);
  PyObject* out = PyDict_New();
  if (out == nullptr) return nullptr;
  PyObject* sid = hex_or_none(made.span_id());
  const std::string th = made.trace_id().to_hex();
  PyObject* tid = PyUnicode_FromStringAndSize(th.data(), static_cast<Py_ssize_t>(th.size()));
  PyDict_SetItemString(out, "span_id", sid);
  PyDict_SetItemString(out, "trace_id", tid);
  Py_XDECREF(sid);
  Py_XDECREF(tid);
  return out;
}

// The thread's C++ context set to this context's current span: for C++ code called from a
// coroutine after an await, when other tasks entered or left spans on the thread meanwhile.
PyObject* fn_sync_context(PyObject*, PyObject*) {
  PyObject* v = nullptr;
  if (PyContextVar_Get(g_current, nullptr, &v) < 0) return nullptr;
  const Context c = context_of(v);
  Py_XDECREF(v);
  detail::exchange_current(c);
  t_last_set = c;
  Py_RETURN_NONE;
}

PyObject* fn_set_helpers(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "_set_helpers(to_text, describe_exception, decorate)");
    return nullptr;
  }
  Py_XSETREF(g_to_text, Py_NewRef(args[0]));
  Py_XSETREF(g_describe, Py_NewRef(args[1]));
  Py_XSETREF(g_decorate, Py_NewRef(args[2]));
  Py_RETURN_NONE;
}

PyMethodDef module_functions[] = {
    {"span", STROBE_FAST(fn_span), kFastKw, "span(name, kind='span', attributes=None, **options) -> Span"},
    {"trace", STROBE_FAST(fn_trace), kFastKw, "trace(agent_name, attributes=None) -> Span: a new trace's root"},
    {"resume", fn_resume, METH_O, "resume(token) -> Span: the next segment of a suspended span"},
    {"current_span", fn_current_span, METH_NOARGS, "the span current in this context, or None"},
    {"record_span", STROBE_FAST(fn_record_span), kFastKw, "record_span(name, kind, latency_ms=..., ...): a completed span"},
    {"sync_context", fn_sync_context, METH_NOARGS,
     "sync_context(): C++ code called next on this thread sees this context's current span"},
    {"_set_helpers", STROBE_FAST(fn_set_helpers), kFast, nullptr},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

bool add_span_api(PyObject* module) {
  // Static types: one reference held by the module for the life of the process.
  for (PyTypeObject* t : {&g_done_type, &g_span_type, &g_token_type}) Py_SET_REFCNT(t, 1);
  g_done_type.tp_name = "strobe._Done";
  g_done_type.tp_basicsize = sizeof(DoneObject);
  g_done_type.tp_dealloc = done_dealloc;
  g_done_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_done_type.tp_as_async = &done_async;
  g_done_type.tp_iter = done_await;
  g_done_type.tp_iternext = done_next;
  if (PyType_Ready(&g_done_type) < 0) return false;
  g_span_type.tp_name = "strobe.Span";
  g_span_type.tp_basicsize = sizeof(SpanObject);
  g_span_type.tp_dealloc = span_dealloc;
  g_span_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_span_type.tp_doc = "A strobe span: `with strobe.span(name) as s:`, s.start()/s.finish(), or a decorator.";
  g_span_type.tp_methods = span_methods;
  g_span_type.tp_getset = span_getset;
  g_span_type.tp_call = span_call;
  g_span_type.tp_repr = span_repr;
  if (PyType_Ready(&g_span_type) < 0) return false;
  g_token_type.tp_name = "strobe.SuspendToken";
  g_token_type.tp_basicsize = sizeof(TokenObject);
  g_token_type.tp_dealloc = token_dealloc;
  g_token_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_token_type.tp_doc = "Returned by Span.suspend(); strobe.resume(token) opens the next segment once.";
  g_token_type.tp_getset = token_getset;
  if (PyType_Ready(&g_token_type) < 0) return false;
  g_current = PyContextVar_New("strobe.current_span", nullptr);
  if (g_current == nullptr) return false;
  if (PyModule_AddObjectRef(module, "Span", reinterpret_cast<PyObject*>(&g_span_type)) < 0 ||
      PyModule_AddObjectRef(module, "SuspendToken", reinterpret_cast<PyObject*>(&g_token_type)) < 0 ||
      PyModule_AddObjectRef(module, "_current", g_current) < 0)
    return false;
  return PyModule_AddFunctions(module, module_functions) == 0;
}

}  // namespace strobe::python
