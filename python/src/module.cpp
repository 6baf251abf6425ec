// strobe._strobe: the recorder, the sinks and the trace reader for Python (pybind11);
// the span API itself is in span_object.cpp.
//
// The GIL: a Recorder's start, flush and close wait for the drainer and the sink thread,
// and a CallbackSink calls Python from the sink thread, so each of them runs with the GIL
// released. Spans never wait for either (Recorder(overflow="wait") with a CallbackSink
// could, and is refused).

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <strobe/recorder.hpp>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#if defined(STROBE_PYTHON_OTLP)
#include <strobe/serialize/otlp.hpp>
#include <strobe/serialize/otlp_sink.hpp>
#endif
#include <strobe/sink.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "span_object.hpp"

namespace py = pybind11;

namespace strobe::python {
namespace {

py::object hex_or_none(std::uint64_t id) {
  if (id == 0) return py::none();
  return py::str(to_hex(id));
}

py::object attr_value(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: return py::int_(v.i);
    case AttrValue::Type::f64: return py::float_(v.d);
    case AttrValue::Type::boolean: return py::bool_(v.i != 0);
    case AttrValue::Type::string: break;
  }
  return py::str(v.s);
}

py::dict attr_dict(const std::vector<Attribute>& attrs) {
  py::dict d;
  for (const Attribute& a : attrs) d[py::str(a.key)] = attr_value(a.value);
  return d;
}

// A trace as plain Python values (strobe.Trace wraps it): ids as hex, times in ns.
py::dict trace_dict(const AssembledTrace& t) {
  py::list spans;
  for (const SpanData& s : t.spans) {
    py::list events;
    for (const SpanEvent& e : s.events) {
      py::dict ev;
      ev["name"] = e.name;
      ev["time_ns"] = e.time_ns;
      ev["attributes"] = attr_dict(e.attrs);
      events.append(ev);
    }
    py::list links;
    for (const SpanLink& l : s.links) links.append(py::make_tuple(l.trace_id.to_hex(), to_hex(l.span_id)));
    py::dict d;
    d["span_id"] = to_hex(s.span_id);
    d["parent_id"] = hex_or_none(s.parent_id);
    d["name"] = s.name;
    d["kind"] = s.kind == Kind::custom ? s.kind_name : std::string(to_string(s.kind));
    d["start_ns"] = s.start_ns;
    d["end_ns"] = s.end_ns;
    d["status"] = std::string(to_string(s.status));
    d["error_message"] = s.error_message;
    d["error_data"] = s.error_data;
    d["input"] = s.input;
    d["output"] = s.output;
    d["model"] = s.model;
    d["tags"] = s.tags;
    d["tokens"] = s.has_tokens ? py::object(py::make_tuple(s.tokens.input, s.tokens.output, s.tokens.cached_input))
                               : py::object(py::none());
    d["attributes"] = attr_dict(s.attrs);
    d["events"] = events;
    d["links"] = links;
    d["thread_id"] = s.thread_id;
    d["end_thread_id"] = s.end_thread_id;
    d["segment_of"] = hex_or_none(s.segment_of);
    d["segment_index"] = s.segment_index;
    d["group"] = s.group;
    d["flags"] = s.flags;
    spans.append(d);
  }
  py::list groups;
  for (const ParallelGroup& g : t.groups) {
    py::list members;
    for (std::uint64_t m : g.members) members.append(to_hex(m));
    py::dict d;
    d["parent_id"] = hex_or_none(g.parent_id);
    d["members"] = members;
    d["start_ns"] = g.start_ns;
    d["end_ns"] = g.end_ns;
    d["peak_concurrency"] = g.peak_concurrency;
    groups.append(d);
  }
  py::list chains;
  for (const SegmentChain& c : t.chains) {
    py::list segments;
    for (std::uint64_t m : c.segments) segments.append(to_hex(m));
    py::dict d;
    d["first_span_id"] = to_hex(c.first_span_id);
    d["segments"] = segments;
    d["waited_ns"] = c.waited_ns;
    chains.append(d);
  }
  py::dict d;
  d["trace_id"] = t.trace_id.to_hex();
  d["root_name"] = t.root_name;
  d["service_name"] = t.service_name;
  d["part"] = t.part;
  d["partial"] = t.partial;
  d["spans"] = spans;
  d["groups"] = groups;
  d["chains"] = chains;
  return d;
}

py::list trace_list(const std::vector<AssembledTrace>& traces) {
  py::list out;
  for (const AssembledTrace& t : traces) out.append(trace_dict(t));
  return out;
}

// A Python callable held by a sink: released with the GIL, whichever thread drops it.
struct PyCallable {
  py::object fn;
  explicit PyCallable(py::object f) : fn(std::move(f)) {}
  ~PyCallable() {
    py::gil_scoped_acquire gil;
    fn = py::object();
  }
};

class PyRecorder {
 public:
  PyRecorder(std::optional<std::string> path, std::string service_name,
             std::vector<std::shared_ptr<Sink>> sinks, std::size_t ring_capacity, const std::string& overflow,
             double drain_interval_ms, std::size_t partial_trace_spans, bool crash_flush,
             std::size_t max_string_bytes, const std::string& assembly) {
    Config config;
    config.service_name = std::move(service_name);
    config.ring_capacity = ring_capacity;
    if (overflow == "wait") config.overflow = OverflowPolicy::wait;
    else if (overflow != "drop") throw py::value_error("overflow must be 'drop' or 'wait'");
    config.drain_interval = std::chrono::microseconds(static_cast<std::int64_t>(drain_interval_ms * 1000));
    config.partial_trace_spans = partial_trace_spans;
    config.crash_flush = crash_flush;
    config.max_string_bytes = max_string_bytes;
    if (assembly == "deferred") config.assembly = Assembly::deferred;
    else if (assembly == "in_process") config.assembly = Assembly::in_process;
    else if (assembly != "automatic") throw py::value_error("assembly must be 'automatic', 'in_process' or 'deferred'");
    for (const auto& s : sinks) {
      if (s == nullptr) throw py::value_error("a sink is None");
      // The wait policy makes a recording thread, holding the GIL, wait for the drainer,
      // which waits for the sink thread, which waits for the GIL.
      if (config.overflow == OverflowPolicy::wait && dynamic_cast<CallbackSink*>(s.get()) != nullptr)
        throw py::value_error("overflow='wait' with a CallbackSink could deadlock on the GIL: use a MemorySink");
    }
    if (path) {
      serialize::FileSinkOptions file;
      file.path = *path;
      sinks.push_back(std::make_shared<serialize::FileSink>(std::move(file)));
    }
    config.sinks = std::move(sinks);
    py::gil_scoped_release release;
    recorder_ = std::make_unique<Recorder>(std::move(config));
    assembly_ = to_string(recorder_->config().assembly);
  }
  ~PyRecorder() { close(); }

  void flush() {
    if (recorder_ == nullptr) return;
    py::gil_scoped_release release;
    recorder_->flush();
  }
  void close() {
    std::unique_ptr<Recorder> r = std::move(recorder_);
    if (r == nullptr) return;
    py::gil_scoped_release release;
    r.reset();
  }
  [[nodiscard]] bool closed() const { return recorder_ == nullptr; }
  // Where traces are assembled: "deferred" or "in_process" (what the Recorder took).
  [[nodiscard]] std::string assembly() const { return assembly_; }

  py::dict stats() const {
    py::dict d;
    if (recorder_ == nullptr) return d;
    const Stats s = recorder_->stats();
    d["spans_recorded"] = s.spans_recorded;
    d["spans_dropped"] = s.spans_dropped;
    d["records_dropped"] = s.records_dropped;
    d["spans_assembled"] = s.spans_assembled;
    d["traces_emitted"] = s.traces_emitted;
    d["misuse"] = s.misuse;
    d["sink_errors"] = s.sink_errors;
    d["sink_spans_dropped"] = s.sink_spans_dropped;
    d["drainer_cpu_ns"] = s.drainer_cpu_ns;
    d["sink_cpu_ns"] = s.sink_cpu_ns;
    return d;
  }

 private:
  std::unique_ptr<Recorder> recorder_;
  std::string assembly_;
};

}  // namespace
}  // namespace strobe::python

PYBIND11_MODULE(_strobe, m) {
  using namespace strobe;
  using namespace strobe::python;
  m.doc() = "strobe's extension module; use the package strobe";

  py::class_<Sink, std::shared_ptr<Sink>>(m, "Sink", "Where assembled traces go (runs on the recorder's sink thread)");

  py::class_<MemorySink, Sink, std::shared_ptr<MemorySink>>(m, "MemorySink", "Keeps every trace in memory")
      .def(py::init<>())
      .def("_traces", [](const MemorySink& s) {
        std::vector<AssembledTrace> t;
        {
          py::gil_scoped_release release;
          t = s.traces();
        }
        return trace_list(t);
      })
      .def("_take", [](MemorySink& s) {
        std::vector<AssembledTrace> t;
        {
          py::gil_scoped_release release;
          t = s.take();
        }
        return trace_list(t);
      });

  py::class_<CallbackSink, Sink, std::shared_ptr<CallbackSink>>(
      m, "CallbackSink", "Calls fn(trace_dict) on the sink thread for every trace (the GIL taken there)")
      .def(py::init([](py::object fn) {
        auto held = std::make_shared<PyCallable>(std::move(fn));
        return std::make_shared<CallbackSink>([held](const AssembledTrace& t) {
          py::gil_scoped_acquire gil;
          try {
            held->fn(trace_dict(t));
          } catch (py::error_already_set& e) {
            e.discard_as_unraisable("strobe.CallbackSink");
            throw std::runtime_error("strobe.CallbackSink: the callback raised");  // Stats::sink_errors
          }
        });
      }), py::arg("fn"));

  py::class_<serialize::FileSink, Sink, std::shared_ptr<serialize::FileSink>>(
      m, "FileSink", "Writes a .strobe file (FlatBuffers): strobe tree FILE prints it")
      .def(py::init([](const std::string& path, std::size_t batch_spans) {
        serialize::FileSinkOptions file;
        file.path = path;
        file.batch_spans = batch_spans;
        return std::make_shared<serialize::FileSink>(std::move(file));
      }), py::arg("path"), py::arg("batch_spans") = 16384);

#if defined(STROBE_PYTHON_OTLP)
  // Live export over OTLP/HTTP from the sink's own sender thread (libcurl): no GIL.
  py::class_<serialize::OtlpSink, Sink, std::shared_ptr<serialize::OtlpSink>>(
      m, "OtlpSink", "Sends traces live over OTLP/HTTP; unset options come from the OTEL_* variables")
      .def(py::init([](const std::string& endpoint, const std::optional<std::string>& protocol,
                       const std::optional<std::string>& compression, const std::string& service_name,
                       const std::vector<std::pair<std::string, std::string>>& headers, bool read_environment,
                       double batch_delay_ms, double flush_timeout_ms) {
             serialize::OtlpSinkOptions o;
             o.endpoint = endpoint;
             o.headers = headers;
             if (protocol) {
               serialize::otlp::Protocol p{};
               if (!serialize::otlp::parse_protocol(*protocol, p))
                 throw py::value_error("protocol must be 'http/protobuf' or 'http/json'");
               o.protocol = p;
             }
             if (compression) {
               serialize::otlp::Compression c{};
               if (!serialize::otlp::parse_compression(*compression, c))
                 throw py::value_error("compression must be 'gzip' or 'none'");
               o.compression = c;
             }
             o.service_name = service_name;
             o.read_environment = read_environment;
             o.batch_delay = std::chrono::milliseconds(static_cast<std::int64_t>(batch_delay_ms));
             o.flush_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(flush_timeout_ms));
             return std::make_shared<serialize::OtlpSink>(std::move(o));
           }),
           py::arg("endpoint") = "", py::arg("protocol") = py::none(), py::arg("compression") = py::none(),
           py::arg("service_name") = "", py::arg("headers") = std::vector<std::pair<std::string, std::string>>{},
           py::arg("read_environment") = true, py::arg("batch_delay_ms") = 200.0,
           py::arg("flush_timeout_ms") = 5000.0)
      .def("stats", [](const serialize::OtlpSink& s) {
        const auto st = s.stats();
        py::dict d;
        d["spans_queued"] = st.spans_queued;
        d["spans_sent"] = st.spans_sent;
        d["spans_dropped"] = st.spans_dropped;
        return d;
      })
      .def_property_readonly("endpoint", [](const serialize::OtlpSink& s) { return s.options().endpoint; });
#endif

  py::class_<PyRecorder>(m, "_Recorder")
      .def(py::init<std::optional<std::string>, std::string, std::vector<std::shared_ptr<Sink>>, std::size_t,
                    const std::string&, double, std::size_t, bool, std::size_t, const std::string&>(),
           py::arg("path"), py::arg("service_name"), py::arg("sinks"), py::arg("ring_capacity"),
           py::arg("overflow"), py::arg("drain_interval_ms"), py::arg("partial_trace_spans"),
           py::arg("crash_flush"), py::arg("max_string_bytes"), py::arg("assembly"))
      .def("flush", &PyRecorder::flush)
      .def("assembly", &PyRecorder::assembly)
      .def("close", &PyRecorder::close)
      .def_property_readonly("closed", &PyRecorder::closed)
      .def("stats", &PyRecorder::stats);

  m.def("_read_file", [](const std::string& path) {
    std::vector<AssembledTrace> t;
    {
      py::gil_scoped_release release;
      t = serialize::read_all(path);
    }
    return trace_list(t);
  }, py::arg("path"));
  m.def("recorder_active", [] { return Recorder::active(); }, "True while a Recorder is open in this process");
  m.def("set_thread_name", [](const std::string& name) { set_thread_name(name); }, py::arg("name"));

  if (!add_span_api(m.ptr())) throw py::error_already_set();
}
