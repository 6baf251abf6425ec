#pragma once
// Hand-made strobe files for the tool tests: spans and traces built as values, written
// through the FileSink exactly as a recorder would hand them over.
//
//   std::vector<strobe::AssembledTrace> traces{...};
//   strobe::test::write_strobe(path, traces);   // one batch per trace, then the end frame

#include <strobe/serialize/writer.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace strobe::test {

inline SpanData make_span(std::uint64_t id, std::uint64_t parent, std::string name, std::int64_t start,
                          std::int64_t end, Kind kind = Kind::step, std::uint64_t thread = 7) {
  SpanData s;
  s.span_id = id;
  s.parent_id = parent;
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = start;
  s.end_ns = end;
  s.thread_id = thread;
  s.end_thread_id = thread;
  return s;
}

inline AssembledTrace make_trace(std::uint64_t hi, std::uint64_t lo, std::string root, std::vector<SpanData> spans) {
  AssembledTrace t;
  t.trace_id = TraceId{hi, lo};
  t.root_name = std::move(root);
  t.service_name = "tool-test";
  t.process_id = 77;
  t.spans = std::move(spans);
  return t;
}

// Writes the traces, each in its own batch, and closes the file cleanly.
inline void write_strobe(const std::string& path, const std::vector<AssembledTrace>& traces,
                         std::int64_t recorder_start_ns = 1'767'225'600'000'000'000) {
  serialize::FileSinkOptions options;
  options.path = path;
  serialize::FileSink sink(options);
  RecorderInfo info;
  info.service_name = "tool-test";
  info.host_name = "tool-host";
  info.process_id = 77;
  info.start_ns = recorder_start_ns;
  info.clock = "steady";
  info.ns_per_tick = 1.0;
  sink.open(info);
  for (const AssembledTrace& t : traces) {
    sink.consume(t);
    sink.flush();
  }
  sink.close();
}

}  // namespace strobe::test
