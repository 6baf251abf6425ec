"""The README's Python example, run as it is written: its printed tree is the one its
comments show."""

import contextlib
import io
import os
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_blocks():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Python\n"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_example(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) == 1
    code = blocks[0]
    expected = "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("# "))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue() == expected
    assert expected.startswith("agent rag-agent [ok]\n")
    assert os.path.getsize(tmp_path / "run.strobe") > 0
