// Decodes OTLP/HTTP trace requests with the official generated code (protobufjs static
// code generated from opentelemetry-proto, shipped by @opentelemetry/otlp-proto-exporter-base
// as build/src/generated/root.js), and reads OTLP/JSON lines (strobe export --format otlp)
// into the same canonical form, so that a test can compare what a receiver got with a
// file export span by span.
//
//   node decode_otlp.js protobuf:gzip:req1.bin json:none:req2.bin file:none:export.jsonl
//
// Prints, for each request (or each line of a file), "request <source> <spans>
// <resource>", then "span <canonical JSON>" for each of its spans. Canonical: ids as
// lowercase hex, 64-bit values as decimal strings, attributes sorted by key with typed
// values ({"s":..}, {"i":..}, {"b":..}, {"d":..}, {"a":[..]}), the defaults written out
// (kind 0, status code 0, message ""). Exits 1 with "error <source>: <why>" when a
// request does not decode.
"use strict";
const fs = require("fs");
const zlib = require("zlib");
const root = require("@opentelemetry/otlp-proto-exporter-base/build/src/generated/root.js");
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const hex = (v) => (v === undefined || v === null || v === "" ? "" : Buffer.from(v, "base64").toString("hex"));

function value(v) {
  if (v === undefined || v === null) return { none: true };
  if ("stringValue" in v) return { s: v.stringValue };
  if ("boolValue" in v) return { b: v.boolValue };
  if ("intValue" in v) return { i: String(v.intValue) };
  if ("doubleValue" in v) {
    let d = v.doubleValue;
    if (typeof d === "string") d = Number(d);  // "NaN", "Infinity", "-Infinity"
    return { d: Number.isFinite(d) ? d : String(d) };
  }
  if ("arrayValue" in v) return { a: ((v.arrayValue || {}).values || []).map(value) };
  if ("kvlistValue" in v) return { kv: attributes((v.kvlistValue || {}).values) };
  if ("bytesValue" in v) return { bytes: v.bytesValue };
  return { none: true };
}

function attributes(list) {
  return (list || [])
    .map((a) => [a.key, value(a.value)])
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

// `ids`: how the form writes ids (protobuf: base64 after toObject; JSON: hex already).
function span(s, ids) {
  const id = (v) => (ids === "hex" ? v || "" : hex(v));
  return {
    traceId: id(s.traceId),
    spanId: id(s.spanId),
    parentSpanId: id(s.parentSpanId),
    name: s.name || "",
    kind: s.kind || 0,
    startTimeUnixNano: String(s.startTimeUnixNano || "0"),
    endTimeUnixNano: String(s.endTimeUnixNano || "0"),
    attributes: attributes(s.attributes),
    events: (s.events || []).map((e) => ({
      timeUnixNano: String(e.timeUnixNano || "0"),
      name: e.name || "",
      attributes: attributes(e.attributes),
    })),
    links: (s.links || []).map((l) => ({ traceId: id(l.traceId), spanId: id(l.spanId), attributes: attributes(l.attributes) })),
    status: { code: (s.status || {}).code || 0, message: (s.status || {}).message || "" },
  };
}

function print(source, obj, ids) {
  const lines = [];
  let spans = 0;
  let resource = [];
  for (const rs of obj.resourceSpans || []) {
    resource = attributes((rs.resource || {}).attributes);
    for (const ss of rs.scopeSpans || [])
      for (const s of ss.spans || []) {
        lines.push("span " + JSON.stringify(span(s, ids)));
        ++spans;
      }
  }
  process.stdout.write(`request ${source} ${spans} ${JSON.stringify(resource)}\n` + lines.map((l) => l + "\n").join(""));
}

let failed = false;
for (const arg of process.argv.slice(2)) {
  const [kind, encoding, ...rest] = arg.split(":");
  const path = rest.join(":");
  try {
    let body = fs.readFileSync(path);
    if (encoding === "gzip") body = zlib.gunzipSync(body);
    if (kind === "protobuf") {
      const message = Request.decode(body);
      const err = Request.verify(message);
      if (err) throw new Error("verify: " + err);
      print(path, Request.toObject(message, { longs: String, bytes: String, enums: Number }), "base64");
    } else if (kind === "json") {
      print(path, JSON.parse(body.toString("utf8")), "hex");
    } else if (kind === "file") {
      const text = body.toString("utf8");
      text.split("\n").forEach((line, i) => {
        if (line.trim() !== "") print(`${path}:${i + 1}`, JSON.parse(line), "hex");
      });
    } else {
      throw new Error("unknown kind " + kind);
    }
  } catch (e) {
    process.stdout.write(`error ${path}: ${String(e && e.message ? e.message : e).split("\n")[0]}\n`);
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;  // not process.exit(): it would cut a piped stdout short
