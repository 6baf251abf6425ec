// `strobe export --format chrome` produces a Trace Event Format file that viewers
// (chrome://tracing, Perfetto, speedscope) can load without mis-nesting: spans are begin/end
// ("B"/"E") pairs that close in stack order on every track, and on a track no two events
// share a timestamp, so no viewer has to break a tie; a reader that rounds microseconds to
// whole nanoseconds and one that truncates (Perfetto) read the same nanoseconds; slices
// either nest or do not overlap; every track and the process are named; flow arrows
// between resumed segments come in start/finish pairs bound to slices; a span's details
// lie under "strobe" (under "args" with --args). Checked on the golden file and on a
// recorded file with heavy overlap: spans ended on another thread than the one that began
// them, spans ended out of order on one thread, suspended/resumed segments hopping
// threads, and parallel spans adopted on workers. (speedscope_test.cpp loads exports
// into speedscope itself.)

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <string>
#include <thread>
#include <vector>

#include "run_tool.hpp"
#include "trace_file.hpp"

namespace {

using strobe::test::golden;
using strobe::test::run_tool;

struct Slice {
  std::string name;
  std::int64_t start = 0, end = 0;  // ns, as a viewer reads them back from microseconds
};

struct Track {
  std::vector<Slice> slices;
};

// What a viewer sees: microsecond doubles, read back as integer nanoseconds, rounded;
// Perfetto truncates.
std::int64_t to_ns(double us) { return std::llround(us * 1000.0); }
std::int64_t to_ns_truncated(double us) { return static_cast<std::int64_t>(us * 1000.0); }

struct Checked {
  std::size_t complete = 0, instants = 0, flows = 0, lanes = 0, ties = 0;
  std::map<std::string, Slice> first_by_name;  // the first slice of each name
  std::map<std::string, std::string> details_key_by_name;  // "strobe" or "args", from the first begin
  std::multiset<std::tuple<std::string, std::int64_t, std::int64_t>> slices;  // name, start, end (ns)
  std::string start_unix_ns;                   // otherData.strobe_start_unix_ns
};

// Parses the export and checks everything the file comment promises; counts into c.
void check_chrome(const std::string& json, Checked& c) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (d.HasParseError()) {
    ADD_FAILURE() << "not JSON: " << rapidjson::GetParseError_En(d.GetParseError()) << " at byte " << d.GetErrorOffset();
    return;
  }
  if (!d.IsObject() || !d.HasMember("traceEvents") || !d["traceEvents"].IsArray()) {
    ADD_FAILURE() << "no traceEvents array";
    return;
  }
  std::map<std::pair<std::uint64_t, std::uint64_t>, Track> tracks;
  std::set<std::pair<std::uint64_t, std::uint64_t>> named_threads;
  std::set<std::uint64_t> named_processes, pids;
  struct FlowEnd {
    std::uint64_t pid, tid;
    std::int64_t ts;
  };
  std::map<std::uint64_t, std::vector<FlowEnd>> flow_starts, flow_finishes;
  struct Stamped {
    double ts;
    bool begin;
    std::string name, cat, where;
  };
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<Stamped>> durations;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::set<double>> stamps;
  std::size_t index = 0;
  for (const auto& e : d["traceEvents"].GetArray()) {
    const std::string where = "event #" + std::to_string(index++);
    ASSERT_TRUE(e.IsObject()) << where;
    ASSERT_TRUE(e.HasMember("ph") && e["ph"].IsString()) << where;
    const std::string ph = e["ph"].GetString();
    ASSERT_TRUE(e.HasMember("pid") && e["pid"].IsUint64()) << where;
    const std::uint64_t pid = e["pid"].GetUint64();
    pids.insert(pid);
    if (ph == "M") {
      ASSERT_TRUE(e.HasMember("name") && e["name"].IsString()) << where;
      ASSERT_TRUE(e.HasMember("args") && e["args"].IsObject() && e["args"].HasMember("name") && e["args"]["name"].IsString())
          << where;
      const std::string name = e["name"].GetString();
      if (name == "process_name") {
        named_processes.insert(pid);
      } else if (name == "thread_name") {
        ASSERT_TRUE(e.HasMember("tid") && e["tid"].IsUint64()) << where;
        const bool fresh = named_threads.insert({pid, e["tid"].GetUint64()}).second;
        EXPECT_TRUE(fresh) << where << ": track named twice";
        if (std::string(e["args"]["name"].GetString()).find("(lane") != std::string::npos) ++c.lanes;
      }
      continue;
    }
    ASSERT_TRUE(e.HasMember("tid") && e["tid"].IsUint64()) << where;
    const std::uint64_t tid = e["tid"].GetUint64();
    ASSERT_TRUE(e.HasMember("ts") && e["ts"].IsNumber()) << where << ": ts must be a number";
    const double ts = e["ts"].GetDouble();
    EXPECT_EQ(to_ns(ts), to_ns_truncated(ts)) << where << ": ts " << ts << " reads as another nanosecond when truncated";
    auto& on_track = stamps[{pid, tid}];
    if (on_track.count(ts)) {
      ADD_FAILURE() << where << ": a second event at ts " << ts << " on track " << tid;
      ++c.ties;
    }
    on_track.insert(ts);
    if (ph == "B" || ph == "E") {
      ASSERT_TRUE(e.HasMember("name") && e["name"].IsString()) << where;
      ASSERT_TRUE(e.HasMember("cat") && e["cat"].IsString()) << where;
      Stamped st{ts, ph == "B", e["name"].GetString(), e["cat"].GetString(), where};
      if (st.begin) {
        const char* details = e.HasMember("strobe") ? "strobe" : e.HasMember("args") ? "args" : "";
        ASSERT_TRUE(*details && e[details].IsObject() && e[details].HasMember("span_id")) << where << ": no span details";
        c.details_key_by_name.emplace(st.name, details);
      }
      durations[{pid, tid}].push_back(std::move(st));
    } else if (ph == "i") {
      ++c.instants;
    } else if (ph == "s" || ph == "f") {
      ASSERT_TRUE(e.HasMember("id") && e["id"].IsUint64()) << where;
      auto& side = ph == "s" ? flow_starts : flow_finishes;
      side[e["id"].GetUint64()].push_back(FlowEnd{pid, tid, to_ns(ts)});
    } else {
      ADD_FAILURE() << where << ": unexpected phase " << ph;
    }
  }
  // Begins and ends, in time order per track, close in stack order: each end matches the
  // begin on top (name and category).
  for (auto& [key, list] : durations) {
    std::stable_sort(list.begin(), list.end(), [](const Stamped& a, const Stamped& b) { return a.ts < b.ts; });
    std::vector<const Stamped*> open;
    for (const Stamped& st : list) {
      if (st.begin) {
        open.push_back(&st);
        continue;
      }
      ASSERT_FALSE(open.empty()) << st.where << ": an end with nothing open on track " << key.second;
      const Stamped& b = *open.back();
      ASSERT_EQ(st.name, b.name) << st.where << ": ends " << st.name << " while " << b.name << " is on top ("
                                 << b.where << ")";
      EXPECT_EQ(st.cat, b.cat) << st.where;
      open.pop_back();
      ++c.complete;
      const Slice slice{b.name, to_ns(b.ts), to_ns(st.ts)};
      c.first_by_name.emplace(slice.name, slice);
      c.slices.emplace(slice.name, slice.start, slice.end);
      tracks[key].slices.push_back(slice);
    }
    EXPECT_TRUE(open.empty()) << open.size() << " spans never end on track " << key.second;
  }
  if (d.HasMember("otherData") && d["otherData"].IsObject() && d["otherData"].HasMember("strobe_start_unix_ns") &&
      d["otherData"]["strobe_start_unix_ns"].IsString())
    c.start_unix_ns = d["otherData"]["strobe_start_unix_ns"].GetString();
  for (std::uint64_t pid : pids) EXPECT_TRUE(named_processes.count(pid)) << "process " << pid << " has no process_name";
  // The sweep: per track, in start order (enclosing first), a slice that starts before the
  // open slice on top ends must end inside it.
  for (auto& [key, track] : tracks) {
    EXPECT_TRUE(named_threads.count(key)) << "track " << key.second << " has no thread_name";
    std::vector<Slice>& v = track.slices;
    std::stable_sort(v.begin(), v.end(), [](const Slice& a, const Slice& b) {
      return a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::vector<const Slice*> open;
    for (const Slice& s : v) {
      while (!open.empty() && open.back()->end <= s.start) open.pop_back();
      if (!open.empty() && s.end > open.back()->end) {
        ADD_FAILURE() << "track " << key.second << ": " << s.name << " [" << s.start << ", " << s.end
                      << ") overlaps " << open.back()->name << " [" << open.back()->start << ", " << open.back()->end
                      << ") without nesting";
        break;
      }
      open.push_back(&s);
    }
  }
  // Flows: one start and one finish per id; the start lies inside a slice on its track,
  // the finish at a slice's start on its track.
  auto inside = [&](const FlowEnd& f, bool at_start) {
    auto it = tracks.find({f.pid, f.tid});
    if (it == tracks.end()) return false;
    for (const Slice& s : it->second.slices)
      if (at_start ? s.start == f.ts : (s.start <= f.ts && (f.ts < s.end || s.start == s.end))) return true;
    return false;
  };
  for (const auto& [id, starts] : flow_starts) {
    ++c.flows;
    ASSERT_EQ(starts.size(), 1u) << "flow " << id << " starts more than once";
    auto fin = flow_finishes.find(id);
    ASSERT_NE(fin, flow_finishes.end()) << "flow " << id << " has no finish";
    ASSERT_EQ(fin->second.size(), 1u) << "flow " << id << " finishes more than once";
    EXPECT_LE(starts[0].ts, fin->second[0].ts) << "flow " << id;
    EXPECT_TRUE(inside(starts[0], false)) << "flow " << id << " start at " << starts[0].ts << " is in no slice of track "
                                          << starts[0].tid;
    EXPECT_TRUE(inside(fin->second[0], true)) << "flow " << id << " finish at " << fin->second[0].ts
                                              << " starts no slice of track " << fin->second[0].tid;
  }
  for (const auto& [id, f] : flow_finishes) EXPECT_TRUE(flow_starts.count(id)) << "flow " << id << " has no start";
}

TEST(ChromeExport, GoldenFileLoadsWithoutMisnesting) {
  const strobe::test::Run r = run_tool({"export", "--format", "chrome", golden("golden.strobe")});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.complete, 18u);
  EXPECT_EQ(c.instants, 3u);  // log, cache_miss, first_token
  EXPECT_EQ(c.flows, 1u);     // wait_approval segment 0 -> 1
  // Times are offsets from the recorder's start, exact to the nanosecond.
  EXPECT_EQ(c.start_unix_ns, "1767225600000000000");
  ASSERT_TRUE(c.first_by_name.count("decode_step"));
  EXPECT_EQ(c.first_by_name["decode_step"].start, 4'010'000'000);
  EXPECT_EQ(c.first_by_name["decode_step"].end, 4'010'000'812);
  EXPECT_EQ(c.details_key_by_name["decode_step"], "strobe");
  ASSERT_TRUE(c.first_by_name.count("checkpoint"));
  EXPECT_EQ(c.first_by_name["checkpoint"].start, c.first_by_name["checkpoint"].end);
}

// Writes a file whose spans overlap in every way a thread's track can see.
std::size_t record_overlapping_file(const std::string& path) {
  auto sink = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{path});
  {
    strobe::Config config;
    config.sinks = {sink};
    config.overflow = strobe::OverflowPolicy::wait;
    strobe::Recorder recorder(config);
    std::mt19937 rng(20260101);
    for (int round = 0; round < 20; ++round) {
      auto root = strobe::trace("overlap-agent", {{"round", round}});
      const strobe::Context ctx = strobe::current();

      // Spans begun here, ended in a shuffled order: half here, half on another thread.
      std::vector<strobe::Span> juggled;
      for (int i = 0; i < 8; ++i) {
        juggled.push_back(strobe::start_span(STROBE_NAME("juggled"), strobe::Kind::step));
        if (i % 3 == 2) {
          auto nested = strobe::span("nested", strobe::Kind::action);  // current, properly nested
        }
      }
      std::shuffle(juggled.begin(), juggled.end(), rng);
      std::vector<strobe::Span> elsewhere(std::make_move_iterator(juggled.begin() + 4),
                                          std::make_move_iterator(juggled.end()));
      juggled.resize(4);
      std::thread ender([&] {
        for (strobe::Span& s : elsewhere) s.finish();
      });
      for (strobe::Span& s : juggled) s.finish();
      ender.join();

      // A suspended operation whose segments hop threads, overlapping other work.
      strobe::SuspendToken token;
      {
        auto think = strobe::span("think", strobe::Kind::llm);
        token = think.suspend();
      }
      auto busy = strobe::start_span(STROBE_NAME("busy"), strobe::Kind::tool);
      std::thread resumer([&] {
        auto again = strobe::resume(token);
        token = again.suspend();
      });
      resumer.join();
      {
        auto last = strobe::resume(token);
        busy.finish();  // ends inside the resumed segment it began before
      }

      // Parallel adopted spans on workers; each worker also ends its spans out of order.
      std::barrier all_open(3);
      std::vector<std::thread> workers;
      for (int w = 0; w < 3; ++w) {
        workers.emplace_back([&, w] {
          strobe::ContextScope scope(ctx);
          auto a = strobe::start_span(STROBE_NAME("fetch"), strobe::Kind::retrieval);
          auto b = strobe::start_span(STROBE_NAME("parse"), strobe::Kind::step);
          all_open.arrive_and_wait();
          if (w % 2 == 0) {
            a.finish();
            b.finish();
          } else {
            b.finish();
            a.finish();
          }
        });
      }
      for (auto& t : workers) t.join();
    }
    recorder.flush();
  }
  sink->close();
  std::size_t spans = 0;
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(path)) spans += t.spans.size();
  return spans;
}

TEST(ChromeExport, HeavyOverlapStillNestsOnEveryTrack) {
  const strobe::test::TempDir dir;
  const std::string path = dir / "overlap.strobe";
  const std::size_t spans = record_overlapping_file(path);
  ASSERT_GT(spans, 20u * 20u);
  const strobe::test::Run v = run_tool({"validate", path});
  ASSERT_EQ(v.exit_status, 0) << v.describe();

  const strobe::test::Run r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.complete, spans);
  EXPECT_GE(c.flows, 20u * 2u) << "two resumes per round";
  EXPECT_GT(c.lanes, 0u) << "the data should need extra lanes; it overlaps too little to test them";
}

// Span links: one to a span of the same trace is a flow arrow from the linked span to the
// one that links it; one to another trace (or process) is named in the span's args.
TEST(ChromeExport, LinksWithinATraceAreFlowArrows) {
  const strobe::test::TempDir dir;
  const std::string path = dir / "links.strobe";
  auto sink = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{path});
  {
    strobe::Config config;
    config.sinks = {sink};
    strobe::Recorder recorder(config);
    auto root = strobe::trace("pipeline");
    strobe::Context produced;
    {
      auto producer = strobe::span("produce", strobe::Kind::step);
      produced = producer.context();
    }
    auto consumer = strobe::span("consume", strobe::Kind::step);
    consumer.link(produced).link(strobe::Context::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  }
  sink->close();
  strobe::test::Run r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.flows, 1u) << "the link within the trace";
  r = run_tool({"export", "--format", "chrome", "--args", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("\"links\":[\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7"), std::string::npos) << r.out;
  r = run_tool({"tree", path});
  EXPECT_NE(r.out.find("[linked to "), std::string::npos) << r.out;
}

// With --args a span's details go where Perfetto and chrome://tracing show them.
TEST(ChromeExport, ArgsFlagPutsDetailsUnderArgs) {
  const strobe::test::Run r = run_tool({"export", "--format", "chrome", "--args", golden("golden.strobe")});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.complete, 18u);
  EXPECT_EQ(c.details_key_by_name["decode_step"], "args");
}

// Spans that touch or are empty, at one nanosecond on one thread: ends before the begins
// that follow, parents around children, and every slice as long as its span, also where
// same-named spans chain (a viewer that puts a begin before an end at one time, as
// speedscope does for frames of one name, would nest each in the previous one).
TEST(ChromeExport, SpansThatTouchComeOutWhole) {
  constexpr std::int64_t kStart = 1'767'225'600'000'000'000;
  constexpr std::int64_t t0 = kStart + 3'000'000'123;
  using strobe::test::make_span;
  std::vector<strobe::SpanData> spans{make_span(1, 0, "root", t0, t0 + 4'000, strobe::Kind::agent)};
  spans[0].flags = strobe::kSpanTraceRoot;
  for (std::uint64_t k = 0; k < 3; ++k) {
    const std::int64_t from = t0 + static_cast<std::int64_t>(k) * 1'000;
    spans.push_back(make_span(10 + 2 * k, 1, "step", from, from + 1'000));
    spans.push_back(make_span(11 + 2 * k, 10 + 2 * k, "step", from, from + 1'000));  // as long as its parent
  }
  spans.push_back(make_span(20, 1, "empty", t0 + 3'000, t0 + 3'000));
  spans.push_back(make_span(21, 20, "empty", t0 + 3'000, t0 + 3'000));
  spans.push_back(make_span(22, 1, "last", t0 + 3'000, t0 + 4'000));
  spans.push_back(make_span(23, 22, "empty", t0 + 4'000, t0 + 4'000));
  const strobe::test::TempDir dir;
  const std::string path = dir / "touching.strobe";
  strobe::test::write_strobe(path, {strobe::test::make_trace(1, 1, "root", spans),
                                    strobe::test::make_trace(2, 2, "root", {make_span(30, 0, "root", t0 + 4'000, t0 + 5'000)})},
                             kStart);
  const strobe::test::Run r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.ties, 0u);
  std::multiset<std::tuple<std::string, std::int64_t, std::int64_t>> want;
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(path))
    for (const strobe::SpanData& s : t.spans) want.emplace(s.name, s.start_ns - kStart, s.end_ns - kStart);
  EXPECT_EQ(c.slices, want);
  EXPECT_EQ(c.lanes, 0u) << "every span nests in its parent on one track";
}

// A span stamped before the recorder's start (the clocks' anchors differ by microseconds)
// has a negative time: truncating it toward zero still gives its nanosecond.
TEST(ChromeExport, TimesBeforeTheRecorderStartReadExactly) {
  constexpr std::int64_t kStart = 1'767'225'600'000'000'000;
  using strobe::test::make_span;
  std::vector<strobe::SpanData> spans{make_span(1, 0, "early", kStart - 89'188, kStart + 1'000, strobe::Kind::agent),
                                      make_span(2, 1, "step", kStart - 89'188, kStart - 1),
                                      make_span(3, 1, "step", kStart - 1, kStart + 1'000)};
  spans[0].flags = strobe::kSpanTraceRoot;
  const strobe::test::TempDir dir;
  const std::string path = dir / "early.strobe";
  strobe::test::write_strobe(path, {strobe::test::make_trace(1, 1, "early", spans)}, kStart);
  const strobe::test::Run r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  Checked c;
  check_chrome(r.out, c);
  EXPECT_EQ(c.ties, 0u);
  std::multiset<std::tuple<std::string, std::int64_t, std::int64_t>> want;
  for (const strobe::SpanData& s : spans) want.emplace(s.name, s.start_ns - kStart, s.end_ns - kStart);
  EXPECT_EQ(c.slices, want);
}

}  // namespace
