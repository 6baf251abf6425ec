// `strobe export --format otlp` on the golden file, checked field by field against the
// OTLP/JSON encoding (protobuf JSON mapping: lowercase hex ids, 64-bit integers and times
// as decimal strings, enums as integers, lowerCamelCase keys) and the GenAI semantic
// conventions (operation names, model, token usage, errors, links between segments).

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <deque>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "run_tool.hpp"

namespace {

using strobe::test::golden;
using strobe::test::run_tool;

const std::string kGolden = golden("golden.strobe");

// Safe accessors: a missing member or a wrong type yields a value that fails the checks
// instead of tripping RapidJSON's assertions.
const rapidjson::Value& null_value() {
  static const rapidjson::Value null;
  return null;
}
const rapidjson::Value& at(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return null_value();
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? null_value() : it->value;
}
const rapidjson::Value& item(const rapidjson::Value& v, rapidjson::SizeType i) {
  return v.IsArray() && i < v.Size() ? v[i] : null_value();
}
std::size_t size(const rapidjson::Value& v) { return v.IsArray() ? v.Size() : 0; }
std::string text(const rapidjson::Value& v) { return v.IsString() ? v.GetString() : "<not a string>"; }
int integer(const rapidjson::Value& v) { return v.IsInt() ? v.GetInt() : -999; }

bool is_hex(const std::string& s, std::size_t n) {
  static const std::regex lower_hex("[0-9a-f]*");
  return s.size() == n && std::regex_match(s, lower_hex);
}
bool is_decimal(const std::string& s) {
  static const std::regex decimal("-?[0-9]+");
  return std::regex_match(s, decimal);
}

// Every object key in v (recursively) is lowerCamelCase; the first offender otherwise.
std::string first_bad_key(const rapidjson::Value& v, const std::string& where) {
  static const std::regex lower_camel("[a-z][a-zA-Z0-9]*");
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      const std::string key = m.name.GetString();
      if (!std::regex_match(key, lower_camel)) return where + "." + key;
      if (std::string bad = first_bad_key(m.value, where + "." + key); !bad.empty()) return bad;
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
      if (std::string bad = first_bad_key(v[i], where + "[" + std::to_string(i) + "]"); !bad.empty()) return bad;
  }
  return "";
}

// Every "intValue", "startTimeUnixNano", "endTimeUnixNano", "timeUnixNano" in v is a
// decimal string; the first offender otherwise.
std::string first_bad_int64(const rapidjson::Value& v, const std::string& where) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      const std::string key = m.name.GetString();
      if (key == "intValue" || key == "startTimeUnixNano" || key == "endTimeUnixNano" || key == "timeUnixNano") {
        if (!m.value.IsString() || !is_decimal(m.value.GetString())) return where + "." + key;
      }
      if (std::string bad = first_bad_int64(m.value, where + "." + key); !bad.empty()) return bad;
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
      if (std::string bad = first_bad_int64(v[i], where + "[" + std::to_string(i) + "]"); !bad.empty()) return bad;
  }
  return "";
}

// The attributes array of an OTLP object as key -> AnyValue.
std::map<std::string, const rapidjson::Value*> attributes(const rapidjson::Value& owner) {
  std::map<std::string, const rapidjson::Value*> out;
  const rapidjson::Value& list = at(owner, "attributes");
  if (list.IsNull()) return out;
  EXPECT_TRUE(list.IsArray());
  for (rapidjson::SizeType i = 0; i < size(list); ++i) {
    const rapidjson::Value& a = list[i];
    const std::string key = text(at(a, "key"));
    EXPECT_TRUE(a.IsObject() && a.MemberCount() == 2 && at(a, "value").IsObject()) << key;
    if (!at(a, "value").IsObject()) continue;
    EXPECT_EQ(at(a, "value").MemberCount(), 1u) << "an AnyValue holds exactly one value: " << key;
    const bool fresh = out.emplace(key, &at(a, "value")).second;
    EXPECT_TRUE(fresh) << "duplicate attribute " << key;
  }
  return out;
}

using Attrs = std::map<std::string, const rapidjson::Value*>;

const rapidjson::Value& any_value(const Attrs& attrs, const std::string& key) {
  auto it = attrs.find(key);
  return it == attrs.end() ? null_value() : *it->second;
}
std::string string_attr(const Attrs& attrs, const std::string& key) {
  if (!attrs.count(key)) return "<missing>";
  return text(at(any_value(attrs, key), "stringValue"));
}
std::string int_attr(const Attrs& attrs, const std::string& key) {
  if (!attrs.count(key)) return "<missing>";
  return text(at(any_value(attrs, key), "intValue"));
}

// The export, parsed: one TracesData per line, and every span by its spanId.
struct Export {
  std::deque<rapidjson::Document> lines;  // stable addresses for the span pointers
  std::map<std::string, const rapidjson::Value*> spans;
  std::size_t span_count = 0;
};

void parse_export(const std::string& text_out, Export& out) {
  for (const std::string& line : strobe::test::split_lines(text_out)) {
    rapidjson::Document& d = out.lines.emplace_back();
    const std::string where = "line " + std::to_string(out.lines.size());
    d.Parse(line.c_str(), line.size());
    ASSERT_FALSE(d.HasParseError()) << where << ": " << rapidjson::GetParseError_En(d.GetParseError()) << " at "
                                    << d.GetErrorOffset();
    ASSERT_TRUE(d.IsObject()) << where;
    EXPECT_EQ(first_bad_key(d, where), "") << "keys must be lowerCamelCase";
    EXPECT_EQ(first_bad_int64(d, where), "") << "64-bit integers and times must be decimal strings";
    ASSERT_EQ(size(at(d, "resourceSpans")), 1u) << where;
    const rapidjson::Value& rs = d["resourceSpans"][0];
    const Attrs res = attributes(at(rs, "resource"));
    EXPECT_EQ(string_attr(res, "service.name"), "golden-service") << where;
    EXPECT_EQ(int_attr(res, "process.pid"), "4242") << where;
    EXPECT_EQ(string_attr(res, "host.name"), "golden-host") << where;
    ASSERT_EQ(size(at(rs, "scopeSpans")), 1u) << where;
    const rapidjson::Value& ss = rs["scopeSpans"][0];
    EXPECT_EQ(text(at(at(ss, "scope"), "name")), "strobe") << where;
    const rapidjson::Value& spans = at(ss, "spans");
    ASSERT_TRUE(spans.IsArray()) << where;
    for (const auto& sp : spans.GetArray()) {
      ASSERT_TRUE(sp.IsObject()) << where;
      ++out.span_count;
      out.spans.emplace(text(at(sp, "spanId")), &sp);
    }
  }
}

class OtlpExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const strobe::test::Run r = run_tool({"export", "--format", "otlp", kGolden});
    ASSERT_EQ(r.exit_status, 0) << r.describe();
    ASSERT_EQ(r.err, "");
    ASSERT_FALSE(r.out.empty());
    ASSERT_EQ(r.out.back(), '\n');
    parsed_ = new Export;
    parse_export(r.out, *parsed_);
  }
  static void TearDownTestSuite() {
    delete parsed_;
    parsed_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(parsed_, nullptr) << "the export did not run"; }

  static const rapidjson::Value& span(const std::string& id) {
    auto it = parsed_->spans.find(id);
    if (it == parsed_->spans.end()) {
      ADD_FAILURE() << "no span " << id;
      return null_value();
    }
    return *it->second;
  }

  static Export* parsed_;
};
Export* OtlpExport::parsed_ = nullptr;

TEST_F(OtlpExport, OneTracesDataPerTraceHoldingEverySpanOnce) {
  EXPECT_EQ(parsed_->lines.size(), 3u);
  EXPECT_EQ(parsed_->span_count, 18u);
  EXPECT_EQ(parsed_->spans.size(), 18u) << "a spanId appears twice";
}

TEST_F(OtlpExport, IdsTimesKindsAndStatusUseTheProtobufJsonMapping) {
  for (const auto& [id, sp] : parsed_->spans) {
    const rapidjson::Value& s = *sp;
    SCOPED_TRACE("span " + id);
    EXPECT_TRUE(is_hex(text(at(s, "traceId")), 32)) << text(at(s, "traceId"));
    EXPECT_TRUE(is_hex(id, 16)) << id;
    if (s.HasMember("parentSpanId")) EXPECT_TRUE(is_hex(text(at(s, "parentSpanId")), 16)) << text(at(s, "parentSpanId"));
    EXPECT_TRUE(at(s, "name").IsString());
    const std::string start = text(at(s, "startTimeUnixNano")), end = text(at(s, "endTimeUnixNano"));
    ASSERT_TRUE(is_decimal(start)) << start;
    ASSERT_TRUE(is_decimal(end)) << end;
    EXPECT_LE(std::stoll(start), std::stoll(end));
    ASSERT_TRUE(at(s, "kind").IsInt()) << "kind must be an integer enum";
    EXPECT_TRUE(integer(at(s, "kind")) == 1 || integer(at(s, "kind")) == 3) << integer(at(s, "kind"));
    ASSERT_TRUE(at(at(s, "status"), "code").IsInt()) << "status.code must be an integer enum";
    EXPECT_NE(string_attr(attributes(s), "strobe.kind"), "<missing>");
  }
  const rapidjson::Value& root = span("0000000100000001");
  EXPECT_EQ(text(at(root, "traceId")), "0123456789abcdeffedcba9876543210");
  EXPECT_FALSE(root.HasMember("parentSpanId")) << "a root has no parent";
  EXPECT_EQ(text(at(root, "startTimeUnixNano")), "1767225601000000000");
  EXPECT_EQ(text(at(root, "endTimeUnixNano")), "1767225601250000000");
  EXPECT_EQ(text(at(span("0000000100000002"), "parentSpanId")), "0000000100000001");
  EXPECT_EQ(text(at(span("0000000100000012"), "traceId")), "11111111111111112222222222222222");
  // Nanoseconds survive: 812 ns after its start.
  const rapidjson::Value& step = span("0000000100000021");
  EXPECT_EQ(text(at(step, "startTimeUnixNano")), "1767225604010000000");
  EXPECT_EQ(text(at(step, "endTimeUnixNano")), "1767225604010000812");
}

TEST_F(OtlpExport, LlmSpanIsAGenAiChatWithModelAndTokenUsage) {
  const rapidjson::Value& s = span("0000000100000004");
  EXPECT_EQ(text(at(s, "name")), "chat gpt-4o-mini");
  EXPECT_EQ(integer(at(s, "kind")), 3) << "CLIENT";
  const Attrs a = attributes(s);
  EXPECT_EQ(string_attr(a, "gen_ai.operation.name"), "chat");
  EXPECT_EQ(string_attr(a, "gen_ai.request.model"), "gpt-4o-mini");
  EXPECT_EQ(int_attr(a, "gen_ai.usage.input_tokens"), "1200");
  EXPECT_EQ(int_attr(a, "gen_ai.usage.output_tokens"), "350");
  EXPECT_EQ(int_attr(a, "gen_ai.usage.cache_read.input_tokens"), "800");
  EXPECT_EQ(string_attr(a, "strobe.kind"), "llm");
  EXPECT_EQ(string_attr(a, "strobe.span.name"), "generate_answer");
  // A model call's input and output are its messages (GenAI semantic conventions: JSON
  // arrays of messages with a role and parts), not strobe's own attributes.
  EXPECT_EQ(string_attr(a, "gen_ai.input.messages"),
            R"([{"role":"user","parts":[{"type":"text","content":"What is strobe?"}]}])");
  EXPECT_EQ(string_attr(a, "gen_ai.output.messages"),
            R"([{"role":"assistant","parts":[{"type":"text","content":"A span recorder for hot code."}],"finish_reason":"stop"}])");
  EXPECT_EQ(a.count("strobe.input"), 0u);
  EXPECT_EQ(a.count("strobe.output"), 0u);
  rapidjson::Document messages;
  messages.Parse(string_attr(a, "gen_ai.input.messages").c_str());
  EXPECT_TRUE(!messages.HasParseError() && messages.IsArray()) << "gen_ai.input.messages is a JSON array";
  const rapidjson::Value& temperature = at(any_value(a, "temperature"), "doubleValue");
  ASSERT_TRUE(temperature.IsDouble());
  EXPECT_DOUBLE_EQ(temperature.GetDouble(), 0.2);
  EXPECT_TRUE(at(any_value(a, "stream"), "boolValue").IsTrue());
  const rapidjson::Value& tags = at(at(any_value(a, "strobe.tags"), "arrayValue"), "values");
  ASSERT_EQ(size(tags), 1u);
  EXPECT_EQ(text(at(tags[0], "stringValue")), "streaming");
  ASSERT_EQ(size(at(s, "events")), 1u);
  const rapidjson::Value& e = s["events"][0];
  EXPECT_EQ(text(at(e, "name")), "first_token");
  EXPECT_EQ(text(at(e, "timeUnixNano")), "1767225601080000000");
  EXPECT_EQ(int_attr(attributes(e), "latency_ms"), "30");
  EXPECT_EQ(integer(at(at(s, "status"), "code")), 0);
}

TEST_F(OtlpExport, KindsMapToGenAiOperations) {
  struct Case {
    const char* id;
    const char* name;
    const char* operation;  // "" when the kind has none
    const char* strobe_kind;
    int kind;
  };
  for (const Case& c : {Case{"0000000100000001", "invoke_agent research-agent", "invoke_agent", "agent", 1},
                        Case{"0000000100000002", "plan make_plan", "plan", "plan", 1},
                        Case{"0000000200000001", "retrieval search_docs", "retrieval", "retrieval", 3},
                        Case{"0000000300000001", "retrieval search_web", "retrieval", "retrieval", 3},
                        Case{"0000000400000001", "retrieval search_kb", "retrieval", "retrieval", 3},
                        Case{"0000000100000006", "execute_tool wait_approval", "execute_tool", "tool", 1},
                        Case{"0000000100000007", "execute_tool fetch_url", "execute_tool", "tool", 1},
                        Case{"0000000100000003", "score_plan", "", "heuristic", 1},
                        Case{"0000000100000005", "tokenize", "", "step", 1},
                        Case{"0000000100000021", "decode_step", "", "action", 1}}) {
    SCOPED_TRACE(c.id);
    const rapidjson::Value& s = span(c.id);
    EXPECT_EQ(text(at(s, "name")), c.name);
    EXPECT_EQ(integer(at(s, "kind")), c.kind);
    const Attrs a = attributes(s);
    EXPECT_EQ(string_attr(a, "strobe.kind"), c.strobe_kind);
    if (*c.operation) {
      EXPECT_EQ(string_attr(a, "gen_ai.operation.name"), c.operation);
    } else {
      EXPECT_EQ(a.count("gen_ai.operation.name"), 0u);
      EXPECT_EQ(a.count("strobe.span.name"), 0u) << "the name is already the span's own";
    }
  }
  EXPECT_EQ(string_attr(attributes(span("0000000100000001")), "gen_ai.agent.name"), "research-agent");
  EXPECT_EQ(string_attr(attributes(span("0000000100000007")), "gen_ai.tool.name"), "fetch_url");
}

TEST_F(OtlpExport, FailedSpansHaveErrorStatusAndErrorType) {
  const rapidjson::Value& fetch = span("0000000100000007");
  EXPECT_EQ(integer(at(at(fetch, "status"), "code")), 2);
  EXPECT_EQ(text(at(at(fetch, "status"), "message")), "connection refused");
  const Attrs a = attributes(fetch);
  EXPECT_EQ(string_attr(a, "error.type"), "error");
  EXPECT_EQ(string_attr(a, "strobe.error.data"), R"({"url":"http://example.com/a","errno":111})");

  const rapidjson::Value& thrown = span("0000000100000012");
  EXPECT_EQ(integer(at(at(thrown, "status"), "code")), 2);
  EXPECT_EQ(text(at(at(thrown, "status"), "message")), "std::runtime_error: disk full");
  EXPECT_EQ(string_attr(attributes(thrown), "error.type"), "exception");

  for (const auto& [id, s] : parsed_->spans) {
    if (id == "0000000100000007" || id == "0000000100000012") continue;
    EXPECT_EQ(integer(at(at(*s, "status"), "code")), 0) << id;
    EXPECT_EQ(attributes(*s).count("error.type"), 0u) << id;
  }
}

TEST_F(OtlpExport, ResumedSegmentLinksToThePreviousSegment) {
  const rapidjson::Value& first = span("0000000100000006");
  EXPECT_FALSE(first.HasMember("links"));
  EXPECT_EQ(int_attr(attributes(first), "strobe.segment.index"), "0");
  const rapidjson::Value& resumed = span("0000000200000002");
  EXPECT_EQ(int_attr(attributes(resumed), "strobe.segment.index"), "1");
  ASSERT_EQ(size(at(resumed, "links")), 1u);
  const rapidjson::Value& link = resumed["links"][0];
  EXPECT_EQ(text(at(link, "traceId")), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(text(at(link, "spanId")), "0000000100000006");
  EXPECT_EQ(string_attr(attributes(link), "strobe.link.type"), "resumes");
  for (const auto& [id, s] : parsed_->spans)
    if (id != "0000000200000002") EXPECT_FALSE(s->HasMember("links")) << id;
}

TEST_F(OtlpExport, IncompleteSpansAreFlagged) {
  for (const char* id : {"0000000100000008", "0000000100000020"}) {
    const Attrs a = attributes(span(id));
    EXPECT_TRUE(at(any_value(a, "strobe.incomplete"), "boolValue").IsTrue()) << id;
  }
  EXPECT_EQ(attributes(span("0000000100000001")).count("strobe.incomplete"), 0u);
}

TEST_F(OtlpExport, LogLinesAndEventsKeepTheirAttributes) {
  const rapidjson::Value& plan = span("0000000100000002");
  ASSERT_EQ(size(at(plan, "events")), 1u);
  EXPECT_EQ(text(at(plan["events"][0], "name")), "log");
  EXPECT_EQ(text(at(plan["events"][0], "timeUnixNano")), "1767225601002000000");
  EXPECT_EQ(string_attr(attributes(plan["events"][0]), "message"), "planning 3 lookups");
  const rapidjson::Value& docs = span("0000000200000001");
  ASSERT_EQ(size(at(docs, "events")), 1u);
  const Attrs ea = attributes(docs["events"][0]);
  EXPECT_EQ(string_attr(ea, "key"), "docs:strobe");
  EXPECT_EQ(int_attr(ea, "shard"), "3");
}

TEST(OtlpExportSplit, MaxSpansPerLineSplitsTracesWithoutLosingSpans) {
  const strobe::test::Run r = run_tool({"export", "--format", "otlp", "--max-spans-per-line", "5", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  Export e;
  parse_export(r.out, e);
  // 12 spans -> 5+5+2, then 4, then 2.
  EXPECT_EQ(e.lines.size(), 5u);
  EXPECT_EQ(e.span_count, 18u);
  EXPECT_EQ(e.spans.size(), 18u);
  for (const rapidjson::Document& d : e.lines)
    EXPECT_LE(size(at(item(at(item(at(d, "resourceSpans"), 0), "scopeSpans"), 0), "spans")), 5u);
}

}  // namespace
