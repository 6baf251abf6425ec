// Records a small agent-shaped workload and prints what the recorder assembled.
#include <strobe/strobe.hpp>

#include <cstdio>
#include <thread>
#include <vector>

int main() {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Recorder recorder({.sinks = {sink}});
  {
    auto run = strobe::trace("rag-agent");
    STROBE_SPAN(plan, "analyze_query", strobe::Kind::plan);
    plan.input("what is strobe?").attr("k", 3);
    const strobe::Context ctx = strobe::current();
    std::vector<std::thread> workers;
    for (const char* source : {"database", "api", "cache"}) {
      workers.emplace_back([ctx, source] {
        strobe::ContextScope scope(ctx);
        auto s = strobe::span("fetch", strobe::Kind::retrieval, {{"source", source}});
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      });
    }
    for (auto& w : workers) w.join();
    STROBE_SPAN(gen, "generate", strobe::Kind::llm);
    gen.model("gpt-4").tokens({.input = 100, .output = 200, .cached_input = 50});
  }
  recorder.flush();
  for (const auto& t : sink->traces()) {
    std::printf("trace %s  %s  (%zu spans, %zu parallel groups)\n", t.trace_id.to_hex().c_str(),
                t.root_name.c_str(), t.spans.size(), t.groups.size());
    for (const auto& s : t.spans)
      std::printf("  %-10s %-14s %8.3f ms  %s%s\n", strobe::to_string(s.kind), s.name.c_str(),
                  double(s.duration_ns()) / 1e6, strobe::to_string(s.status),
                  s.group >= 0 ? "  (parallel)" : "");
  }
  const strobe::Stats st = recorder.stats();
  std::printf("recorded %llu spans, dropped %llu records, %llu traces\n",
              (unsigned long long)st.spans_recorded, (unsigned long long)st.records_dropped,
              (unsigned long long)st.traces_emitted);
}
