"""Cost of a Python `with strobe.span(...)` next to a pure-Python baseline, in one run.

The baseline is the least a Python span recorder can do: a context manager that reads
time.perf_counter_ns() on entry and on exit and appends (name, start, end) to a list.
strobe's span is measured with a Recorder open (no sink, drop policy), as a child
of a root span, and with no Recorder (the no-op). Each case is timed in batches that
alternate with the other cases'; a run keeps each case's best batch (ns per span), and
the figures are medians over --runs runs, the ratio taken within each run.

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


def timed(fn, n):
    t0 = time.perf_counter_ns()
    fn(n)
    ns = (time.perf_counter_ns() - t0) / n
    _log.clear()
    return ns


def one_run(spans, batches):
    """The best batch of each case; the cases alternate batch by batch, so that a shared
    machine's slow and fast periods fall on all of them alike."""
    best = {}

    def keep(name, ns):
        best[name] = min(best.get(name, float("inf")), ns)

    for _ in range(batches):
        keep("empty loop", timed(empty_loop, spans))
        keep("baseline (pure Python)", timed(baseline, spans))
        keep("strobe.span, no recorder", timed(strobe_span, spans))
    # No sink: the drainer assembles every trace and hands it to nobody (a MemorySink
    # would hold hundreds of thousands of spans and convert them to Python objects).
    with strobe.Recorder(service_name="span_bench"):
        with strobe.trace("bench"):
            strobe_span(1000)  # this thread's ring attached and warm
            for _ in range(batches):
                keep("baseline (pure Python), recorder open", timed(baseline, spans))
                keep("strobe.span", timed(strobe_span, spans))
                keep("strobe.span + kind + 1 attribute", timed(strobe_span_kind_attr, spans))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--spans", type=int, default=20000, help="spans per batch")
    ap.add_argument("--batches", type=int, default=15, help="batches per case in a run (the best counts)")
    args = ap.parse_args()
    runs = [one_run(args.spans, args.batches) for _ in range(args.runs)]
    order = ["baseline (pure Python)", "baseline (pure Python), recorder open", "strobe.span",
             "strobe.span + kind + 1 attribute", "strobe.span, no recorder", "empty loop"]
    print(f"{'case':40} {'median ns':>10} {'x baseline':>11}   runs: ns (x baseline of the same run)")
    for name in order:
        ns = [r[name] for r in runs]
        ratios = [r[name] / r["baseline (pure Python), recorder open"] for r in runs]
        detail = " ".join(f"{a:.0f} ({b:.2f})" for a, b in zip(ns, ratios))
        print(f"{name:40} {statistics.median(ns):10.1f} {statistics.median(ratios):11.2f}   {detail}")
    print("x baseline: against the pure-Python baseline timed beside it, with the recorder open")


if __name__ == "__main__":
    main()
