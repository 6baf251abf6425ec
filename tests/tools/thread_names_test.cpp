// Thread names in the exports: a file recorded with named threads (strobe::set_thread_name)
// and an unnamed one (its OS name) names every Chrome track after its thread ("(lane K)"
// for a thread's extra lanes), gives each OTLP span thread.id and thread.name (the
// OpenTelemetry general attributes) and each lifecycle line thread_id and thread_name. A
// file of format 1.0 (before names) still reads: its tracks are "thread <id>", its OTLP
// spans and lines carry the id alone.

#include <gtest/gtest.h>
#include <pthread.h>
#include <rapidjson/document.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "run_tool.hpp"

namespace {

using strobe::test::golden;
using strobe::test::run_tool;
using strobe::test::split_lines;

std::uint64_t os_thread() { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text.substr(0, 2000);
  return d;
}

struct Recorded {
  std::uint64_t main = 0, worker = 0, unnamed = 0;
};

// The main thread named "agent-main" (with spans that overlap without nesting: a second
// lane), a worker named "tool-pool-1", and one left with its OS name "os-worker".
Recorded record(const std::string& path) {
  Recorded r;
  auto sink = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{path});
  {
    strobe::Recorder recorder({.sinks = {sink}});
    strobe::set_thread_name("agent-main");
    r.main = os_thread();
    auto root = strobe::trace("named-run");
    const strobe::Context ctx = strobe::current();
    auto a = strobe::start_span(STROBE_NAME("first"), strobe::Kind::step);
    auto b = strobe::start_span(STROBE_NAME("second"), strobe::Kind::step);
    a.finish();  // ends before b: b overlaps it without nesting
    b.finish();
    std::thread([&] {
      strobe::set_thread_name("tool-pool-1");
      r.worker = os_thread();
      strobe::ContextScope scope(ctx);
      auto t = strobe::span("search", strobe::Kind::tool);
    }).join();
    std::thread([&] {
      ::pthread_setname_np(::pthread_self(), "os-worker");
      r.unnamed = os_thread();
      strobe::ContextScope scope(ctx);
      auto t = strobe::span("fetch", strobe::Kind::tool);
    }).join();
    root.finish();
    recorder.flush();
    strobe::set_thread_name("");
  }
  sink->close();
  return r;
}

// Track names by tid, from the Chrome export's thread_name events.
std::map<std::uint64_t, std::string> track_names(const std::string& json) {
  std::map<std::uint64_t, std::string> names;
  const rapidjson::Document d = parse(json);
  for (const auto& e : d["traceEvents"].GetArray())
    if (std::string(e["ph"].GetString()) == "M" && std::string(e["name"].GetString()) == "thread_name")
      names[e["tid"].GetUint64()] = e["args"]["name"].GetString();
  return names;
}

// For each OTLP span by name: its thread.id and thread.name attributes ("" when absent).
std::map<std::string, std::pair<std::string, std::string>> otlp_threads(const std::string& lines) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const std::string& line : split_lines(lines)) {
    const rapidjson::Document d = parse(line);
    for (const auto& rs : d["resourceSpans"].GetArray())
      for (const auto& ss : rs["scopeSpans"].GetArray())
        for (const auto& sp : ss["spans"].GetArray()) {
          auto& [id, name] = out[sp["name"].GetString()];
          for (const auto& a : sp["attributes"].GetArray()) {
            const std::string key = a["key"].GetString();
            if (key == "thread.id") id = a["value"]["intValue"].GetString();
            if (key == "thread.name") name = a["value"]["stringValue"].GetString();
          }
        }
  }
  return out;
}

TEST(ThreadNames, ExportsNameEveryThread) {
  const strobe::test::TempDir dir;
  const std::string path = dir / "named.strobe";
  const Recorded rec = record(path);

  strobe::test::Run r = run_tool({"export", "--format", "chrome", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto tracks = track_names(r.out);
  EXPECT_EQ(tracks.at(rec.main), "agent-main");
  EXPECT_EQ(tracks.at(rec.worker), "tool-pool-1");
  EXPECT_EQ(tracks.at(rec.unnamed), "os-worker");
  EXPECT_EQ(tracks.at((std::uint64_t{1} << 32) | (rec.main & 0xffffffffu)), "agent-main (lane 1)");
  EXPECT_EQ(tracks.size(), 4u);

  r = run_tool({"export", "--format", "otlp", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto otlp = otlp_threads(r.out);
  ASSERT_TRUE(otlp.count("invoke_agent named-run") && otlp.count("execute_tool search") && otlp.count("execute_tool fetch"))
      << r.out.substr(0, 2000);
  EXPECT_EQ(otlp.at("invoke_agent named-run"), std::make_pair(std::to_string(rec.main), std::string("agent-main")));
  EXPECT_EQ(otlp.at("execute_tool search"), std::make_pair(std::to_string(rec.worker), std::string("tool-pool-1")));
  EXPECT_EQ(otlp.at("execute_tool fetch"), std::make_pair(std::to_string(rec.unnamed), std::string("os-worker")));

  r = run_tool({"export", "--format", "jsonl", path});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  std::map<std::string, std::pair<std::uint64_t, std::string>> lines;
  for (const std::string& line : split_lines(r.out)) {
    const rapidjson::Document d = parse(line);
    lines[d["content"].GetString()] = {d["thread_id"].GetUint64(), d.HasMember("thread_name") ? d["thread_name"].GetString() : ""};
  }
  EXPECT_EQ(lines.at("search started"), std::make_pair(rec.worker, std::string("tool-pool-1")));
  EXPECT_EQ(lines.at("fetch completed"), std::make_pair(rec.unnamed, std::string("os-worker")));
  EXPECT_EQ(lines.at("named-run completed"), std::make_pair(rec.main, std::string("agent-main")));
}

TEST(ThreadNames, FilesBeforeNamesStillRead) {
  const std::string old = golden("format_1_0.strobe");
  {
    strobe::serialize::Reader reader(old);
    EXPECT_EQ(reader.info().major, 1);
    EXPECT_EQ(reader.info().minor, 0);
  }
  std::optional<strobe::serialize::ReadError> error;
  const auto traces = strobe::serialize::read_all(old, &error);
  EXPECT_FALSE(error.has_value());
  ASSERT_EQ(traces.size(), 3u);
  for (const strobe::AssembledTrace& t : traces) EXPECT_TRUE(t.thread_names.empty());

  strobe::test::Run r = run_tool({"export", "--format", "chrome", old});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const auto tracks = track_names(r.out);
  ASSERT_FALSE(tracks.empty());
  for (const auto& [tid, name] : tracks) EXPECT_EQ(name, "thread " + std::to_string(tid));

  r = run_tool({"export", "--format", "otlp", old});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  for (const auto& [span, thread] : otlp_threads(r.out)) {
    EXPECT_FALSE(thread.first.empty()) << span;
    EXPECT_EQ(thread.second, "") << span;
  }
}

}  // namespace
