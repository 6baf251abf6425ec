"""Context in contextvars (asyncio tasks, threads with a copied context), decorators,
sinks, the recorder's lifecycle and the GIL."""

import asyncio
import contextvars
import faulthandler
import threading

import pytest

import strobe


def test_thread_with_a_copied_context_joins_the_trace(recording):
    def work(i):
        with strobe.span(f"worker_{i}", "tool"):
            pass

    with strobe.trace("agent") as root:
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, i)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        plain = threading.Thread(target=work, args=(9,))  # no copied context: a trace of its own
        plain.start()
        plain.join()
    traces = {t.root_name: t for t in recording.traces()}
    assert set(traces) == {"agent", "worker_9"}
    t = traces["agent"]
    workers = t.children(t.find("agent"))
    assert sorted(w.name for w in workers) == ["worker_0", "worker_1", "worker_2"]
    assert all(w.thread_id != t.find("agent").thread_id for w in workers)
    assert all(w.parent_id == root.span_id for w in workers)


def test_interleaved_tasks_keep_their_own_parents(recording):
    async def task(name, delay):
        with strobe.span(name) as outer:
            await asyncio.sleep(delay)
            with strobe.span(name + ".inner") as inner:
                assert inner.parent_id == outer.span_id
                await asyncio.sleep(delay)

    async def main():
        with strobe.trace("loop"):
            await asyncio.gather(task("a", 0.01), task("b", 0.005), task("c", 0.0))

    asyncio.run(main())
    t = recording.trace()
    for name in "abc":
        assert t.find(name + ".inner").parent_id == t.find(name).span_id
        assert t.find(name).parent_id == t.find("loop").span_id


def test_decorators_on_functions_and_coroutines(recording):
    @strobe.span("load", kind="retrieval")
    def load(x):
        return x * 2

    @strobe.traced
    def plain(x):
        return load(x) + 1

    @strobe.traced(kind="llm")
    async def generate(x):
        await asyncio.sleep(0)
        return plain(x)

    @strobe.span()
    def unnamed():
        raise ValueError("nope")

    with strobe.trace("agent"):
        assert asyncio.run(generate(3)) == 7
        assert plain.__name__ == "plain" and generate.__name__ == "generate"
        with pytest.raises(ValueError):
            unnamed()
    t = recording.trace()
    assert t.tree() == ("agent agent [ok]\n"
                        "  llm test_decorators_on_functions_and_coroutines.<locals>.generate [ok]\n"
                        "    span test_decorators_on_functions_and_coroutines.<locals>.plain [ok]\n"
                        "      retrieval load [ok]\n"
                        "  span test_decorators_on_functions_and_coroutines.<locals>.unnamed [failed]\n")


def test_decorated_coroutines_in_gather_are_parallel(recording):
    @strobe.traced(kind="tool")
    async def call(i):
        await asyncio.sleep(0.01)
        return i

    async def main():
        with strobe.trace("agent"):
            return await asyncio.gather(*(call(i) for i in range(4)))

    assert asyncio.run(main()) == [0, 1, 2, 3]
    t = recording.trace()
    assert len(t.groups) == 1 and len(t.groups[0]["members"]) == 4


def test_attribute_values(recording):
    with strobe.span("values") as s:
        s.set_attribute("big", 2**70)
        s.set_attribute("neg", -5)
        s.set_attribute("f", 0.25)
        s.set_attribute("none", None)
        s.set_attribute("list", [1, "a"])
        s.set_attribute("uni", "naïve ✓")
        s.set_attribute(7, "key made str")
    a = recording.trace().find("values").attributes
    assert a == {"big": str(2**70), "neg": -5, "f": 0.25, "none": "null", "list": '[1, "a"]',
                 "uni": "naïve ✓", "7": "key made str"}


def test_callback_sink_runs_while_flush_waits(recording):
    # flush() waits until the sinks are flushed; the callback needs the GIL on the sink
    # thread. A flush holding the GIL would hang here (faulthandler ends the run).
    got = []
    seen_threads = []

    def on_trace(trace):
        seen_threads.append(threading.get_ident())
        got.append(trace.tree())

    recording.recorder.close()
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        with strobe.Recorder(sinks=[strobe.CallbackSink(on_trace)]) as rec:
            with strobe.trace("agent"):
                with strobe.span("step"):
                    pass
            rec.flush()
            assert got == ["agent agent [ok]\n  span step [ok]\n"]
            with strobe.trace("second"):
                pass
        assert got[1] == "agent second [ok]\n"  # close() hands the rest over
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert seen_threads and threading.get_ident() not in seen_threads


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the callback's, reported
def test_callback_sink_error_is_counted(recording):
    recording.recorder.close()

    def bad(trace):
        raise RuntimeError("sink broke")

    with strobe.Recorder(sinks=[strobe.CallbackSink(bad)]) as rec:
        with strobe.span("x"):
            pass
        rec.flush()
        assert rec.stats()["sink_errors"] == 1


def test_recorder_rules(recording):
    with pytest.raises(ValueError):  # one at a time
        strobe.Recorder()
    with pytest.raises(ValueError):
        strobe.Recorder(sinks=[strobe.CallbackSink(print)], overflow="wait")
    recording.recorder.close()
    with pytest.raises(ValueError):
        strobe.Recorder(ring_capacity=100)  # not a power of two
    with strobe.Recorder(overflow="wait", sinks=[strobe.MemorySink()]) as rec:
        with strobe.span("x"):
            pass
        rec.flush()
        assert rec.stats()["spans_assembled"] == 1
    assert rec.closed and not strobe.recorder_active()


def test_span_begun_before_the_recorder_is_a_no_op():
    s = strobe.span("early")
    with s:
        sink = strobe.MemorySink()
        with strobe.Recorder(sinks=[sink]):
            with strobe.span("during") as d:
                assert d.parent_id is None  # the no-op span is not a parent
    assert [t.root_name for t in sink.traces()] == ["during"]


def test_a_span_begins_once(recording):
    s = strobe.span("once")
    with s:
        pass
    with pytest.raises(RuntimeError):
        with s:
            pass


def test_traceparent_and_links(recording):
    with strobe.trace("caller") as a:
        header = a.traceparent
        with strobe.span("batch") as b:
            b.link(a)
    assert header == f"00-{a.trace_id}-{a.span_id}-01"
    t = recording.trace()
    assert t.find("batch").links == [(a.trace_id, a.span_id)]


def test_a_bad_attribute_given_when_made_leaves_nothing_current(recording):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text")

    with strobe.trace("agent") as root:
        with pytest.raises(RuntimeError):
            with strobe.span("bad", attributes={"x": Unprintable()}):
                pass
        assert strobe.current_span() is root
        with strobe.span("next") as n:
            assert n.parent_id == root.span_id
    t = recording.trace()
    assert [c.name for c in t.children(t.find("agent"))] == ["bad", "next"]


def test_asyncio_to_thread_joins_the_trace(recording):
    # asyncio.to_thread runs the function in a copy of the caller's context
    def blocking_io():
        with strobe.span("read_file", "tool") as s:
            return s.parent_id, threading.get_ident()

    async def main():
        with strobe.trace("agent") as root:
            parent, ident = await asyncio.to_thread(blocking_io)
            return root, parent, ident

    root, parent, ident = asyncio.run(main())
    assert parent == root.span_id and ident != threading.get_ident()
    t = recording.trace()
    assert t.tree() == "agent agent [ok]\n  tool read_file [ok]\n"
    assert t.find("read_file").thread_id != t.find("agent").thread_id
