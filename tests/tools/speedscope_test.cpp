// `strobe export --format chrome`, imported by a real viewer: speedscope (the npm package,
// its dist/release page) in headless Chromium. tests/tools/speedscope/load_in_speedscope.mjs
// loads the export and catches speedscope's own export of what it imported (a speedscope
// JSON file: the frames and, per track, the frames opened and closed in order). Checked:
//
//   * every span is one call in speedscope, under its strobe parent where the parent is on
//     the same track, else at the top of its track;
//   * the import logs no warning or error (speedscope warns for every end that does not
//     match the frame on top of its stack), throws nothing and opens no dialog;
//   * frames are grouped by name: on each track one frame per span name, named exactly
//     as the span.
//
// On the demo (examples/demo.cpp) and on a hand-made file of exact ties: chains of
// same-named spans that touch, children that begin and end with their parent, empty
// spans (also nested in each other and at a parent's end), a trace that begins where the
// previous one ended, instants at span boundaries, and spans whose parent is elsewhere.
//
// speedscope comes from tests/tools/speedscope/node_modules (scripts/setup_speedscope.sh;
// scripts/test.sh runs it).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <strobe/serialize/reader.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "run_tool.hpp"
#include "trace_file.hpp"

#ifndef STROBE_SPEEDSCOPE_DIR
#error "STROBE_SPEEDSCOPE_DIR must name tests/tools/speedscope"
#endif

namespace {

namespace fs = std::filesystem;
using strobe::SpanData;
using strobe::test::make_span;
using strobe::test::make_trace;
using strobe::test::run_program;
using strobe::test::run_tool;

const fs::path kHarness = fs::path(STROBE_SPEEDSCOPE_DIR) / "load_in_speedscope.mjs";
const fs::path kSpeedscope = fs::path(STROBE_SPEEDSCOPE_DIR) / "node_modules/speedscope/dist/release";

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

rapidjson::Document parse_json(const std::string& text, const std::string& what) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str(), text.size());
  if (d.HasParseError())
    ADD_FAILURE() << what << " is not JSON: " << rapidjson::GetParseError_En(d.GetParseError()) << " at byte "
                  << d.GetErrorOffset();
  return d;
}

std::string string_member(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

// What speedscope made of an export, measured against the strobe file.
struct Verdict {
  std::size_t spans = 0;       // in the strobe file
  std::size_t calls = 0;       // frames opened in speedscope
  std::size_t misnested = 0;   // calls under another parent than their strobe parent
  std::size_t unmatched = 0;   // calls that match no span's begin on their track
  std::size_t unseen = 0;      // spans no call matched
  std::size_t complaints = 0;  // console warnings and errors, exceptions, dialogs
  std::size_t frames = 0;
  std::size_t frames_wanted = 0;  // span names, summed over tracks
  std::size_t misnamed_frames = 0;  // frames not named exactly as a span
  std::vector<std::string> examples;  // the first few problems, readable

  void problem(const std::string& what) {
    if (examples.size() < 12) examples.push_back(what);
  }
  [[nodiscard]] std::string summary() const {
    std::ostringstream s;
    s << spans << " spans, " << calls << " calls in speedscope: " << misnested << " under the wrong parent, "
      << unmatched << " unmatched, " << unseen << " spans not seen; " << complaints << " warnings/errors; " << frames
      << " frames for " << frames_wanted << " span names per track (" << misnamed_frames << " misnamed)";
    for (const std::string& e : examples) s << "\n  " << e;
    return s.str();
  }
};

// Exports `strobe_file` to Chrome JSON, loads it into speedscope, and compares.
Verdict judge(const std::string& strobe_file, const strobe::test::TempDir& dir) {
  Verdict v;
  // Not *.chrome.json: speedscope would take that for a Chrome CPU profile.
  const std::string chrome_path = dir / "export.json", result_path = dir / "speedscope-state.json";
  const strobe::test::Run ex = run_tool({"export", "--format", "chrome", strobe_file, "-o", chrome_path});
  EXPECT_EQ(ex.exit_status, 0) << ex.describe();
  if (!fs::exists(kSpeedscope / "index.html")) {
    ADD_FAILURE() << "speedscope is not installed at " << kSpeedscope << ": run scripts/setup_speedscope.sh";
    return v;
  }
  const strobe::test::Run load = run_program(
      "node", {kHarness.string(), "--speedscope", kSpeedscope.string(), "--profile", chrome_path, "--out", result_path}, 120);
  EXPECT_EQ(load.exit_status, 0) << load.describe();
  if (load.exit_status != 0) return v;

  // The truth: every span of the file.
  struct Truth {
    std::string name;
    std::uint64_t parent = 0;
  };
  std::unordered_map<std::string, Truth> truth;  // by hex span id
  for (const strobe::AssembledTrace& t : strobe::serialize::read_all(strobe_file))
    for (const SpanData& s : t.spans) truth[hex64(s.span_id)] = {s.name, s.parent_id};
  v.spans = truth.size();

  // Where the export put each span: its track and the time speedscope measures its begin
  // at (microseconds from the track's first begin or end).
  const rapidjson::Document chrome = parse_json(strobe::test::read_text(chrome_path), "the Chrome export");
  if (chrome.HasParseError() || !chrome.IsObject() || !chrome.HasMember("traceEvents")) return v;
  struct Begin {
    std::string span_id, name;
    double ts;
    bool seen = false;
  };
  std::map<std::uint64_t, std::vector<Begin>> begins;  // by tid
  std::map<std::uint64_t, double> first_ts;
  std::unordered_map<std::string, std::uint64_t> track_of;
  for (const auto& e : chrome["traceEvents"].GetArray()) {
    const std::string ph = string_member(e, "ph");
    if (ph != "B" && ph != "E" && ph != "X") continue;
    const std::uint64_t tid = e["tid"].GetUint64();
    const double ts = e["ts"].GetDouble();
    auto [it, fresh] = first_ts.emplace(tid, ts);
    if (!fresh) it->second = std::min(it->second, ts);
    if (ph == "E") continue;
    // The span id: under "strobe" (ignored by viewers) or, in an export with args, under "args".
    std::string id = e.HasMember("strobe") ? string_member(e["strobe"], "span_id") : "";
    if (id.empty() && e.HasMember("args")) id = string_member(e["args"], "span_id");
    EXPECT_FALSE(id.empty()) << "a span's begin without its span id";
    begins[tid].push_back({id, e["name"].GetString(), ts});
    track_of[id] = tid;
  }
  for (auto& [tid, list] : begins)
    for (Begin& b : list) b.ts -= first_ts[tid];

  const rapidjson::Document result = parse_json(strobe::test::read_text(result_path), "the harness's result");
  if (result.HasParseError()) return v;
  for (const auto& c : result["console"].GetArray()) {
    const std::string type = c["type"].GetString();
    if (type == "warning" || type == "error" || type == "assert" || type == "log.warning" || type == "log.error") {
      ++v.complaints;
      v.problem("console " + type + ": " + std::string(c["text"].GetString()).substr(0, 240));
    }
  }
  for (const auto& x : result["exceptions"].GetArray()) {
    ++v.complaints;
    v.problem(std::string("exception: ") + x.GetString());
  }
  for (const auto& x : result["dialogs"].GetArray()) {
    ++v.complaints;
    v.problem(std::string("dialog: ") + x.GetString());
  }
  if (!result["export"].IsObject()) {
    ADD_FAILURE() << "speedscope gave no export (page title \"" << string_member(result, "title") << "\")\n"
                  << v.summary();
    return v;
  }
  const auto& exported = result["export"];
  const auto& frames = exported["shared"]["frames"];
  std::set<std::string> seen_ids;
  for (const auto& profile : exported["profiles"].GetArray()) {
    // speedscope names a track "<process> (pid P), <thread name> (tid T)".
    const std::string pname = profile["name"].GetString();
    const std::size_t at = pname.rfind("(tid ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "a speedscope profile without a tid: " << pname;
      continue;
    }
    const std::uint64_t tid = std::stoull(pname.substr(at + 5));
    std::vector<Begin>& candidates = begins[tid];
    std::set<std::string> names_here;
    for (const Begin& b : candidates) names_here.insert(b.name);
    v.frames_wanted += names_here.size();
    std::set<int> frames_here;
    struct Call {
      std::string span_id;  // "" when unmatched
    };
    std::vector<Call> stack;
    for (const auto& ev : profile["events"].GetArray()) {
      const std::string type = ev["type"].GetString();
      if (type == "C") {
        if (!stack.empty()) stack.pop_back();
        continue;
      }
      ++v.calls;
      const int frame = ev["frame"].GetInt();
      frames_here.insert(frame);
      const std::string fname = frames[frame]["name"].GetString();
      const double when = ev["at"].GetDouble();
      // The span: same track, a name the frame's is or begins (speedscope appends the args),
      // the nearest begin within half a nanosecond.
      Begin* match = nullptr;
      for (Begin& b : candidates) {
        if (b.seen || std::abs(b.ts - when) > 0.0005) continue;
        if (fname != b.name && fname.rfind(b.name + " {", 0) != 0) continue;
        if (!match || std::abs(b.ts - when) < std::abs(match->ts - when)) match = &b;
      }
      const std::string parent_id = stack.empty() ? "" : stack.back().span_id;
      if (!match) {
        ++v.unmatched;
        v.problem("speedscope call " + fname.substr(0, 80) + " at " + std::to_string(when) + " on tid " +
                  std::to_string(tid) + " matches no span");
        stack.push_back({""});
        continue;
      }
      match->seen = true;
      seen_ids.insert(match->span_id);
      const Truth& s = truth[match->span_id];
      const std::string strobe_parent = s.parent ? hex64(s.parent) : "";
      const auto parent_track = track_of.find(strobe_parent);
      const std::string want =
          parent_track != track_of.end() && parent_track->second == tid ? strobe_parent : "";
      if (parent_id != want) {
        ++v.misnested;
        auto label = [&](const std::string& id) { return id.empty() ? std::string("(top)") : truth[id].name + " " + id; };
        v.problem(s.name + " " + match->span_id + ": under " + label(parent_id) + " in speedscope, strobe parent " +
                  label(want));
      }
      stack.push_back({match->span_id});
    }
    v.frames += frames_here.size();
    for (int f : frames_here) {
      const std::string fname = frames[f]["name"].GetString();
      if (!names_here.count(fname)) {
        ++v.misnamed_frames;
        v.problem("frame \"" + fname.substr(0, 120) + "\" on tid " + std::to_string(tid) + " is no span's name");
      }
    }
  }
  v.unseen = v.spans - seen_ids.size();
  return v;
}

void expect_perfect(const Verdict& v) {
  EXPECT_GT(v.spans, 0u);
  EXPECT_EQ(v.calls, v.spans) << v.summary();
  EXPECT_EQ(v.misnested, 0u) << v.summary();
  EXPECT_EQ(v.unmatched, 0u) << v.summary();
  EXPECT_EQ(v.unseen, 0u) << v.summary();
  EXPECT_EQ(v.complaints, 0u) << v.summary();
  EXPECT_EQ(v.frames, v.frames_wanted) << v.summary();
  EXPECT_EQ(v.misnamed_frames, 0u) << v.summary();
  std::printf("speedscope: %s\n", v.summary().c_str());
}

TEST(Speedscope, DemoNestsEverySpanUnderItsStrobeParent) {
#ifndef STROBE_DEMO_PATH
  GTEST_SKIP() << "built without the examples (STROBE_BUILD_EXAMPLES=OFF): no demo to record";
#else
  const strobe::test::TempDir dir;
  const std::string file = dir / "demo.strobe";
  const strobe::test::Run demo = run_program(STROBE_DEMO_PATH, {file, "--runs", "3"}, 120);
  ASSERT_EQ(demo.exit_status, 0) << demo.describe();
  expect_perfect(judge(file, dir));
#endif
}

// Exact ties, the cases viewers break ties on. Times are real epoch nanoseconds, seconds
// after the recorder's start.
TEST(Speedscope, TouchingAndEmptySpansNestExactly) {
  constexpr std::int64_t kStart = 1'767'225'600'000'000'000;
  constexpr std::int64_t t0 = kStart + 7'123'456'789;
  using strobe::Kind;
  std::vector<SpanData> a;
  a.push_back(make_span(1, 0, "root", t0, t0 + 10'000, Kind::agent));
  a.back().flags = strobe::kSpanTraceRoot;
  a.back().events.push_back({"at_child_boundary", t0 + 2'000, {}});
  a.back().events.push_back({"at_end", t0 + 10'000, {}});
  // A chain of same-named spans that touch, each with a child exactly as long as itself.
  for (std::uint64_t k = 0; k < 4; ++k) {
    const std::int64_t from = t0 + 1'000 + static_cast<std::int64_t>(k) * 1'000;
    a.push_back(make_span(10 + k, 1, "step", from, from + 1'000));
    a.push_back(make_span(20 + k, 10 + k, "inner", from, from + 1'000));
    a.back().events.push_back({"inner_start", from, {}});
  }
  // Empty spans: one with an empty child, one at the same instant after it, one at the
  // parent's end, one at a chained boundary.
  a.push_back(make_span(30, 1, "mark", t0 + 6'000, t0 + 6'000));
  a.push_back(make_span(31, 30, "mark_child", t0 + 6'000, t0 + 6'000));
  a.push_back(make_span(32, 1, "mark", t0 + 6'000, t0 + 6'000));
  a.push_back(make_span(33, 1, "tail", t0 + 6'000, t0 + 10'000));
  a.push_back(make_span(34, 33, "tick", t0 + 10'000, t0 + 10'000));
  a.push_back(make_span(35, 12, "boundary", t0 + 4'000, t0 + 4'000));
  // Children elsewhere: on another thread, and one that overlaps its sibling.
  a.push_back(make_span(40, 1, "remote", t0 + 1'500, t0 + 9'000, Kind::tool, 8));
  a.push_back(make_span(41, 40, "remote_step", t0 + 1'500, t0 + 9'000, Kind::step, 8));
  a.push_back(make_span(42, 33, "overlapping", t0 + 8'000, t0 + 12'000));
  // depth-first order, children in start order, as a trace is handed over
  std::vector<std::uint64_t> dfs{1, 10, 20, 40, 41, 11, 21, 12, 22, 35, 13, 23, 30, 31, 32, 33, 42, 34};
  std::vector<SpanData> ordered;
  for (std::uint64_t id : dfs)
    for (const SpanData& s : a)
      if (s.span_id == id) ordered.push_back(s);
  ASSERT_EQ(ordered.size(), a.size());
  // The next trace on the same thread begins where the first ended, with the same root name.
  std::vector<SpanData> b{make_span(50, 0, "root", t0 + 10'000, t0 + 11'000, Kind::agent),
                          make_span(51, 50, "step", t0 + 10'000, t0 + 11'000)};
  b[0].flags = strobe::kSpanTraceRoot;

  const strobe::test::TempDir dir;
  const std::string file = dir / "ties.strobe";
  strobe::test::write_strobe(file, {make_trace(1, 1, "root", ordered), make_trace(2, 2, "root", b)}, kStart);
  expect_perfect(judge(file, dir));
}

}  // namespace
