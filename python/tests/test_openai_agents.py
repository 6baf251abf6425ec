"""The OpenAI Agents SDK's Span interface: trace_id, span_id, parent_id, error,
started_at / ended_at (ISO), start(mark_as_current) / finish(reset_current),
set_error({message, data}), and the NoOpSpan used when tracing is off."""

import datetime

import pytest

import strobe


def custom_span(name, data=None):
    return strobe.span(name, "custom_span", data)


def test_custom_span_example(recording):
    with custom_span("database_query", {"operation": "SELECT", "table": "users"}) as span:
        results = [1, 2, 3]
        span.set_output({"count": len(results)})
    s = recording.trace().find("database_query")
    assert s.kind == "custom_span"  # a kind strobe does not know: custom, carrying its name
    assert s.attributes == {"operation": "SELECT", "table": "users"}
    assert s.output == '{"count": 3}'


def test_set_error_example(recording):
    def perform_risky_operation():
        raise OSError("no route")

    with pytest.raises(OSError):
        with custom_span("risky_operation") as span:
            try:
                perform_risky_operation()
            except Exception as e:
                span.set_error({"message": str(e), "data": {"operation": "risky_operation"}})
                raise
    assert span.error == {"message": "no route", "data": {"operation": "risky_operation"}}
    s = recording.trace().find("risky_operation")
    assert (s.status, s.error_message) == ("failed", "no route")
    assert s.error_data == '{"operation": "risky_operation"}'
    assert s.attributes["exception.type"] == "OSError"


def test_ids_and_times(recording):
    with strobe.trace("agent run") as root:
        with strobe.span("llm call", "llm") as s:
            assert s.parent_id == root.span_id and s.trace_id == root.trace_id
            assert s.ended_at is None
        assert root.parent_id is None
    started = datetime.datetime.fromisoformat(s.started_at)
    ended = datetime.datetime.fromisoformat(s.ended_at)
    assert started.utcoffset() == datetime.timedelta(0) and started <= ended
    r = recording.trace().find("llm call")
    assert (r.span_id, r.parent_id) == (s.span_id, root.span_id)
    as_recorded = datetime.datetime.fromtimestamp(r.start_ns // 1000 / 1e6, datetime.timezone.utc)
    assert abs((as_recorded - started).total_seconds()) < 2e-6
    assert s.error is None


def test_start_and_finish(recording):
    with strobe.trace("agent") as root:
        a = strobe.span("background").start()  # not current
        with strobe.span("foreground") as fg:
            assert fg.parent_id == root.span_id  # not under "background"
        b = strobe.span("current").start(mark_as_current=True)
        assert strobe.current_span() is b
        with strobe.span("under_b") as c:
            assert c.parent_id == b.span_id
        b.finish(reset_current=True)
        assert strobe.current_span() is root
        a.finish()
        a.finish()  # a second finish is a no-op
    t = recording.trace()
    # background overlaps the two after it: the three are a parallel group
    assert t.tree() == ("agent agent [ok]\n"
                        "  || span background [ok]\n"
                        "  || span foreground [ok]\n"
                        "  || span current [ok]\n"
                        "    span under_b [ok]\n")
    root_rec = t.find("agent")
    assert sorted(c.name for c in t.children(root_rec)) == ["background", "current", "foreground"]
    assert [c.name for c in t.children(t.find("current"))] == ["under_b"]
    assert t.find("background").end_ns >= t.find("current").end_ns  # finished last


def test_a_span_finished_on_another_thread(recording):
    import threading

    with strobe.trace("agent"):
        s = strobe.span("handed_over").start()
    th = threading.Thread(target=s.finish)
    th.start()
    th.join()
    r = recording.trace().find("handed_over")
    assert r.status == "ok" and r.end_thread_id != r.thread_id


def test_noop_span_when_tracing_is_off():
    assert not strobe.recorder_active()
    with strobe.span("anything", "llm", {"a": 1}) as s:
        s.set_attribute("k", 1)
        s.set_error({"message": "x", "data": None})
        s.set_token_usage(1, 2, 3)
        s.add_event("e", {"n": 1})
        tok = s.suspend()
    assert (s.span_id, s.trace_id, s.parent_id, s.started_at) == (None, None, None, None)
    with strobe.resume(tok) as r:
        assert r.span_id is None
    assert strobe.record_span("x", "tool", latency_ms=1) is None
    assert strobe.current_span() is None
