"""The examples of Plato's page on spans: `async with span(...)`, log(), set_extra(),
event_id, automatic nesting, the lifecycle (started / completed / failed with
timestamps), the event structure, no-op mode, and the agent execution example."""

import asyncio
import datetime
import json

import pytest

import strobe
from strobe import span


def test_basic_usage_with_logs(recording):
    async def main():
        async with span("my_operation") as s:
            s.log("Starting work...")
            await asyncio.sleep(0)
            s.log("Work complete")

    asyncio.run(main())
    s = recording.trace().find("my_operation")
    assert [(e["name"], e["attributes"]) for e in s.events] == [
        ("log", {"message": "Starting work..."}), ("log", {"message": "Work complete"})]


def test_parameters_span_type_source_extra(recording):
    async def main():
        async with span("fetch_data", span_type="step", source="world", extra={"attempt": 1}) as s:
            s.set_extra({"count": 3, "source_api": "api"})

    asyncio.run(main())
    s = recording.trace().find("fetch_data")
    assert s.kind == "step"
    assert s.attributes == {"attempt": 1, "source": "world", "count": 3, "source_api": "api"}


def test_event_id(recording):
    async def main():
        async with span("operation") as s:
            return s.event_id

    event_id = asyncio.run(main())
    assert event_id == recording.trace().find("operation").span_id


def test_automatic_nesting(recording):
    async def main():
        async with span("parent") as parent:
            async with span("child") as child:
                assert child.parent_id == parent.event_id
                async with span("grandchild") as g:
                    assert g.parent_id == child.event_id

    asyncio.run(main())
    assert recording.trace().tree() == ("span parent [ok]\n"
                                        "  span child [ok]\n"
                                        "    span grandchild [ok]\n")


def test_lifecycle_started_completed_failed(recording):
    async def risky_task():
        await asyncio.sleep(0.001)
        raise RuntimeError("disk full")

    async def main():
        async with span("ok_operation") as ok:
            assert ok.started_at is not None and ok.ended_at is None
        with pytest.raises(RuntimeError):
            async with span("risky_operation"):
                await risky_task()
        return ok

    ok = asyncio.run(main())
    started = datetime.datetime.fromisoformat(ok.started_at)
    ended = datetime.datetime.fromisoformat(ok.ended_at)
    assert started.tzinfo is not None and started <= ended
    t = recording.traces()
    spans = {tr.root_name: tr.spans[0] for tr in t}
    good, bad = spans["ok_operation"], spans["risky_operation"]
    # "{name} started" / "{name} completed" / "{name} failed": the span's times and status.
    assert good.status == "ok" and good.start_ns <= good.end_ns
    assert abs(good.start_ns // 1000 - int(started.timestamp() * 1e6)) <= 1
    assert bad.status == "failed" and bad.error_message == "RuntimeError: disk full"
    assert bad.duration_ns >= 1_000_000
    # Plato's lifecycle log lines, as a span read back gives them
    assert lifecycle(good) == [("ok_operation started", good.start_ns), ("ok_operation completed", good.end_ns)]
    assert lifecycle(bad) == [("risky_operation started", bad.start_ns),
                              ("risky_operation failed: RuntimeError: disk full", bad.end_ns)]
    assert "in risky_task" in bad.error_data  # the error details: where it was raised


def lifecycle(s):
    """Plato's "{name} started" / "{name} completed" / "{name} failed" with their times."""
    end = f"{s.name} completed" if s.status == "ok" else f"{s.name} failed: {s.error_message}"
    return [(f"{s.name} started", s.start_ns), (end, s.end_ns)]


def plato_event(s, session_id="session-123"):
    """A span as Plato's JSON event."""
    iso = lambda ns: datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).isoformat()
    extra = {k: v for k, v in s.attributes.items() if k != "source"}
    logs = [e["attributes"]["message"] for e in s.events if e["name"] == "log"]
    if logs:
        extra["logs"] = logs
    return {"session_id": session_id, "span_type": s.kind,
            "content": f"{s.name} {'completed' if s.status == 'ok' else 'failed'}",
            "source": s.attributes.get("source", "agent"), "event_id": s.span_id, "parent_id": s.parent_id,
            "started_at": iso(s.start_ns), "ended_at": iso(s.end_ns), "extra": extra}


def test_event_structure(recording):
    async def main():
        async with span("outer"):
            async with span("my_operation") as s:
                s.log("Step 1")
                s.log("Step 2")
                s.set_extra({"custom_key": "value"})

    asyncio.run(main())
    t = recording.trace()
    ev = plato_event(t.find("my_operation"))
    assert json.loads(json.dumps(ev)) == ev
    assert ev["content"] == "my_operation completed"
    assert ev["span_type"] == "span" and ev["source"] == "agent"
    assert ev["parent_id"] == t.find("outer").span_id
    assert ev["extra"] == {"logs": ["Step 1", "Step 2"], "custom_key": "value"}
    assert ev["started_at"] <= ev["ended_at"]


def test_no_op_mode_without_a_recorder():
    assert not strobe.recorder_active()

    async def main():
        async with span("operation") as s:
            s.log("This goes nowhere")
            s.set_extra({"a": 1})
            return s

    s = asyncio.run(main())
    assert s.event_id is None and s.recording is False and s.trace_id is None
    # and a recorder opened afterwards sees none of it
    sink = strobe.MemorySink()
    with strobe.Recorder(sinks=[sink]):
        pass
    assert sink.traces() == []


def test_agent_execution_example(recording):
    async def setup_environment():
        await asyncio.sleep(0)

    async def execute_task(instruction):
        await asyncio.sleep(0)
        return f"done: {instruction}"

    async def run_agent(instruction):
        async with span("agent_execution", span_type="agent") as agent_span:
            agent_span.log(f"Starting with: {instruction}")
            async with span("setup", span_type="step"):
                await setup_environment()
            async with span("execute", span_type="step") as exec_span:
                result = await execute_task(instruction)
                exec_span.set_extra({"result": result})
            async with span("cleanup", span_type="step"):
                await asyncio.sleep(0)
            agent_span.set_extra({"success": True})

    asyncio.run(run_agent("tidy up"))
    t = recording.trace()
    assert t.tree() == ("agent agent_execution [ok]\n"
                        "  step setup [ok]\n"
                        "  step execute [ok]\n"
                        "  step cleanup [ok]\n")
    a = t.find("agent_execution")
    assert a.attributes == {"success": True}
    assert a.events[0]["attributes"] == {"message": "Starting with: tidy up"}
    assert t.find("execute").attributes == {"result": "done: tidy up"}
