// The strobe tool on the committed golden file (tests/tools/data/golden.strobe, written by
// make_golden.cpp): `tree`, `stats` and `export --format jsonl` print exactly the reviewed
// golden outputs; `info` reports the header, counts, integrity and loss; `validate`
// passes the intact file and says that its run lost data; every subcommand's --help works
// and names its options.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "run_tool.hpp"

namespace {

using strobe::test::golden;
using strobe::test::line_diff;
using strobe::test::read_text;
using strobe::test::run_tool;

const std::string kGolden = golden("golden.strobe");

void expect_golden_output(const std::vector<std::string>& args, const std::string& golden_name) {
  const strobe::test::Run r = run_tool(args);
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  const std::string want = read_text(golden(golden_name));
  ASSERT_FALSE(want.empty()) << "missing golden file " << golden(golden_name);
  if (r.out != want) {
    std::string cmd;
    for (const std::string& a : args) cmd += " " + a;
    ADD_FAILURE() << "`strobe" << cmd << "` differs from " << golden_name << ":\n" << line_diff(want, r.out)
                  << "(if the change is intended, review the new output and refreeze it: see make_golden.cpp)";
  }
}

TEST(CliGolden, TreeMatchesTheReviewedOutput) { expect_golden_output({"tree", kGolden}, "golden.tree.txt"); }

TEST(CliGolden, StatsMatchesTheReviewedOutput) { expect_golden_output({"stats", kGolden}, "golden.stats.txt"); }

TEST(CliGolden, JsonlExportMatchesTheReviewedOutput) {
  expect_golden_output({"export", "--format", "jsonl", kGolden}, "golden.jsonl");
}

TEST(CliGolden, JsonlExportToAFileEqualsStdout) {
  const strobe::test::TempDir dir;
  const std::string out = dir / "golden.jsonl";
  const strobe::test::Run r = run_tool({"export", "-f", "jsonl", "-o", out, kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(line_diff(read_text(golden("golden.jsonl")), read_text(out)), "");
}

TEST(CliInfo, ReportsHeaderCountsTimeRangeDropsIntegrityAndLoss) {
  const strobe::test::Run r = run_tool({"info", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  const std::string want =
      "file        " + kGolden + " (" + std::to_string(read_text(kGolden).size()) + " bytes)\n"
      "format      1.0, written by strobe 0.1.0\n"
      "service     golden-service  host golden-host  pid 4242\n"
      "clock       steady (1.000000 ns/tick), recorder started 2026-01-01T00:00:00.000000000Z\n"
      "batches     2\n"
      "traces      3 (1 partial parts)\n"
      "spans       18 (2 failed, 2 incomplete)\n"
      "time range  2026-01-01T00:00:01.000000000Z .. 2026-01-01T00:00:04.500000000Z (3.500 s)\n"
      "drops       1 spans, 3 records\n"
      "ended       cleanly\n"
      "integrity   intact: every frame verified, end frame present\n"
      "loss        the run LOST DATA: 1 span dropped (5.26% of the run's spans), 3 records dropped\n"
      "            most affected: batch-job 11111111111111112222222222222222 (1 span, 3 records dropped before it)\n";
  EXPECT_EQ(line_diff(want, r.out), "");
}

TEST(CliValidate, IntactFileExitsZeroWithASummaryThatNamesTheLoss) {
  const strobe::test::Run r = run_tool({"validate", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, kGolden + ": file intact (2 batches, 3 traces, 18 spans, every frame verified, end frame present); "
                             "the run lost data: 1 span dropped (5.26% of the run's spans), 3 records dropped\n");
}

// What the golden run lost, first in tree and stats output (its second trace has drops).
const std::string kGoldenLossWarning =
    "warning: the run lost data: 1 span dropped (5.26% of the run's spans), 3 records dropped\n"
    "  most affected: batch-job 11111111111111112222222222222222 (1 span, 3 records dropped before it)\n"
    "\n";

TEST(CliTree, TraceFilterAndDepthLimit) {
  strobe::test::Run r = run_tool({"tree", "--trace", "1111", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out,
            kGoldenLossWarning +
            "trace 11111111111111112222222222222222  batch-job  4 spans  (3 records dropped before it)\n"
            "agent batch-job  30.00 ms\n"
            "├─ tool load_rows  11.00 ms  rows=1024\n"
            "├─ step checkpoint  0 ns\n"
            "└─ tool write_rows  16.00 ms  FAILED: std::runtime_error: disk full\n");

  r = run_tool({"tree", "--trace", "3333", "--depth", "0", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.out,
            kGoldenLossWarning +
            "trace 33333333333333334444444444444444  long-runner  2 spans  (part 0, more follows)\n"
            "agent long-runner  500.00 ms  INCOMPLETE\n"
            "… 1 children not shown (--depth)\n");

  r = run_tool({"tree", "--trace", "ffff", kGolden});
  EXPECT_EQ(r.exit_status, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err_lines().size(), 1u) << r.err;
}

TEST(CliStats, ByKindAndJson) {
  strobe::test::Run r = run_tool({"stats", "--by", "kind", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  ASSERT_EQ(r.out.rfind(kGoldenLossWarning, 0), 0u) << r.out;
  const std::vector<std::string> lines = strobe::test::split_lines(r.out.substr(kGoldenLossWarning.size()));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].rfind("kind ", 0), 0u) << lines[0];
  EXPECT_EQ(lines.size(), 1u + 8u) << r.out;  // agent plan custom retrieval llm step tool action

  r = run_tool({"stats", "--json", kGolden});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find(R"({"name":"generate_answer","count":1,"total_ns":100000000,"mean_ns":100000000,)"
                       R"("p50_ns":100000000,"p90_ns":100000000,"p99_ns":100000000,"max_ns":100000000,)"
                       R"("errors":0,"incomplete":0,"input_tokens":1200,"output_tokens":350,"cached_input_tokens":800})"),
            std::string::npos)
      << r.out;
}

TEST(CliDiff, AFileAgainstItselfHasNoSlowdown) {
  const strobe::test::Run r = run_tool({"diff", kGolden, kGolden});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_NE(r.out.find("no significant slowdown"), std::string::npos) << r.out;
}

TEST(CliUsage, NoSubcommandOrUnknownOptionIsAUsageError) {
  EXPECT_EQ(run_tool({}).exit_status, 2);
  EXPECT_EQ(run_tool({"tree", "--no-such-option", kGolden}).exit_status, 2);
  EXPECT_EQ(run_tool({"export", "--format", "xml", kGolden}).exit_status, 2);
  EXPECT_EQ(run_tool({"frobnicate"}).exit_status, 2);
}

TEST(CliHelp, TopLevelHelpListsSubcommandsAndExitCodes) {
  const strobe::test::Run r = run_tool({"--help"});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  for (const char* word : {"info", "tree", "stats", "diff", "export", "push", "html", "validate", "assemble", "Exit status",
                           "5 cannot write"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " missing from:\n" << r.out;
  const strobe::test::Run v = run_tool({"--version"});
  EXPECT_EQ(v.exit_status, 0);
  EXPECT_NE(v.out.find("strobe 0.1.0"), std::string::npos) << v.out;
}

struct HelpCase {
  std::string subcommand;
  std::vector<std::string> mentions;
};

class CliSubcommandHelp : public ::testing::TestWithParam<HelpCase> {};

TEST_P(CliSubcommandHelp, ExitsZeroAndNamesEveryOption) {
  const HelpCase& c = GetParam();
  for (const char* flag : {"--help", "-h"}) {
    const strobe::test::Run r = run_tool({c.subcommand, flag});
    ASSERT_EQ(r.exit_status, 0) << c.subcommand << " " << flag << ": " << r.describe();
    EXPECT_EQ(r.err, "");
    for (const std::string& m : c.mentions)
      EXPECT_NE(r.out.find(m), std::string::npos) << "`strobe " << c.subcommand << " " << flag << "` does not mention "
                                                  << m << ":\n"
                                                  << r.out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllSubcommands, CliSubcommandHelp,
    ::testing::Values(HelpCase{"info", {"FILE"}}, HelpCase{"validate", {"FILE", "--strict"}},
                      HelpCase{"tree", {"FILE", "--trace", "--depth"}},
                      HelpCase{"stats", {"FILE", "--by", "--json"}},
                      HelpCase{"diff", {"BASE", "NEW", "--threshold", "--alpha", "--min-samples", "--json"}},
                      HelpCase{"export", {"FILE", "--format", "chrome", "otlp", "jsonl", "--output", "--max-spans-per-line"}},
                      HelpCase{"push", {"FILE", "--endpoint", "--header", "--timeout", "--retries", "--batch-bytes", "--backoff-ms",
                                         "--protocol", "--compression"}},
                      HelpCase{"html", {"FILE", "--output"}},
                      HelpCase{"assemble", {"FILE", "--output", "--force"}}),
    [](const ::testing::TestParamInfo<HelpCase>& info) { return info.param.subcommand; });

}  // namespace
