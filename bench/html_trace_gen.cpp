// Writes a large strobe file of agent-shaped traces, for measuring the HTML page
// (bench/html_bench.mjs) on a file whose size is chosen, not recorded.
//
// Each trace is a request handled on one of 4 request threads: a plan with steps, then
// turns; a turn is an LLM call that decodes tokens, suspends while a parallel group of
// tools runs on the request thread's 5 workers (each tool: an HTTP call, parsing,
// fields), and resumes on one of those workers to decode the rest (a chain of two
// segments). 24 threads in all; with --shared-workers, the 4 request threads share one
// pool of 8 workers instead (12 threads), so that traces overlap on a worker's lane.
// Trace sizes spread from ~60 to ~6,000 spans. With --lossy, some traces carry drop counts and some spans are
// flagged as having lost records. Threads are named (request-N, tool-worker-N).
// Deterministic for a seed.
//
// Usage: strobe_html_trace_gen --spans N --out PATH [--seed S] [--lossy] [--shared-workers]

#include <strobe/serialize/writer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace strobe;

constexpr std::uint64_t kRequestThreads[] = {31001, 31002, 31003, 31004};
constexpr std::uint64_t kWorkersPerRequest = 5;  // request thread 3100r's workers: 31r01 .. 31r05
constexpr std::uint64_t kSharedWorkers = 8;  // --shared-workers: 31001 .. 31008 for every request thread
bool g_shared_workers = false;
// The k-th worker a request thread hands tools to (k modulo the pool).
std::uint64_t worker_thread(std::uint64_t request_thread, std::uint64_t k) {
  if (g_shared_workers) return 31101 + k % kSharedWorkers;
  return 31000 + (request_thread - 31000) * 100 + 1 + k % kWorkersPerRequest;
}
constexpr std::int64_t kUs = 1000;

class Generator {
 public:
  Generator(std::uint64_t seed, bool lossy) : rng_(seed), lossy_(lossy) {}

  // One trace starting at t on request thread `thread`; returns its end time.
  AssembledTrace next(std::int64_t t, std::uint64_t thread, std::size_t budget) {
    AssembledTrace tr;
    tr.trace_id = TraceId{rng_() | 1, rng_() | 1};
    tr.service_name = "agent-service";
    tr.process_id = 4242;
    tr.root_name = "handle_request";
    trace_ = &tr;
    const std::size_t root = add(0, "handle_request", Kind::agent, t, thread);
    tr.spans[root].flags |= kSpanTraceRoot;
    AttrValue user;
    user.type = AttrValue::Type::string;
    user.s = "u-" + std::to_string(rng_() % 1000);
    tr.spans[root].attrs.push_back(Attribute{"user", user});
    std::int64_t now = t + 20 * kUs;
    // Plan.
    const std::size_t plan = add(tr.spans[root].span_id, "plan", Kind::plan, now, thread);
    for (int k = 0, steps = uniform(2, 5); k < steps; ++k) {
      const std::size_t s = add(tr.spans[plan].span_id, "plan_step", Kind::step, now + 5 * kUs, thread);
      now += uniform(20, 80) * kUs;
      end(s, now);
    }
    now += 10 * kUs;
    end(plan, now);
    // Turns until the budget is spent.
    for (int turn = 0; tr.spans.size() < budget; ++turn) now = do_turn(tr.spans[root].span_id, now, thread, turn);
    now += 15 * kUs;
    end(root, now);
    if (lossy_ && rng_() % 50 == 0) {
      tr.drops_since_previous = DropCounts{rng_() % 200 + 1, rng_() % 800 + 4, 0};
      for (SpanData& s : tr.spans)
        if (rng_() % 100 == 0) s.flags |= kSpanLostRecords;
    }
    // Thread names, as a recorder keeps them (set_thread_name).
    std::vector<std::uint64_t> used;
    for (const SpanData& s : tr.spans)
      if (std::find(used.begin(), used.end(), s.thread_id) == used.end()) used.push_back(s.thread_id);
    for (const std::uint64_t id : used)
      tr.thread_names.push_back(ThreadName{id, (id % 100 == id % 1000 ? "request-" : "tool-worker-") + std::to_string(id % 1000)});
    trace_ = nullptr;
    return tr;
  }

 private:
  std::int64_t do_turn(std::uint64_t parent, std::int64_t now, std::uint64_t thread, int turn) {
    AssembledTrace& tr = *trace_;
    const std::size_t ts = add(parent, "turn", Kind::step, now, thread);
    AttrValue number;
    number.i = turn;
    tr.spans[ts].attrs.push_back(Attribute{"turn", number});
    const std::uint64_t turn_id = tr.spans[ts].span_id;
    now += 5 * kUs;
    // The LLM's first segment.
    const std::size_t llm0 = add(turn_id, "generate", Kind::llm, now, thread);
    tr.spans[llm0].model = "tiny-llm";
    tr.spans[llm0].has_tokens = true;
    tr.spans[llm0].tokens = TokenUsage{.input = 200 + turn * 40, .output = 30, .cached_input = 64};
    now = decode(tr.spans[llm0].span_id, now + 10 * kUs, thread, uniform(8, 40));
    end(llm0, now);
    tr.spans[llm0].flags |= kSpanSuspended;
    tr.spans[llm0].segment_of = tr.spans[llm0].span_id;
    // The tools, in parallel on worker threads.
    const int tools = uniform(2, 5);
    ParallelGroup g;
    g.id = static_cast<std::uint32_t>(tr.groups.size());
    g.parent_id = turn_id;
    g.start_ns = now + 20 * kUs;
    std::int64_t group_end = g.start_ns;
    static const char* const kTools[] = {"search_kb", "lookup_user", "fetch_policy", "run_sql", "call_api"};
    const std::uint64_t first_worker = rng_() % (g_shared_workers ? kSharedWorkers : kWorkersPerRequest);
    for (int k = 0; k < tools; ++k) {
      const std::uint64_t worker = worker_thread(thread, first_worker + k);
      const std::int64_t t0 = g.start_ns + k * 3 * kUs;
      const std::size_t tool = add(turn_id, kTools[rng_() % std::size(kTools)], Kind::tool, t0, worker);
      tr.spans[tool].group = static_cast<std::int32_t>(g.id);
      std::int64_t tn = t0 + 8 * kUs;
      const std::size_t http = add(tr.spans[tool].span_id, "http_get", Kind::retrieval, tn, worker);
      tn += uniform(100, 1500) * kUs;
      end(http, tn);
      const std::size_t parse = add(tr.spans[tool].span_id, "parse", Kind::step, tn + 2 * kUs, worker);
      tn += 4 * kUs;
      for (int f = 0, fields = uniform(2, 12); f < fields; ++f) {
        const std::size_t fs = add(tr.spans[parse].span_id, "field", Kind::span, tn, worker);
        tn += uniform(2, 20) * kUs;
        end(fs, tn);
      }
      tn += 3 * kUs;
      end(parse, tn);
      tn += 5 * kUs;
      if (rng_() % 40 == 0) {
        tr.spans[tool].status = Status::failed;
        tr.spans[tool].error_message = "upstream returned 502";
      }
      end(tool, tn);
      g.members.push_back(tr.spans[tool].span_id);
      group_end = std::max(group_end, tn);
    }
    g.end_ns = group_end;
    g.peak_concurrency = static_cast<std::uint32_t>(tools);
    tr.groups.push_back(std::move(g));
    // The LLM resumes on a worker, after the tools.
    const std::uint64_t resumer = worker_thread(thread, rng_());
    now = group_end + 30 * kUs;
    const std::size_t llm1 = add(turn_id, "generate", Kind::llm, now, resumer);
    tr.spans[llm1].model = "tiny-llm";
    tr.spans[llm1].segment_of = tr.spans[llm0].span_id;
    tr.spans[llm1].segment_index = 1;
    now = decode(tr.spans[llm1].span_id, now + 10 * kUs, resumer, uniform(8, 40));
    end(llm1, now);
    tr.chains.push_back(SegmentChain{.first_span_id = tr.spans[llm0].span_id,
                                     .segments = {tr.spans[llm0].span_id, tr.spans[llm1].span_id},
                                     .waited_ns = tr.spans[llm1].start_ns - tr.spans[llm0].end_ns});
    now += 5 * kUs;
    end(ts, now);
    return now + 10 * kUs;
  }

  std::int64_t decode(std::uint64_t parent, std::int64_t now, std::uint64_t thread, int tokens) {
    for (int k = 0; k < tokens; ++k) {
      const std::size_t s = add(parent, "decode_token", Kind::step, now, thread);
      now += uniform(15, 40) * kUs;
      end(s, now);
      now += 2 * kUs;
    }
    return now;
  }

  std::size_t add(std::uint64_t parent, const char* name, Kind kind, std::int64_t start, std::uint64_t thread) {
    SpanData s;
    s.span_id = (std::uint64_t{0x5eed} << 48) | ++next_id_;
    s.parent_id = parent;
    s.name = name;
    s.kind = kind;
    s.start_ns = start;
    s.end_ns = start;
    s.thread_id = thread;
    s.end_thread_id = thread;
    trace_->spans.push_back(std::move(s));
    return trace_->spans.size() - 1;
  }
  void end(std::size_t i, std::int64_t t) { trace_->spans[i].end_ns = t; }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::mt19937_64 rng_;
  bool lossy_;
  AssembledTrace* trace_ = nullptr;
  std::uint64_t next_id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t spans = 1'000'000;
  std::uint64_t seed = 1;
  bool lossy = false;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--spans" && i + 1 < argc) spans = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--lossy") lossy = true;
    else if (a == "--shared-workers") g_shared_workers = true;
    else {
      std::fprintf(stderr, "usage: %s --spans N --out PATH [--seed S] [--lossy] [--shared-workers]\n", argv[0]);
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "usage: %s --spans N --out PATH [--seed S] [--lossy] [--shared-workers]\n", argv[0]);
    return 2;
  }
  serialize::FileSinkOptions options;
  options.path = out;
  serialize::FileSink sink(options);
  RecorderInfo info;
  info.service_name = "agent-service";
  info.host_name = "bench-host";
  info.process_id = 4242;
  info.start_ns = 1'767'225'600'000'000'000;
  info.clock = "steady";
  info.ns_per_tick = 1.0;
  sink.open(info);
  Generator gen(seed, lossy);
  std::mt19937_64 sizes(seed + 1);
  std::int64_t free_at[std::size(kRequestThreads)];
  for (auto& f : free_at) f = info.start_ns + 1'000'000;
  std::size_t written = 0, traces = 0;
  while (written < spans) {
    std::size_t r = 0;
    for (std::size_t k = 1; k < std::size(kRequestThreads); ++k)
      if (free_at[k] < free_at[r]) r = k;
    // Log-uniform sizes: many small traces, a few large ones.
    const double u = std::uniform_real_distribution<double>(0, 1)(sizes);
    std::size_t budget = static_cast<std::size_t>(60.0 * std::pow(100.0, u));
    budget = std::min(budget, spans - written);
    const AssembledTrace t = gen.next(free_at[r], kRequestThreads[r], budget);
    free_at[r] = t.spans.front().end_ns + 200 * kUs;
    written += t.spans.size();
    ++traces;
    sink.consume(t);
  }
  sink.close();
  std::printf("wrote %zu spans in %zu traces to %s\n", written, traces, out.c_str());
  return 0;
}
