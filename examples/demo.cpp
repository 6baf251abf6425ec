// strobe's demo: a research agent around a small transformer, traced end to end.
//
//   research-agent (agent)
//     plan_steps (plan)
//     ‖ search_web / query_db / read_file (tool, on a thread pool: one parallel group)
//     ‖ fetch_url (tool, throws: recorded as failed)
//     generate_answer (llm)  segment 0: decode, then suspends while a tool runs
//     calculator (tool)      runs while the llm waits
//     generate_answer (llm)  segment 1: resumes, decodes the rest
//       decode_token (step) -> attention / mlp per layer (chained spans)
//
// Usage: strobe_demo [OUT.strobe] [--runs N]

#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <string>
#include <thread>

#include "tiny_model.hpp"

namespace {

// A fixed pool of workers; tasks adopt the submitter's context so their spans nest
// under the span that submitted them.
class ThreadPool {
 public:
  explicit ThreadPool(int n) {
    for (int i = 0; i < n; ++i) {
      workers_.emplace_back([this, i] {
        strobe::set_thread_name("tool-pool-" + std::to_string(i + 1));  // the exports' track names
        strobe::prepare_thread();  // the first tool call should not pay for the ring
        loop();
      });
    }
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  std::future<void> submit(std::function<void()> fn) {
    auto task = std::make_shared<std::packaged_task<void()>>(
        [ctx = strobe::current(), fn = std::move(fn)] {
          strobe::ContextScope scope(ctx);
          fn();
        });
    auto fut = task->get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.push([task] { (*task)(); });
    }
    cv_.notify_one();
    return fut;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop();
      }
      job();
    }
  }
  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// A tool mostly waits on I/O (network, database): a wait of `us` microseconds, then a
// little real work on the "response".
std::uint64_t io_bound(int us) {
  std::this_thread::sleep_for(std::chrono::microseconds(us));
  std::uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 20000; ++i) h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ull;
  return h;
}

// CPU work of about `us` microseconds.
std::uint64_t busy_work(int us) {
  std::uint64_t h = 1469598103934665603ull;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until)
    for (int i = 0; i < 256; ++i) h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ull;
  return h;
}

void tool(const char* name, const std::string& input, int us, bool fails = false) {
  auto t = strobe::span(name, strobe::Kind::tool);
  t.input(input).attr("latency_budget_ms", 50);
  const std::uint64_t h = io_bound(us);
  if (fails) throw std::runtime_error(std::string(name) + ": upstream returned 502");
  t.output("result " + std::to_string(h % 1000)).attr("rows", static_cast<std::int64_t>((h >> 7) % 97 + input.size()));
}

std::vector<int> generate(demo::TinyModel& model, std::vector<int>& context, int n) {
  std::vector<int> out;
  int tok = context.empty() ? 1 : context.back();
  for (int i = 0; i < n; ++i) {
    tok = model.decode<true>(tok);
    out.push_back(tok);
    context.push_back(tok);
  }
  return out;
}

void run_agent(demo::TinyModel& model, ThreadPool& pool, const std::string& question, int run) {
  auto agent = strobe::trace("research-agent", {{"run", run}, {"user", "demo"}});
  agent.input(question).tag("demo");
  {
    auto plan = strobe::span("plan_steps", strobe::Kind::plan);
    plan.input(question).log("splitting the question into lookups");
    busy_work(300);
    plan.output("search_web, query_db, read_file, fetch_url; then answer");
  }
  // Fan out: four tools on the pool; one fails with an exception.
  std::vector<std::future<void>> calls;
  calls.push_back(pool.submit([&] { tool("search_web", question, 1500); }));
  calls.push_back(pool.submit([&] { tool("query_db", "SELECT * FROM facts", 1200); }));
  calls.push_back(pool.submit([&] { tool("read_file", "notes.md", 900); }));
  calls.push_back(pool.submit([&] { tool("fetch_url", "https://example.invalid", 700, /*fails=*/true); }));
  int failures = 0;
  for (auto& c : calls) {
    try {
      c.get();
    } catch (const std::exception& e) {
      ++failures;
      agent.log(std::string("tool failed: ") + e.what());
    }
  }
  agent.attr("tool_failures", failures);

  // The model answers; midway it needs a calculation, waits for the tool, resumes.
  model.reset();
  std::vector<int> context = demo::encode(question.substr(0, 16));
  auto llm = strobe::span("generate_answer", strobe::Kind::llm);
  llm.model(model.config().name).input(question).attr("temperature", 0.0);
  const auto first = generate(model, context, 24);
  llm.event("tool_call", {{"tool", "calculator"}, {"after_tokens", 24}});
  strobe::SuspendToken waiting = llm.suspend();
  pool.submit([] { tool("calculator", "17 * 23", 800); }).get();
  auto resumed = strobe::resume(waiting);
  const auto second = generate(model, context, 24);
  resumed.output(demo::decode_text(first) + " " + demo::decode_text(second));
  resumed.tokens({.input = 16, .output = 48, .cached_input = 8});
  resumed.finish();
  agent.output("answer ready");
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "demo.strobe";
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      path = argv[i];
    }
  }
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  strobe::Stats stats;
  {
    strobe::Recorder recorder({.service_name = "strobe-demo", .sinks = {file}});
    strobe::set_thread_name("agent");
    demo::TinyModel model(demo::ModelConfig{});
    ThreadPool pool(3);
    const char* questions[] = {"what limits decode throughput on a 2-core machine?",
                               "which layer dominates latency?", "is the kv cache worth it?"};
    for (int r = 0; r < runs; ++r) run_agent(model, pool, questions[r % 3], r);
    recorder.flush();
    stats = recorder.stats();
  }
  file->close();
  const auto c = file->counters();
  std::printf("recorded %llu spans (%llu dropped) into %s: %llu traces, %llu bytes\n",
              static_cast<unsigned long long>(stats.spans_recorded), static_cast<unsigned long long>(stats.spans_dropped),
              path.c_str(), static_cast<unsigned long long>(c.traces), static_cast<unsigned long long>(c.bytes));
  return 0;
}
