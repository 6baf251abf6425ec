#!/usr/bin/env python3
"""Tool-level fuzz of `strobe`: mutants of real strobe files fed to every subcommand that
reads a file, in an ASan+UBSan build of the tool (build-fuzz/strobe/tools/strobe).

Each mutant is a seed file changed by a few seeded, deterministic mutations. Half of them
set FlatBuffers fields (found through the schema: a scalar, a vector element, a length, a
string/span/thread index, an offset) to edge values, so the file mostly stays readable and
the values reach the tool's own code; the rest flip bits, overwrite bytes and aligned
words with edge values, nudge words, truncate, duplicate/remove/insert chunks, duplicate,
drop or swap whole frames, and splice in frames or bytes of another seed. Most mutants
then get their preamble and every frame's checksums made valid again, so that they pass
the checksums and reach the FlatBuffers verifier, the reader's checks and the tool. Every mutant goes to info, validate,
tree, stats, diff (against its seed and itself), export chrome/otlp/jsonl, html and push
(to a local collector that answers 200), with options that vary from mutant to mutant.

A run fails on: death by a signal; a hang (past --timeout); any sanitizer report on stderr;
an exit status outside the documented set (tools/README.md, "Exit status") or outside the
subset the command can give here (arguments valid, outputs writable, the collector up);
status 3 or 4 without a "strobe: " line on stderr; JSON output that does not parse;
subcommands that read the same file disagreeing on whether it is unreadable, damaged or
intact. A failing mutant is saved under WORK/failures/ and its command printed.

  tests/fuzz/tool_fuzz.py --tool build-fuzz/strobe/tools/strobe --work /tmp/tf SEED...
  tests/fuzz/tool_fuzz.py --tool ... --replay build-fuzz/tool_fuzz/failures/<name>.strobe

SEED: strobe files or directories of them. Environment: STROBE_TOOL_FUZZ_MUTANTS (how many
mutants), STROBE_TOOL_FUZZ_SECONDS (stop starting new ones after this long),
STROBE_TOOL_FUZZ_SEED (which mutants: the same seed gives the same mutants).
"""

import argparse
import http.server
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MAGIC = b"\x89STROBE\r\n\x1a"
PREAMBLE = 16
FRAME_HEADER = 16
FORMAT_MAJOR = 1

# The documented exit statuses (tools/README.md, `strobe --help`).
DOCUMENTED = {0, 1, 2, 3, 4, 5}

# Sanitizer runtime settings: stop at the first report, with a status no strobe command
# uses, and no allocation that a file of a few KiB could justify.
ASAN_OPTIONS = ("halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:allocator_may_return_null=0:"
                "max_allocation_size_mb=1024:hard_rss_limit_mb=2048:handle_abort=1:symbolize=1")
UBSAN_OPTIONS = "halt_on_error=1:abort_on_error=0:exitcode=87:print_stacktrace=1"
SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:|"
    r"SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)|"
    r"WARNING: AddressSanitizer|==\d+==ERROR")

# ---------------------------------------------------------------------------------------
# The file format, as much as the mutator needs (serialize/include/strobe/serialize/format.hpp).


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def align8(n):
    return (n + 7) & ~7


def split_frames(data):
    """(preamble, [frame bytes incl. header and padding], tail that is no whole frame)."""
    pos, frames = PREAMBLE, []
    while pos + FRAME_HEADER <= len(data):
        length = struct.unpack_from("<I", data, pos)[0]
        end = pos + FRAME_HEADER + align8(length)
        if end > len(data):
            break
        frames.append(bytes(data[pos:end]))
        pos = end
    return bytes(data[:PREAMBLE]), frames, bytes(data[pos:])


def repair(data, fix_preamble=True):
    """The file with a valid preamble and valid checksums on every frame (lengths clamped
    to what the file holds), as tests/fuzz/reader_fuzz.cpp does for the reader."""
    b = bytearray(data)
    if len(b) < PREAMBLE + FRAME_HEADER:
        return bytes(b)
    if fix_preamble:
        b[0:10] = MAGIC
        struct.pack_into("<H", b, 10, FORMAT_MAJOR)
    pos = PREAMBLE
    while pos + FRAME_HEADER <= len(b):
        room = len(b) - pos - FRAME_HEADER
        length = min(struct.unpack_from("<I", b, pos)[0], room)
        struct.pack_into("<I", b, pos, length)
        payload = bytes(b[pos + FRAME_HEADER:pos + FRAME_HEADER + length])
        struct.pack_into("<I", b, pos + 8, crc32c(payload))
        struct.pack_into("<I", b, pos + 12, crc32c(bytes(b[pos:pos + 12])))
        pos += FRAME_HEADER + align8(length)
    return bytes(b)


# ---------------------------------------------------------------------------------------
# Mutations.

U8 = [0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x0F, 0x10, 0x7F, 0x80, 0xFE, 0xFF]
U32 = [0, 1, 2, 3, 4, 7, 8, 12, 16, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
       0xFFFFFFFE, 0xFFFFFFFF]
U64 = [0, 1, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFE,
       0x8000000000000001, 1 << 53, (1 << 53) + 1, 1 << 32, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFE]


def m_bitflip(rng, b, other):
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return "bitflip"


def m_bytes(rng, b, other):
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.choice(U8) if rng.random() < 0.7 else rng.randrange(256)
    return "bytes"


def m_word32(rng, b, other):
    if len(b) < 4:
        return None
    n = rng.randint(1, 3)
    for _ in range(n):
        at = rng.randrange(len(b) - 3) & ~3
        v = rng.choice(U32 + [len(b), len(b) - at, max(0, len(b) - at - 4)])
        struct.pack_into("<I", b, at, v & 0xFFFFFFFF)
    return "word32"


def m_word64(rng, b, other):
    if len(b) < 8:
        return None
    at = rng.randrange(len(b) - 7) & ~7
    struct.pack_into("<Q", b, at, rng.choice(U64))
    return "word64"


def m_nudge(rng, b, other):
    """A FlatBuffers offset, length or index moved a little."""
    if len(b) < 4:
        return None
    at = rng.randrange(len(b) - 3) & ~3
    v = struct.unpack_from("<I", b, at)[0]
    v = (v + rng.choice([-16, -8, -4, -2, -1, 1, 2, 4, 8, 16])) & 0xFFFFFFFF
    struct.pack_into("<I", b, at, v)
    return "nudge"


def m_truncate(rng, b, other):
    if len(b) < 2:
        return None
    del b[rng.randrange(1, len(b)):]
    return "truncate"


def m_chunk_dup(rng, b, other):
    i = rng.randrange(len(b))
    j = min(len(b), i + rng.randint(1, 256))
    at = rng.randrange(len(b) + 1)
    b[at:at] = b[i:j]
    return "chunk-dup"


def m_chunk_remove(rng, b, other):
    if len(b) < 2:
        return None
    i = rng.randrange(len(b))
    del b[i:min(len(b), i + rng.randint(1, 256))]
    return "chunk-remove"


def m_chunk_insert(rng, b, other):
    at = rng.randrange(len(b) + 1)
    fill = rng.choice([b"\x00", b"\xff", None])
    n = rng.randint(1, 64)
    b[at:at] = bytes(rng.randrange(256) for _ in range(n)) if fill is None else fill * n
    return "chunk-insert"


def _frames_op(b, fn):
    pre, frames, tail = split_frames(bytes(b))
    if not frames:
        return False
    frames = fn(frames)
    b[:] = pre + b"".join(frames) + tail
    return True


def m_frame_dup(rng, b, other):
    def fn(fr):
        i = rng.randrange(len(fr))
        fr.insert(rng.randrange(len(fr) + 1), fr[i])
        return fr
    return "frame-dup" if _frames_op(b, fn) else None


def m_frame_remove(rng, b, other):
    def fn(fr):
        del fr[rng.randrange(len(fr))]
        return fr
    return "frame-remove" if _frames_op(b, fn) else None


def m_frame_swap(rng, b, other):
    def fn(fr):
        i, j = rng.randrange(len(fr)), rng.randrange(len(fr))
        fr[i], fr[j] = fr[j], fr[i]
        return fr
    return "frame-swap" if _frames_op(b, fn) else None


def m_splice(rng, b, other):
    """Frames of another seed spliced in: inserted, or replacing this file's frames."""
    _, theirs, _ = split_frames(other)
    if not theirs:
        return None

    def fn(fr):
        pick = theirs[rng.randrange(len(theirs)):]
        pick = pick[:rng.randint(1, len(pick))]
        at = rng.randrange(len(fr) + 1)
        drop = rng.randint(0, len(fr) - at) if rng.random() < 0.5 else 0
        return fr[:at] + pick + fr[at + drop:]
    return "splice" if _frames_op(b, fn) else None


def m_splice_bytes(rng, b, other):
    """The head of this file and the tail of the other, cut anywhere."""
    cut = rng.randrange(len(b) + 1)
    ocut = rng.randrange(len(other) + 1)
    b[cut:] = other[ocut:]
    return "splice-bytes"


# Structure-aware: the FlatBuffers fields of every frame (serialize/schema/strobe.fbs), so a
# mutation can set one field, vector element, vector length or index to an edge value.
# A field type: scalar width and kind, "str", "vec:<elem>", "table:<name>", "struct:<name>".
SCHEMA = {
    "FileHeader": ["str", "str", "u32", "i64", "str", "f64", "str"],
    "FileEnd": ["u64"] * 9,
    "Batch": ["vec:str", "vec:u64", "vec:table:Trace", "u64", "u64", "u64"],
    "Trace": ["struct:TraceId", "idx32", "u32", "u8", "struct:Drops", "vec:u64", "vec:u64", "vec:idx32", "vec:u8",
              "vec:u8", "vec:i64", "vec:i64", "vec:idx32", "vec:table:SpanDetail", "vec:table:Group",
              "vec:table:Chain", "u64"],
    "SpanDetail": ["idx32", "u32", "idx32", "idx32", "idx32", "idx32", "idx32", "idx32", "idx32", "vec:idx32",
                   "struct:Tokens", "vec:struct:Attr", "vec:table:Event"],
    "Event": ["idx32", "i64", "vec:struct:Attr"],
    "Group": ["vec:idx32", "i64", "i64", "u32"],
    "Chain": ["u64", "vec:idx32", "vec:u32", "i64"],
}
# Structs: (offset, type) of their members.
STRUCTS = {
    "TraceId": (16, [(0, "u64"), (8, "u64")]),
    "Drops": (16, [(0, "u64"), (8, "u64")]),
    "Tokens": (24, [(0, "i64"), (8, "i64"), (16, "i64")]),
    "Attr": (16, [(0, "idx32"), (4, "u8"), (5, "u8"), (8, "u64")]),
}
WIDTH = {"u8": 1, "u32": 4, "idx32": 4, "u64": 8, "i64": 8, "f64": 8}
ROOT = {1: "FileHeader", 2: "Batch", 3: "FileEnd"}


class _Sites:
    def __init__(self, b, rng):
        self.b, self.rng, self.sites, self.budget = b, rng, [], 4000

    def u32(self, at):
        if at < 0 or at + 4 > len(self.b):
            raise IndexError
        return struct.unpack_from("<I", self.b, at)[0]

    def add(self, at, kind, count=0):
        if 0 <= at and at + WIDTH.get(kind, 4) <= len(self.b):
            self.sites.append((at, kind, count))

    def value(self, at, kind, count):
        if kind.startswith("struct:"):
            for off, k in STRUCTS[kind[7:]][1]:
                self.add(at + off, k, count)
        elif kind in WIDTH:
            self.add(at, kind, count)
        else:  # an offset to a string, vector or table
            self.add(at, "off")
            target = at + self.u32(at)
            if kind == "str":
                self.add(target, "len")
            elif kind.startswith("table:"):
                self.table(target, kind[6:])
            elif kind.startswith("vec:"):
                self.vector(target, kind[4:])

    def vector(self, at, elem, count=0):
        n = self.u32(at)
        self.add(at, "len")
        size = STRUCTS[elem[7:]][0] if elem.startswith("struct:") else WIDTH.get(elem, 4)
        if n == 0 or at + 4 + n * size > len(self.b):
            return
        picks = sorted(set([0, n - 1] + [self.rng.randrange(n) for _ in range(min(n, 6))]))
        for i in picks:
            self.value(at + 4 + i * size, elem, n)

    def table(self, at, name):
        self.budget -= 1
        if self.budget < 0:
            return
        vt = at - struct.unpack("<i", struct.pack("<I", self.u32(at)))[0]
        if vt < 0 or vt + 4 > len(self.b):
            return
        vt_size = struct.unpack_from("<H", self.b, vt)[0]
        self.add(at, "soff")
        for i, kind in enumerate(SCHEMA[name]):
            if 4 + 2 * i + 2 > vt_size or vt + 4 + 2 * i + 2 > len(self.b):
                break
            off = struct.unpack_from("<H", self.b, vt + 4 + 2 * i)[0]
            if off:
                try:
                    self.value(at + off, kind, 0)
                except (IndexError, struct.error):
                    pass


def fb_sites(b, rng):
    """(file offset, kind, vector length) of the FlatBuffers fields in every frame."""
    sites = _Sites(b, rng)
    pos = PREAMBLE
    while pos + FRAME_HEADER <= len(b):
        length, ftype = struct.unpack_from("<IB", b, pos)
        start = pos + FRAME_HEADER
        if ftype in ROOT and start + 4 <= len(b):
            try:
                sites.table(start + sites.u32(start), ROOT[ftype])
            except (IndexError, struct.error):
                pass
        pos = start + align8(length)
    return sites.sites


F64 = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, -1e308, 5e-324, 2.0 ** 63, -(2.0 ** 63)]


def m_field(rng, b, other):
    """One field, vector element, length or index of a FlatBuffers table set to an edge value."""
    sites = fb_sites(b, rng)
    if not sites:
        return None
    # Offsets outnumber the rest: every kind gets its turn, values (which the reader
    # accepts, so they reach the tool's code) more often than offsets and lengths.
    kinds = sorted({k for _, k, _ in sites})
    kind = rng.choices(kinds, weights=[1 if k in ("off", "soff", "len") else 3 for k in kinds])[0]
    at, kind, count = rng.choice([x for x in sites if x[1] == kind])
    if kind == "u8":
        struct.pack_into("<B", b, at, rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 127, 128, 254, 255]))
    elif kind in ("u64", "i64"):
        struct.pack_into("<Q", b, at, rng.choice(U64 + [rng.getrandbits(64)]))
    elif kind == "f64":
        struct.pack_into("<d", b, at, rng.choice(F64))
    elif kind == "idx32":  # a string, span or thread index: around the end of its range
        n = count or rng.choice([1, 8, 64])
        struct.pack_into("<I", b, at, rng.choice([n, n + 1, n - 1 if n else 0, 0, 0xFFFFFFFF, 0x80000000]) & 0xFFFFFFFF)
    elif kind == "len":
        v = struct.unpack_from("<I", b, at)[0]
        struct.pack_into("<I", b, at, rng.choice([0, 1, v + 1, v - 1 if v else 0, v * 2, 0x7FFFFFFF, 0xFFFFFFFF]) & 0xFFFFFFFF)
    elif kind in ("off", "soff"):
        v = struct.unpack_from("<I", b, at)[0]
        struct.pack_into("<I", b, at, (v + rng.choice([-8, -4, 4, 8, 0x80000000])) & 0xFFFFFFFF
                         if rng.random() < 0.7 else rng.choice([0, 4, 0xFFFFFFFF]))
    else:  # u32
        struct.pack_into("<I", b, at, rng.choice(U32 + [rng.getrandbits(32)]))
    return f"field-{kind}"


RAW = [(m_bitflip, 3), (m_bytes, 3), (m_word32, 6), (m_word64, 3), (m_nudge, 4), (m_truncate, 2),
       (m_chunk_dup, 1), (m_chunk_remove, 1), (m_chunk_insert, 1), (m_splice_bytes, 1)]
FRAMES = [(m_frame_dup, 2), (m_frame_remove, 2), (m_frame_swap, 1), (m_splice, 3)]


def make_mutant(seeds, base_seed, index):
    """Mutant `index`: the same (seed, index) always gives the same bytes. Half the
    mutants change FlatBuffers fields only (the file stays readable, so the values reach
    the tool's own code), the rest bytes and frames."""
    rng = random.Random(f"{base_seed}:{index}")
    name, data = seeds[rng.randrange(len(seeds))]
    other = seeds[rng.randrange(len(seeds))][1]
    b = bytearray(data)
    mode = rng.random()
    if mode < 0.5:
        plan = [m_field] * rng.choice([1, 1, 2, 2, 3, 4, 6])
    else:
        table = RAW if mode < 0.85 else FRAMES + [(m_field, 3)]
        plan = rng.choices([m for m, _ in table], weights=[w for _, w in table], k=rng.choice([1, 1, 1, 2, 2, 3, 4]))
    ops = []
    for fn in plan:
        if not b:
            break
        op = fn(rng, b, other)
        if op:
            ops.append(op)
    r = 0.0 if mode < 0.5 else rng.random()
    if r < 0.75:
        b = bytearray(repair(b))
        ops.append("repaired")
    elif r < 0.85:
        b = bytearray(repair(b, fix_preamble=False))
        ops.append("checksums-repaired")
    return name, bytes(b), ops


# ---------------------------------------------------------------------------------------
# The commands.

ANY_READ = {0, 3, 4}  # ok, unreadable, damaged


def commands(tool, path, seed_path, out_dir, endpoint, variant):
    """(label, argv, allowed exit statuses, what stdout/files hold) for every read
    subcommand; `variant` picks the options."""
    v = variant
    tree = [[], ["--depth", "1", "--max-children", "1"], ["--limit", "1", "--max-children", "2"],
            ["--trace", "1"], ["--root", "research-agent"], ["--depth", "0"]][v % 6]
    stats = [[], ["--json"], ["--by", "kind"], ["--by", "kind", "--json"]][v % 4]
    diff = [[seed_path, path], [path, seed_path, "--json"], [path, path, "--min-samples", "1"],
            [path, seed_path, "--threshold", "0", "--alpha", "0.5", "--min-samples", "1", "--json"]][v % 4]
    otlp = [[], ["--max-spans-per-line", "1"], ["--max-spans-per-line", "3"]][v % 3]
    push = [["--batch-bytes", "1024"], []][v % 2]
    j = lambda name: os.path.join(out_dir, name)
    return [
        ("info", ["info", path], ANY_READ, None),
        ("validate", ["validate", path] + (["--strict"] if v % 2 else []), {0, 1, 3}, None),
        ("tree", ["tree", path] + tree, ANY_READ | ({1} if "--trace" in tree or "--root" in tree else set()), None),
        ("stats", ["stats", path] + stats, ANY_READ, "json" if "--json" in stats else None),
        ("diff", ["diff"] + diff, {0, 1, 3, 4}, "json" if "--json" in diff else None),
        ("export-chrome", ["export", "--format", "chrome", path, "-o", j("chrome.json")], ANY_READ,
         ("file-json", j("chrome.json"))),
        ("export-otlp", ["export", "-f", "otlp", path, "-o", j("otlp.jsonl")] + otlp, ANY_READ,
         ("file-lines", j("otlp.jsonl"))),
        ("export-jsonl", ["export", "--format", "jsonl", path], ANY_READ, "lines"),
        ("html", ["html", path, "-o", j("page.html")], ANY_READ, None),
        ("push", ["push", path, "--endpoint", endpoint, "--retries", "0", "--timeout", "20"] + push, ANY_READ, None),
    ]


def json_problem(kind, stdout):
    """Why the command's JSON output does not parse, or None."""
    try:
        if isinstance(kind, tuple):
            with open(kind[1], "rb") as f:
                data = f.read()
            kind = "json" if kind[0] == "file-json" else "lines"
        else:
            data = stdout
        text = data.decode("utf-8", errors="replace")  # bytes are the file's; structure is the tool's
        if kind == "json":
            json.loads(text)
        else:
            for n, line in enumerate(text.splitlines(), 1):
                try:
                    json.loads(line)
                except ValueError as e:
                    return f"line {n}: {e}"
    except (OSError, ValueError) as e:
        return str(e)
    return None


def verdict(label, rc, stderr):
    """What the command says of the file: unreadable, damaged or readable."""
    if rc == 3:
        return "unreadable"
    if rc == 4 or (label == "validate" and rc == 1 and b"strobe: " in stderr):
        return "damaged"
    return "readable"


class Collector:
    """A local OTLP/HTTP collector for `push`: answers every POST with 200 and {}."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                while n > 0:
                    chunk = self.rfile.read(min(n, 1 << 16))
                    if not chunk:
                        break
                    n -= len(chunk)
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def stop(self):
        self.server.shutdown()


class Fuzzer:
    def __init__(self, args, seeds):
        self.args = args
        self.seeds = seeds
        self.env = dict(os.environ, ASAN_OPTIONS=ASAN_OPTIONS, UBSAN_OPTIONS=UBSAN_OPTIONS)
        self.failures_dir = os.path.join(args.work, "failures")
        self.lock = threading.Lock()
        self.failures = []
        self.runs = 0
        self.slowest = (0.0, "")
        self.collector = Collector()

    def run_one(self, argv):
        p = subprocess.Popen([self.args.tool] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        start = time.monotonic()
        try:
            out, err = p.communicate(timeout=self.args.timeout)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            hung = True
        return p.returncode, out, err, hung, time.monotonic() - start

    def check_file(self, index, seed_name, ops, data, seed_path):
        """Runs every command on one file; returns the failures found."""
        work = os.path.join(self.args.work, "run", str(index))
        os.makedirs(work, exist_ok=True)
        path = os.path.join(work, "mutant.strobe")
        with open(path, "wb") as f:
            f.write(data)
        found, verdicts = [], {}
        variants = range(6) if index < 0 else [index]  # seeds and replays: every variant
        for variant in variants:
            for label, argv, allowed, output in commands(self.args.tool, path, seed_path, work,
                                                         self.collector.endpoint, variant):
                rc, out, err, hung, secs = self.run_one(argv)
                with self.lock:
                    self.runs += 1
                    if secs > self.slowest[0]:
                        self.slowest = (secs, f"{label} on " + (f"mutant {index} of " if index >= 0 else "") + seed_name)
                why = None
                if hung:
                    why = f"hang: still running after {self.args.timeout:g} s"
                elif rc < 0:
                    try:
                        name = signal.Signals(-rc).name
                    except ValueError:
                        name = "?"
                    why = f"killed by signal {-rc} ({name})"
                elif SANITIZER_REPORT.search(err.decode("utf-8", "replace")):
                    why = f"sanitizer report (exit {rc})"
                elif rc not in DOCUMENTED:
                    why = f"exit {rc}: not a documented exit status"
                elif rc not in allowed:
                    why = f"exit {rc}: not one `{label}` can give here (expected one of {sorted(allowed)})"
                elif rc in (3, 4) and not re.search(rb"(^|\n)strobe: ", err):
                    why = f"exit {rc} without a 'strobe: ' line on stderr"
                elif output and rc in (0, 1, 4) and (problem := json_problem(output, out)):
                    why = f"exit {rc} but the JSON output does not parse: {problem}"
                if why is None and label not in ("diff",):
                    verdicts.setdefault(verdict(label, rc, err), []).append(label)
                if why:
                    found.append((why, label, argv, rc, err))
                    break
            if found:
                break
        if not found and len(verdicts) > 1:
            found.append(("subcommands disagree on the file: " +
                          "; ".join(f"{k}: {', '.join(sorted(set(v)))}" for k, v in sorted(verdicts.items())),
                          "consistency", ["info", path], None, b""))
        if found:
            self.record(index, seed_name, ops, data, path, work, found)
        shutil.rmtree(work, ignore_errors=True)
        return bool(found)

    def record(self, index, seed_name, ops, data, path, work, found):
        os.makedirs(self.failures_dir, exist_ok=True)
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(seed_name))
        base = base[:-len(".strobe")] if base.endswith(".strobe") else base
        saved = os.path.join(self.failures_dir, f"{base}-mutant{index}.strobe" if index >= 0 else f"{base}.strobe")
        with open(saved, "wb") as f:
            f.write(data)
        lines = []
        for why, label, argv, rc, err in found:
            shown = [saved if a == path else (os.path.join(self.failures_dir, os.path.basename(a))
                                              if a.startswith(work + os.sep) else a) for a in argv]
            cmd = (f"ASAN_OPTIONS={ASAN_OPTIONS} UBSAN_OPTIONS={UBSAN_OPTIONS} " +
                   shlex.join([self.args.tool] + shown))
            what = f"mutant {index} of {seed_name} ({', '.join(ops) or 'unchanged'})" if index >= 0 else seed_name
            lines.append(f"FAIL {label}: {why}\n  input:   {what}\n  saved:   {saved}\n  command: {cmd}")
            tail = err.decode("utf-8", "replace").strip().splitlines()[-40:]
            if tail:
                lines.append("  stderr:\n    " + "\n    ".join(tail))
        with self.lock:
            self.failures.append("\n".join(lines))
            print("\n".join(lines), flush=True)

    def fuzz(self, count, seconds, seed):
        """The seeds themselves (every option variant), then mutants 0..count-1 until
        `seconds` have passed; returns (mutants checked, seconds)."""
        start = time.monotonic()
        done = [0]

        def seed_file(i):
            name, data = self.seeds[i]
            self.check_file(-1 - i, name, [], data, name)

        def mutant(i):
            if time.monotonic() - start > seconds or len(self.failures) >= self.args.max_failures:
                return
            name, data, ops = make_mutant(self.seeds, seed, i)
            self.check_file(i, name, ops, data, name)
            with self.lock:
                done[0] += 1

        with ThreadPoolExecutor(self.args.jobs) as pool:
            list(pool.map(seed_file, range(len(self.seeds))))
            list(pool.map(mutant, range(count)))
        return done[0], time.monotonic() - start


def load_seeds(paths):
    seeds = []
    for p in paths:
        files = sorted(os.path.join(p, n) for n in os.listdir(p)) if os.path.isdir(p) else [p]
        for f in files:
            if os.path.isfile(f):
                with open(f, "rb") as fh:
                    data = fh.read()
                if data:
                    seeds.append((f, data))
    return seeds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True, help="the sanitized strobe binary")
    ap.add_argument("--work", required=True, help="scratch directory; failures go to WORK/failures")
    ap.add_argument("--mutants", type=int, default=int(os.environ.get("STROBE_TOOL_FUZZ_MUTANTS", 400)))
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("STROBE_TOOL_FUZZ_SECONDS", 60)),
                    help="start no new mutant after this long")
    ap.add_argument("--seed", default=os.environ.get("STROBE_TOOL_FUZZ_SEED", "1"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=30, help="seconds one command may take")
    ap.add_argument("--max-failures", type=int, default=5)
    ap.add_argument("--replay", action="store_true", help="run the commands on the files given, unmutated")
    ap.add_argument("seeds", nargs="+")
    args = ap.parse_args()
    if not os.access(args.tool, os.X_OK):
        sys.exit(f"tool_fuzz: {args.tool} is not an executable")
    seeds = load_seeds(args.seeds)
    if not seeds:
        sys.exit("tool_fuzz: no seed files")
    for old in ("run", "failures"):  # a previous run's leftovers
        shutil.rmtree(os.path.join(args.work, old), ignore_errors=True)
    fz = Fuzzer(args, seeds)
    try:
        if args.replay:
            done, secs = fz.fuzz(0, 0, args.seed)
        else:
            done, secs = fz.fuzz(args.mutants, args.seconds, args.seed)
    finally:
        fz.collector.stop()
    print(f"tool_fuzz: {len(seeds)} seed files, {done} mutants (seed {args.seed}), {fz.runs} runs of "
          f"{args.tool} in {secs:.1f} s; slowest run {fz.slowest[0]:.2f} s ({fz.slowest[1]})")
    if done < args.mutants and not args.replay and not fz.failures:
        print(f"tool_fuzz: stopped at the time limit ({args.seconds:g} s) after {done} of {args.mutants} mutants")
    if fz.failures:
        print(f"tool_fuzz: {len(fz.failures)} failing input(s), saved under {fz.failures_dir}")
        return 1
    print("tool_fuzz: no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
