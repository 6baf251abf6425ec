"""Deferred assembly from Python: the file holds the record log, read_file assembles it
into the same traces a recorder that assembles writes."""

import pytest

import strobe


def workload():
    with strobe.trace("agent") as root:
        root.set_attribute("user", "u-1")
        for i in range(50):
            with strobe.span("step", "step") as s:
                s.set_attribute("i", i)
        with strobe.span("lookup", "tool") as f:
            f.set_attribute("ok", False)


def shape(traces):
    out = []
    for t in traces:
        out.append((t.root_name, sorted((s.name, s.kind, tuple(sorted(s.attributes.items()))) for s in t.spans)))
    return sorted(out)


def test_deferred_file_reads_back_as_the_assembled_one(tmp_path):
    plain, deferred = tmp_path / "plain.strobe", tmp_path / "deferred.strobe"
    with strobe.Recorder(path=str(plain), assembly="in_process") as rec:
        assert rec.assembly == "in_process"
        workload()
    assert strobe.read_file(str(plain))  # assembled in the process: read as written
    with strobe.Recorder(path=str(deferred)) as rec:  # a file alone: deferred by default
        assert rec.assembly == "deferred"
        workload()
        rec.flush()
        assert rec.stats()["spans_recorded"] == 52
    assert shape(strobe.read_file(str(deferred))) == shape(strobe.read_file(str(plain)))


def test_deferred_assembly_refuses_a_sink_that_cannot_take_the_log(tmp_path):
    with pytest.raises(Exception, match="assembly = deferred"):
        strobe.Recorder(path=str(tmp_path / "x.strobe"), sinks=[strobe.MemorySink()], assembly="deferred")
    with pytest.raises(ValueError, match="assembly must be"):
        strobe.Recorder(path=str(tmp_path / "x.strobe"), assembly="later")


def test_a_sink_besides_the_file_makes_the_process_assemble(tmp_path):
    with strobe.Recorder(path=str(tmp_path / "x.strobe"), sinks=[strobe.MemorySink()]) as rec:
        assert rec.assembly == "in_process"
