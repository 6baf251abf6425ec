"""The examples of Tracium's page on spans: typed spans in an agent trace, the span
handle's methods, nesting, parallel spans from asyncio.gather, the span() helper, the
one-shot record_span and error handling."""

import asyncio

import pytest

import strobe
from strobe import span


def test_llm_span_in_an_agent_trace(recording):
    client = recording.recorder  # tracium.init()
    with client.agent_trace(agent_name="my-agent") as trace:
        with trace.span(span_type="llm", name="generate_response", model_id="gpt-4") as s:
            s.record_input({"messages": [{"role": "user", "content": "hi"}]})
            s.record_output({"content": "hello"})
            s.set_token_usage(input_tokens=100, output_tokens=200)
    t = recording.trace()
    assert t.tree() == "agent my-agent [ok]\n  llm generate_response [ok]\n"
    g = t.find("generate_response")
    assert (g.model, g.tokens) == ("gpt-4", (100, 200, 0))
    assert g.input == '{"messages": [{"role": "user", "content": "hi"}]}'
    assert g.output == '{"content": "hello"}'
    assert g.parent_id == t.find("my-agent").span_id


def test_span_properties_given_when_made(recording):
    with strobe.trace(agent_name="a"):
        with span(span_type="tool", name="lookup", input={"key": "k"}, tags=["cache"],
                  metadata={"region": "eu"}, model_id="m-1"):
            pass
    s = recording.trace().find("lookup")
    assert (s.kind, s.input, s.tags, s.model) == ("tool", '{"key": "k"}', ["cache"], "m-1")
    assert s.attributes == {"region": "eu"}


def test_span_handle_methods(recording):
    with strobe.trace(agent_name="agent") as trace:
        with trace.span(span_type="llm", name="completion") as s:
            ids = (s.id, s.trace_id, s.parent_span_id)
            s.record_input({"messages": [], "model": "gpt-4"})
            s.record_output({"response": "...", "finish_reason": "stop"})
            s.set_token_usage(input_tokens=150, output_tokens=200, cached_input_tokens=50)
            s.add_tags(["streaming", "high-priority"])
            s.set_status("completed")
        with trace.span(span_type="tool", name="broken") as b:
            b.mark_failed("Error description")
    t = recording.trace()
    c = t.find("completion")
    assert ids == (c.span_id, t.trace_id, trace.span_id)
    assert len(c.span_id) == 16 and len(t.trace_id) == 32
    int(c.span_id, 16), int(t.trace_id, 16)
    assert c.tokens == (150, 200, 50)
    assert c.tags == ["streaming", "high-priority"]
    assert c.output == '{"response": "...", "finish_reason": "stop"}'
    assert c.status == "ok"
    b = t.find("broken")
    assert (b.status, b.error_message) == ("failed", "Error description")
    with pytest.raises(ValueError):
        strobe.span("x").set_status("done")


def test_nested_spans_tree(recording):
    user_query = "what is strobe?"
    client = recording.recorder
    with client.agent_trace(agent_name="rag-agent") as trace:
        with trace.span(span_type="plan", name="analyze_query") as plan_span:
            plan_span.record_input({"query": user_query})
            with trace.span(span_type="retrieval", name="search_docs") as search_span:
                search_span.record_input({"query": user_query.upper()})
                docs = ["d1", "d2"]
                search_span.record_output({"num_results": len(docs)})
            with trace.span(span_type="llm", name="generate") as llm_span:
                llm_span.record_input({"context": docs, "query": user_query})
                llm_span.record_output({"response": "a span recorder"})
    t = recording.trace()
    assert t.tree() == ("agent rag-agent [ok]\n"
                        "  plan analyze_query [ok]\n"
                        "    retrieval search_docs [ok]\n"
                        "    llm generate [ok]\n")
    plan = t.find("analyze_query")
    assert [c.name for c in t.children(plan)] == ["search_docs", "generate"]
    assert t.find("search_docs").output == '{"num_results": 2}'
    assert t.groups == []  # one after the other: no parallel group


def test_parallel_spans_from_gather_are_grouped(recording):
    async def fetch_from_source(source):
        await asyncio.sleep(0.02)
        return list(range(len(source)))

    async def fetch_data(source):
        with strobe.span(span_type="retrieval", name=f"fetch_{source}") as s:
            s.record_input({"source": source})
            data = await fetch_from_source(source)
            s.record_output({"count": len(data)})
            return data

    async def main():
        with recording.recorder.agent_trace(agent_name="parallel-fetcher"):
            return await asyncio.gather(fetch_data("database"), fetch_data("api"), fetch_data("cache"))

    results = asyncio.run(main())
    assert [len(r) for r in results] == [8, 3, 5]
    t = recording.trace()
    root = t.find("parallel-fetcher")
    fetches = t.children(root)
    assert sorted(f.name for f in fetches) == ["fetch_api", "fetch_cache", "fetch_database"]
    assert len({f.thread_id for f in fetches}) == 1  # one event loop thread: tasks, not threads
    assert len(t.groups) == 1
    g = t.groups[0]
    assert g["parent_id"] == root.span_id
    assert sorted(g["members"]) == sorted(f.span_id for f in fetches)
    assert g["peak_concurrency"] == 3
    assert all(f.group == fetches[0].group >= 0 for f in fetches)
    assert t.find("fetch_api").output == '{"count": 3}'
    assert t.tree().count("|| retrieval fetch_") == 3


def test_span_helper_finds_the_current_trace(recording):
    def process_request():
        with span(span_type="tool", name="process") as s:
            s.record_input({"data": [1, 2]})
            result = 3
            s.record_output({"result": result})
            return result

    with recording.recorder.agent_trace(agent_name="example"):
        assert process_request() == 3
    assert recording.trace().tree() == "agent example [ok]\n  tool process [ok]\n"


def test_record_span_one_shot_with_latency(recording):
    with recording.recorder.agent_trace(agent_name="example") as trace:
        ids = trace.record_span(span_type="tool", name="lookup", input={"key": "user_123"},
                                output={"name": "John", "email": "[email protected]"}, latency_ms=45,
                                status="completed")
        strobe.record_span("flaky", "tool", latency_ms=2.5, status="failed", error="timed out",
                           attributes={"attempt": 2})
    t = recording.trace()
    root = t.find("example")
    lookup = t.find("lookup")
    assert ids["span_id"] == lookup.span_id and ids["trace_id"] == t.trace_id
    assert lookup.parent_id == root.span_id
    assert (lookup.kind, lookup.status) == ("tool", "ok")
    assert lookup.duration_ns == 45_000_000
    assert lookup.one_shot
    assert lookup.input == '{"key": "user_123"}'
    assert lookup.output == '{"name": "John", "email": "[email protected]"}'
    flaky = t.find("flaky")
    assert (flaky.status, flaky.error_message, flaky.duration_ns) == ("failed", "timed out", 2_500_000)
    assert flaky.attributes == {"attempt": 2}
    assert lookup.end_ns <= root.end_ns


def test_error_handling(recording):
    def might_fail():
        raise TimeoutError("30s")

    with recording.recorder.agent_trace(agent_name="agent") as trace:
        with pytest.raises(TimeoutError):
            with trace.span(span_type="tool", name="risky_operation") as s:
                try:
                    result = might_fail()
                    s.record_output({"result": result})
                except TimeoutError as e:
                    s.mark_failed(f"Operation timed out: {e}")
                    raise
        with pytest.raises(KeyError):
            with trace.span(span_type="tool", name="auto"):
                {}["missing"]
    t = recording.trace()
    risky = t.find("risky_operation")
    assert risky.status == "failed"
    assert risky.error_message == "Operation timed out: 30s"  # the custom message stays
    assert risky.attributes["exception.type"] == "TimeoutError"
    assert "might_fail" in risky.error_data  # the traceback still comes along
    auto = t.find("auto")
    assert (auto.status, auto.error_message) == ("failed", "KeyError: 'missing'")
    assert t.find("agent").status == "ok"  # caught inside it
