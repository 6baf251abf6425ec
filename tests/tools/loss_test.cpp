// What the tool says about loss: a file whose run dropped spans and records, with spans
// that lost records, a placeholder for a span whose begin was lost, an orphan and a span
// continued in a later part. `tree` warns first and marks those spans; `stats` warns
// (--json: a "loss" object); `diff` warns and calls a comparison doubtful past 1% of the
// spans dropped; `info` and `validate` tell an intact file from a run that lost data, and
// `validate --strict` fails on loss. Spans the sinks dropped and batches the writer could
// not write are loss too. A run that lost nothing gets none of it.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "run_tool.hpp"
#include "trace_file.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::SpanData;
using strobe::test::make_span;
using strobe::test::make_trace;
using strobe::test::run_tool;
using strobe::test::split_lines;

constexpr std::int64_t kT0 = 1'767'225'601'000'000'000;
constexpr std::int64_t kMs = 1'000'000;

// Trace "ingest": 2 spans and 5 records dropped before it; "parse" lost records; a
// placeholder stands in for a lost span, whose child "decode" keeps its place; "late"
// is an orphan. Trace "serve" (part 0 of 2): "stream" is still open and continued.
// Trace "healthy" lost nothing. 12 spans in all.
std::vector<AssembledTrace> lossy_run() {
  AssembledTrace ingest = make_trace(0xaaaa000000000001, 1, "ingest", {});
  ingest.drops_since_previous = strobe::DropCounts{2, 5};
  SpanData root = make_span(1, 0, "ingest", kT0, kT0 + 50 * kMs, strobe::Kind::agent);
  root.flags = strobe::kSpanTraceRoot;
  SpanData parse = make_span(2, 1, "parse", kT0 + 1 * kMs, kT0 + 10 * kMs);
  parse.flags = strobe::kSpanLostRecords;
  SpanData stand_in = make_span(3, 1, "<lost span>", kT0 + 11 * kMs, kT0 + 20 * kMs);
  stand_in.flags = strobe::kSpanPlaceholder;
  SpanData decode = make_span(4, 3, "decode", kT0 + 12 * kMs, kT0 + 19 * kMs);
  SpanData late = make_span(5, 1, "late", kT0 + 21 * kMs, kT0 + 22 * kMs);
  late.flags = strobe::kSpanOrphan;
  SpanData store = make_span(6, 1, "store", kT0 + 23 * kMs, kT0 + 40 * kMs);
  ingest.spans = {root, parse, stand_in, decode, late, store};

  AssembledTrace serve = make_trace(0xbbbb000000000002, 2, "serve", {});
  serve.partial = true;
  SpanData sroot = make_span(10, 0, "serve", kT0 + 60 * kMs, kT0 + 90 * kMs, strobe::Kind::agent);
  sroot.flags = strobe::kSpanTraceRoot | strobe::kSpanIncomplete | strobe::kSpanContinued;
  sroot.status = strobe::Status::incomplete;
  sroot.end_thread_id = 0;
  SpanData stream = make_span(11, 10, "stream", kT0 + 61 * kMs, kT0 + 90 * kMs);
  stream.flags = strobe::kSpanIncomplete | strobe::kSpanContinued;
  stream.status = strobe::Status::incomplete;
  stream.end_thread_id = 0;
  SpanData chunk = make_span(12, 11, "chunk", kT0 + 62 * kMs, kT0 + 63 * kMs);
  serve.spans = {sroot, stream, chunk};

  AssembledTrace healthy = make_trace(0xcccc000000000003, 3, "healthy", {});
  SpanData h = make_span(20, 0, "healthy", kT0 + 100 * kMs, kT0 + 110 * kMs, strobe::Kind::agent);
  h.flags = strobe::kSpanTraceRoot;
  healthy.spans = {h, make_span(21, 20, "work", kT0 + 101 * kMs, kT0 + 109 * kMs),
                   make_span(22, 20, "work", kT0 + 109 * kMs, kT0 + 110 * kMs)};
  return {ingest, serve, healthy};
}

// `n` traces of one root and one child each, nothing lost.
std::vector<AssembledTrace> clean_run(int n, std::int64_t child_ms = 2) {
  std::vector<AssembledTrace> out;
  for (int i = 0; i < n; ++i) {
    const std::int64_t t0 = kT0 + i * 10 * kMs;
    const auto id = static_cast<std::uint64_t>(100 + 2 * i);
    SpanData root = make_span(id, 0, "job", t0, t0 + 5 * kMs, strobe::Kind::agent);
    root.flags = strobe::kSpanTraceRoot;
    SpanData child = make_span(id + 1, id, "step", t0 + kMs, t0 + kMs + child_ms * kMs + i * 1000);
    out.push_back(make_trace(0xdddd, static_cast<std::uint64_t>(i + 1), "job", {root, child}));
  }
  return out;
}

class Loss : public ::testing::Test {
 protected:
  void SetUp() override {
    strobe::test::write_strobe(lossy_, lossy_run());
    strobe::test::write_strobe(clean_, clean_run(3));
  }
  strobe::test::TempDir dir_;
  const std::string lossy_ = dir_ / "lossy.strobe";
  const std::string clean_ = dir_ / "clean.strobe";
};

const std::string* line_with(const std::vector<std::string>& lines, const std::string& needle) {
  for (const std::string& l : lines)
    if (l.find(needle) != std::string::npos) return &l;
  return nullptr;
}

TEST_F(Loss, TreeWarnsFirstAndMarksTheSpansThatLostData) {
  const strobe::test::Run r = run_tool({"tree", lossy_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  const auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0],
            "warning: the run lost data: 2 spans dropped (14.29% of the run's spans), 5 records dropped, "
            "1 span lost records, 1 placeholder (begin lost), 1 orphan (parent never arrived)")
      << r.out;
  EXPECT_EQ(lines[1].rfind("  most affected: ingest aaaa0000000000010000000000000001 (2 spans, 5 records dropped before it, "
                           "1 span lost records, 1 placeholder, 1 orphan)",
                           0),
            0u)
      << lines[1];
  EXPECT_EQ(lines[2], "");

  const std::string* parse = line_with(lines, "step parse");
  ASSERT_NE(parse, nullptr) << r.out;
  EXPECT_NE(parse->find("[lost records]"), std::string::npos) << *parse;
  const std::string* stand_in = line_with(lines, "<lost span>");
  ASSERT_NE(stand_in, nullptr) << r.out;
  EXPECT_NE(stand_in->find("[placeholder: begin lost]"), std::string::npos) << *stand_in;
  const std::string* decode = line_with(lines, "step decode");
  ASSERT_NE(decode, nullptr);
  EXPECT_EQ(decode->rfind("│  └─ step decode", 0), 0u) << "the placeholder keeps its child in place: " << *decode;
  const std::string* late = line_with(lines, "step late");
  ASSERT_NE(late, nullptr);
  EXPECT_NE(late->find("[orphan]"), std::string::npos) << *late;
  const std::string* stream = line_with(lines, "step stream");
  ASSERT_NE(stream, nullptr);
  EXPECT_NE(stream->find("[continued]"), std::string::npos) << *stream;
  EXPECT_EQ(stream->find("INCOMPLETE"), std::string::npos) << "continued is not a failure: " << *stream;
  const std::string* store = line_with(lines, "step store");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->find('['), std::string::npos) << "a whole span is not marked: " << *store;

  const strobe::test::Run c = run_tool({"tree", clean_});
  ASSERT_EQ(c.exit_status, 0) << c.describe();
  EXPECT_EQ(c.out.find("warning"), std::string::npos) << c.out;
  EXPECT_EQ(c.out.rfind("trace ", 0), 0u) << c.out;
}

TEST_F(Loss, StatsWarnsAndItsJsonHasALossObject) {
  strobe::test::Run r = run_tool({"stats", lossy_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("warning: the run lost data: 2 spans dropped", 0), 0u) << r.out;
  EXPECT_EQ(lines[3].rfind("name ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("<lost span>"), std::string::npos) << "a placeholder is not a span of its own: " << r.out;

  r = run_tool({"stats", "--json", lossy_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  ASSERT_TRUE(d.IsObject() && d.HasMember("groups") && d["groups"].IsArray()) << r.out;
  ASSERT_TRUE(d.HasMember("loss") && d["loss"].IsObject()) << r.out;
  const auto& loss = d["loss"];
  EXPECT_TRUE(loss["lost_data"].GetBool());
  EXPECT_EQ(loss["spans_dropped"].GetUint64(), 2u);
  EXPECT_EQ(loss["records_dropped"].GetUint64(), 5u);
  EXPECT_EQ(loss["spans_lost_records"].GetUint64(), 1u);
  EXPECT_EQ(loss["placeholders"].GetUint64(), 1u);
  EXPECT_EQ(loss["orphans"].GetUint64(), 1u);
  EXPECT_EQ(loss["continued"].GetUint64(), 2u);
  EXPECT_EQ(loss["incomplete"].GetUint64(), 0u) << "continued spans are not incomplete ones";
  EXPECT_EQ(loss["spans"].GetUint64(), 12u);
  EXPECT_EQ(loss["traces_affected"].GetUint64(), 1u);
  EXPECT_NEAR(loss["dropped_span_fraction"].GetDouble(), 2.0 / 14.0, 1e-12);
  ASSERT_EQ(loss["most_affected"].Size(), 1u);
  EXPECT_STREQ(loss["most_affected"][0]["root"].GetString(), "ingest");
  EXPECT_STREQ(loss["most_affected"][0]["trace_id"].GetString(), "aaaa0000000000010000000000000001");
  ASSERT_EQ(loss["roots"].Size(), 1u);
  EXPECT_STREQ(loss["roots"][0]["root"].GetString(), "ingest");

  r = run_tool({"stats", clean_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("name ", 0), 0u) << r.out;
  r = run_tool({"stats", "--json", clean_});
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  EXPECT_FALSE(d["loss"]["lost_data"].GetBool());
  EXPECT_STREQ(d["loss"]["summary"].GetString(), "nothing lost");
}

TEST_F(Loss, DiffWarnsAndCallsTheComparisonDoubtfulPastOnePercentDropped) {
  strobe::test::Run r = run_tool({"diff", clean_, lossy_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0].rfind("warning: NEW (" + lossy_ + ") lost data: 2 spans dropped", 0), 0u) << r.out;
  EXPECT_EQ(lines[1], "warning: the comparison is doubtful: NEW dropped 14.29% of its spans (more than 1%)") << r.out;
  EXPECT_EQ(r.out.find("BASE ("), std::string::npos) << "the base lost nothing: " << r.out;

  // 1 span dropped of 200 (0.5%): named, not doubtful.
  std::vector<AssembledTrace> light = clean_run(100);
  light[50].drops_since_previous = strobe::DropCounts{1, 1};
  const std::string light_path = dir_ / "light.strobe";
  strobe::test::write_strobe(light_path, light);
  r = run_tool({"diff", light_path, clean_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("warning: BASE (" + light_path + ") lost data: 1 span dropped (0.50% of the run's spans), 1 record dropped\n", 0), 0u)
      << r.out;
  EXPECT_EQ(r.out.find("doubtful"), std::string::npos) << r.out;

  r = run_tool({"diff", "--json", light_path, lossy_});
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  EXPECT_TRUE(d["doubtful"].GetBool());
  EXPECT_EQ(d["loss"]["base"]["spans_dropped"].GetUint64(), 1u);
  EXPECT_EQ(d["loss"]["new"]["spans_dropped"].GetUint64(), 2u);

  r = run_tool({"diff", clean_, clean_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind("name ", 0), 0u) << r.out;
}

TEST_F(Loss, InfoTellsAnIntactFileFromARunThatLostData) {
  strobe::test::Run r = run_tool({"info", lossy_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("\nspans       12 (0 failed, 0 incomplete, 2 continued in a later part)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nintegrity   intact: every frame verified, end frame present\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nloss        the run LOST DATA: 2 spans dropped (14.29% of the run's spans), 5 records dropped, "
                       "1 span lost records, 1 placeholder (begin lost), 1 orphan (parent never arrived)\n"
                       "            most affected: ingest aaaa0000000000010000000000000001 ("),
            std::string::npos)
      << r.out;

  r = run_tool({"info", clean_});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("\nintegrity   intact: every frame verified, end frame present\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nloss        none: nothing dropped, every span whole\n"), std::string::npos) << r.out;
}

TEST_F(Loss, ValidateNeverCallsALossyRunOkAndStrictFailsOnIt) {
  strobe::test::Run r = run_tool({"validate", lossy_});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, lossy_ + ": file intact (3 batches, 3 traces, 12 spans, every frame verified, end frame present); "
                            "the run lost data: 2 spans dropped (14.29% of the run's spans), 5 records dropped, "
                            "1 span lost records, 1 placeholder (begin lost), 1 orphan (parent never arrived)\n");
  EXPECT_EQ(r.out.find(": ok"), std::string::npos);

  r = run_tool({"validate", "--strict", lossy_});
  EXPECT_EQ(r.exit_status, 1) << r.describe();
  EXPECT_NE(r.out.find("the run lost data: 2 spans dropped"), std::string::npos) << r.out;

  for (const char* strict : {"", "--strict"}) {
    std::vector<std::string> args{"validate", clean_};
    if (*strict) args.insert(args.begin() + 1, strict);
    r = run_tool(args);
    EXPECT_EQ(r.exit_status, 0) << strict << ": " << r.describe();
    EXPECT_EQ(r.out, clean_ + ": ok (3 batches, 3 traces, 6 spans, ended cleanly)\n");
  }
}

// Spans assembled but dropped because the sinks fell behind are loss too, and count in
// the share of the run's spans dropped.
TEST_F(Loss, SpansTheSinksFellBehindOnAreLoss) {
  std::vector<AssembledTrace> run = clean_run(3);
  run[1].drops_since_previous.sink_spans = 4;
  const std::string path = dir_ / "sink.strobe";
  strobe::test::write_strobe(path, run);
  strobe::test::Run r = run_tool({"validate", path});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out, path + ": file intact (3 batches, 3 traces, 6 spans, every frame verified, end frame present); "
                          "the run lost data: 4 spans dropped because the sinks fell behind (40.00% of the run's spans)\n");
  r = run_tool({"info", path});
  EXPECT_NE(r.out.find("\ndrops       0 spans, 0 records, 4 spans the sinks fell behind on\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("most affected: job 000000000000dddd0000000000000002 (4 spans dropped by the sink queue before it)"),
            std::string::npos)
      << r.out;
  r = run_tool({"stats", "--json", path});
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  EXPECT_EQ(d["loss"]["sink_spans_dropped"].GetUint64(), 4u);
  EXPECT_NEAR(d["loss"]["dropped_span_fraction"].GetDouble(), 0.4, 1e-12);
  r = run_tool({"diff", clean_, path});
  EXPECT_NE(r.out.find("warning: the comparison is doubtful: NEW dropped 40.00% of its spans"), std::string::npos) << r.out;
}

// Drops that no trace carried — noticed after the run's last trace, or carried by traces
// the full sink queue dropped — reach the file with a flush (Sink::lost) and its end
// frame; the tool counts them with the rest.
TEST_F(Loss, DropsAfterTheLastTraceAreLoss) {
  const std::string path = dir_ / "trailing.strobe";
  {
    strobe::serialize::FileSinkOptions options;
    options.path = path;
    strobe::serialize::FileSink sink(options);
    for (const AssembledTrace& t : clean_run(3)) sink.consume(t);
    sink.lost(strobe::DropCounts{3, 9, 2});
    sink.flush();
    sink.close();
  }
  strobe::test::Run r = run_tool({"validate", path});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("the run lost data: 3 spans dropped"), std::string::npos) << r.out;
  r = run_tool({"info", path});
  EXPECT_NE(r.out.find("\ndrops       3 spans, 9 records, 2 spans the sinks fell behind on\n"), std::string::npos) << r.out;
  r = run_tool({"stats", "--json", path});
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  EXPECT_EQ(d["loss"]["spans_dropped"].GetUint64(), 3u);
  EXPECT_EQ(d["loss"]["records_dropped"].GetUint64(), 9u);
  EXPECT_EQ(d["loss"]["sink_spans_dropped"].GetUint64(), 2u);
}

// A span whose name did not fit the intern table reads "<too many names>": loss, marked.
TEST_F(Loss, ANameTheInternTableCouldNotHoldIsLoss) {
  std::vector<AssembledTrace> run = clean_run(1);
  run[0].spans[1].name = "<too many names>";
  run[0].spans[1].flags = strobe::kSpanNameOverflow;
  const std::string path = dir_ / "names.strobe";
  strobe::test::write_strobe(path, run);
  const strobe::test::Run r = run_tool({"tree", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out.rfind("warning: the run lost data: 1 span with a name the intern table could not hold\n"
                        "  most affected: job 000000000000dddd0000000000000001 (1 name lost)\n",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.out.find("step <too many names>  2.00 ms  [name lost: intern table full]\n"), std::string::npos) << r.out;
}

// Writes the traces through a FileSink, one batch each, in a child process whose files
// may not grow past `limit` bytes: a batch that would cross it is not written, and the
// file says so in its next frames.
void write_with_size_limit(const std::string& path, const std::vector<AssembledTrace>& traces, rlim_t limit) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails (EFBIG) instead of killing
    const rlimit rl{limit, limit};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    try {
      strobe::serialize::FileSink sink({.path = path});
      strobe::RecorderInfo info;
      info.service_name = "tool-test";
      info.clock = "steady";
      sink.open(info);
      for (const AssembledTrace& t : traces) {
        sink.consume(t);
        try {
          sink.flush();
        } catch (const std::exception&) {  // the batch that did not fit
        }
      }
      sink.close();
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the writer failed";
}

// What the file's writer could not write (a full disk, here a file size limit) is loss
// even though the file is intact.
TEST_F(Loss, BatchesTheWriterFailedToWriteAreLoss) {
  std::vector<AssembledTrace> run = clean_run(2);
  SpanData big = make_span(900, 0, "big", kT0, kT0 + kMs);
  strobe::Attribute blob;
  blob.key = "blob";
  blob.value.type = strobe::AttrValue::Type::string;
  blob.value.s = std::string(20000, 'x');
  big.attrs = {blob};
  run.insert(run.begin() + 1, make_trace(0xdddd, 99, "big", {big}));
  const std::string path = dir_ / "unwritten.strobe";
  write_with_size_limit(path, run, 4096);

  strobe::test::Run r = run_tool({"validate", path});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out, path + ": file intact (2 batches, 2 traces, 4 spans, every frame verified, end frame present); "
                          "the run lost data: 1 span (1 trace) in 1 batch the writer failed to write "
                          "(20.00% of the run's spans)\n");
  r = run_tool({"tree", path});
  EXPECT_EQ(r.out.rfind("warning: the run lost data: 1 span (1 trace) in 1 batch the writer failed to write", 0), 0u)
      << r.out;
  r = run_tool({"stats", "--json", path});
  rapidjson::Document d;
  d.Parse(r.out.c_str(), r.out.size());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  EXPECT_TRUE(d["loss"]["lost_data"].GetBool());
  EXPECT_EQ(d["loss"]["unwritten_batches"].GetUint64(), 1u);
  EXPECT_EQ(d["loss"]["unwritten_traces"].GetUint64(), 1u);
  EXPECT_EQ(d["loss"]["unwritten_spans"].GetUint64(), 1u);
}

// In a run of many traces, the few that lost most are named, then how many more did.
TEST_F(Loss, MostAffectedNamesTheWorstTracesFirst) {
  std::vector<AssembledTrace> run = clean_run(10);
  run[2].drops_since_previous = strobe::DropCounts{0, 1};
  for (int k : {6, 7, 8}) {
    run[k].spans[1].flags = strobe::kSpanLostRecords;
    run[k].root_name = "batch";
  }
  run[7].drops_since_previous = strobe::DropCounts{3, 9};
  const std::string path = dir_ / "many.strobe";
  strobe::test::write_strobe(path, run);
  const strobe::test::Run r = run_tool({"tree", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto lines = split_lines(r.out);
  ASSERT_GE(lines.size(), 2u);
  // Heaviest first, the earliest among equals.
  EXPECT_EQ(lines[1], "  most affected: batch 000000000000dddd0000000000000008 (3 spans, 9 records dropped before it, "
                      "1 span lost records); job 000000000000dddd0000000000000003 (1 record dropped before it); "
                      "batch 000000000000dddd0000000000000007 (1 span lost records); 1 more trace")
      << r.out;
}

}  // namespace
