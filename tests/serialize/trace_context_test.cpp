// W3C Trace Context: a Context from a `traceparent` header (every rule of the header's
// grammar), spans begun under it joining the caller's trace under the caller's span, the
// header for an outgoing call, the sampled flag respected, and the round trip through a
// second process: the callee's file holds the caller's trace id and span as parent.

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "strobe/serialize/reader.hpp"
#include "strobe/serialize/writer.hpp"
#include "strobe/strobe.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace {

using strobe::AssembledTrace;
using strobe::Context;
using strobe::SpanData;

constexpr const char* kHeader = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

TEST(TraceContext, AValidHeaderGivesTheCallersTraceAndSpan) {
  const Context c = Context::from_traceparent(kHeader);
  ASSERT_TRUE(c.valid());
  EXPECT_TRUE(c.remote());
  EXPECT_TRUE(c.sampled());
  EXPECT_EQ(c.trace_id().hi, 0x4bf92f3577b34da6u);
  EXPECT_EQ(c.trace_id().lo, 0xa3ce929d0e0e4736u);
  EXPECT_EQ(c.span_id(), 0x00f067aa0ba902b7u);
  EXPECT_EQ(c.traceparent(), kHeader);
  const Context u = Context::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(u.valid());
  EXPECT_FALSE(u.sampled());
  EXPECT_EQ(u.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  // Other flag bits are unknown here: only "sampled" is kept.
  EXPECT_TRUE(Context::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").sampled());
  // A later version: the same four fields, and whatever follows after a dash.
  EXPECT_TRUE(Context::from_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").valid());
  EXPECT_TRUE(Context::from_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").valid());
  EXPECT_FALSE(Context().remote());
  EXPECT_EQ(Context().traceparent(), "");
}

TEST(TraceContext, AMalformedHeaderGivesAnInvalidContext) {
  const std::vector<std::string> bad = {
      "",
      "00",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        // no flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    // version 00 has nothing after
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version ff is invalid
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // uppercase
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // all-zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // all-zero span id
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     // not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    // a later field must follow a dash
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  for (const std::string& h : bad) EXPECT_FALSE(Context::from_traceparent(h).valid()) << '"' << h << '"';
}

std::vector<const SpanData*> spans_named(const std::vector<AssembledTrace>& traces, std::string_view name) {
  std::vector<const SpanData*> out;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans)
      if (s.name == name) out.push_back(&s);
  return out;
}

TEST(TraceContext, SpansUnderARemoteContextJoinTheCallersTrace) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  const Context caller = Context::from_traceparent(kHeader);
  std::string outgoing;
  std::uint64_t db_id = 0, handle_id = 0;
  {
    strobe::ContextScope scope(caller);
    EXPECT_EQ(strobe::current().traceparent(), kHeader) << "with no span yet, the caller's context passes on";
    auto handle = strobe::span("handle_request", strobe::Kind::agent);
    handle_id = handle.span_id();
    {
      auto db = strobe::span("query", strobe::Kind::tool);
      db_id = db.span_id();
      outgoing = strobe::current().traceparent();
    }
    handle.next(strobe::Name("respond"));  // a sibling of a root under the remote span: a root too
  }
  EXPECT_EQ(outgoing, "00-4bf92f3577b34da6a3ce929d0e0e4736-" + hex16(db_id) + "-01");
  recorder.flush();
  const auto traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  const AssembledTrace& t = traces[0];
  EXPECT_EQ(t.trace_id, caller.trace_id());
  EXPECT_FALSE(t.partial) << "the trace completes once this process's part of it ended";
  EXPECT_EQ(t.root_name, "handle_request");
  const auto handle = spans_named(traces, "handle_request");
  const auto query = spans_named(traces, "query");
  const auto respond = spans_named(traces, "respond");
  ASSERT_EQ(handle.size(), 1u);
  ASSERT_EQ(query.size(), 1u);
  ASSERT_EQ(respond.size(), 1u);
  EXPECT_EQ(handle[0]->span_id, handle_id);
  EXPECT_EQ(handle[0]->parent_id, caller.span_id());
  EXPECT_TRUE(handle[0]->flags & strobe::kSpanTraceRoot);
  EXPECT_EQ(query[0]->parent_id, handle_id);
  EXPECT_EQ(respond[0]->parent_id, caller.span_id());
  EXPECT_TRUE(respond[0]->flags & strobe::kSpanTraceRoot);
  for (const SpanData& s : t.spans) {
    EXPECT_FALSE(s.flags & (strobe::kSpanPlaceholder | strobe::kSpanOrphan)) << s.name;
  }
  EXPECT_EQ(recorder.stats().placeholders, 0u);
}

TEST(TraceContext, AnUnsampledCallerMeansNothingIsRecorded) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  const Context caller = Context::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  std::string outgoing;
  {
    strobe::ContextScope scope(caller);
    auto handle = strobe::span("handle_request");
    EXPECT_FALSE(handle.recording());
    auto child = strobe::span("query");
    EXPECT_FALSE(child.recording());
    const Context recorded = strobe::record_span("after_the_fact", strobe::Kind::step, std::chrono::milliseconds(3));
    EXPECT_FALSE(recorded.sampled()) << "spans put under what it returns stay unrecorded too";
    EXPECT_EQ(recorded.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    outgoing = strobe::current().traceparent();
  }
  EXPECT_EQ(outgoing, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00") << "passed on unsampled";
  {
    auto local = strobe::span("local_work");  // outside the scope: recorded as usual
    EXPECT_TRUE(local.recording());
  }
  recorder.flush();
  const auto traces = sink->traces();
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].root_name, "local_work");
  EXPECT_EQ(recorder.stats().spans_recorded, 1u);
}

// Links to a span of the same trace, of another local trace and of a remote caller, in
// the order added; an invalid context adds none. Through the file too.
TEST(TraceContext, SpanLinksReachTheSinksAndTheFile) {
  strobe::test::TempDir dir;
  const std::string path = (dir.path / "links.strobe").string();
  auto memory = std::make_shared<strobe::MemorySink>();
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  const Context remote = Context::from_traceparent(kHeader);
  Context earlier, sibling;
  std::uint64_t batch_id = 0;
  {
    strobe::Recorder recorder({.sinks = {memory, file}});
    {
      auto request = strobe::trace("request");
      earlier = request.context();
    }
    auto job = strobe::trace("batch_job");
    {
      auto first = strobe::span("first");
      sibling = first.context();
    }
    auto batch = strobe::span("batch");
    batch_id = batch.span_id();
    batch.link(earlier).link(sibling).link(remote).link(Context());
  }
  const std::vector<strobe::SpanLink> want = {{earlier.trace_id(), earlier.span_id()},
                                              {sibling.trace_id(), sibling.span_id()},
                                              {remote.trace_id(), remote.span_id()}};
  const auto traces = memory->traces();
  const auto batch = spans_named(traces, "batch");
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0]->links, want);
  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView b;
  int found = 0;
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i)
      for (strobe::serialize::SpanView s : b.trace(i).spans())
        if (s.span_id() == batch_id) {
          ++found;
          EXPECT_EQ(s.to_span_data().links, want);
        }
  EXPECT_EQ(found, 1);
}

// The callee side of the round trip: runs only when the caller test starts this binary
// with the header and a file path in its environment.
TEST(TraceContext, CalleeProcess) {
  const char* header = std::getenv("STROBE_TEST_TRACEPARENT");
  const char* path = std::getenv("STROBE_TEST_FILE");
  if (header == nullptr || path == nullptr) GTEST_SKIP() << "the callee side of SecondProcessJoinsTheTrace";
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  strobe::Recorder recorder({.service_name = "callee", .sinks = {file}});
  strobe::ContextScope scope(Context::from_traceparent(header));
  auto s = strobe::span("callee_work", strobe::Kind::tool);
}

TEST(TraceContext, SecondProcessJoinsTheTrace) {
  strobe::test::TempDir dir;
  const std::string path = (dir.path / "callee.strobe").string();
  std::string header;
  strobe::TraceId trace{};
  std::uint64_t caller_span = 0;
  {
    strobe::Recorder recorder({.service_name = "caller"});
    auto call = strobe::trace("caller_request");
    trace = call.trace_id();
    caller_span = call.span_id();
    header = strobe::current().traceparent();
  }
  ASSERT_EQ(header.size(), 55u);
  const std::string env_header = "STROBE_TEST_TRACEPARENT=" + header;
  const std::string env_file = "STROBE_TEST_FILE=" + path;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(const_cast<char*>(env_header.c_str()));
  env.push_back(const_cast<char*>(env_file.c_str()));
  env.push_back(nullptr);
  std::string self(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size());
  ASSERT_GT(n, 0);
  self.resize(static_cast<std::size_t>(n));
  std::string filter = "--gtest_filter=TraceContext.CalleeProcess";
  char* argv[] = {self.data(), filter.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, env.data()), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "callee failed";

  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView batch;
  int found = 0;
  while (reader.next(batch)) {
    for (std::size_t i = 0; i < batch.trace_count(); ++i) {
      const strobe::serialize::TraceView& t = batch.trace(i);
      for (strobe::serialize::SpanView s : t.spans()) {
        if (s.name() != "callee_work") continue;
        ++found;
        EXPECT_EQ(t.trace_id(), trace);
        EXPECT_EQ(s.parent_id(), caller_span);
      }
    }
  }
  EXPECT_EQ(found, 1);
}

}  // namespace
