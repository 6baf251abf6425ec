// strobe export --format chrome|otlp|jsonl FILE [-o OUT]

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "commands.hpp"
#include "common.hpp"
#include "json.hpp"
#include "otlp.hpp"

namespace strobe::tool {
namespace {

// ---- Chrome Trace Event Format ----
//
// Spans become complete ("X") events on their thread's track. Spans on one thread that
// overlap without nesting (a span ended on another thread, resumed segments, adopted
// work) would break the nesting the viewers assume, so each thread has lanes: a span
// goes to the first lane where it nests inside the open span on top (or the lane is
// idle), else a new lane, shown as its own track.
class ChromeLanes {
 public:
  struct Placed {
    std::uint64_t tid;
    bool new_track;
    std::uint32_t lane;
  };

  Placed place(std::uint64_t thread, std::int64_t start, std::int64_t end) {
    std::vector<Lane>& lanes = threads_[thread];
    for (std::uint32_t i = 0; i < lanes.size(); ++i) {
      if (lanes[i].fits(start, end)) {
        lanes[i].push(start, end);
        return {tid_of(thread, i), false, i};
      }
    }
    lanes.emplace_back();
    lanes.back().push(start, end);
    const auto lane = static_cast<std::uint32_t>(lanes.size() - 1);
    return {tid_of(thread, lane), true, lane};
  }

 private:
  struct Open {
    std::int64_t start, end, child_floor;
  };
  struct Lane {
    std::vector<Open> stack;
    std::int64_t floor = INT64_MIN;  // end of the last top-level span
    bool fits(std::int64_t start, std::int64_t end) {
      // Close what ended before this span starts (spans arrive roughly in start order).
      while (!stack.empty() && stack.back().end <= start) pop();
      if (stack.empty()) return start >= floor;
      const Open& top = stack.back();
      return top.start <= start && end <= top.end && start >= top.child_floor;
    }
    void pop() {
      const Open o = stack.back();
      stack.pop_back();
      if (stack.empty()) {
        floor = std::max(floor, o.end);
      } else {
        stack.back().child_floor = std::max(stack.back().child_floor, o.end);
      }
    }
    void push(std::int64_t start, std::int64_t end) { stack.push_back({start, end, INT64_MIN}); }
  };
  static std::uint64_t tid_of(std::uint64_t thread, std::uint32_t lane) {
    return lane == 0 ? thread : (std::uint64_t{lane} << 32) | (thread & 0xffffffffu);
  }
  std::unordered_map<std::uint64_t, std::vector<Lane>> threads_;
};

void chrome_args(JsonWriter& w, const AssembledTrace& t, const SpanData& s) {
  key(w, "args");
  w.StartObject();
  key(w, "kind"); w.String(s.kind == Kind::custom && !s.kind_name.empty() ? s.kind_name.c_str() : to_string(s.kind));
  key(w, "status"); w.String(to_string(s.status));
  key(w, "span_id"); str(w, hex64(s.span_id));
  key(w, "trace_id"); str(w, t.trace_id.to_hex());
  if (s.parent_id) { key(w, "parent_id"); str(w, hex64(s.parent_id)); }
  if (!s.model.empty()) { key(w, "model"); str(w, s.model); }
  if (s.has_tokens) {
    key(w, "input_tokens"); w.Int64(s.tokens.input);
    key(w, "output_tokens"); w.Int64(s.tokens.output);
    key(w, "cached_input_tokens"); w.Int64(s.tokens.cached_input);
  }
  if (!s.input.empty()) { key(w, "input"); str(w, s.input); }
  if (!s.output.empty()) { key(w, "output"); str(w, s.output); }
  if (!s.error_message.empty()) { key(w, "error"); str(w, s.error_message); }
  if (!s.error_data.empty()) { key(w, "error_data"); str(w, s.error_data); }
  if (s.group >= 0) { key(w, "parallel_group"); w.Int(s.group); }
  if (s.segment_of) { key(w, "segment"); w.Uint(s.segment_index); }
  if (!s.tags.empty()) {
    key(w, "tags");
    w.StartArray();
    for (const auto& tag : s.tags) str(w, tag);
    w.EndArray();
  }
  for (const Attribute& a : s.attrs) {
    key(w, a.key);
    switch (a.value.type) {
      case AttrValue::Type::i64: w.Int64(a.value.i); break;
      case AttrValue::Type::f64: number(w, a.value.d); break;
      case AttrValue::Type::boolean: w.Bool(a.value.i != 0); break;
      case AttrValue::Type::string: str(w, a.value.s); break;
    }
  }
  w.EndObject();
}

int export_chrome(const std::string& file, std::FILE* out) {
  FileStream fs(out);
  JsonWriter w(fs);
  ChromeLanes lanes;
  serialize::FileInfo info;
  bool header = false;
  // Times are microseconds since the recorder started (otherData.strobe_start_unix_ns,
  // or the first span's start when the header has none): offsets keep every nanosecond
  // in a double, where microseconds since the epoch (~1.8e15) round to 0.25 us and break
  // the nesting viewers rely on.
  std::int64_t base_ns = 0;
  auto us = [&](std::int64_t ns) { return static_cast<double>(static_cast<__int128>(ns) - base_ns) / 1000.0; };
  std::uint64_t flow_id = 0;
  w.StartObject();
  key(w, "displayTimeUnit"); w.String("ns");
  key(w, "traceEvents");
  w.StartArray();
  const int status = for_each_trace(file, [&](const serialize::TraceView& tv) {
    const AssembledTrace t = tv.materialize();
    const std::uint32_t pid = t.process_id;
    if (!header) {
      header = true;
      base_ns = info.start_ns != 0 || t.spans.empty() ? info.start_ns : t.spans.front().start_ns;
      w.StartObject();
      key(w, "ph"); w.String("M");
      key(w, "name"); w.String("process_name");
      key(w, "pid"); w.Uint(pid);
      key(w, "args"); w.StartObject(); key(w, "name"); str(w, t.service_name); w.EndObject();
      w.EndObject();
    }
    std::vector<std::size_t> order(t.spans.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (t.spans[a].start_ns != t.spans[b].start_ns) return t.spans[a].start_ns < t.spans[b].start_ns;
      return t.spans[a].end_ns > t.spans[b].end_ns;  // the enclosing span first
    });
    std::unordered_map<std::uint64_t, std::uint64_t> track_of;
    for (std::size_t i : order) {
      const SpanData& s = t.spans[i];
      const auto placed = lanes.place(s.thread_id, s.start_ns, std::max(s.end_ns, s.start_ns));
      track_of[s.span_id] = placed.tid;
      if (placed.new_track) {
        w.StartObject();
        key(w, "ph"); w.String("M");
        key(w, "name"); w.String("thread_name");
        key(w, "pid"); w.Uint(pid);
        key(w, "tid"); w.Uint64(placed.tid);
        key(w, "args");
        w.StartObject();
        key(w, "name");
        str(w, "thread " + std::to_string(s.thread_id) + (placed.lane ? " (lane " + std::to_string(placed.lane) + ")" : ""));
        w.EndObject();
        w.EndObject();
      }
      w.StartObject();
      key(w, "ph"); w.String("X");
      key(w, "name"); str(w, s.name);
      key(w, "cat"); w.String(to_string(s.kind));
      key(w, "pid"); w.Uint(pid);
      key(w, "tid"); w.Uint64(placed.tid);
      key(w, "ts"); w.Double(us(s.start_ns));
      key(w, "dur"); w.Double(static_cast<double>(std::max<std::int64_t>(0, span_duration(s.start_ns, s.end_ns))) / 1000.0);
      chrome_args(w, t, s);
      w.EndObject();
      for (const SpanEvent& e : s.events) {
        w.StartObject();
        key(w, "ph"); w.String("i");
        key(w, "s"); w.String("t");
        key(w, "name"); str(w, e.name);
        key(w, "pid"); w.Uint(pid);
        key(w, "tid"); w.Uint64(placed.tid);
        key(w, "ts"); w.Double(us(e.time_ns));
        key(w, "args");
        w.StartObject();
        for (const Attribute& a : e.attrs) {
          key(w, a.key);
          if (a.value.type == AttrValue::Type::string) str(w, a.value.s);
          else if (a.value.type == AttrValue::Type::f64) number(w, a.value.d);
          else if (a.value.type == AttrValue::Type::boolean) w.Bool(a.value.i != 0);
          else w.Int64(a.value.i);
        }
        w.EndObject();
        w.EndObject();
      }
    }
    // Resumed segments: a flow arrow from each segment's end to the next one's start.
    std::unordered_map<std::uint64_t, std::size_t> pos;
    for (std::size_t i = 0; i < t.spans.size(); ++i) pos[t.spans[i].span_id] = i;
    for (const SegmentChain& c : t.chains) {
      for (std::size_t k = 1; k < c.segments.size(); ++k) {
        const SpanData& a = t.spans[pos.at(c.segments[k - 1])];
        const SpanData& b = t.spans[pos.at(c.segments[k])];
        ++flow_id;
        for (int end = 0; end < 2; ++end) {
          const SpanData& sp = end ? b : a;
          w.StartObject();
          key(w, "ph"); w.String(end ? "f" : "s");
          if (end) { key(w, "bp"); w.String("e"); }
          key(w, "name"); w.String("resume");
          key(w, "cat"); w.String("segment");
          key(w, "id"); w.Uint64(flow_id);
          key(w, "pid"); w.Uint(pid);
          key(w, "tid"); w.Uint64(track_of.at(sp.span_id));
          // The flow leaves a segment just before its end (at its start when it has no length).
          key(w, "ts"); w.Double(us(end || sp.end_ns <= sp.start_ns ? sp.start_ns : sp.end_ns - 1));
          w.EndObject();
        }
      }
    }
  }, &info);
  w.EndArray();
  key(w, "otherData");
  w.StartObject();
  key(w, "strobe_start_unix_ns"); str(w, std::to_string(base_ns));
  key(w, "strobe_start"); str(w, iso8601(base_ns));
  w.EndObject();
  w.EndObject();
  fs.raw("\n");
  return status;
}

// ---- OTLP/JSON lines (the OpenTelemetry file-exporter convention) ----

int export_otlp(const std::string& file, std::FILE* out, std::size_t max_spans_per_line) {
  FileStream fs(out);
  serialize::FileInfo info;  // filled from the header before the first trace
  return for_each_trace(file, [&](const serialize::TraceView& tv) {
    const AssembledTrace t = tv.materialize();
    for (std::size_t from = 0; from < t.spans.size(); from += max_spans_per_line) {
      JsonWriter w(fs);
      otlp::traces_data(w, info, t, from, std::min(t.spans.size(), from + max_spans_per_line));
      fs.raw("\n");
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
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--format,-f", o->format, "chrome | otlp | jsonl")->required()->check(CLI::IsMember({"chrome", "otlp", "jsonl"}));
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("-o,--output", o->out, "output file ('-' for stdout)");
  cmd->add_option("--max-spans-per-line", o->max_spans, "otlp: split larger traces over several lines")->check(CLI::PositiveNumber);
  cmd->callback([o, &status] {
    // The input is checked before the output is created: an unreadable file leaves no
    // output behind, not even the opening of a JSON document or an emptied -o file.
    try {
      serialize::Reader probe(o->file);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    Output out(o->out);
    if (o->format == "chrome") status = export_chrome(o->file, out.file());
    else if (o->format == "otlp") status = export_otlp(o->file, out.file(), o->max_spans);
    else status = export_jsonl(o->file, out.file());
    out.close();
  });
}

}  // namespace strobe::tool
