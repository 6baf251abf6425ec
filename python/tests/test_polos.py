"""The examples of Polos's pages on custom spans and on what is traced (workflows,
steps, the weather agent's two spans), with strobe as the tracer."""

import asyncio
import time

import strobe


class Response:
    status_code = 200
    ok = True
    content = b"x" * 1234
    headers = {"content-type": "application/json"}


async def query_database(sql):
    await asyncio.sleep(0)
    return [{"id": 1}, {"id": 2}, {"id": 3}]


def test_custom_span_with_initial_attributes(recording):
    async def my_workflow():
        with strobe.span("database_query", attributes={"table": "users"}) as span:
            result = await query_database("SELECT * FROM users")
            span.set_attribute("row_count", len(result))
        return result

    assert len(asyncio.run(my_workflow())) == 3
    s = recording.trace().find("database_query")
    assert s.kind == "span"
    assert s.parent_id is None
    assert s.attributes == {"table": "users", "row_count": 3}
    assert s.status == "ok"


def test_set_attribute_and_set_attributes(recording):
    url = "https://api.example.com/v1"
    with strobe.span("external_api_call") as span:
        response = Response()
        span.set_attribute("status_code", response.status_code)
        span.set_attribute("success", response.ok)
        span.set_attributes({
            "url": url,
            "response_size": len(response.content),
            "content_type": response.headers.get("content-type"),
        })
    a = recording.trace().find("external_api_call").attributes
    assert a == {"status_code": 200, "success": True, "url": url, "response_size": 1234,
                 "content_type": "application/json"}
    assert type(a["success"]) is bool and type(a["status_code"]) is int


def test_events_mark_moments_within_a_span(recording):
    data = [1, 2, 3, 4]
    with strobe.span("data_processing") as span:
        span.add_event("started_validation")
        time.sleep(0.001)
        span.add_event("validation_complete", attributes={"records_validated": len(data), "errors_found": 0})
        span.add_event("processing_complete")
    s = recording.trace().find("data_processing")
    assert [e["name"] for e in s.events] == ["started_validation", "validation_complete", "processing_complete"]
    assert s.events[1]["attributes"] == {"records_validated": 4, "errors_found": 0}
    assert s.events[0]["attributes"] == {}
    times = [e["time_ns"] for e in s.events]
    assert s.start_ns <= times[0] < times[1] <= times[2] <= s.end_ns
    assert times[1] - times[0] >= 1_000_000  # the sleep between them


def test_nested_spans_and_spans_inside_step_functions(recording):
    def transform(data):
        return {k: v * 2 for k, v in data.items()}

    async def process_data(data):  # a step function
        with strobe.span("data_transformation", attributes={"input_size": len(data)}) as span:
            transformed = transform(data)
            span.set_attributes({"output_size": len(transformed), "success": True})
            span.add_event("transformation_complete")
            return transformed

    async def my_workflow():
        with strobe.span("parent_operation"):
            await asyncio.sleep(0)  # step_one
            with strobe.span("child_operation") as child_span:
                child_span.set_attribute("nested", True)
                await process_data({"a": 1, "b": 2})
            await asyncio.sleep(0)  # step_two

    asyncio.run(my_workflow())
    t = recording.trace()
    assert t.tree() == ("span parent_operation [ok]\n"
                        "  span child_operation [ok]\n"
                        "    span data_transformation [ok]\n")
    d = t.find("data_transformation")
    assert d.attributes == {"input_size": 2, "output_size": 2, "success": True}
    assert d.events[0]["name"] == "transformation_complete"
    assert t.find("child_operation").attributes == {"nested": True}


def test_weather_agent_is_two_spans_around_its_wait(recording):
    # Starts, calls the LLM, which asks for get_weather; the agent waits (span 1 ends)
    # while the tool runs, resumes, calls the LLM again and answers (span 2 ends).
    with strobe.span("weather_agent", kind="agent") as agent:
        with strobe.span("llm", kind="llm", model="gpt-4") as llm:
            llm.record_input("weather in Paris?")
            llm.record_output({"tool_call": "get_weather", "args": {"city": "Paris"}})
        waiting = agent.suspend()
    assert isinstance(waiting, strobe.SuspendToken) and waiting.segment_index == 0
    time.sleep(0.02)  # the tool executes; the agent holds no span meanwhile
    with strobe.resume(waiting) as resumed:
        with strobe.span("llm", kind="llm", model="gpt-4") as llm:
            llm.record_input({"tool_result": "sunny, 21C"})
            llm.record_output("It is sunny in Paris.")
        resumed.record_output("It is sunny in Paris.")
    t = recording.trace()
    segments = t.find_all("weather_agent")
    assert len(segments) == 2
    first, second = segments
    assert first.suspended and not second.suspended
    assert (first.segment_index, second.segment_index) == (0, 1)
    assert second.segment_of == first.span_id and first.segment_of == first.span_id
    assert second.start_ns - first.end_ns >= 20_000_000
    assert [c.name for c in t.children(first)] == ["llm"] and [c.name for c in t.children(second)] == ["llm"]
    assert t.children(first)[0].output == '{"tool_call": "get_weather", "args": {"city": "Paris"}}'
    assert second.output == "It is sunny in Paris."
    assert second.kind == "agent"
    assert t.chains == [{"first_span_id": first.span_id, "segments": [first.span_id, second.span_id],
                         "waited_ns": second.start_ns - first.end_ns}]


def test_llm_call_fields_and_latency(recording):
    with strobe.span("generate", kind="llm", model="gpt-4") as s:
        s.record_input({"messages": [{"role": "user", "content": "hi"}]})
        time.sleep(0.005)
        s.record_output("hello")
        s.set_token_usage(12, 3)
    g = recording.trace().find("generate")
    assert (g.kind, g.model, g.output, g.tokens) == ("llm", "gpt-4", "hello", (12, 3, 0))
    assert g.input == '{"messages": [{"role": "user", "content": "hi"}]}'
    assert g.duration_ns >= 5_000_000  # latency is the span's duration


def test_errors_with_full_details_and_stack(recording):
    def deep():
        raise ConnectionError("upstream refused")

    try:
        with strobe.span("fetch", kind="tool"):
            deep()
    except ConnectionError:
        pass
    s = recording.trace().find("fetch")
    assert s.status == "failed"
    assert s.error_message == "ConnectionError: upstream refused"
    assert s.attributes["exception.type"] == "ConnectionError"
    assert s.attributes["exception.message"] == "upstream refused"
    assert "Traceback (most recent call last)" in s.error_data
    assert "in deep" in s.error_data and 'raise ConnectionError("upstream refused")' in s.error_data


def test_file_and_strobe_tool(tmp_path):
    import os
    import subprocess

    path = tmp_path / "run.strobe"
    with strobe.Recorder(path=str(path), service_name="polos"):
        with strobe.trace(agent_name="workflow"):
            with strobe.span("step_one", kind="step") as s:
                s.set_attribute("rows", 7)
    traces = strobe.read_file(path)
    assert len(traces) == 1
    t = traces[0]
    assert (t.service_name, t.root_name) == ("polos", "workflow")
    assert t.tree() == "agent workflow [ok]\n  step step_one [ok]\n"
    assert t.find("step_one").attributes == {"rows": 7}
    tool = os.environ.get("STROBE_TOOL")
    if tool:
        out = subprocess.run([tool, "tree", str(path)], check=True, capture_output=True, text=True).stdout
        assert "workflow" in out and "step_one" in out
        # OpenTelemetry export of what Python recorded
        otlp = tmp_path / "run.jsonl"
        subprocess.run([tool, "export", "--format", "otlp", str(path), "-o", str(otlp)], check=True)
        import json

        spans = [s for line in otlp.read_text().splitlines()
                 for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        assert {s["spanId"] for s in spans} == {x.span_id for x in t.spans}
        assert {s["traceId"] for s in spans} == {t.trace_id}
