#pragma once
// A recorder's workload with every kind of record: attributes of each type, strings longer
// than a record and cut to max_string_bytes (256 in the tests that use it), a string that
// is not UTF-8, events, log lines, tags, tokens, errors, links, a custom kind, an exception,
// a chain of adjacent spans, a parallel group on worker threads, a suspended operation
// resumed on another thread, a one-shot span, and a root still open at a flush. For tests
// that compare what two paths make of the same work.

#include <strobe/strobe.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace strobe::test {

inline void record_every_kind(Recorder& rec) {
  using namespace strobe;
  {
    auto run = strobe::trace("rag-agent", {{"user", "ü-42"}, {"attempt", 2}});
    {
      STROBE_SPAN(plan, "analyze_query", Kind::plan);
      plan.input("what is strobe? 日本語 🚀").attr("k", 3).attr("temperature", 0.25).attr("stream", true);
      plan.event("retrieved", {{"docs", 5}, {"source", "index"}}).log("a log line");
      plan.tag("streaming").tag("beta");
      {
        STROBE_SPAN(gen, "generate", Kind::llm);
        gen.model("gpt-x").tokens({.input = 100, .output = 200, .cached_input = 30}).output("an answer");
        gen.attr("long", std::string(1000, 'x'));  // cut to max_string_bytes: truncated
        gen.attr("bad_utf8", std::string("ok\xff\xfe", 4));
      }
      {
        STROBE_SPAN(tool, "fetch", Kind::tool);
        tool.fail("timeout after 3 s");
        tool.link(run.context()).link(strobe::Context::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
      }
      {
        STROBE_SPAN(tool, "parse", Kind::tool);
        tool.error("bad json", "{\"at\": 17}");
      }
      {
        auto custom = strobe::span("rerank", "my-kind");
        custom.attr("n", -7);
      }
      try {
        STROBE_SPAN(thrower, "throws", Kind::action);
        throw std::runtime_error("boom");
      } catch (const std::runtime_error&) {
      }
    }
    {
      STROBE_SPAN(step, "decode_step", Kind::step);
      step.next(STROBE_NAME("attention")).next(STROBE_NAME("mlp"));
    }
    // Parallel children from worker threads: a group.
    const Context ctx = strobe::current();
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w) {
      workers.emplace_back([ctx, w] {
        ContextScope scope(ctx);
        auto s = strobe::span(w == 0 ? "worker_a" : w == 1 ? "worker_b" : "worker_c", Kind::retrieval);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      });
    }
    for (auto& t : workers) t.join();
    // A suspended operation resumed on another thread.
    SuspendToken token;
    {
      auto op = strobe::span("wait_for_user", Kind::action);
      token = op.suspend();
    }
    std::thread([token] {
      auto again = strobe::resume(token);
      again.attr("resumed", true);
    }).join();
    strobe::record_span("one_shot", Kind::tool, std::chrono::system_clock::now() - std::chrono::milliseconds(5),
                        std::chrono::milliseconds(4), Status::failed, {{"exit", 1}});
  }
  // An open span at flush: handed over as an incomplete part, then finished.
  auto open_root = strobe::trace("long-running");
  {
    STROBE_SPAN(done, "finished_child", Kind::step);
  }
  rec.flush();
  open_root.attr("after_flush", 1);
  open_root.finish();
  rec.flush();
}

}  // namespace strobe::test
