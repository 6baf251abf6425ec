"""One trace across Python and C++: a C++ extension (tests/cpp_ext.cpp, STROBE_SPAN and
a worker std::thread) called from a Python span, calling back into Python."""

import pytest

import strobe

ext = pytest.importorskip("_strobe_cpp_test", reason="built with the tests: PYTHONPATH=<build>/python/tests_ext")


def test_python_cpp_python_spans_in_one_trace(recording):
    seen = {}

    def callback(where):
        seen[where + ".cpp_current"] = ext.current_span_id()
        with strobe.span("py_" + where, kind="tool") as s:
            seen[where] = s
            seen[where + ".inside"] = ext.current_span_id()  # C++ sees the Python span

    with strobe.trace("mixed") as root:
        with strobe.span("py_outer") as outer:
            assert ext.current_span_id() == outer.span_id
            ext.run(callback)
            assert ext.current_span_id() == outer.span_id
        assert ext.current_span_id() == root.span_id
    assert ext.current_span_id() == ""
    t = recording.trace()
    assert t.tree() == ("agent mixed [ok]\n"
                        "  span py_outer [ok]\n"
                        "    llm cpp_engine [ok]\n"
                        "      tool py_same_thread [ok]\n"
                        "      step cpp_worker [ok]\n"
                        "        tool py_worker_thread [ok]\n")
    engine, worker = t.find("cpp_engine"), t.find("cpp_worker")
    assert engine.parent_id == outer.span_id and engine.attributes == {"layers": 4}
    assert worker.parent_id == engine.span_id
    assert worker.thread_id != engine.thread_id == t.find("py_outer").thread_id
    assert t.find("py_worker_thread").thread_id == worker.thread_id
    assert seen["same_thread.cpp_current"] == engine.span_id
    assert seen["worker_thread.cpp_current"] == worker.span_id
    assert seen["same_thread.inside"] == seen["same_thread"].span_id
    assert seen["worker_thread.inside"] == seen["worker_thread"].span_id


def test_one_runtime():
    # The extension and strobe._strobe share libstrobe_runtime.so: the recorder Python
    # opened is the one the C++ code sees, and only then.
    assert not ext.recorder_active()
    with strobe.Recorder(sinks=[strobe.MemorySink()]):
        assert ext.recorder_active()
    assert not ext.recorder_active()
    # and one copy of the library is mapped, the package's
    import os

    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libstrobe_runtime" in line}
    assert paths == {os.path.realpath(strobe.runtime_library())}


def test_cpp_called_from_interleaved_tasks(recording):
    # Tasks interleave on one thread, and C++ sees the thread's context, which follows the
    # span entered or left last. Called after an await, C++ code gets its task's span by a
    # span around the call or by strobe.sync_context().
    import asyncio

    async def task(i):
        with strobe.span(f"task_{i}") as s:
            await asyncio.sleep(0.005 * (3 - i))  # the others run meanwhile
            if i == 0:
                with strobe.span("call_engine"):
                    ext.run(lambda where: None)
            else:
                strobe.sync_context()
                ext.run(lambda where: None)
            return s.span_id

    async def main():
        with strobe.trace("agent"):
            return await asyncio.gather(*(task(i) for i in range(3)))

    ids = asyncio.run(main())
    t = recording.trace()
    parents = sorted(e.parent_id for e in t.find_all("cpp_engine"))
    assert parents == sorted([t.find("call_engine").span_id, ids[1], ids[2]])
    assert t.find("call_engine").parent_id == ids[0]
