// Deferred assembly (Config::defer_assembly) where the process does not end well, and the
// tool on the files it leaves:
//
// - a child recording with the log into a FileSink crashes (a null dereference, abort):
//   the file must end with the crash recorded, hold the spans that ended before it, and
//   flag the span that was running on the crashing thread;
// - the same child with Config::recovery_dir, killed with SIGKILL: `strobe recover` must
//   rebuild a file that holds what had ended, none of it twice;
// - info, tree, stats, validate and export --format chrome read a file of the log as they
//   read an assembled file of the same workload (the same counts).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <unordered_set>

#include "run_tool.hpp"
#include "strobe/serialize/reader.hpp"
#include "strobe/serialize/writer.hpp"
#include "strobe/strobe.hpp"

namespace {

struct Shared {
  std::atomic<std::uint64_t> ended{0};
  std::atomic<std::uint64_t> side_ended{0};  // the side thread's spans ended
};
Shared* g_shared = nullptr;
int* volatile g_null = nullptr;

Shared* map_shared() {
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(mem, MAP_FAILED);
  return new (mem) Shared;
}

struct Steps {
  std::uint64_t distinct = 0, repeated = 0, side = 0;
  bool crash_site_flagged = false;
  std::string error;
};

Steps count_steps(const std::string& path) {
  Steps out;
  std::unordered_set<std::uint64_t> ids;
  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView batch;
  while (reader.next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i)
      for (strobe::serialize::SpanView s : batch.trace(i).spans()) {
        if (s.name() == "step" && s.status() == strobe::Status::ok && !ids.insert(s.span_id()).second) ++out.repeated;
        if (s.name() == "side_step" && s.status() == strobe::Status::ok) ++out.side;
        if (s.name() == "crash_site") out.crash_site_flagged = (s.flags() & strobe::kSpanCrashed) != 0;
      }
  if (reader.error()) out.error = reader.error()->what();
  out.distinct = ids.size();
  return out;
}

// ---- the crash flush ----

enum class How { null_dereference, abort };

[[noreturn]] void crash_child(const std::string& path, How how) {
  {
    auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait,
                               .service_name = "deferred-crasher",
                               .sinks = {file},
                               .defer_assembly = true});
    strobe::set_thread_name("crashing-main");
    auto request = strobe::trace("request");
    for (std::uint64_t i = 0; i < 200000; ++i) {
      {
        auto step = strobe::span("step", strobe::Kind::step);
        if (i % 64 == 0) step.attr("i", static_cast<std::int64_t>(i));
      }
      g_shared->ended.store(i + 1, std::memory_order_release);
    }
    auto site = strobe::span("crash_site", strobe::Kind::tool);
    if (how == How::null_dereference) *g_null = 42;
    std::abort();
  }
}

void expect_crash_saved(How how, int signal) {
  strobe::test::TempDir dir;
  const std::string path = dir / "crash.strobe";
  g_shared = map_shared();
  const pid_t pid = ::fork();
  if (pid == 0) crash_child(path, how);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::uint64_t ended = g_shared->ended.load();
  ::munmap(g_shared, sizeof(Shared));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == signal) << "status " << status;
  EXPECT_EQ(ended, 200000u);
  ASSERT_TRUE(std::filesystem::exists(path));
  strobe::serialize::Reader reader(path);
  EXPECT_TRUE(reader.info().records) << "a file of the record log";
  const Steps steps = count_steps(path);
  EXPECT_EQ(steps.error, "");
  EXPECT_GE(static_cast<double>(steps.distinct), 0.999 * static_cast<double>(ended)) << steps.distinct << " of " << ended;
  EXPECT_EQ(steps.repeated, 0u);
  EXPECT_TRUE(steps.crash_site_flagged) << "the span running on the crashing thread";
  strobe::serialize::BatchView batch;
  while (reader.next(batch)) {
  }
  EXPECT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly()) << "the crash flush writes the end frame";
  EXPECT_EQ(reader.end_info().crash_signal, signal);
  const strobe::test::Run v = strobe::test::run_tool({"validate", path});
  EXPECT_EQ(v.exit_status, 0) << v.describe();
  EXPECT_NE(v.out.find("the process crashed"), std::string::npos) << v.out;
  const strobe::test::Run t = strobe::test::run_tool({"tree", path, "--max-children", "2"});
  EXPECT_NE(t.out.find("[crashed here]"), std::string::npos) << t.out;
}

TEST(DeferredCrash, ANullDereferenceKeepsWhatEndedAndTheCrash) {
  STROBE_SKIP_CRASH;
  expect_crash_saved(How::null_dereference, SIGSEGV);
}

TEST(DeferredCrash, AbortKeepsWhatEndedAndTheCrash) {
  STROBE_SKIP_CRASH;
  expect_crash_saved(How::abort, SIGABRT);
}

// ---- SIGKILL and recovery ----

[[noreturn]] void kill_child(const std::string& path) {
  {
    auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait,
                               .sink_queue_spans = std::size_t{1} << 16,
                               .service_name = "deferred-victim",
                               .sinks = {file},
                               .recovery_dir = path + ".recovery",
                               .recovery_journal_records = std::size_t{1} << 21,
                               .defer_assembly = true});
    std::thread side([] {
      strobe::set_thread_name("side");
      auto root = strobe::trace("side");
      for (;;) {
        {
          auto s = strobe::span("side_step", strobe::Kind::step);
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        g_shared->side_ended.fetch_add(1, std::memory_order_release);
      }
    });
    side.detach();
    std::optional<strobe::Span> root;
    for (std::uint64_t i = 0;; ++i) {
      if (i % 1000 == 0) {
        root.reset();
        root.emplace(strobe::trace("request"));
      }
      {
        auto step = strobe::span("step", strobe::Kind::step);
        step.attr("i", static_cast<std::int64_t>(i));
      }
      g_shared->ended.store(i + 1, std::memory_order_release);
    }
  }
}

void expect_recovered_after_kill(std::uint64_t spans) {
  strobe::test::TempDir dir;
  const std::string path = dir / "killed.strobe";
  g_shared = map_shared();
  const pid_t pid = ::fork();
  if (pid == 0) kill_child(path);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  // Both threads recorded: on a loaded machine the side thread's ring (a file in recovery
  // mode) can take longer to set up than the main thread takes to end the first spans.
  while ((g_shared->ended.load(std::memory_order_acquire) < spans ||
          g_shared->side_ended.load(std::memory_order_acquire) == 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::uint64_t ended = g_shared->ended.load();
  ::munmap(g_shared, sizeof(Shared));
  const std::string out = dir / "killed.recovered.strobe";
  const strobe::test::Run r = strobe::test::run_tool({"recover", path, "-o", out});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  const Steps steps = count_steps(out);
  std::printf("killed after %llu steps ended: recovered %llu (%llu twice), side %llu\n",
              static_cast<unsigned long long>(ended), static_cast<unsigned long long>(steps.distinct),
              static_cast<unsigned long long>(steps.repeated), static_cast<unsigned long long>(steps.side));
  EXPECT_EQ(steps.error, "");
  EXPECT_GE(static_cast<double>(steps.distinct), 0.999 * static_cast<double>(ended)) << steps.distinct << " of " << ended;
  EXPECT_LE(steps.distinct, ended + 1);
  EXPECT_EQ(steps.repeated, 0u) << "a span the file held is not recovered again";
  EXPECT_GT(steps.side, 0u);
  const strobe::test::Run v = strobe::test::run_tool({"validate", out});
  EXPECT_EQ(v.exit_status, 0) << v.describe();
  EXPECT_NE(v.out.find("recovered by strobe recover"), std::string::npos) << v.out;
}

TEST(DeferredKillRecovery, KilledEarlyAndLate) {
  STROBE_SKIP_CRASH;
  expect_recovered_after_kill(30000);
  expect_recovered_after_kill(200000);
}

// ---- the tool on a file of the log ----

void workload() {
  strobe::set_thread_name("tool-main");
  for (int t = 0; t < 20; ++t) {
    auto root = strobe::trace("request", {{"n", t}});
    for (int i = 0; i < 50; ++i) {
      STROBE_SPAN(step, "step", strobe::Kind::step);
      if (i % 10 == 0) step.attr("i", i);
      if (i == 7) step.fail("bad step");
      {
        auto inner = strobe::span("inner", strobe::Kind::tool);
      }
    }
    std::thread([ctx = root.context()] {
      strobe::set_thread_name("helper");
      strobe::ContextScope scope(ctx);
      auto s = strobe::span("helper_work", strobe::Kind::retrieval);
    }).join();
  }
}

std::string record(const strobe::test::TempDir& dir, const std::string& name, bool deferred) {
  const std::string path = dir / name;
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait,
                             .service_name = "tool-test",
                             .sinks = {file},
                             .defer_assembly = deferred});
  workload();
  return path;
}

// The lines of `text` that hold counts, times removed (a number followed by a unit of
// time, a date), for comparing what two files of the same workload say.
std::string without_times(const std::string& text) {
  static const std::regex time(R"([0-9]+(\.[0-9]+)?\s?(ns|us|µs|ms|s)\b)");
  static const std::regex stamp(R"([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+Z?)");
  return std::regex_replace(std::regex_replace(text, stamp, "<date>"), time, "<t>");
}

std::string line_with(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key);
  if (at == std::string::npos) return "";
  const std::size_t end = text.find('\n', at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

TEST(DeferredTool, EveryCommandReadsTheLogAsTheAssembledFile) {
  strobe::test::TempDir dir;
  const std::string assembled = record(dir, "assembled.strobe", false);
  const std::string deferred = record(dir, "deferred.strobe", true);
  ASSERT_TRUE(strobe::serialize::Reader(deferred).info().records);
  ASSERT_FALSE(strobe::serialize::Reader(assembled).info().records);

  const strobe::test::Run va = strobe::test::run_tool({"validate", assembled});
  const strobe::test::Run vd = strobe::test::run_tool({"validate", deferred});
  EXPECT_EQ(va.exit_status, 0) << va.describe();
  EXPECT_EQ(vd.exit_status, 0) << vd.describe();

  const strobe::test::Run ia = strobe::test::run_tool({"info", assembled});
  const strobe::test::Run id = strobe::test::run_tool({"info", deferred});
  ASSERT_EQ(ia.exit_status, 0) << ia.describe();
  ASSERT_EQ(id.exit_status, 0) << id.describe();
  for (const char* key : {"traces", "spans"}) {
    EXPECT_NE(line_with(ia.out, key), "") << ia.out;
    EXPECT_EQ(without_times(line_with(id.out, key)), without_times(line_with(ia.out, key))) << id.out << "\n" << ia.out;
  }

  const strobe::test::Run sa = strobe::test::run_tool({"stats", assembled});
  const strobe::test::Run sd = strobe::test::run_tool({"stats", deferred});
  ASSERT_EQ(sa.exit_status, 0) << sa.describe();
  ASSERT_EQ(sd.exit_status, 0) << sd.describe();
  // The span names and their counts (the first number after each name).
  for (const char* name : {"request", "step", "inner", "helper_work"}) {
    const std::string a = line_with(sa.out, name), d = line_with(sd.out, name);
    EXPECT_NE(a, "") << sa.out;
    std::smatch ma, md;
    static const std::regex count(R"(\s([0-9]+)\s)");
    ASSERT_TRUE(std::regex_search(a, ma, count)) << a;
    ASSERT_TRUE(std::regex_search(d, md, count)) << d;
    EXPECT_EQ(md[1].str(), ma[1].str()) << name << ":\n" << sd.out << "\n" << sa.out;
  }

  const strobe::test::Run ta = strobe::test::run_tool({"tree", assembled, "--max-children", "3"});
  const strobe::test::Run td = strobe::test::run_tool({"tree", deferred, "--max-children", "3"});
  ASSERT_EQ(ta.exit_status, 0) << ta.describe();
  ASSERT_EQ(td.exit_status, 0) << td.describe();
  EXPECT_EQ(without_times(td.out).size() > 0, true);
  auto count_of = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  for (const char* name : {"request", "step", "inner", "helper_work", "bad step", "helper"})
    EXPECT_EQ(count_of(td.out, name), count_of(ta.out, name)) << name;

  const std::string ca = dir / "a.json", cd = dir / "d.json";
  const strobe::test::Run ea = strobe::test::run_tool({"export", assembled, "--format", "chrome", "-o", ca});
  const strobe::test::Run ed = strobe::test::run_tool({"export", deferred, "--format", "chrome", "-o", cd});
  ASSERT_EQ(ea.exit_status, 0) << ea.describe();
  ASSERT_EQ(ed.exit_status, 0) << ed.describe();
  const std::string ja = strobe::test::read_text(ca), jd = strobe::test::read_text(cd);
  for (const char* name : {"\"request\"", "\"step\"", "\"inner\"", "\"helper_work\"", "\"helper\"", "\"tool-main\""})
    EXPECT_EQ(count_of(jd, name), count_of(ja, name)) << name;
  EXPECT_EQ(count_of(jd, "\"ph\":\"X\""), count_of(ja, "\"ph\":\"X\""));
}

}  // namespace
