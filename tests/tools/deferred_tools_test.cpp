// Deferred assembly (Assembly::deferred) where the process does not end well, and the
// tool on the files it leaves:
//
// - a child recording with the log into a FileSink crashes (a null dereference, abort):
//   the file must end with the crash recorded, hold the spans that ended before it, and
//   flag the span that was running on the crashing thread;
// - the same child with Config::recovery_dir, killed with SIGKILL: `strobe recover` must
//   rebuild a file that holds what had ended, none of it twice;
// - info, tree, stats, validate and export --format chrome read a file of the log as they
//   read an assembled file of the same workload (the same counts);
// - `strobe assemble` writes a file that every view shows as it shows the log (a crashed
//   log, a damaged one: what precedes the damage), and refuses what it must not overwrite.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include <utility>
#include <vector>

#include "refusing_sink.hpp"
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
                               .assembly = strobe::Assembly::deferred});
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
                               .assembly = strobe::Assembly::deferred});
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

// A run whose writer lost a chunk, left as a SIGKILL leaves it (its file without the end
// frame, its recovery directory): the file says what was lost (its resync), and the file
// strobe recover writes goes on saying it, with the traces after the loss.
TEST(DeferredKillRecovery, TheRecoveredFileSaysWhatTheWriterLost) {
  const strobe::test::TempDir dir;
  const std::string path = dir / "run.strobe", killed = dir / "killed.strobe", out = dir / "killed.recovered.strobe";
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  auto sink = std::make_shared<strobe::test::RefusesOneChunk>(file);
  {
    strobe::Recorder recorder({.sinks = {sink}, .recovery_dir = path + ".recovery"});
    for (const char* name : {"first", "lost", "after", "later"}) {
      {
        auto root = strobe::trace(name);
        { auto s = strobe::span(std::string(name) + "-step", strobe::Kind::step); }
      }
      recorder.flush();
    }
    std::filesystem::copy_file(path, killed);
    std::filesystem::copy(path + ".recovery", killed + ".recovery", std::filesystem::copy_options::recursive);
  }
  ASSERT_GT(sink->refused_spans(), 0u);
  {
    strobe::serialize::Reader before(killed);
    strobe::serialize::BatchView b;
    while (before.next(b)) {
    }
    EXPECT_EQ(before.write_loss().spans, sink->refused_spans());
  }
  const strobe::test::Run r = strobe::test::run_tool({"recover", killed, "-o", out});
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  strobe::serialize::Reader after(out);
  std::vector<std::string> roots;
  strobe::serialize::BatchView b;
  while (after.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) roots.emplace_back(b.trace(i).root_name());
  EXPECT_FALSE(after.error()) << after.error()->what();
  EXPECT_TRUE(after.ended_cleanly());
  EXPECT_TRUE(after.end_info().recovered);
  EXPECT_EQ(after.write_loss().frames, 1u);
  EXPECT_EQ(after.write_loss().spans, sink->refused_spans());
  ASSERT_FALSE(roots.empty());
  EXPECT_EQ(roots.front(), "first");
  EXPECT_NE(std::find(roots.begin(), roots.end(), "later"), roots.end());
  const strobe::test::Run info = strobe::test::run_tool({"info", out});
  EXPECT_NE(info.out.find("failed to write"), std::string::npos) << info.out;
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
                             .assembly = deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process});
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

// ---- strobe assemble ----

// The tool's workload, a parallel group, a root handed over in parts, and a burst that
// overflows the rings (drop policy): drops, placeholders and parts for the views to show.
std::string record_log(const strobe::test::TempDir& dir) {
  const std::string path = dir / "log.strobe";
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  strobe::Recorder recorder({.ring_capacity = 256,
                             .partial_trace_spans = 150,
                             .service_name = "assemble-test",
                             .sinks = {file},
                             .assembly = strobe::Assembly::deferred});
  workload();
  {
    auto fan = strobe::trace("fan-out");
    const strobe::Context ctx = strobe::current();
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w)
      workers.emplace_back([ctx] {
        strobe::ContextScope scope(ctx);
        auto s = strobe::span("pooled", strobe::Kind::retrieval);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the three overlap: a group
      });
    for (auto& w : workers) w.join();
  }
  recorder.flush();
  {
    auto request = strobe::trace("long-request");
    for (int i = 0; i < 600; ++i) {
      STROBE_SPAN(step, "token", strobe::Kind::step);
      if (i % 100 == 0) recorder.flush();
    }
  }
  recorder.flush();
  {
    auto burst = strobe::trace("burst");
    for (int i = 0; i < 20000; ++i) STROBE_SPAN(s, "tick", strobe::Kind::step);
  }
  return path;
}

strobe::test::Run assemble(const std::vector<std::string>& args) {
  std::vector<std::string> all{"assemble"};
  all.insert(all.end(), args.begin(), args.end());
  return strobe::test::run_tool(all);
}

// What `info` says of a file, less the lines that name it or say it is a record log.
std::string info_of(const std::string& path) {
  const strobe::test::Run r = strobe::test::run_tool({"info", path});
  std::string kept;
  for (const std::string& line : strobe::test::split_lines(r.out))
    if (line.rfind("file ", 0) != 0 && line.rfind("contents ", 0) != 0) kept += line + "\n";
  return "exit " + std::to_string(r.exit_status) + "\n" + kept;
}

// Every view of `out` is that of `log`: the tool's outputs, byte for byte (the file's name
// aside), with the same exit status.
void expect_same_views(const strobe::test::TempDir& dir, const std::string& log, const std::string& out) {
  EXPECT_EQ(info_of(out), info_of(log));
  const std::vector<std::vector<std::string>> views = {
      {"tree"}, {"tree", "--max-children", "3"}, {"stats"}, {"stats", "--json"}, {"stats", "--by", "kind"}};
  for (const auto& view : views) {
    std::vector<std::string> a = view, b = view;
    a.push_back(out);
    b.push_back(log);
    const strobe::test::Run ra = strobe::test::run_tool(a), rb = strobe::test::run_tool(b);
    EXPECT_EQ(ra.exit_status, rb.exit_status) << view[0] << ": " << ra.describe() << rb.describe();
    EXPECT_EQ(ra.out, rb.out) << view[0] << ":\n" << strobe::test::line_diff(rb.out, ra.out);
  }
  for (const char* format : {"chrome", "jsonl", "otlp"}) {
    const std::string ea = dir / (std::string("out.") + format), eb = dir / (std::string("log.") + format);
    const strobe::test::Run ra = strobe::test::run_tool({"export", "--format", format, out, "-o", ea});
    const strobe::test::Run rb = strobe::test::run_tool({"export", "--format", format, log, "-o", eb});
    EXPECT_EQ(ra.exit_status, rb.exit_status) << format << ": " << ra.describe() << rb.describe();
    EXPECT_EQ(strobe::test::read_text(ea), strobe::test::read_text(eb)) << format;
  }
  const strobe::test::Run va = strobe::test::run_tool({"validate", out}), vb = strobe::test::run_tool({"validate", log});
  EXPECT_EQ(va.exit_status, vb.exit_status) << va.describe() << vb.describe();
  ASSERT_EQ(va.out.rfind(out, 0), 0u) << va.out;
  ASSERT_EQ(vb.out.rfind(log, 0), 0u) << vb.out;
  EXPECT_EQ(va.out.substr(out.size()), vb.out.substr(log.size()));
}

TEST(DeferredAssemble, TheOutputShowsWhatTheLogShows) {
  strobe::test::TempDir dir;
  const std::string log = record_log(dir), out = dir / "out.strobe";
  const strobe::test::Run r = assemble({log, "-o", out});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("assembled from " + log), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));

  strobe::serialize::Reader reader(out);
  EXPECT_FALSE(reader.info().records) << "an assembled file";
  const strobe::test::Run info = strobe::test::run_tool({"info", out});
  EXPECT_EQ(info.out.find("record log"), std::string::npos) << info.out;
  EXPECT_NE(strobe::test::run_tool({"info", log}).out.find("record log"), std::string::npos);
  // What the views show has what the workload must give them.
  const std::string stats = strobe::test::run_tool({"stats", out}).out;
  EXPECT_NE(stats.find("spans dropped"), std::string::npos) << stats;
  const std::string tree = strobe::test::run_tool({"tree", out, "--max-children", "3"}).out;
  EXPECT_NE(tree.find("\xe2\x80\x96"), std::string::npos) << "a parallel group (‖)\n" << tree;
  EXPECT_NE(tree.find("part 1"), std::string::npos) << tree;
  expect_same_views(dir, log, out);
}

TEST(DeferredAssemble, ACrashedLogKeepsItsCrash) {
  STROBE_SKIP_CRASH;
  strobe::test::TempDir dir;
  const std::string log = dir / "crash.strobe", out = dir / "crash.assembled.strobe";
  g_shared = map_shared();
  const pid_t pid = ::fork();
  if (pid == 0) crash_child(log, How::abort);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::munmap(g_shared, sizeof(Shared));
  const strobe::test::Run r = assemble({log, "-o", out});
  ASSERT_EQ(r.exit_status, 0) << r.describe();
  strobe::serialize::Reader reader(out);
  strobe::serialize::BatchView batch;
  while (reader.next(batch)) {
  }
  EXPECT_TRUE(reader.ended_cleanly());
  EXPECT_EQ(reader.end_info().crash_signal, SIGABRT);
  EXPECT_NE(strobe::test::run_tool({"validate", out}).out.find("the process crashed"), std::string::npos);
  expect_same_views(dir, log, out);
}

// A log cut short or with a flipped bit: the output holds what precedes the damage (what
// every view of the log shows), the command names the damage and exits 4.
TEST(DeferredAssemble, ADamagedLogGivesWhatPrecedesTheDamage) {
  strobe::test::TempDir dir;
  const std::string bytes = strobe::test::read_text(record_log(dir));
  std::string flipped = bytes;
  flipped[bytes.size() * 2 / 3] ^= 0x5a;
  for (const auto& [name, content] : {std::pair<std::string, std::string>{"cut", bytes.substr(0, bytes.size() * 2 / 3)},
                                      {"flipped", flipped}}) {
    const std::string log = dir / (name + ".strobe"), out = dir / (name + ".assembled.strobe");
    strobe::test::write_text(log, content);
    const strobe::test::Run r = assemble({log, "-o", out});
    EXPECT_EQ(r.exit_status, 4) << name << ": " << r.describe();
    ASSERT_EQ(r.err_lines().size(), 1u) << r.describe();
    EXPECT_NE(r.err.find("warning: " + log + ": byte "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(out + " holds what precedes it"), std::string::npos) << r.err;
    ASSERT_TRUE(std::filesystem::exists(out)) << name;
    const strobe::test::Run v = strobe::test::run_tool({"validate", out});
    EXPECT_EQ(v.exit_status, 0) << "the output itself is intact: " << v.describe();
    std::uint64_t spans = 0;
    for (const strobe::AssembledTrace& t : strobe::serialize::read_all(out)) spans += t.spans.size();
    EXPECT_GT(spans, 0u) << name;
    const strobe::test::Run tl = strobe::test::run_tool({"tree", log}), to = strobe::test::run_tool({"tree", out});
    EXPECT_EQ(tl.exit_status, 4);
    EXPECT_EQ(to.exit_status, 0) << to.describe();
    EXPECT_EQ(to.out, tl.out) << name << ": the spans before the damage\n" << strobe::test::line_diff(tl.out, to.out);
  }
}

TEST(DeferredAssemble, RefusesWhatItMustNotWrite) {
  strobe::test::TempDir dir;
  const std::string log = record_log(dir), out = dir / "out.strobe";
  const std::string log_bytes = strobe::test::read_text(log);

  strobe::test::write_text(out, "keep me");
  strobe::test::Run r = assemble({log, "-o", out});
  EXPECT_EQ(r.exit_status, 2) << r.describe();
  EXPECT_NE(r.err.find(out + " exists (--force to overwrite it)"), std::string::npos) << r.err;
  EXPECT_EQ(strobe::test::read_text(out), "keep me");
  r = assemble({log, "-o", out, "--force"});
  EXPECT_EQ(r.exit_status, 0) << r.describe();
  EXPECT_FALSE(strobe::serialize::Reader(out).info().records);

  // The input itself, by its name, by another spelling of it, or as OUT.tmp.
  const std::string tmp_named = dir / "named.strobe.tmp";
  strobe::test::write_text(tmp_named, log_bytes);
  for (const auto& [in, same] : {std::pair<std::string, std::string>{log, log}, {log, dir / "./log.strobe"},
                                 {tmp_named, dir / "named.strobe"}}) {
    r = assemble({in, "-o", same, "--force"});
    EXPECT_EQ(r.exit_status, 2) << same << ": " << r.describe();
    EXPECT_NE(r.err.find("the output must not be the input"), std::string::npos) << r.err;
    EXPECT_EQ(strobe::test::read_text(in), log_bytes);
  }

  // An assembled file: nothing to do, nothing written.
  const std::string again = dir / "again.strobe";
  r = assemble({out, "-o", again});
  EXPECT_EQ(r.exit_status, 2) << r.describe();
  EXPECT_NE(r.err.find("already assembled"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(again));
  EXPECT_FALSE(std::filesystem::exists(again + ".tmp"));

  // Not readable: the input's error, nothing written.
  r = assemble({dir / "missing.strobe", "-o", again});
  EXPECT_EQ(r.exit_status, 3) << r.describe();
  EXPECT_FALSE(std::filesystem::exists(again + ".tmp"));
}

// A write that fails (a directory that does not exist; a file size limit, as a full disk
// would) is an error naming OUT, and leaves neither OUT nor OUT.tmp.
TEST(DeferredAssemble, AFailedWriteLeavesNothingBehind) {
  strobe::test::TempDir dir;
  const std::string log = record_log(dir);
  const std::string nowhere = dir / "no-such-dir/out.strobe";
  strobe::test::Run r = assemble({log, "-o", nowhere});
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_NE(r.err.find("cannot write " + nowhere), std::string::npos) << r.err;

  const std::string out = dir / "limited.strobe";
  // 16 blocks of 512 bytes; SIGXFSZ ignored, so a write past the limit fails with EFBIG.
  r = strobe::test::run_program(
      "sh", {"-c", "trap '' XFSZ; ulimit -f 16; exec \"$0\" assemble \"$1\" -o \"$2\"", strobe::test::tool_path(), log, out});
  EXPECT_EQ(r.exit_status, 5) << r.describe();
  EXPECT_NE(r.err.find("cannot write " + out), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
}

}  // namespace
