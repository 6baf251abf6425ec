// _strobe_cpp_test: a C++ extension of the kind an inference engine ships, for
// test_mixed_language.py. It records with STROBE_SPAN, hands its context to a worker
// std::thread and calls back into Python from both threads. It links the package's
// libstrobe_runtime.so, so its spans go to the recorder the Python code opened.

#include <pybind11/pybind11.h>

#include <strobe/strobe.hpp>

#include <string>
#include <thread>

namespace py = pybind11;

PYBIND11_MODULE(_strobe_cpp_test, m) {
  // cpp_engine (llm) calls callback("same_thread"), then its worker thread's cpp_worker
  // (step), a child of cpp_engine, calls callback("worker_thread").
  m.def("run", [](const py::function& callback) {
    STROBE_SPAN(engine, "cpp_engine", strobe::Kind::llm);
    engine.attr("layers", 4);
    callback("same_thread");
    const strobe::Context ctx = strobe::current();
    std::thread worker([ctx, &callback] {
      strobe::ContextScope adopt(ctx);
      STROBE_SPAN(work, "cpp_worker", strobe::Kind::step);
      py::gil_scoped_acquire gil;
      callback("worker_thread");
    });
    py::gil_scoped_release release;  // the worker takes the GIL to call back
    worker.join();
  });
  // The span C++ code sees as current on this thread (16 hex digits; "" for none).
  m.def("current_span_id", [] {
    const strobe::Context c = strobe::current();
    return c.valid() ? strobe::to_hex(c.span_id()) : std::string();
  });
  m.def("recorder_active", [] { return strobe::Recorder::active(); });
}
