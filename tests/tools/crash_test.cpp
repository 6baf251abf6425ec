// The crash flush: a child process records at full rate into a FileSink, counting each
// span it ended in memory it shares with the test (a durable side counter), and then
// crashes — a null dereference, raise(SIGSEGV), abort(), an exception escaping a noexcept
// function (std::terminate). The file must hold at least 99.9% of the spans that had
// ended, end with an intact end frame that records the crash, and flag the span that was
// running on the crashing thread. The process still dies of its signal, and a handler
// the program had installed before still runs.
//
// And what no handler sees: the same child, recording with Config::recovery_dir, killed
// with SIGKILL at a few moments; `strobe recover` must rebuild a file that holds at least
// 99.9% of the spans that had ended, passes validate and says it was recovered.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>

#include "strobe/serialize/reader.hpp"
#include "strobe/serialize/writer.hpp"
#include "strobe/strobe.hpp"
#include "run_tool.hpp"

namespace {

enum class How { null_dereference, raise_segv, abort, terminate };

struct Shared {
  std::atomic<std::uint64_t> ended{0};
  std::atomic<int> previous_handler_ran{0};
};
Shared* g_shared = nullptr;

void previous_handler(int) { g_shared->previous_handler_ran.store(1); }

int* volatile g_null = nullptr;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wterminate"
void thrower() noexcept { throw std::runtime_error("out of cheese"); }
#pragma GCC diagnostic pop

[[noreturn]] void child(const std::string& path, How how, bool with_previous_handler, bool crash_flush,
                        bool recovery = false) {
  if (with_previous_handler) std::signal(SIGSEGV, previous_handler);
  {
    auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
    // The wait policy, so that every span ended is recorded (the drainer may lag a loop at
    // full rate): what the crash flush must save is then all in the rings or on its way.
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait,
                               .service_name = "crasher",
                               .sinks = {file},
                               .crash_flush = crash_flush,
                               .recovery_dir = recovery ? path + ".recovery" : std::string(),
                               .recovery_journal_records = std::size_t{1} << 21});
    auto request = strobe::trace("request");
    for (std::uint64_t i = 0; i < 300000; ++i) {
      {
        auto step = strobe::span("step", strobe::Kind::step);
        step.attr("i", static_cast<std::int64_t>(i));
      }
      g_shared->ended.store(i + 1, std::memory_order_release);
    }
    auto site = strobe::span("crash_site", strobe::Kind::tool);
    switch (how) {
      case How::null_dereference: *g_null = 42; break;
      case How::raise_segv: std::raise(SIGSEGV); break;
      case How::abort: std::abort();
      case How::terminate: thrower(); break;
    }
    // The program's handler returned: not a crash after all. Recording goes on, and the
    // Recorder ends as usual.
    auto after = strobe::span("after_the_signal", strobe::Kind::step);
  }
  std::_Exit(3);
}

struct Outcome {
  std::string validate, info, tree;  // what the tool says of the file
  int validate_status = -1;
  int status = 0;
  std::uint64_t ended = 0;
  std::uint64_t steps = 0;
  bool crash_site_flagged = false;
  std::string crash_site_error;
  strobe::serialize::FileEndInfo end;
  bool ended_cleanly = false;
  bool previous_handler_ran = false;
  int recover_status = -1;
  std::uint64_t recovered_steps = 0;
  strobe::serialize::FileEndInfo recovered_end;
};

Outcome crash(How how, bool with_previous_handler = false, bool crash_flush = true, bool recovery = false) {
  strobe::test::TempDir dir;
  const std::string path = dir / "crash.strobe";
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(mem, MAP_FAILED);
  g_shared = new (mem) Shared;
  const pid_t pid = ::fork();
  if (pid == 0) child(path, how, with_previous_handler, crash_flush, recovery);
  Outcome o;
  EXPECT_EQ(::waitpid(pid, &o.status, 0), pid);
  o.ended = g_shared->ended.load();
  o.previous_handler_ran = g_shared->previous_handler_ran.load() != 0;
  ::munmap(mem, sizeof(Shared));
  if (!std::filesystem::exists(path) || std::filesystem::file_size(path) == 0) return o;
  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView batch;
  while (reader.next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i)
      for (strobe::serialize::SpanView s : batch.trace(i).spans()) {
        if (s.name() == "step" && s.status() == strobe::Status::ok) ++o.steps;
        if (s.name() == "crash_site") {
          o.crash_site_flagged = (s.flags() & strobe::kSpanCrashed) != 0;
          o.crash_site_error = s.to_span_data().error_message;
        }
      }
  if (crash_flush) EXPECT_FALSE(reader.error()) << reader.error()->what();
  o.ended_cleanly = reader.ended_cleanly();
  o.end = reader.end_info();
  strobe::test::Run r = strobe::test::run_tool({"validate", path});
  o.validate = r.out;
  o.validate_status = r.exit_status;
  o.info = strobe::test::run_tool({"info", path}).out;
  o.tree = strobe::test::run_tool({"tree", path, "--max-children", "2"}).out;  // the last child of each part too
  if (recovery) {
    // The directory the crash flush left: recovering adds nothing new and keeps the crash.
    const std::string out = dir / "crash.recovered.strobe";
    strobe::test::Run r = strobe::test::run_tool({"recover", path, "-o", out});
    o.recover_status = r.exit_status;
    strobe::serialize::Reader again(out);
    std::uint64_t steps = 0;
    while (again.next(batch))
      for (std::size_t i = 0; i < batch.trace_count(); ++i)
        for (strobe::serialize::SpanView s : batch.trace(i).spans())
          steps += s.name() == "step" && s.status() == strobe::Status::ok;
    o.recovered_steps = steps;
    o.recovered_end = again.end_info();
  }
  return o;
}

void expect_saved(const Outcome& o, int signal) {
  EXPECT_TRUE(WIFSIGNALED(o.status) && WTERMSIG(o.status) == signal) << "status " << o.status;
  EXPECT_EQ(o.ended, 300000u);
  EXPECT_GE(static_cast<double>(o.steps), 0.999 * static_cast<double>(o.ended)) << o.steps << " of " << o.ended;
  EXPECT_TRUE(o.ended_cleanly) << "the crash flush writes the end frame";
  EXPECT_EQ(o.end.crash_signal, signal);
  EXPECT_TRUE(o.crash_site_flagged) << "the span running on the crashing thread";
  EXPECT_EQ(o.validate_status, 0) << o.validate;
  EXPECT_NE(o.validate.find("the process crashed"), std::string::npos) << o.validate;
  EXPECT_NE(o.info.find("ended       by a CRASH"), std::string::npos) << o.info;
  EXPECT_NE(o.tree.find("note: the process crashed"), std::string::npos) << o.tree;
  EXPECT_NE(o.tree.find("[crashed here]"), std::string::npos) << o.tree;
}

TEST(CrashFlush, ANullDereferenceLosesNothingThatEnded) {
  STROBE_SKIP_CRASH;
  const Outcome o = crash(How::null_dereference);
  expect_saved(o, SIGSEGV);
  EXPECT_EQ(o.end.crash_address, 0u) << "the faulting address: null";
  EXPECT_EQ(o.crash_site_error.rfind("crashed here: SIGSEGV", 0), 0u) << o.crash_site_error;
}

TEST(CrashFlush, RaiseAndAbortLoseNothingThatEnded) {
  STROBE_SKIP_CRASH;
  expect_saved(crash(How::raise_segv), SIGSEGV);
  const Outcome a = crash(How::abort);
  expect_saved(a, SIGABRT);
  EXPECT_EQ(a.crash_site_error, "crashed here: SIGABRT");
}

// With the recovery directory too: the crash flush still writes the file whole, and
// strobe recover then finds nothing more (no span twice) and keeps the crash's mark.
TEST(CrashFlush, WithRecoveryOnRecoverAddsNothingAndKeepsTheCrash) {
  STROBE_SKIP_CRASH;
  const Outcome o = crash(How::raise_segv, false, true, /*recovery=*/true);
  expect_saved(o, SIGSEGV);
  EXPECT_EQ(o.recover_status, 0);
  EXPECT_EQ(o.recovered_steps, o.steps);
  EXPECT_EQ(o.recovered_end.crash_signal, SIGSEGV);
  EXPECT_TRUE(o.recovered_end.recovered);
}

TEST(CrashFlush, StdTerminateSaysWhatEscaped) {
  STROBE_SKIP_CRASH;
  const Outcome o = crash(How::terminate);
  expect_saved(o, SIGABRT);
  EXPECT_EQ(o.crash_site_error, "crashed here: std::terminate: out of cheese");
}

// A handler the program had before the Recorder started gets the signal alone (it may
// recover, as runtimes that handle their own faults do): no flush, and when it returns
// the program records on and ends cleanly.
TEST(CrashFlush, AHandlerTheProgramHadRunsAloneAndRecordingGoesOn) {
  STROBE_SKIP_CRASH;
  const Outcome o = crash(How::raise_segv, /*with_previous_handler=*/true);
  EXPECT_TRUE(o.previous_handler_ran);
  EXPECT_TRUE(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 3) << "status " << o.status;
  EXPECT_TRUE(o.ended_cleanly);
  EXPECT_EQ(o.end.crash_signal, 0) << "no crash was flushed";
  EXPECT_FALSE(o.crash_site_flagged);
  EXPECT_EQ(o.steps, o.ended);
  EXPECT_NE(o.tree.find("after_the_signal"), std::string::npos);
}

// Without the crash flush (Config::crash_flush = false) the same crash leaves the file
// without its end frame and short of what ended: what the tests above guard against.
TEST(CrashFlush, WithoutItTheLastSpansAreLost) {
  STROBE_SKIP_CRASH;
  const Outcome o = crash(How::null_dereference, false, /*crash_flush=*/false);
  EXPECT_TRUE(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGSEGV);
  EXPECT_FALSE(o.ended_cleanly);
  EXPECT_LT(o.steps, o.ended);
}

// ---- SIGKILL and recovery ----

enum class Shape { endless_root, root_every_1000 };

[[noreturn]] void kill_child(const std::string& path, Shape shape, bool recovery, std::size_t journal) {
  {
    auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
    // The wait policy keeps every span (a full ring or sink queue waits): what was ended
    // is then in the file, the sink queue, the assembler or a ring. The journal must hold
    // what the last three hold unwritten: a queue of 2^16 spans (three records each), a
    // FileSink batch and a part of 16,384 spans each, a ring: ~330,000 records.
    strobe::Config config{.overflow = strobe::OverflowPolicy::wait,
                          .sink_queue_spans = std::size_t{1} << 16,
                          .service_name = "victim",
                          .sinks = {file}};
    if (recovery) {
      config.recovery_dir = path + ".recovery";
      config.recovery_journal_records = journal;
    }
    strobe::Recorder recorder(std::move(config));
    // A second thread with spans of its own, so recovery reads more than one ring.
    std::thread side([] {
      strobe::set_thread_name("side");
      auto root = strobe::trace("side");
      for (;;) {
        auto s = strobe::span("side_step", strobe::Kind::step);
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    });
    side.detach();
    std::optional<strobe::Span> root;
    for (std::uint64_t i = 0;; ++i) {
      if (shape == Shape::root_every_1000 ? i % 1000 == 0 : i == 0) {
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

struct Killed {
  std::uint64_t ended = 0;       // steps ended before the kill
  std::uint64_t in_file = 0;     // steps the file held as the process left it
  std::uint64_t recovered = 0;   // steps the recovered file holds (distinct span ids)
  std::string recover, validate, info, tree;
  int recover_status = -1, validate_status = -1;
  bool marked_recovered = false;
  std::uint64_t repeated = 0;    // spans the recovered file holds twice
  bool html_says_recovered = false;
};

std::uint64_t count_steps(const std::string& path, bool& recovered, std::uint64_t* repeated = nullptr) {
  std::unordered_set<std::uint64_t> ids;
  // Killed before the Recorder's constructor wrote the header (a kill right after the
  // process started), the file is empty: it holds nothing, and recover must do without it.
  std::error_code ec;
  if (!std::filesystem::exists(path) || std::filesystem::file_size(path, ec) == 0) return 0;
  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView batch;
  while (reader.next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i)
      for (strobe::serialize::SpanView s : batch.trace(i).spans())
        if (s.name() == "step" && s.status() == strobe::Status::ok && !ids.insert(s.span_id()).second && repeated)
          ++*repeated;
  recovered = reader.ended_cleanly() && reader.end_info().recovered;
  return ids.size();
}

// journal: Config::recovery_journal_records. pages: also ask info, tree and html.
Killed kill_at(std::uint64_t spans, Shape shape, bool recovery = true, std::size_t journal = std::size_t{1} << 21,
               bool pages = true) {
  strobe::test::TempDir dir;
  const std::string path = dir / "killed.strobe";
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(mem, MAP_FAILED);
  g_shared = new (mem) Shared;
  const pid_t pid = ::fork();
  if (pid == 0) kill_child(path, shape, recovery, journal);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (g_shared->ended.load(std::memory_order_acquire) < spans && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  ::kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  Killed k;
  k.ended = g_shared->ended.load();
  ::munmap(mem, sizeof(Shared));
  bool unused = false;
  k.in_file = count_steps(path, unused);
  if (!recovery) return k;
  const std::string out = dir / "killed.recovered.strobe";
  strobe::test::Run r = strobe::test::run_tool({"recover", path});
  k.recover = r.out + r.err;
  k.recover_status = r.exit_status;
  k.recovered = count_steps(out, k.marked_recovered, &k.repeated);
  r = strobe::test::run_tool({"validate", out});
  k.validate = r.out + r.err;
  k.validate_status = r.exit_status;
  if (!pages) return k;
  k.info = strobe::test::run_tool({"info", out}).out;
  k.tree = strobe::test::run_tool({"tree", out, "--limit", "1", "--max-children", "2"}).out;
  const std::string page = dir / "killed.html";
  if (strobe::test::run_tool({"html", out, "-o", page}).exit_status == 0) {
    std::ifstream in(page);
    const std::string html{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    k.html_says_recovered = html.find("\"recovered\":true") != std::string::npos;
  }
  return k;
}

void expect_recovered(const Killed& k, bool pages = true) {
  std::printf("killed after %llu steps ended: the file held %llu, the recovered file %llu\n",
              static_cast<unsigned long long>(k.ended), static_cast<unsigned long long>(k.in_file),
              static_cast<unsigned long long>(k.recovered));
  EXPECT_EQ(k.recover_status, 0) << k.recover;
  EXPECT_GE(static_cast<double>(k.recovered), 0.999 * static_cast<double>(k.ended))
      << k.recovered << " of " << k.ended << " (the file alone held " << k.in_file << "): " << k.recover;
  EXPECT_LE(k.recovered, k.ended + 1) << "a span ended between its end and the counter at most";
  EXPECT_EQ(k.repeated, 0u) << "a span the file held is not recovered again";
  // What recovery is for: the file as the killed process left it lacks what was in flight.
  EXPECT_LT(static_cast<double>(k.in_file), 0.999 * static_cast<double>(k.ended)) << k.in_file << " of " << k.ended;
  EXPECT_EQ(k.validate_status, 0) << k.validate;
  EXPECT_NE(k.validate.find("recovered by strobe recover"), std::string::npos) << k.validate;
  EXPECT_TRUE(k.marked_recovered);
  if (!pages) return;
  EXPECT_NE(k.info.find("ended       RECOVERED"), std::string::npos) << k.info;
  EXPECT_NE(k.tree.find("note: the process died without closing its file"), std::string::npos) << k.tree;
  EXPECT_TRUE(k.html_says_recovered) << "the HTML page's loss object";
}

TEST(KillRecovery, AnEndlessRootKilledEarlyAndLate) {
  STROBE_SKIP_CRASH;
  expect_recovered(kill_at(60000, Shape::endless_root));
  // Past the journal's capacity (2^19 records, three a span): it has wrapped, and still
  // covers what can be unwritten.
  expect_recovered(kill_at(400000, Shape::endless_root, true, std::size_t{1} << 19, false), false);
}

TEST(KillRecovery, ManyTracesKilledMidway) {
  STROBE_SKIP_CRASH;
  expect_recovered(kill_at(150000, Shape::root_every_1000, true, std::size_t{1} << 19, false), false);
}

// Without the recovery directory a SIGKILL loses what was in flight: what the test above
// guards against.
TEST(KillRecovery, WithoutItTheLastSpansAreLost) {
  STROBE_SKIP_CRASH;
  const Killed k = kill_at(250000, Shape::endless_root, /*recovery=*/false);
  std::printf("killed after %llu steps ended, no recovery: the file held %llu\n",
              static_cast<unsigned long long>(k.ended), static_cast<unsigned long long>(k.in_file));
  EXPECT_LT(static_cast<double>(k.in_file), 0.999 * static_cast<double>(k.ended)) << k.in_file << " of " << k.ended;
}

}  // namespace
