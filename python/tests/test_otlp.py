"""strobe.OtlpSink: traces recorded from Python sent live over OTLP/HTTP (JSON) to a
receiver in this process."""

import http.server
import json
import threading

import pytest

import strobe

pytestmark = pytest.mark.skipif(not hasattr(strobe, "OtlpSink"), reason="strobe::otlp not built (zlib, libcurl)")


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.bodies.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_spans_go_out_over_otlp_json():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.bodies.clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        sink = strobe.OtlpSink(url, protocol="http/json", read_environment=False, batch_delay_ms=10)
        assert sink.endpoint == url
        with strobe.Recorder(service_name="py-agent", sinks=[sink]) as rec:
            with strobe.trace(agent_name="agent") as root:
                with strobe.span("generate", kind="llm", model="gpt-4") as s:
                    s.set_token_usage(input_tokens=10, output_tokens=20)
            rec.flush()  # the GIL released: the receiver's thread answers meanwhile
            assert sink.stats()["spans_sent"] == 2
    finally:
        server.shutdown()
    spans = {}
    for path, content_type, body in Receiver.bodies:
        assert (path, content_type) == ("/v1/traces", "application/json")
        for rs in body["resourceSpans"]:
            service = [a["value"]["stringValue"] for a in rs["resource"]["attributes"] if a["key"] == "service.name"]
            assert service == ["py-agent"]
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    spans[sp["spanId"]] = sp
    assert set(spans) == {root.span_id, s.span_id}
    gen = spans[s.span_id]
    assert gen["traceId"] == root.trace_id and gen["parentSpanId"] == root.span_id
    attrs = {a["key"]: a["value"] for a in gen["attributes"]}
    assert attrs["gen_ai.request.model"] == {"stringValue": "gpt-4"}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": "10"}
