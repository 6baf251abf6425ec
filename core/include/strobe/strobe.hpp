#pragma once
// strobe: a span recorder for hot code.
//
// Quick start:
//
//   #include <strobe/strobe.hpp>
//
//   auto sink = std::make_shared<strobe::MemorySink>();
//   strobe::Recorder recorder({.sinks = {sink}});        // starts the drainer
//   {
//     auto run = strobe::trace("rag-agent");              // a new trace, current
//     STROBE_SPAN(plan, "analyze_query", strobe::Kind::plan);
//     plan.input("what is strobe?").attr("k", 3);
//     {
//       STROBE_SPAN(gen, "generate", strobe::Kind::llm);  // child of plan
//       gen.model("gpt-4").tokens({.input = 100, .output = 200});
//     }
//   }
//   recorder.flush();                                     // traces reach the sinks
//
// The pipeline:
//
//   recording threads                    drainer thread (one per Recorder)
//   ┌────────────┐  64-byte records     ┌────────────────────────────────────────┐
//   │ Span / ... │ ──► SPSC ring ──┐    │ poll rings (spin, then sleep)          │
//   └────────────┘  (per thread)   ├──► │   ──► assembler: trees, groups,        │
//   ┌────────────┐                 │    │       segments, partial parts          │
//   │ Span / ... │ ──► SPSC ring ──┘    │   ──► sinks (callback, memory, file)   │
//   └────────────┘                      └────────────────────────────────────────┘
//
// The hot path takes no lock, makes no system call and allocates nothing after a
// thread's first span. With no active Recorder every call is a cheap no-op; with
// STROBE_DISABLE defined the whole API (span.hpp, recorder.hpp) compiles to no-ops with
// the same signatures (strobe/disabled.hpp).

#include "strobe/model.hpp"
#include "strobe/recorder.hpp"
#include "strobe/sink.hpp"
#include "strobe/span.hpp"
#include "strobe/types.hpp"
