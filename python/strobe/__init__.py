"""strobe for Python: spans recorded by strobe's C++ recorder, with the API of the Python
agent-tracing SDKs (Polos, Tracium, Plato, the OpenAI Agents SDK).

    import strobe

    with strobe.Recorder(path="run.strobe", service_name="rag") as rec:
        with strobe.trace(agent_name="rag-agent"):
            with strobe.span("search_docs", kind="retrieval") as s:
                s.record_input({"query": "what is strobe?"})
                s.set_attribute("k", 3)

The current span lives in a contextvars.ContextVar: it follows asyncio tasks (the
children of asyncio.gather are siblings, grouped as parallel) and threads started with
contextvars.copy_context().run. A span begun in Python is the parent of the spans a C++
extension begins (STROBE_SPAN) while Python calls it. With no Recorder open, every span
is a cheap no-op.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import os
import traceback as _traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from . import _strobe
from ._strobe import (
    CallbackSink as _CallbackSink,
    FileSink,
    MemorySink as _MemorySink,
    Sink,
    Span,
    SuspendToken,
    current_span,
    record_span,
    recorder_active,
    resume,
    set_thread_name,
    span,
    sync_context,
    trace,
)

__all__ = [
    "Recorder", "span", "traced", "trace", "resume", "record_span", "current_span",
    "Span", "SuspendToken", "Sink", "MemorySink", "CallbackSink", "FileSink",
    "Trace", "SpanRecord", "read_file", "recorder_active", "set_thread_name",
    "KINDS", "sync_context", "runtime_library",
]

# The kinds strobe knows; any other name makes a custom kind carrying that name.
KINDS = ("span", "llm", "retrieval", "tool", "plan", "action", "agent", "step")


def runtime_library() -> str:
    """The path of libstrobe_runtime.so, the one strobe runtime of the process: a C++
    extension whose spans should join this package's traces links it (and the headers
    cmake --install puts under include/strobe), not strobe::core."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libstrobe_runtime.so")


# ---- helpers the extension calls ----

def _to_text(obj: Any) -> str:
    """The text recorded for a value that is not a str: JSON where it can be."""
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    try:
        return json.dumps(obj, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(obj)


def _describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """(type, message, traceback) of an exception that escaped a span."""
    t = type(exc)
    name = t.__qualname__ if t.__module__ in ("builtins", "__main__") else f"{t.__module__}.{t.__qualname__}"
    tb = "".join(_traceback.format_exception(t, exc, exc.__traceback__))
    return name, str(exc), tb


def _decorate(spec: Span, fn: Callable) -> Callable:
    """@strobe.span(...): a new span around every call of fn, a function or a coroutine
    function (the span then covers the awaited body)."""
    name = None if spec._named else getattr(fn, "__qualname__", "span")

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            with spec._clone(name):
                return await fn(*args, **kwargs)
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with spec._clone(name):
            return fn(*args, **kwargs)
    return wrapper


_strobe._set_helpers(_to_text, _describe_exception, _decorate)

# strobe.OtlpSink(endpoint="http://host:4318/v1/traces", protocol="http/json", ...): built
# when strobe::otlp is (zlib and libcurl found).
if hasattr(_strobe, "OtlpSink"):
    OtlpSink = _strobe.OtlpSink
    __all__.append("OtlpSink")


def traced(fn: Optional[Callable] = None, *, name: Optional[str] = None, kind: Optional[str] = None,
           attributes: Optional[dict] = None):
    """@strobe.traced or @strobe.traced(name=..., kind=...): a span per call, named after
    the function unless named."""
    def wrap(f: Callable) -> Callable:
        return span(name or getattr(f, "__qualname__", "span"), kind, attributes)(f)
    return wrap(fn) if fn is not None else wrap


# ---- reading traces back ----

@dataclass
class SpanRecord:
    """One assembled span: what a sink receives or a file holds. Ids are hex strings."""
    span_id: str
    parent_id: Optional[str]
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str  # "ok", "failed" or "incomplete"
    error_message: str
    error_data: str
    input: str
    output: str
    model: str
    tags: list
    tokens: Optional[tuple]  # (input, output, cached_input) when set
    attributes: dict
    events: list  # [{"name", "time_ns", "attributes"}]
    links: list
    thread_id: int
    end_thread_id: int
    segment_of: Optional[str]
    segment_index: int
    group: int
    flags: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    # SpanFlags (strobe/model.hpp)
    @property
    def suspended(self) -> bool:
        return bool(self.flags & 16)

    @property
    def one_shot(self) -> bool:
        return bool(self.flags & 64)


@dataclass
class Trace:
    """An assembled trace: its spans depth-first (children in start order), parallel
    groups (overlapping siblings) and segment chains (suspend/resume)."""
    trace_id: str
    root_name: str
    service_name: str
    part: int
    partial: bool
    spans: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    chains: list = field(default_factory=list)

    @classmethod
    def _from(cls, d: dict) -> "Trace":
        spans = [SpanRecord(**s) for s in d.pop("spans")]
        return cls(spans=spans, **d)

    def find(self, name: str) -> SpanRecord:
        """The first span named `name` (KeyError when there is none)."""
        for s in self.spans:
            if s.name == name:
                return s
        raise KeyError(name)

    def find_all(self, name: str) -> list:
        return [s for s in self.spans if s.name == name]

    def by_id(self, span_id: str) -> SpanRecord:
        for s in self.spans:
            if s.span_id == span_id:
                return s
        raise KeyError(span_id)

    def children(self, parent: SpanRecord) -> list:
        return [s for s in self.spans if s.parent_id == parent.span_id]

    def tree(self) -> str:
        """The trace as an indented tree: `kind name [status]` per span, `||` before the
        members of a parallel group."""
        ids = {s.span_id for s in self.spans}
        lines = []

        def walk(s: SpanRecord, depth: int) -> None:
            mark = "|| " if s.group >= 0 else ""
            lines.append(f"{'  ' * depth}{mark}{s.kind} {s.name} [{s.status}]")
            for c in self.children(s):
                walk(c, depth + 1)

        for s in self.spans:
            if s.parent_id is None or s.parent_id not in ids:
                walk(s, 0)
        return "\n".join(lines) + "\n"


def _traces(dicts: Iterable[dict]) -> list:
    return [Trace._from(d) for d in dicts]


def read_file(path: str) -> list:
    """Every trace of a .strobe file, as Trace objects."""
    return _traces(_strobe._read_file(str(path)))


class MemorySink(_MemorySink):
    """Keeps every trace in memory: traces() reads them (after Recorder.flush/close)."""

    def traces(self) -> list:
        return _traces(self._traces())

    def take(self) -> list:
        return _traces(self._take())


def CallbackSink(fn: Callable[[Trace], Any]) -> Sink:
    """A sink that calls fn(trace) on the recorder's sink thread for every trace."""
    return _CallbackSink(lambda d: fn(Trace._from(d)))


# ---- the recorder ----

# Recorders still open when the interpreter exits are closed before it finalizes: a
# CallbackSink's last traces need the GIL on the sink thread, which finalization refuses.
_open_recorders: "weakref.WeakSet[Recorder]" = weakref.WeakSet()


@atexit.register
def _close_open_recorders() -> None:
    for r in list(_open_recorders):
        r.close()


class Recorder:
    """strobe's recorder: drains the spans of every thread, assembles traces and hands
    them to the sinks (a FileSink at `path`, and `sinks`). At most one is open at a time.
    A context manager: leaving it (or close()) hands every trace over and stops.
    assembly: where traces are assembled. "deferred": the process assembles nothing and the
    file holds the record log, assembled when it is read (read_file, the strobe tool);
    only `path` may be given then. "in_process": the recorder assembles them. "automatic"
    (the default): deferred when `path` is the only sink, else in the process. The
    recorder's `assembly` property says which was taken."""

    def __init__(self, path: Optional[str] = None, service_name: str = "strobe", sinks: Iterable[Sink] = (),
                 *, ring_capacity: int = 1 << 15, overflow: str = "drop", drain_interval_ms: float = 1.0,
                 partial_trace_spans: int = 16384, crash_flush: bool = True,
                 max_string_bytes: int = 64 * 1024, assembly: str = "automatic"):
        self._rec = _strobe._Recorder(None if path is None else str(path), service_name, list(sinks),
                                      ring_capacity, overflow, drain_interval_ms, partial_trace_spans,
                                      crash_flush, max_string_bytes, assembly)
        _open_recorders.add(self)

    @property
    def assembly(self) -> str:
        """"deferred" or "in_process": where this recorder's traces are assembled."""
        return self._rec.assembly()

    def flush(self) -> None:
        """Everything recorded so far is assembled and handed to the sinks when it returns."""
        self._rec.flush()

    def close(self) -> None:
        self._rec.close()

    @property
    def closed(self) -> bool:
        return self._rec.closed

    def stats(self) -> dict:
        return self._rec.stats()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    # Tracium's client: client.agent_trace(agent_name=...), client.span(...).
    def agent_trace(self, agent_name: str, **kwargs) -> Span:
        return trace(agent_name=agent_name, **kwargs)

    def span(self, *args, **kwargs) -> Span:
        return span(*args, **kwargs)

    def record_span(self, *args, **kwargs):
        return record_span(*args, **kwargs)
