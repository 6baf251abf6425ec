"""Cost of a Python `with strobe.span(...)` next to a pure-Python baseline, in one run.

The baseline is the least a Python span recorder can do: a context manager that reads
time.perf_counter_ns() on entry and on exit and appends (name, start, end) to a list.
strobe's span is measured with a Recorder open (a MemorySink, drop policy), as a child
of a root span, and with no Recorder (the no-op). Each case is timed in batches; the
figure is the median over --runs runs of the best batch's ns per span.

    PYTHONPATH=build/python python3 python/bench/span_bench.py --runs 7
"""

import argparse
import statistics
import time

import strobe

_log = []
_now = time.perf_counter_ns


class BaselineSpan:
    __slots__ = ("name", "start")

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.start = _now()
        return self

    def __exit__(self, *exc):
        _log.append((self.name, self.start, _now()))
        return False


def baseline(n):
    for _ in range(n):
        with BaselineSpan("step"):
            pass


def strobe_span(n):
    span = strobe.span
    for _ in range(n):
        with span("step"):
            pass


def strobe_span_kind_attr(n):
    span = strobe.span
    for i in range(n):
        with span("step", "tool") as s:
            s.set_attribute("i", i)


def empty_loop(n):
    for _ in range(n):
        pass


def per_span_ns(fn, n, batches):
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
        _log.clear()
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--spans", type=int, default=20000, help="spans per batch")
    ap.add_argument("--batches", type=int, default=15, help="batches per run (the best counts)")
    args = ap.parse_args()
    cases = {"baseline (pure Python)": [], "strobe.span": [], "strobe.span + kind + 1 attribute": [],
             "strobe.span, no recorder": [], "empty loop": []}
    for _ in range(args.runs):
        cases["empty loop"].append(per_span_ns(empty_loop, args.spans, args.batches))
        cases["baseline (pure Python)"].append(per_span_ns(baseline, args.spans, args.batches))
        cases["strobe.span, no recorder"].append(per_span_ns(strobe_span, args.spans, args.batches))
        sink = strobe.MemorySink()
        with strobe.Recorder(service_name="span_bench", sinks=[sink], partial_trace_spans=1 << 20):
            with strobe.trace("bench"):
                strobe_span(1000)  # this thread's ring attached and warm
                cases["strobe.span"].append(per_span_ns(strobe_span, args.spans, args.batches))
                cases["strobe.span + kind + 1 attribute"].append(
                    per_span_ns(strobe_span_kind_attr, args.spans, args.batches))
        sink.take()
    base = statistics.median(cases["baseline (pure Python)"])
    print(f"{'case':36} {'median ns/span':>15} {'runs (ns)':>40} {'x baseline':>11}")
    for name, v in cases.items():
        m = statistics.median(v)
        runs = " ".join(f"{x:.0f}" for x in v)
        print(f"{name:36} {m:15.1f} {runs:>40} {m / base:11.2f}")


if __name__ == "__main__":
    main()
