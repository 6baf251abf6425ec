"""Shared fixtures: a Recorder with a MemorySink per test, read back as strobe.Trace."""

import pytest

import strobe


class Recording:
    def __init__(self, **options):
        self.sink = strobe.MemorySink()
        self.recorder = strobe.Recorder(service_name="pytest", sinks=[self.sink], **options)

    def traces(self):
        """Every trace recorded so far (flushes first)."""
        self.recorder.flush()
        return self.sink.traces()

    def trace(self):
        """The one trace recorded so far."""
        traces = self.traces()
        assert len(traces) == 1, [t.tree() for t in traces]
        return traces[0]


@pytest.fixture
def recording():
    r = Recording()
    try:
        yield r
    finally:
        r.recorder.close()
    assert not strobe.recorder_active()
