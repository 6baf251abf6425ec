#pragma once
// The span half of strobe._strobe, written against the CPython C API: `with
// strobe.span(...)` is the call a Python program makes most, and a pybind11 class whose
// __enter__ and __exit__ do nothing costs more than the pure-Python baseline span of
// python/bench/span_bench.py (480 ns against ~330; docs/python.md).

#include <Python.h>

namespace strobe::python {

// Adds the types Span and SuspendToken and the functions span, trace, resume,
// record_span, current_span and _set_helpers to `module`. False with a Python error set.
bool add_span_api(PyObject* module);

}  // namespace strobe::python
