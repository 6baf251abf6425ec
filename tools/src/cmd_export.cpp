// strobe export --format chrome|otlp|jsonl FILE [-o OUT] (the Chrome export: chrome_export.cpp)

#include <strobe/serialize/otlp.hpp>

#include <algorithm>
#include <optional>
#include <string_view>
#include <cstdio>
#include <unordered_map>

#include "chrome_export.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "json.hpp"

namespace strobe::tool {
namespace {

// ---- OTLP/JSON lines (the OpenTelemetry file-exporter convention) ----

int export_otlp(const std::string& file, std::FILE* out, std::size_t max_spans_per_line) {
  serialize::FileInfo info;  // filled from the header before the first trace
  serialize::otlp::RequestWriter w(serialize::otlp::Protocol::json);
  std::optional<serialize::otlp::Resource> resource;
  const auto write = [out](std::string_view text) { std::fwrite(text.data(), 1, text.size(), out); };
  return for_each_trace(file, [&](const serialize::TraceView& tv) {
    if (!resource) resource = serialize::otlp::resource_of(info);
    const AssembledTrace t = tv.materialize();
    w.begin_trace(t);
    for (std::size_t from = 0; from < t.spans.size(); from += max_spans_per_line) {
      w.begin(*resource);
      for (std::size_t i = from; i < std::min(t.spans.size(), from + max_spans_per_line); ++i) {
        w.add(i);
        if (w.size() > (1u << 20)) write(w.take_json_text());  // a long line goes out in pieces
      }
      w.end();
      write(w.data());
      write("\n");
    }
  }, &info);
}

// ---- JSON lines: one lifecycle event per line (started, then completed or failed) ----

void jsonl_event(JsonWriter& w, const AssembledTrace& t, const SpanData& s, bool start) {
  const char* what = start ? "started" : (s.status == Status::failed ? "failed" : (s.status == Status::incomplete ? "incomplete" : "completed"));
  w.StartObject();
  key(w, "event"); w.String(what);
  key(w, "session_id"); str(w, t.trace_id.to_hex());
  key(w, "trace_id"); str(w, t.trace_id.to_hex());
  key(w, "event_id"); str(w, hex64(s.span_id));
  key(w, "parent_id");
  if (s.parent_id) str(w, hex64(s.parent_id)); else w.Null();
  key(w, "span_type"); w.String(s.kind == Kind::custom && !s.kind_name.empty() ? s.kind_name.c_str() : to_string(s.kind));
  key(w, "source"); w.String("agent");
  // The thread that began it.
  key(w, "thread_id"); w.Uint64(s.thread_id);
  if (const std::string_view thread = t.thread_name(s.thread_id); !thread.empty()) { key(w, "thread_name"); str(w, thread); }
  key(w, "content"); str(w, s.name + " " + what);
  key(w, "started_at"); str(w, iso8601(s.start_ns));
  if (!start) {
    key(w, "ended_at"); str(w, iso8601(s.end_ns));
    key(w, "duration_ns"); w.Int64(span_duration(s.start_ns, s.end_ns));
  }
  key(w, "extra");
  w.StartObject();
  for (const Attribute& a : s.attrs) {
    key(w, a.key);
    switch (a.value.type) {
      case AttrValue::Type::i64: w.Int64(a.value.i); break;
      case AttrValue::Type::f64: number(w, a.value.d); break;
      case AttrValue::Type::boolean: w.Bool(a.value.i != 0); break;
      case AttrValue::Type::string: str(w, a.value.s); break;
    }
  }
  if (!start) {
    std::vector<const SpanEvent*> logs;
    for (const SpanEvent& e : s.events) if (e.name == "log") logs.push_back(&e);
    if (!logs.empty()) {
      key(w, "logs");
      w.StartArray();
      for (const SpanEvent* e : logs) str(w, e->attrs.empty() ? std::string() : e->attrs[0].value.s);
      w.EndArray();
    }
    if (!s.model.empty()) { key(w, "model"); str(w, s.model); }
    if (s.has_tokens) {
      key(w, "tokens");
      w.StartObject();
      key(w, "input"); w.Int64(s.tokens.input);
      key(w, "output"); w.Int64(s.tokens.output);
      key(w, "cached_input"); w.Int64(s.tokens.cached_input);
      w.EndObject();
    }
    if (!s.tags.empty()) { key(w, "tags"); w.StartArray(); for (auto& tag : s.tags) str(w, tag); w.EndArray(); }
    if (!s.input.empty()) { key(w, "input"); str(w, s.input); }
    if (!s.output.empty()) { key(w, "output"); str(w, s.output); }
    if (s.status == Status::failed) {
      key(w, "error");
      w.StartObject();
      key(w, "message"); str(w, s.error_message);
      if (!s.error_data.empty()) { key(w, "data"); str(w, s.error_data); }
      w.EndObject();
    }
  }
  w.EndObject();
  w.EndObject();
}

int export_jsonl(const std::string& file, std::FILE* out) {
  FileStream fs(out);
  return for_each_trace(file, [&](const serialize::TraceView& tv) {
    const AssembledTrace t = tv.materialize();
    // At one instant: first the ends of spans begun earlier (children before parents),
    // then the starts (parents before children), then the ends of spans that began at
    // that instant, so a zero-length span still reads "started" before "completed" (an
    // end stamped before its start counts as at the start).
    struct Ev {
      std::int64_t at;
      int order;
      std::size_t span;
      bool start;
    };
    std::vector<Ev> evs;
    evs.reserve(t.spans.size() * 2);
    for (std::size_t i = 0; i < t.spans.size(); ++i) {
      const std::int64_t start = t.spans[i].start_ns, end = std::max(t.spans[i].end_ns, start);
      evs.push_back({start, 1, i, true});
      evs.push_back({end, end == start ? 2 : 0, i, false});
    }
    std::stable_sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
      if (a.at != b.at) return a.at < b.at;
      if (a.order != b.order) return a.order < b.order;
      return a.start ? a.span < b.span : a.span > b.span;
    });
    for (const Ev& e : evs) {
      JsonWriter w(fs);
      jsonl_event(w, t, t.spans[e.span], e.start);
      fs.raw("\n");
    }
  });
}

}  // namespace

void add_export(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("export", "Convert to Chrome/Perfetto JSON, OpenTelemetry OTLP/JSON lines, or lifecycle JSON lines");
  struct Opts {
    std::string format, file, out = "-";
    std::size_t max_spans = 10000;
    ChromeOptions chrome;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--format,-f", o->format, "chrome | otlp | jsonl")->required()->check(CLI::IsMember({"chrome", "otlp", "jsonl"}));
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("-o,--output", o->out, "output file ('-' for stdout)");
  cmd->add_option("--max-spans-per-line", o->max_spans, "otlp: split larger traces over several lines")->check(CLI::PositiveNumber);
  cmd->add_flag("--args", o->chrome.span_args,
                "chrome: each span's details as its args, shown by Perfetto and chrome://tracing "
                "(for speedscope leave it out: it makes every span a frame of its own)");
  cmd->callback([o, &status] {
    // The input is checked before the output is created: an unreadable file leaves no
    // output behind, not even the opening of a JSON document or an emptied -o file.
    try {
      serialize::Reader probe(o->file);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    Output out(o->out);
    if (o->format == "chrome") status = export_chrome(o->file, out.file(), o->chrome);
    else if (o->format == "otlp") status = export_otlp(o->file, out.file(), o->max_spans);
    else status = export_jsonl(o->file, out.file());
    out.close();
  });
}

}  // namespace strobe::tool
