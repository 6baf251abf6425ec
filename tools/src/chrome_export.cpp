// strobe export --format chrome.
//
// Spans become duration events: a begin ("B") and an end ("E") on their thread's track,
// each with its own exact timestamp. Complete ("X") events would leave the end to the
// viewer's floating point (ts + dur), which lands after the next span's start when one
// span ends exactly where the next begins, and nests the next span inside it.
//
// Timestamps are microseconds since the recorder started, written as exact decimals with
// six places: the span's nanosecond, plus k picoseconds (minus 500 - k before the start).
// Among the events of one track at one nanosecond, k = 1, 2, 3, ... in the order a viewer
// must take them (an end before the begin of a span that starts where it ended, a parent's
// begin before its child's), so no viewer has to break a tie, and its own rule for ties
// (speedscope's puts a begin first when the frames have the same name) never comes into
// play. k stays below 500, so a reader that rounds to whole nanoseconds and one that
// truncates toward zero (Perfetto) both read the nanosecond.
//
// A span nests on a track only inside its strobe parent: it goes to the first lane of its
// thread whose open span on top is its parent and encloses it (or that is idle), else to a
// new lane, shown as a track of its own. Spans that overlap without nesting (ended on
// another thread, resumed segments, work adopted from another thread's context) never
// break the nesting viewers assume.
//
// Tracks are named after their thread: its name (strobe::set_thread_name(), else its OS
// name; the latest in the file) or "thread <id>" when the file has none (before format
// 1.2); a thread's extra lanes add " (lane K)".
//
// A span's details go under "strobe" (ignored by viewers), or with --args under "args".
// speedscope names a frame by the event's name and its args together, so without args it
// has one frame per span name.

#include "chrome_export.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "json.hpp"

namespace strobe::tool {
namespace {

constexpr std::size_t kNoSpan = static_cast<std::size_t>(-1);
// The picoseconds that order the events of one nanosecond on one track stay below half a
// nanosecond; events past the 499th of one nanosecond share the last value.
constexpr int kMaxTieSteps = 499;

class ChromeLanes {
 public:
  struct Placed {
    std::uint64_t tid;
    std::uint32_t lane;
    std::size_t parent;  // index in the current trace of the span it nests in, or kNoSpan
  };
  struct Track {
    std::uint64_t tid, thread;
    std::uint32_t lane;
  };

  // Spans of a new trace follow; what earlier traces left open still occupies its lanes.
  void begin_trace() { ++trace_; }

  Placed place(std::uint64_t thread, std::int64_t start, std::int64_t end, std::uint64_t span_id,
               std::uint64_t parent_id, std::size_t index) {
    std::vector<Lane>& lanes = threads_[thread];
    const Open open{start, end, INT64_MIN, span_id, trace_, index};
    for (std::uint32_t i = 0; i < lanes.size(); ++i) {
      if (const Open* top = nullptr; lanes[i].fits(open, parent_id, top)) {
        const std::size_t parent = top && top->trace == trace_ ? top->index : kNoSpan;
        lanes[i].stack.push_back(open);
        return {tid_of(thread, i), i, parent};
      }
    }
    lanes.emplace_back();
    lanes.back().stack.push_back(open);
    const auto lane = static_cast<std::uint32_t>(lanes.size() - 1);
    tracks_.push_back({tid_of(thread, lane), thread, lane});
    return {tid_of(thread, lane), lane, kNoSpan};
  }

  // Every track made so far, in the order they were made.
  [[nodiscard]] const std::vector<Track>& tracks() const noexcept { return tracks_; }

 private:
  struct Open {
    std::int64_t start, end, child_floor;
    std::uint64_t span_id;
    std::uint64_t trace;
    std::size_t index;
  };
  struct Lane {
    std::vector<Open> stack;
    std::int64_t floor = INT64_MIN;  // end of the last top-level span
    // Whether `s` (a child of parent_id) can go here; `top` is then the span it nests in
    // (null: at the top level).
    bool fits(const Open& s, std::uint64_t parent_id, const Open*& top) {
      // Close what ended before s starts (spans arrive in start order). A span that ends
      // where s starts has ended, unless s is its empty child at that instant.
      while (!stack.empty()) {
        const Open& o = stack.back();
        const bool empty_child_at_end = s.start == s.end && o.end == s.start && o.span_id == parent_id;
        if (o.end > s.start || empty_child_at_end) break;
        pop();
      }
      if (stack.empty()) return s.start >= floor;
      top = &stack.back();
      return top->span_id == parent_id && top->start <= s.start && s.end <= top->end && s.start >= top->child_floor;
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
  };
  static std::uint64_t tid_of(std::uint64_t thread, std::uint32_t lane) {
    return lane == 0 ? thread : (std::uint64_t{lane} << 32) | (thread & 0xffffffffu);
  }
  std::unordered_map<std::uint64_t, std::vector<Lane>> threads_;
  std::vector<Track> tracks_;
  std::uint64_t trace_ = 0;
};

// One event of a track, before its timestamp is written.
struct TrackEvent {
  enum What : std::uint8_t { begin, end, instant, flow_start, flow_finish };
  std::int64_t ns;
  What what;
  std::uint32_t span;
  std::uint64_t detail;  // instant: index into the span's events; flows: the flow id
};

// The picosecond ticks that keep one track's events of one nanosecond apart, across traces.
class TieBreaker {
 public:
  // Microseconds since base_ns for the next event of track `tid` at `ns`, as exact decimal text.
  std::string next(std::uint64_t tid, std::int64_t ns, std::int64_t base_ns) {
    Last& last = last_[tid];
    const __int128 offset_ns = static_cast<__int128>(ns) - base_ns;
    last.step = offset_ns == last.offset_ns && last.step > 0 ? std::min(last.step + 1, kMaxTieSteps) : 1;
    last.offset_ns = offset_ns;
    // Before the recorder's start (a span stamped just before it) the ticks count up from
    // half a nanosecond earlier: truncating toward zero, a reader still gets the nanosecond.
    const __int128 ps = offset_ns * 1000 + (offset_ns < 0 ? last.step - 500 : last.step);
    const __int128 magnitude = ps < 0 ? -ps : ps;
    std::string fraction = std::to_string(static_cast<std::int64_t>(magnitude % 1'000'000));
    fraction.insert(0, 6 - fraction.size(), '0');
    return (ps < 0 ? "-" : "") + to_decimal(magnitude / 1'000'000) + "." + fraction;
  }

 private:
  struct Last {
    __int128 offset_ns = 0;
    int step = 0;
  };
  std::unordered_map<std::uint64_t, Last> last_;
};

void attr_value(JsonWriter& w, const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: w.Int64(v.i); break;
    case AttrValue::Type::f64: number(w, v.d); break;
    case AttrValue::Type::boolean: w.Bool(v.i != 0); break;
    case AttrValue::Type::string: str(w, v.s); break;
  }
}

void span_details(JsonWriter& w, const AssembledTrace& t, const SpanData& s) {
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
  if (!s.links.empty()) {  // "trace_id/span_id", as the span ids above are written
    key(w, "links");
    w.StartArray();
    for (const SpanLink& l : s.links) str(w, l.trace_id.to_hex() + "/" + hex64(l.span_id));
    w.EndArray();
  }
  if (!s.tags.empty()) {
    key(w, "tags");
    w.StartArray();
    for (const auto& tag : s.tags) str(w, tag);
    w.EndArray();
  }
  for (const Attribute& a : s.attrs) {
    key(w, a.key);
    attr_value(w, a.value);
  }
  w.EndObject();
}

// A flow arrow between resumed segments: its start inside the earlier segment, its finish
// at the later one's start.
struct Flow {
  std::uint64_t id;
  std::uint32_t from, to;  // span indexes
};

// The ns of a flow's start: just before the segment's end (at its start when it has no length).
std::int64_t flow_start_ns(const SpanData& s) { return s.end_ns <= s.start_ns ? s.start_ns : s.end_ns - 1; }

// Appends the events of span `root`'s subtree on its track in the order a viewer must take
// them at equal times: a span's begin, then its own instants and its children by time
// (at one time, instants before children that begin then), then its end. Iterative: a
// file may nest spans arbitrarily deep.
void subtree_events(const AssembledTrace& t, std::uint32_t root, const std::vector<std::vector<std::uint32_t>>& children,
                    const std::vector<std::vector<TrackEvent>>& marks, std::vector<TrackEvent>& out) {
  struct Item {
    std::int64_t ns;
    int rank;  // 0: an instant or flow of the span, 1: a child's subtree
    TrackEvent event;
  };
  struct Frame {
    std::uint32_t span;
    std::vector<Item> items;
    std::size_t next = 0;
  };
  auto frame_of = [&](std::uint32_t s) {
    Frame f{s, {}, 0};
    for (const TrackEvent& m : marks[s]) f.items.push_back({m.ns, 0, m});
    for (std::uint32_t c : children[s]) f.items.push_back({t.spans[c].start_ns, 1, {t.spans[c].start_ns, TrackEvent::begin, c, 0}});
    std::stable_sort(f.items.begin(), f.items.end(), [](const Item& a, const Item& b) {
      return a.ns != b.ns ? a.ns < b.ns : a.rank < b.rank;
    });
    return f;
  };
  auto end_of = [&](std::uint32_t s) { return std::max(t.spans[s].end_ns, t.spans[s].start_ns); };
  std::vector<Frame> frames;
  out.push_back({t.spans[root].start_ns, TrackEvent::begin, root, 0});
  frames.push_back(frame_of(root));
  while (!frames.empty()) {
    Frame& f = frames.back();
    if (f.next == f.items.size()) {
      out.push_back({end_of(f.span), TrackEvent::end, f.span, 0});
      frames.pop_back();
      continue;
    }
    const Item item = f.items[f.next++];
    out.push_back(item.event);
    if (item.rank == 1) frames.push_back(frame_of(item.event.span));  // f is not used after this
  }
}

}  // namespace

int export_chrome(const std::string& file, std::FILE* out, const ChromeOptions& options) {
  FileStream fs(out);
  JsonWriter w(fs);
  ChromeLanes lanes;
  TieBreaker ties;
  serialize::FileInfo info;
  bool header = false;
  // Times count from the recorder's start (otherData.strobe_start_unix_ns, or the first
  // span's start when the header has none): microseconds since the epoch (~1.8e15) would
  // not keep nanoseconds in the double a viewer reads them into.
  std::int64_t base_ns = 0;
  std::uint64_t flow_id = 0;
  std::uint32_t pid = 0;
  std::unordered_map<std::uint64_t, std::string> thread_names;  // the latest name of each thread
  const char* details_key = options.span_args ? "args" : "strobe";
  w.StartObject();
  key(w, "displayTimeUnit"); w.String("ns");
  key(w, "traceEvents");
  w.StartArray();
  const int status = for_each_trace(file, [&](const serialize::TraceView& tv) {
    const AssembledTrace t = tv.materialize();
    pid = t.process_id;
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
    const std::size_t n = t.spans.size();
    std::vector<std::uint32_t> order(n);
    for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
    // In start order; at one start in the trace's depth-first order, which puts a parent
    // before its children, and siblings in start order, an empty one before one that
    // begins when it ends.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return t.spans[a].start_ns < t.spans[b].start_ns; });

    // Place every span on a track; a span's children on its own track form the tree
    // whose order settles ties.
    lanes.begin_trace();
    std::vector<std::uint64_t> track(n);
    std::vector<std::vector<std::uint32_t>> children(n);
    std::vector<std::uint64_t> tracks;  // in the order they first appear in this trace
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> roots;
    for (std::uint32_t i : order) {
      const SpanData& s = t.spans[i];
      const auto placed = lanes.place(s.thread_id, s.start_ns, std::max(s.end_ns, s.start_ns), s.span_id, s.parent_id, i);
      track[i] = placed.tid;
      auto [root_list, fresh] = roots.try_emplace(placed.tid);
      if (fresh) tracks.push_back(placed.tid);
      if (placed.parent != kNoSpan) children[placed.parent].push_back(i);
      else root_list->second.push_back(i);
    }
    for (const ThreadName& tn : t.thread_names) thread_names[tn.thread_id] = tn.name;

    // Instants and flow ends, each with the span it belongs to.
    std::vector<std::vector<TrackEvent>> marks(n);
    for (std::uint32_t i = 0; i < n; ++i)
      for (std::size_t e = 0; e < t.spans[i].events.size(); ++e)
        marks[i].push_back({t.spans[i].events[e].time_ns, TrackEvent::instant, i, e});
    std::unordered_map<std::uint64_t, std::uint32_t> pos;
    for (std::uint32_t i = 0; i < n; ++i) pos.emplace(t.spans[i].span_id, i);
    for (const SegmentChain& c : t.chains) {
      for (std::size_t k = 1; k < c.segments.size(); ++k) {
        const auto a = pos.find(c.segments[k - 1]), b = pos.find(c.segments[k]);
        if (a == pos.end() || b == pos.end()) continue;
        ++flow_id;
        marks[b->second].insert(marks[b->second].begin(), {t.spans[b->second].start_ns, TrackEvent::flow_finish, b->second, flow_id});
        marks[a->second].push_back({flow_start_ns(t.spans[a->second]), TrackEvent::flow_start, a->second, flow_id});
      }
    }
    // Span links to a span of the same trace: an arrow from the linked span to the one
    // that links it (links to other traces are in the span's args with --args).
    for (std::uint32_t i = 0; i < n; ++i) {
      for (const SpanLink& l : t.spans[i].links) {
        if (l.trace_id != t.trace_id) continue;
        const auto a = pos.find(l.span_id);
        if (a == pos.end() || a->second == i) continue;
        const SpanData& from = t.spans[a->second];
        // Inside the linked span, and no later than the linking span begins when it can be.
        const std::int64_t at = std::clamp(t.spans[i].start_ns, from.start_ns, flow_start_ns(from));
        ++flow_id;
        marks[i].insert(marks[i].begin(), {t.spans[i].start_ns, TrackEvent::flow_finish, i, flow_id});
        marks[a->second].push_back({at, TrackEvent::flow_start, a->second, flow_id});
      }
    }
    for (auto& m : marks)
      std::stable_sort(m.begin(), m.end(), [](const TrackEvent& a, const TrackEvent& b) { return a.ns < b.ns; });

    std::vector<TrackEvent> events;
    for (std::uint64_t tid : tracks) {
      events.clear();
      for (std::uint32_t r : roots[tid]) subtree_events(t, r, children, marks, events);
      std::stable_sort(events.begin(), events.end(), [](const TrackEvent& a, const TrackEvent& b) { return a.ns < b.ns; });
      for (const TrackEvent& e : events) {
        const SpanData& s = t.spans[e.span];
        const std::string ts = ties.next(tid, e.ns, base_ns);
        w.StartObject();
        switch (e.what) {
          case TrackEvent::begin:
          case TrackEvent::end:
            key(w, "ph"); w.String(e.what == TrackEvent::begin ? "B" : "E");
            key(w, "name"); str(w, s.name);
            key(w, "cat"); w.String(to_string(s.kind));
            break;
          case TrackEvent::instant:
            key(w, "ph"); w.String("i");
            key(w, "s"); w.String("t");
            key(w, "name"); str(w, s.events[e.detail].name);
            break;
          case TrackEvent::flow_start:
          case TrackEvent::flow_finish:
            key(w, "ph"); w.String(e.what == TrackEvent::flow_start ? "s" : "f");
            if (e.what == TrackEvent::flow_finish) { key(w, "bp"); w.String("e"); }
            key(w, "name"); w.String("resume");
            key(w, "cat"); w.String("segment");
            key(w, "id"); w.Uint64(e.detail);
            break;
        }
        key(w, "pid"); w.Uint(pid);
        key(w, "tid"); w.Uint64(tid);
        key(w, "ts"); w.RawValue(ts.data(), ts.size(), rapidjson::kNumberType);
        if (e.what == TrackEvent::begin) {
          key(w, details_key);
          span_details(w, t, s);
        } else if (e.what == TrackEvent::instant) {
          key(w, "args");
          w.StartObject();
          for (const Attribute& a : s.events[e.detail].attrs) {
            key(w, a.key);
            attr_value(w, a.value);
          }
          w.EndObject();
        }
        w.EndObject();
      }
    }
  }, &info);
  // Each track's name, once the whole file has been read: its thread's latest name (else
  // "thread <id>"), and which lane of the thread it is.
  for (const ChromeLanes::Track& track : lanes.tracks()) {
    const auto named = thread_names.find(track.thread);
    std::string name = named != thread_names.end() ? named->second : "thread " + std::to_string(track.thread);
    if (track.lane) name += " (lane " + std::to_string(track.lane) + ")";
    w.StartObject();
    key(w, "ph"); w.String("M");
    key(w, "name"); w.String("thread_name");
    key(w, "pid"); w.Uint(pid);
    key(w, "tid"); w.Uint64(track.tid);
    key(w, "args"); w.StartObject(); key(w, "name"); str(w, name); w.EndObject();
    w.EndObject();
  }
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

}  // namespace strobe::tool
