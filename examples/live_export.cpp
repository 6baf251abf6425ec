// Live export: an agent-shaped workload sent as it runs, over OTLP/HTTP, to an
// OpenTelemetry Collector (or Jaeger, Tempo, ... on port 4318), and a file beside it.
//
//   docker run -p 4318:4318 otel/opentelemetry-collector   # any OTLP/HTTP receiver
//   ./build/examples/strobe_live_export [--endpoint URL] [--traces N] [--json] [--gzip]
//
// The endpoint defaults to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT
// (+ /v1/traces), else http://127.0.0.1:4318/v1/traces; the other OTEL_* variables
// (headers, protocol, compression, service name, resource attributes) apply too. With no
// receiver listening it still runs: what it could not send is counted and said at the end.

#include <strobe/serialize/otlp_sink.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace {

void answer(int i) {
  auto run = strobe::trace("research-agent", {{"request", i}});
  {
    STROBE_SPAN(plan, "plan_steps", strobe::Kind::plan);
    plan.input("what changed in the last release?");
  }
  const strobe::Context ctx = strobe::current();
  std::vector<std::thread> tools;
  for (const char* source : {"search_web", "query_db"})
    tools.emplace_back([ctx, source] {
      strobe::ContextScope adopt(ctx);
      auto s = strobe::span(source, strobe::Kind::tool);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
  for (auto& t : tools) t.join();
  STROBE_SPAN(gen, "generate_answer", strobe::Kind::llm);
  gen.model("gpt-4o-mini").input("summarise the results").tokens({.input = 420, .output = 96});
  for (int token = 0; token < 16; ++token) STROBE_SPAN(step, "decode_token", strobe::Kind::step);
  gen.output("Three things changed: ...");
}

}  // namespace

int main(int argc, char** argv) {
  strobe::serialize::OtlpSinkOptions options;
  int traces = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
      options.endpoint = argv[++i];
    } else if (std::strcmp(argv[i], "--traces") == 0 && i + 1 < argc) {
      traces = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--json") == 0) {
      options.protocol = strobe::serialize::otlp::Protocol::json;
    } else if (std::strcmp(argv[i], "--gzip") == 0) {
      options.compression = strobe::serialize::otlp::Compression::gzip;
    } else {
      std::fprintf(stderr, "usage: %s [--endpoint URL] [--traces N] [--json] [--gzip]\n", argv[0]);
      return 2;
    }
  }
  options.flush_timeout = std::chrono::seconds(2);
  options.on_error = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  std::shared_ptr<strobe::serialize::OtlpSink> otlp;
  try {
    otlp = std::make_shared<strobe::serialize::OtlpSink>(options);  // a bad OTEL_* value throws here
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strobe_live_export: %s\n", e.what());
    return 2;
  }
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = "live.strobe"});
  {
    strobe::Recorder recorder({.service_name = "live-export-example", .sinks = {file, otlp}});
    for (int i = 0; i < traces; ++i) answer(i);
    recorder.flush();  // sends what is queued, waiting at most flush_timeout
  }
  const strobe::serialize::OtlpSink::Stats s = otlp->stats();
  std::printf("%s (%s, %s): %llu spans sent in %llu batches, %llu dropped, %llu not sent yet (dropped at exit), "
              "%llu retries; live.strobe has every span\n",
              otlp->options().endpoint.c_str(), strobe::serialize::otlp::to_string(*otlp->options().protocol),
              strobe::serialize::otlp::to_string(*otlp->options().compression),
              static_cast<unsigned long long>(s.spans_sent), static_cast<unsigned long long>(s.batches_sent),
              static_cast<unsigned long long>(s.spans_dropped), static_cast<unsigned long long>(s.queued_spans_now),
              static_cast<unsigned long long>(s.retries));
  return s.spans_sent == s.spans_queued ? 0 : 1;
}
