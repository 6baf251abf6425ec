#pragma once
// C++20 coroutines that suspend on one thread and resume on another: CoContext carries the
// coroutine's current context (its open span) across every co_await it wraps, and gives
// each thread back the context it had before the coroutine ran on it.
//
//   Task fetch_and_summarize() {
//     strobe::CoContext co;                  // first, before any span of the coroutine
//     auto fetch = strobe::span("fetch", strobe::Kind::retrieval);
//     auto page = co_await co.carry(http_get(url));    // may resume on another thread
//     auto parse = strobe::span("parse");              // a child of fetch, wherever it runs
//   }
//
// Without it, the thread that began `fetch` keeps it as its current span while the
// coroutine waits (its other work would become fetch's children), and the resuming thread
// knows nothing of it (parse would begin a trace of its own).
//
// On suspension the coroutine's context is taken from the thread and the thread's own
// (what it had when the coroutine last started running there) is put back; on resumption
// the resuming thread's context is kept aside and the coroutine's installed; when the
// CoContext is destroyed (the coroutine body ends) the running thread gets its own back.

#include <coroutine>
#include <type_traits>
#include <utility>

#include "strobe/span.hpp"

namespace strobe {

#if !defined(STROBE_DISABLE)

class CoContext {
 public:
  CoContext() noexcept : thread_(current()) {}
  ~CoContext() { (void)detail::exchange_current(thread_); }
  CoContext(const CoContext&) = delete;
  CoContext& operator=(const CoContext&) = delete;

  // Wraps an awaitable (or awaiter); co_await the result in its place.
  template <class A>
  [[nodiscard]] auto carry(A&& awaitable) noexcept(std::is_nothrow_constructible_v<std::decay_t<A>, A&&>) {
    return Carried<std::decay_t<A>>{*this, std::forward<A>(awaitable)};
  }

 private:
  template <class A>
  static decltype(auto) awaiter_of(A& a) {
    if constexpr (requires { a.operator co_await(); }) {
      return a.operator co_await();
    } else if constexpr (requires { operator co_await(a); }) {
      return operator co_await(a);
    } else {
      return (a);
    }
  }

  template <class A>
  struct Carried {
    CoContext& co;
    A awaitable;
    decltype(awaiter_of(std::declval<A&>())) inner = awaiter_of(awaitable);

    bool await_ready() { return inner.await_ready(); }
    template <class Promise>
    auto await_suspend(std::coroutine_handle<Promise> h) {
      // First: once the inner await_suspend runs, the coroutine may resume elsewhere at once.
      co.coroutine_ = detail::exchange_current(co.thread_);
      return inner.await_suspend(h);
    }
    decltype(auto) await_resume() {
      co.thread_ = detail::exchange_current(co.coroutine_);
      return inner.await_resume();
    }
  };

  Context thread_;     // the running thread's own context, given back when the coroutine leaves it
  Context coroutine_;  // the coroutine's, while it is suspended
};

#else  // STROBE_DISABLE: the same API, no effect.

class CoContext {
 public:
  CoContext() noexcept = default;
  CoContext(const CoContext&) = delete;
  CoContext& operator=(const CoContext&) = delete;
  template <class A>
  [[nodiscard]] A&& carry(A&& awaitable) noexcept {
    return std::forward<A>(awaitable);
  }
};

#endif

}  // namespace strobe
