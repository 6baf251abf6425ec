// Context across a C++20 coroutine that suspends on one thread and resumes on another:
// captured with current() before the suspension and adopted with ContextScope after it,
// the span begun after resumption is a child of the original span.

#include <gtest/gtest.h>

#include <algorithm>
#include <coroutine>
#include <exception>
#include <latch>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "render.hpp"
#include "strobe/coroutine.hpp"
#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::Kind;
using strobe::SpanData;
using strobe::test::render_tree;

// A fire-and-forget task: runs eagerly up to its first suspension, counts the latch it was
// given down when the body has finished, and is destroyed by its owner.
class Task {
 public:
  struct promise_type {
    template <class... Rest>
    explicit promise_type(std::latch* d, Rest&&...) : done(d) {}
    std::latch* done;
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct Signal {
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          h.promise().done->count_down();
        }
        void await_resume() noexcept {}
      };
      return Signal{};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };

  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  Task(Task&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  Task& operator=(Task&&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

// Suspends the coroutine and resumes it on a new thread, stored in *worker.
struct ResumeOnNewThread {
  std::thread* worker;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    std::thread* out = worker;  // read before the frame may run on, on the new thread
    *out = std::thread([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

Task fetch_then_summarize(std::latch* /*done*/, std::thread* worker, bool adopt) {
  const strobe::Context ctx = strobe::current();
  {
    auto fetch = strobe::span("fetch", Kind::retrieval);
  }
  co_await ResumeOnNewThread{worker};
  if (adopt) {
    strobe::ContextScope scope(ctx);
    auto summarize = strobe::span("summarize", Kind::llm);
    auto cite = strobe::span("cite", Kind::step);
  } else {
    auto summarize = strobe::span("summarize", Kind::llm);
  }
}

const SpanData* find_span(const AssembledTrace& t, std::string_view name) {
  for (const SpanData& s : t.spans)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(Coroutine, SpanAfterResumptionOnAnotherThreadIsAChildOfTheOriginal) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  std::uint64_t step_id = 0;
  {
    auto run = strobe::trace("coro-agent");
    {
      auto step = strobe::span("research", Kind::plan);
      step_id = step.span_id();
      std::latch done(1);
      std::thread worker;
      Task task = fetch_then_summarize(&done, &worker, /*adopt=*/true);
      EXPECT_EQ(strobe::current().span_id(), step_id);  // the suspension left it alone
      done.wait();
      worker.join();
    }
  }
  recorder.flush();

  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  EXPECT_EQ(render_tree(t),
            "agent coro-agent\n"
            "  plan research\n"
            "    retrieval fetch\n"
            "    llm summarize\n"
            "      step cite\n");
  const SpanData* step = find_span(t, "research");
  const SpanData* fetch = find_span(t, "fetch");
  const SpanData* summarize = find_span(t, "summarize");
  ASSERT_TRUE(step && fetch && summarize);
  EXPECT_EQ(summarize->parent_id, step_id);
  EXPECT_EQ(fetch->thread_id, step->thread_id);
  EXPECT_NE(summarize->thread_id, step->thread_id);
  EXPECT_EQ(find_span(t, "cite")->thread_id, summarize->thread_id);
  EXPECT_LE(fetch->end_ns, summarize->start_ns);
  EXPECT_LE(summarize->end_ns, step->end_ns);
}

// Without adopting the captured context, the resumed coroutine's thread has none: its
// span starts a trace of its own.
TEST(Coroutine, ContextDoesNotFollowAResumptionUnlessAdopted) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  {
    auto step = strobe::span("research", Kind::plan);
    std::latch done(1);
    std::thread worker;
    Task task = fetch_then_summarize(&done, &worker, /*adopt=*/false);
    done.wait();
    worker.join();
  }
  recorder.flush();

  std::vector<std::string> rendered;
  for (const AssembledTrace& t : sink->traces()) rendered.push_back(render_tree(t));
  std::sort(rendered.begin(), rendered.end());
  EXPECT_EQ(rendered, (std::vector<std::string>{"llm summarize\n",
                                                "plan research\n"
                                                "  retrieval fetch\n"}));
}

// CoContext: the coroutine's open span travels with it across two resumptions on new
// threads; the thread it left is not left inside that span, and each resuming thread gets
// its own context back when the coroutine leaves it.
Task carried(std::latch* /*done*/, std::thread* worker, std::thread* second,
             std::uint64_t* resumed_thread_ctx) {
  strobe::CoContext co;
  auto fetch = strobe::span("fetch", Kind::retrieval);
  co_await co.carry(ResumeOnNewThread{worker});
  {
    auto parse = strobe::span("parse");  // a child of fetch, on the worker
  }
  co_await co.carry(ResumeOnNewThread{second});
  *resumed_thread_ctx = 1;
  {
    auto summarize = strobe::span("summarize", Kind::llm);  // still under fetch
  }
  fetch.finish();  // ended on a third thread
  auto cite = strobe::span("cite");  // fetch has ended: under fetch's parent
}

TEST(Coroutine, CoContextCarriesTheOpenSpanAcrossResumptions) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  std::uint64_t step_id = 0, resumed = 0;
  {
    auto run = strobe::trace("coro-agent");
    {
      auto step = strobe::span("research", Kind::plan);
      step_id = step.span_id();
      std::latch done(1);
      std::thread worker, second;
      {
        Task task = carried(&done, &worker, &second, &resumed);
        // Suspended: this thread is back in its own context, not inside fetch.
        EXPECT_EQ(strobe::current().span_id(), step_id);
        auto meanwhile = strobe::span("meanwhile");
        EXPECT_EQ(meanwhile.parent_id(), step_id);
        done.wait();
      }
      worker.join();
      second.join();
    }
  }
  recorder.flush();
  EXPECT_EQ(resumed, 1u);
  const std::vector<AssembledTrace> traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  std::string tree = render_tree(t);
  // meanwhile and fetch overlap (a parallel group); the rest nests as written.
  EXPECT_NE(tree.find("retrieval fetch\n      span parse\n      llm summarize\n"), std::string::npos) << tree;
  EXPECT_NE(tree.find("span meanwhile\n"), std::string::npos) << tree;
  const SpanData* fetch = find_span(t, "fetch");
  const SpanData* cite = find_span(t, "cite");
  const SpanData* meanwhile = find_span(t, "meanwhile");
  ASSERT_TRUE(fetch && cite && meanwhile);
  EXPECT_EQ(cite->parent_id, step_id);
  EXPECT_EQ(meanwhile->parent_id, step_id);
  EXPECT_EQ(find_span(t, "parse")->parent_id, fetch->span_id);
  EXPECT_EQ(find_span(t, "summarize")->parent_id, fetch->span_id);
  EXPECT_NE(find_span(t, "parse")->thread_id, fetch->thread_id);
}

}  // namespace
