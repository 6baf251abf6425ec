// Files that verify clean but hold extreme values: a 100,000-deep trace, parent ids that
// form a cycle, token counts near INT64_MAX (and negative ones), durations of INT64_MAX
// and INT64_MIN, times at both ends of int64. Every command gives a defined answer
// (sums saturate, differences are exact or saturate), exits 0 and stays small.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "run_tool.hpp"
#include "strobe/detail/utf8.hpp"
#include "trace_file.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::SpanData;
using strobe::test::make_span;
using strobe::test::make_trace;
using strobe::test::run_tool;
using strobe::test::split_lines;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kT0 = 1'767'225'601'000'000'000;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text.substr(0, 2000);
  return d;
}

// The per-span columns of one trace of the HTML page ("z", cmd_html.cpp: base64 of 8
// width codes, then n values a column, each at its width or as LEB128 varints), as
// decimal text: name, kind, start delta, duration, thread, parent delta, id low delta
// (the last and the time columns signed).
std::vector<std::vector<std::string>> page_columns(const rapidjson::Value& t) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : std::string_view(t["z"].GetString())) {
    const std::size_t at = kAlphabet.find(c);
    if (at == std::string_view::npos) break;
    acc = (acc << 6) | static_cast<std::uint32_t>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(k < bytes.size() ? bytes[k] : 0); };
  std::size_t pos = 8;
  const std::size_t n = t["n"].GetUint64();
  std::vector<std::vector<std::string>> columns(7);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const bool is_signed = c == 2 || c == 3 || c == 6;
    const unsigned width = byte(c);
    if (width != 0) pos = (pos + width - 1) / width * width;
    for (std::size_t i = 0; i < n; ++i) {
      __int128 value = 0;
      if (width == 0) {
        unsigned __int128 v = 0;
        for (int shift = 0; pos < bytes.size(); shift += 7) {
          const unsigned char b = byte(pos++);
          v |= static_cast<unsigned __int128>(b & 0x7f) << shift;
          if (b < 0x80) break;
        }
        value = !is_signed ? static_cast<__int128>(v)
                : (v & 1)  ? -static_cast<__int128>(v >> 1) - 1
                           : static_cast<__int128>(v >> 1);
      } else {
        std::uint64_t v = 0;
        for (unsigned k = 0; k < width; ++k) v |= std::uint64_t{byte(pos++)} << (8 * k);
        const std::uint64_t sign = std::uint64_t{1} << (8 * width - 1);
        value = static_cast<__int128>(v);
        if (is_signed && (v & sign)) value -= static_cast<__int128>(sign) << 1;
      }
      columns[c].push_back(strobe::tool::to_decimal(value));
    }
  }
  return columns;
}

class Hostile : public ::testing::Test {
 protected:
  strobe::test::TempDir dir_;
};

TEST_F(Hostile, TreeOfAHundredThousandDeepTraceNeitherCrashesNorGrowsWithDepth) {
  constexpr int kDepth = 100'000;
  std::vector<SpanData> spans;
  spans.reserve(kDepth);
  for (int i = 0; i < kDepth; ++i)
    spans.push_back(make_span(static_cast<std::uint64_t>(i + 1), static_cast<std::uint64_t>(i), "s",
                              kT0 + i, kT0 + 2 * kDepth - i));
  spans[0].flags = strobe::kSpanTraceRoot;
  const std::string path = dir_ / "deep.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "s", std::move(spans))});

  const strobe::test::Run r = run_tool({"tree", path}, 120);
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  // One line per span, none longer than the indentation cap allows (64 levels of 5 bytes).
  EXPECT_LT(r.out.size(), std::size_t{6} << 20) << "bytes of output for " << kDepth << " spans";
  const auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 1u + kDepth);
  std::size_t longest = 0;
  for (const std::string& l : lines) longest = std::max(longest, l.size());
  EXPECT_LT(longest, 400u);
  // Line k + 1 shows depth k: indented 3 spaces a level up to depth 64, then numbered.
  EXPECT_EQ(lines[65], std::string(3 * 63, ' ') + "└─ step s  199.9 us") << lines[65];
  EXPECT_EQ(lines[66], "[depth 65] └─ step s  199.9 us") << lines[66];
  EXPECT_EQ(lines.back(), "[depth 99999] └─ step s  2 ns") << lines.back();

  // Cut by --depth, the deep trace prints its first levels and a count.
  const strobe::test::Run cut = run_tool({"tree", "--depth", "2", path});
  ASSERT_EQ(cut.exit_status, 0) << cut.describe();
  EXPECT_EQ(split_lines(cut.out).size(), 1u + 3u + 1u) << cut.out;
  EXPECT_NE(cut.out.find("      … 1 children not shown (--depth)\n"), std::string::npos) << cut.out;
}

TEST_F(Hostile, TreeShowsEverySpanOnceWhenParentIdsFormACycle) {
  // "b" has the root's id, so the root's children are also b's: root → a → b → a ...
  // and c ↔ d name each other, unreached from any root.
  std::vector<SpanData> spans{make_span(1, 0, "root", kT0, kT0 + 10), make_span(2, 1, "a", kT0 + 1, kT0 + 9),
                              make_span(1, 2, "b", kT0 + 2, kT0 + 8), make_span(3, 4, "c", kT0 + 3, kT0 + 7),
                              make_span(4, 3, "d", kT0 + 4, kT0 + 6)};
  const std::string path = dir_ / "cycle.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "root", std::move(spans))});
  const strobe::test::Run r = run_tool({"tree", path}, 30);
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_FALSE(r.timed_out) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 1u + 5u) << r.out;
  for (const char* name : {"step root ", "step a ", "step b ", "step c ", "step d "}) {
    std::size_t n = 0;
    for (const std::string& l : lines) n += l.find(name) != std::string::npos;
    EXPECT_EQ(n, 1u) << name << " in:\n" << r.out;
  }
}

TEST_F(Hostile, StatsTokenSumsSaturateAndNegativeCountsReadAsZero) {
  std::vector<SpanData> spans;
  for (int i = 0; i < 3; ++i) {
    SpanData s = make_span(static_cast<std::uint64_t>(i + 1), 0, "generate", kT0 + i * 10, kT0 + i * 10 + 5, strobe::Kind::llm);
    s.has_tokens = true;
    s.tokens = strobe::TokenUsage{kMax - 1, kMax / 2 + 1, i == 0 ? -5 : 7};
    spans.push_back(s);
  }
  const std::string path = dir_ / "tokens.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "generate", std::move(spans))});
  ASSERT_EQ(run_tool({"validate", path}).exit_status, 0);

  strobe::test::Run r = run_tool({"stats", "--json", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const rapidjson::Document d = parse(r.out);
  ASSERT_TRUE(d.IsObject() && d["groups"].IsArray() && d["groups"].Size() == 1u) << r.out;
  const auto& g = d["groups"][0];
  EXPECT_EQ(g["input_tokens"].GetInt64(), kMax);
  EXPECT_EQ(g["output_tokens"].GetInt64(), kMax);
  EXPECT_EQ(g["cached_input_tokens"].GetInt64(), 14) << "-5 counts as 0";
  EXPECT_TRUE(g.HasMember("saturated") && g["saturated"].GetBool()) << r.out;
  EXPECT_EQ(d["negative_token_values"].GetUint64(), 1u);

  r = run_tool({"stats", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find(">9223372036854775807/>9223372036854775807/14"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: 1 negative token counts were read as 0\n"), std::string::npos) << r.out;
}

TEST_F(Hostile, DurationSumsAndExtremeDurationsStayDefinedInStatsTreeAndDiff) {
  // Two spans of the largest duration, one from the smallest time to the largest (its
  // true length does not fit int64), and one whose end is INT64_MIN after a start of 0.
  std::vector<SpanData> spans{make_span(1, 0, "huge", 0, kMax), make_span(2, 0, "huge", kMin, kMax),
                              make_span(3, 0, "backwards", 0, kMin)};
  const std::string path = dir_ / "durations.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "huge", std::move(spans))});
  ASSERT_EQ(run_tool({"validate", path}).exit_status, 0);

  strobe::test::Run r = run_tool({"stats", "--json", path});
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const rapidjson::Document d = parse(r.out);
  ASSERT_TRUE(d.IsObject() && d["groups"].IsArray() && d["groups"].Size() == 2u) << r.out;
  const auto& huge = d["groups"][0];
  EXPECT_STREQ(huge["name"].GetString(), "huge");
  EXPECT_EQ(huge["count"].GetUint64(), 2u);
  EXPECT_EQ(huge["total_ns"].GetInt64(), kMax);
  EXPECT_EQ(huge["mean_ns"].GetInt64(), kMax);
  EXPECT_EQ(huge["max_ns"].GetInt64(), kMax);
  EXPECT_TRUE(huge["saturated"].GetBool());
  EXPECT_EQ(d["groups"][1]["total_ns"].GetInt64(), 0) << "a negative duration counts as 0";

  r = run_tool({"stats", path});
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find(">9223372036.855 s"), std::string::npos) << r.out;

  r = run_tool({"tree", path});
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("step huge  9223372036.855 s\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step backwards  -9223372036.855 s\n"), std::string::npos) << r.out;

  r = run_tool({"diff", "--min-samples", "1", path, path});
  ASSERT_EQ(r.signal, 0) << r.describe();
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("9223372036.855 s"), std::string::npos) << r.out;
}

TEST_F(Hostile, InfoTimeRangeOfTimesAtBothEndsSaturates) {
  std::vector<SpanData> spans{make_span(1, 0, "first", kMin + 1, kMin + 2), make_span(2, 0, "last", kMax - 2, kMax - 1)};
  const std::string path = dir_ / "range.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "first", std::move(spans))});
  const strobe::test::Run r = run_tool({"info", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto lines = split_lines(r.out);
  std::string range;
  for (const std::string& l : lines)
    if (l.rfind("time range  ", 0) == 0) range = l;
  EXPECT_NE(range.find(" (9223372036.855 s)"), std::string::npos) << r.out;
}

// A root from near the smallest time to the largest with a child near the largest: the
// page's time offsets and durations do not fit int64 and come out exact (its varint
// columns hold them whole; its JSON numbers as decimal text).
TEST_F(Hostile, HtmlAndExportsGiveExactTimesAtBothEnds) {
  std::vector<SpanData> spans{make_span(1, 0, "root", kMin + 10, kMax, strobe::Kind::agent),
                              make_span(2, 1, "late", kMax - 10, kMax - 5)};
  spans[1].events = {strobe::SpanEvent{"tick", kMin + 20, {}}};
  const std::string path = dir_ / "ends.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "root", std::move(spans))}, 0);

  const std::string html = dir_ / "ends.html";
  strobe::test::Run r = run_tool({"html", path, "-o", html});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const std::string page = strobe::test::read_text(html);
  const std::string open = "<script id=\"strobe-data\" type=\"application/json\">";
  const std::size_t at = page.find(open);
  ASSERT_NE(at, std::string::npos);
  const std::size_t from = at + open.size();
  const rapidjson::Document d = parse(page.substr(from, page.find("</script>", from) - from));
  ASSERT_TRUE(d.IsObject() && d["traces"].IsArray() && d["traces"].Size() == 1u);
  const auto& t = d["traces"][0];
  EXPECT_STREQ(t["b"].GetString(), std::to_string(kMin + 10).c_str());
  ASSERT_EQ(t["n"].GetUint64(), 2u);
  const auto columns = page_columns(t);
  const auto& starts = columns[2];
  const auto& durations = columns[3];
  EXPECT_EQ(starts[0], "0");
  EXPECT_EQ(starts[1], "18446744073709551595");  // (2^63 - 11) - (-2^63 + 10): beyond int64, exact
  EXPECT_EQ(durations[0], "18446744073709551605");  // (2^63 - 1) - (-2^63 + 10)
  EXPECT_EQ(durations[1], "5");
  // The event at the smallest time, relative to a start near the largest.
  ASSERT_TRUE(t["x"].IsArray() && t["x"].Size() == 1u);
  EXPECT_STREQ(t["x"][0][1]["e"][0][1].GetString(), "-18446744073709551585");

  r = run_tool({"export", "--format", "jsonl", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 4u);
  for (const std::string& l : lines) {
    const rapidjson::Document e = parse(l);
    if (std::string(e["event"].GetString()) != "completed") continue;
    const std::int64_t want = std::string(e["content"].GetString()) == "root completed" ? kMax : 5;
    EXPECT_EQ(e["duration_ns"].GetInt64(), want) << l;
  }

  r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const rapidjson::Document c = parse(r.out);
  std::map<std::string, double> begins, ends;
  for (const auto& ev : c["traceEvents"].GetArray()) {
    const std::string ph = ev["ph"].GetString();
    if (ph != "B" && ph != "E") continue;
    EXPECT_GE(ev["ts"].GetDouble(), 0.0) << "times count from the first span's start";
    (ph == "B" ? begins : ends)[ev["name"].GetString()] = ev["ts"].GetDouble();
  }
  ASSERT_EQ(begins.size(), 2u);
  ASSERT_EQ(ends.size(), 2u);
  for (const auto& [name, ts] : begins) EXPECT_GE(ends[name], ts) << name;
  // Past 2^53 ns a double holds no nanoseconds; the text does: "late" begins 2^64 - 21 ns
  // after "root" (plus the picosecond that orders a track's events) and lasts 5 ns.
  EXPECT_NE(r.out.find("\"ts\":18446744073709551.595001"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"ts\":18446744073709551.600001"), std::string::npos) << r.out;
}

// A file whose strings are not valid UTF-8 (strobe never writes one; a foreign or altered
// file can): every output, text and JSON, is valid UTF-8, and info and validate say so.
TEST_F(Hostile, InvalidUtf8InTheFileGivesValidUtf8Everywhere) {
  std::vector<SpanData> spans;
  spans.push_back(make_span(1, 0, "ro\xFFot", kT0, kT0 + 1000, strobe::Kind::agent));
  spans[0].flags = strobe::kSpanTraceRoot;
  spans.push_back(make_span(2, 1, "child\xC3", kT0 + 10, kT0 + 500, strobe::Kind::llm));
  spans[1].attrs.push_back(strobe::Attribute{"k\xE2\x82", strobe::AttrValue{strobe::AttrValue::Type::string, 0, 0, "v\xED\xA0\x80"}, false});
  spans[1].model = "gpt\xF8";
  spans[1].events.push_back(strobe::SpanEvent{"ev\x80", kT0 + 20, {}});
  spans[1].tags = {"t\xC0\xAF"};
  spans.push_back(make_span(3, 1, "kind", kT0 + 600, kT0 + 900, strobe::Kind::custom));
  spans[2].kind_name = "my\xF5kind";
  auto trace = make_trace(1, 2, "ro\xFFot", std::move(spans));
  trace.service_name = "svc\xFE";
  const std::string path = dir_ / "bad_utf8.strobe";
  strobe::test::write_strobe(path, {trace});

  const std::vector<std::vector<std::string>> commands = {
      {"info", path},
      {"tree", path},
      {"stats", path},
      {"stats", "--json", path},
      {"diff", path, path},
      {"export", "-f", "chrome", "-o", "-", path},
      {"export", "-f", "otlp", "-o", "-", path},
      {"export", "-f", "jsonl", "-o", "-", path},
      {"html", "-o", "-", path},
      {"validate", path},
  };
  for (const auto& args : commands) {
    const strobe::test::Run r = run_tool(args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    ASSERT_EQ(r.signal, 0) << what << r.describe();
    EXPECT_EQ(r.exit_status, 0) << what << r.describe();
    EXPECT_FALSE(r.out.empty()) << what;
    EXPECT_TRUE(strobe::detail::valid_utf8(r.out)) << what << r.out.substr(0, 2000);
    EXPECT_TRUE(strobe::detail::valid_utf8(r.err)) << what << r.err;
    if (args[0] == "export" && args[2] != "chrome") {
      for (const std::string& line : split_lines(r.out)) parse(line);
    } else if ((args[0] == "export") || (args[0] == "stats" && args[1] == "--json")) {
      parse(r.out);
    }
  }
  const strobe::test::Run info = run_tool({"info", path});
  EXPECT_NE(info.out.find("not valid UTF-8"), std::string::npos) << info.out;
  const strobe::test::Run strict = run_tool({"validate", "--strict", path});
  EXPECT_EQ(strict.exit_status, 1) << strict.describe();
}

// Double attributes that are NaN or infinite (a file can hold any double): JSON has no
// number for them, so every JSON output writes them as the strings "NaN", "Infinity",
// "-Infinity" (the proto3 JSON spelling) and stays valid JSON; found by tests/fuzz/tool_fuzz.py.
TEST_F(Hostile, NonFiniteDoubleAttributesGiveValidJsonEverywhere) {
  auto f64 = [](const char* key, double v) {
    strobe::Attribute a{key, {}, false};
    a.value.type = strobe::AttrValue::Type::f64;
    a.value.d = v;
    return a;
  };
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<SpanData> spans{make_span(1, 0, "root", kT0, kT0 + 1000, strobe::Kind::agent)};
  spans[0].flags = strobe::kSpanTraceRoot;
  spans[0].attrs = {f64("nan", std::numeric_limits<double>::quiet_NaN()), f64("inf", kInf), f64("ninf", -kInf),
                    f64("one", 1.5)};
  spans[0].events = {strobe::SpanEvent{"tick", kT0 + 10, {f64("e_nan", std::nan("")), f64("e_inf", kInf)}}};
  const std::string path = dir_ / "non_finite.strobe";
  strobe::test::write_strobe(path, {make_trace(1, 2, "root", std::move(spans))});

  auto same = [](const rapidjson::Value& v, const char* want) {
    return v.IsString() && std::string(v.GetString()) == want;
  };
  strobe::test::Run r = run_tool({"export", "-f", "chrome", "-o", "-", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const rapidjson::Document c = parse(r.out);
  ASSERT_FALSE(c.HasParseError());
  bool span_seen = false, event_seen = false;
  for (const auto& ev : c["traceEvents"].GetArray()) {
    const std::string ph = ev["ph"].GetString();
    if (ph == "B") {
      span_seen = true;
      const auto& a = ev["strobe"];
      EXPECT_TRUE(same(a["nan"], "NaN") && same(a["inf"], "Infinity") && same(a["ninf"], "-Infinity")) << r.out;
      EXPECT_EQ(a["one"].GetDouble(), 1.5);
    } else if (ph == "i") {
      event_seen = true;
      EXPECT_TRUE(same(ev["args"]["e_nan"], "NaN") && same(ev["args"]["e_inf"], "Infinity")) << r.out;
    }
  }
  EXPECT_TRUE(span_seen && event_seen) << r.out;

  r = run_tool({"export", "-f", "otlp", "-o", "-", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  std::size_t doubles = 0;
  for (const std::string& line : split_lines(r.out)) {
    const rapidjson::Document o = parse(line);
    ASSERT_FALSE(o.HasParseError());
    for (const auto& rs : o["resourceSpans"].GetArray())
      for (const auto& ss : rs["scopeSpans"].GetArray())
        for (const auto& sp : ss["spans"].GetArray())
          for (const auto& a : sp["attributes"].GetArray()) {
            const std::string k = a["key"].GetString();
            if (!a["value"].HasMember("doubleValue")) continue;
            ++doubles;
            const auto& v = a["value"]["doubleValue"];
            if (k == "nan") EXPECT_TRUE(same(v, "NaN")) << line;
            if (k == "inf") EXPECT_TRUE(same(v, "Infinity")) << line;
            if (k == "ninf") EXPECT_TRUE(same(v, "-Infinity")) << line;
          }
  }
  EXPECT_GE(doubles, 4u) << r.out;

  r = run_tool({"export", "-f", "jsonl", "-o", "-", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  bool extra_seen = false;
  for (const std::string& line : split_lines(r.out)) {
    const rapidjson::Document e = parse(line);
    ASSERT_FALSE(e.HasParseError());
    if (e.HasMember("extra") && e["extra"].HasMember("nan")) {
      extra_seen = true;
      EXPECT_TRUE(same(e["extra"]["nan"], "NaN") && same(e["extra"]["ninf"], "-Infinity")) << line;
    }
  }
  EXPECT_TRUE(extra_seen) << r.out;
}

}  // namespace
