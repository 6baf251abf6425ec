// Bad input to every subcommand that reads a file (the README's misuse rules):
// a missing file, a directory, an empty file, a foreign (JSON) file, a damaged header, a
// file truncated in the middle of a batch, a bit flipped inside a batch, and data after
// the end frame. Each gets the documented exit status (3 unreadable; 4 damaged, with the
// output covering the traces before the damage; validate: 1 on damage), exactly one line
// on stderr naming the file (and the byte offset of the damage), and never a crash.

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "otlp_collector.hpp"
#include "run_tool.hpp"

namespace {

namespace fs = std::filesystem;
using strobe::test::golden;
using strobe::test::read_text;
using strobe::test::run_tool;
using strobe::test::split_lines;

const std::string kGolden = golden("golden.strobe");

// A frame of the golden file (layout in serialize/include/strobe/serialize/format.hpp).
struct Frame {
  std::size_t start = 0, length = 0;
  int type = 0;
};

std::vector<Frame> frames_of(const std::string& b) {
  std::vector<Frame> out;
  std::size_t pos = 16;
  while (pos + 16 <= b.size()) {
    std::uint32_t len;
    std::memcpy(&len, b.data() + pos, 4);
    out.push_back(Frame{pos, len, static_cast<unsigned char>(b[pos + 4])});
    pos += 16 + ((len + 7u) & ~std::size_t{7});
  }
  return out;
}

// What the tool should say of a bad file. A damaged one (every case here damages the golden
// file after batch 1) still yields the golden file's first trace; an unreadable one yields
// nothing on stdout.
struct Expect {
  int exit_status = 0;           // validate: 1 where this says 4
  bool damaged = false;
  std::size_t error_offset = 0;  // "byte N" on the stderr line
};

// One way to call the tool on a file; check_first_trace_only looks at its stdout when
// the first trace of the golden file, and nothing else, should have come out.
struct Command {
  std::string label;
  std::function<std::vector<std::string>(const std::string& path, const std::string& endpoint)> args;
  std::function<void(const strobe::test::Run&)> check_first_trace_only;
  bool validate = false;
  bool push = false;
};

// The golden tree's first trace: after the loss warning (its run lost data in trace 2,
// which a file damaged after batch 1 does not hold), up to the blank line.
std::string first_trace_of_golden_tree() {
  std::string tree = read_text(golden("golden.tree.txt"));
  if (tree.rfind("warning: ", 0) == 0) tree = tree.substr(tree.find("\n\n") + 2);
  return tree.substr(0, tree.find("\n\n") + 1);
}

std::string first_lines(const std::string& text, std::size_t n) {
  std::size_t at = 0;
  for (std::size_t i = 0; i < n && at != std::string::npos; ++i) {
    at = text.find('\n', at);
    if (at != std::string::npos) ++at;
  }
  return at == std::string::npos ? text : text.substr(0, at);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::vector<Command> commands() {
  auto file_only = [](std::vector<std::string> before) {
    return [before](const std::string& path, const std::string&) {
      std::vector<std::string> a = before;
      a.push_back(path);
      return a;
    };
  };
  std::vector<Command> c;
  c.push_back({"info", file_only({"info"}), [](const strobe::test::Run& r) {
                 EXPECT_NE(r.out.find("\ntraces      1 (0 partial parts)\n"), std::string::npos) << r.out;
                 EXPECT_NE(r.out.find("\nspans       12 (1 failed, 1 incomplete)\n"), std::string::npos) << r.out;
                 EXPECT_NE(r.out.find("\nended       NOT cleanly: "), std::string::npos) << r.out;
               }});
  c.push_back({"tree", file_only({"tree"}), [](const strobe::test::Run& r) {
                 EXPECT_EQ(strobe::test::line_diff(first_trace_of_golden_tree(), r.out), "");
               }});
  c.push_back({"stats", file_only({"stats"}), [](const strobe::test::Run& r) {
                 EXPECT_NE(r.out.find("\ngenerate_answer "), std::string::npos) << r.out;
                 EXPECT_NE(r.out.find("\nresearch-agent "), std::string::npos) << r.out;
                 EXPECT_EQ(r.out.find("batch-job"), std::string::npos) << r.out;
                 EXPECT_EQ(split_lines(r.out).size(), 1u + 11u) << r.out;  // header + 11 names of trace 1
               }});
  c.push_back({"diff (base)",
               [](const std::string& path, const std::string&) { return std::vector<std::string>{"diff", path, kGolden}; },
               [](const strobe::test::Run& r) {
                 EXPECT_NE(r.out.find("generate_answer"), std::string::npos) << r.out;
                 EXPECT_NE(r.out.find("no significant slowdown"), std::string::npos) << r.out;
               }});
  c.push_back({"diff (new)",
               [](const std::string& path, const std::string&) { return std::vector<std::string>{"diff", kGolden, path}; },
               [](const strobe::test::Run& r) {
                 EXPECT_NE(r.out.find("generate_answer"), std::string::npos) << r.out;
                 EXPECT_NE(r.out.find("batch-job"), std::string::npos) << "gone from the new run: " << r.out;
               }});
  c.push_back({"export chrome", file_only({"export", "--format", "chrome"}), [](const strobe::test::Run& r) {
                 rapidjson::Document d;
                 d.Parse(r.out.c_str(), r.out.size());
                 EXPECT_FALSE(d.HasParseError()) << "the Chrome file must stay valid JSON: " << r.out;
                 EXPECT_EQ(count(r.out, R"("ph":"B")"), 12u) << r.out;
                 EXPECT_EQ(count(r.out, R"("ph":"E")"), 12u) << r.out;
               }});
  c.push_back({"export otlp", file_only({"export", "--format", "otlp"}), [](const strobe::test::Run& r) {
                 const auto lines = split_lines(r.out);
                 ASSERT_EQ(lines.size(), 1u) << r.out;
                 EXPECT_EQ(strobe::test::span_ids_of(lines[0]).size(), 12u);
               }});
  c.push_back({"export jsonl", file_only({"export", "--format", "jsonl"}), [](const strobe::test::Run& r) {
                 EXPECT_EQ(strobe::test::line_diff(first_lines(read_text(golden("golden.jsonl")), 24), r.out), "");
               }});
  Command push{"push",
               [](const std::string& path, const std::string& endpoint) {
                 // JSON bodies: the checks below read their span ids.
                 return std::vector<std::string>{"push", path, "--endpoint", endpoint, "--retries", "0",
                                                 "--protocol", "http/json"};
               },
               [](const strobe::test::Run& r) {
                 EXPECT_NE(r.out.find("pushed 12 spans in 1 requests"), std::string::npos) << r.out;
               }};
  push.push = true;
  c.push_back(push);
  Command validate{"validate", file_only({"validate"}), [](const strobe::test::Run& r) { EXPECT_EQ(r.out, ""); }};
  validate.validate = true;
  c.push_back(validate);
  return c;
}

// Runs every command on `path` and checks status, the stderr line and stdout.
void expect_bad_file(const std::string& path, const Expect& want) {
  for (const Command& c : commands()) {
    SCOPED_TRACE("strobe " + c.label + " on " + path);
    strobe::test::Collector collector({strobe::test::Reply{200, "{}"}}, std::chrono::seconds(10));
    const strobe::test::Run r = run_tool(c.args(path, collector.endpoint()), 30);
    collector.stop();
    ASSERT_EQ(r.signal, 0) << r.describe();
    ASSERT_FALSE(r.timed_out) << r.describe();
    const int status = want.damaged && c.validate ? 1 : want.exit_status;
    EXPECT_EQ(r.exit_status, status) << r.describe();
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << "exactly one line on stderr:\n" << r.err;
    EXPECT_EQ(lines[0].rfind("strobe: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(path + ": "), std::string::npos) << "the line names the file: " << lines[0];
    const std::string at = "byte " + std::to_string(want.error_offset) + ": ";
    EXPECT_NE(lines[0].find(at), std::string::npos) << "the line names the offset (" << at << "): " << lines[0];
    if (!want.damaged) {
      EXPECT_EQ(r.out, "") << "nothing on stdout for a file that cannot be read";
      if (c.push) EXPECT_TRUE(collector.requests().empty());
      continue;
    }
    c.check_first_trace_only(r);
    if (c.push) {
      ASSERT_EQ(collector.requests().size(), 1u);
      EXPECT_EQ(strobe::test::span_ids_of(collector.requests()[0].body).size(), 12u);
    }
  }
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = read_text(kGolden);
    frames_ = frames_of(bytes_);
    // header, batch 1 (trace 1), batch 2 (traces 2 and 3), end
    ASSERT_EQ(frames_.size(), 4u);
    ASSERT_EQ(frames_[0].type, 1);
    ASSERT_EQ(frames_[1].type, 2);
    ASSERT_EQ(frames_[2].type, 2);
    ASSERT_EQ(frames_[3].type, 3);
  }
  std::string write(const std::string& name, const std::string& content) {
    const std::string path = dir_ / name;
    strobe::test::write_text(path, content);
    return path;
  }

  strobe::test::TempDir dir_;
  std::string bytes_;
  std::vector<Frame> frames_;
};

TEST_F(BadInput, MissingFile) { expect_bad_file(dir_ / "no-such.strobe", {3, false, 0}); }

TEST_F(BadInput, Directory) {
  fs::create_directories(dir_.path() / "a-directory.strobe");
  expect_bad_file(dir_ / "a-directory.strobe", {3, false, 0});
}

TEST_F(BadInput, EmptyFile) { expect_bad_file(write("empty.strobe", ""), {3, false, 0}); }

TEST_F(BadInput, JsonTextIsNotAStrobeFile) {
  expect_bad_file(write("trace.json", R"({"traceEvents":[{"ph":"X","name":"a","ts":1,"dur":2}]})" "\n"), {3, false, 0});
}

TEST_F(BadInput, ShorterThanThePreamble) { expect_bad_file(write("short.strobe", bytes_.substr(0, 9)), {3, false, 0}); }

TEST_F(BadInput, BitFlippedInTheHeaderFrame) {
  std::string b = bytes_;
  b[frames_[0].start + 16 + frames_[0].length / 2] ^= 0x10;
  expect_bad_file(write("bad-header.strobe", b), {3, false, frames_[0].start});
}

TEST_F(BadInput, TruncatedInTheMiddleOfABatch) {
  const Frame& batch2 = frames_[2];
  expect_bad_file(write("truncated.strobe", bytes_.substr(0, batch2.start + 16 + batch2.length / 2)),
                  {4, true, batch2.start});
}

TEST_F(BadInput, TruncatedInsideAFrameHeader) {
  const Frame& batch2 = frames_[2];
  expect_bad_file(write("truncated-header.strobe", bytes_.substr(0, batch2.start + 7)), {4, true, batch2.start});
}

TEST_F(BadInput, TruncatedBeforeTheEndFrame) {
  expect_bad_file(write("no-end.strobe", bytes_.substr(0, frames_[2].start)), {4, true, frames_[2].start});
}

TEST_F(BadInput, BitFlippedInABatch) {
  std::string b = bytes_;
  const Frame& batch2 = frames_[2];
  b[batch2.start + 16 + batch2.length / 2] ^= 0x01;
  expect_bad_file(write("flipped.strobe", b), {4, true, batch2.start});
}

TEST_F(BadInput, BitFlippedInAFrameLength) {
  std::string b = bytes_;
  const Frame& batch2 = frames_[2];
  b[batch2.start + 2] ^= 0x40;  // the length claims 4 MiB more
  expect_bad_file(write("bad-length.strobe", b), {4, true, batch2.start});
}

TEST_F(BadInput, DataAfterTheEndFrame) {
  std::string b = bytes_;
  const Frame& batch1 = frames_[1];
  b += bytes_.substr(batch1.start, frames_[2].start - batch1.start);  // batch 1 again, after the end
  // Everything before the end frame is still read: the whole golden content, then damage.
  for (const Command& c : commands()) {
    SCOPED_TRACE(c.label);
    strobe::test::Collector collector({strobe::test::Reply{200, "{}"}}, std::chrono::seconds(10));
    const std::string path = write("trailing.strobe", b);
    const strobe::test::Run r = run_tool(c.args(path, collector.endpoint()), 30);
    collector.stop();
    ASSERT_EQ(r.signal, 0) << r.describe();
    EXPECT_EQ(r.exit_status, c.validate ? 1 : 4) << r.describe();
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(path + ": byte " + std::to_string(bytes_.size()) + ": "), std::string::npos) << lines[0];
  }
}

TEST_F(BadInput, UnreadableInputLeavesTheExportOutputFileAlone) {
  const std::string out = write("previous.json", "previous contents\n");
  for (const char* format : {"chrome", "otlp", "jsonl"}) {
    const strobe::test::Run r = run_tool({"export", "--format", format, "-o", out, dir_ / "no-such.strobe"});
    EXPECT_EQ(r.exit_status, 3) << format << ": " << r.describe();
    EXPECT_EQ(read_text(out), "previous contents\n") << format;
  }
}

}  // namespace
