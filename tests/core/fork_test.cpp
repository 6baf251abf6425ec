// fork() while recording: the child has only the forking thread (no drainer, no sink
// thread), so recording is off in it for good. Nothing in the child may wait for threads
// that are not there: spans, a full ring under the wait policy, flush(), stats() and the
// Recorder's destruction all return; the parent goes on recording as before.

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "strobe/strobe.hpp"

namespace {

// The child's exit status, or -1 when it was still running after `limit` (then killed).
int wait_for(pid_t child, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, &status, 0);
  return -1;
}

// Forks while other threads record; the child records, ends a span begun before the
// fork, flushes, reads the stats and destroys its Recorder, then exits 0 (or a code
// naming the step that went wrong).
void fork_while_recording(strobe::OverflowPolicy policy) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  config.overflow = policy;
  config.ring_capacity = 1024;  // the child fills its ring many times over
  auto recorder = std::make_unique<strobe::Recorder>(config);

  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i)
    busy.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        auto s = strobe::span("parent.busy");
        s.attr("i", 1);
      }
    });
  auto before = strobe::span("before.fork", strobe::Kind::agent);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  const pid_t child = ::fork();
  if (child == 0) {
    for (int i = 0; i < 100000; ++i) {
      auto s = strobe::span("child.span");
      s.attr("i", i);
      if (s.recording()) ::_exit(10);  // recording must be off in the child
    }
    before.finish();
    recorder->flush();
    if (recorder->stats().spans_recorded > 1000000000u) ::_exit(11);
    if (strobe::Recorder::active()) ::_exit(12);
    recorder.reset();  // as when main returns
    try {
      strobe::Recorder again(config);
      ::_exit(13);  // a second recorder cannot start in the child
    } catch (const strobe::ConfigError&) {
    }
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  EXPECT_EQ(wait_for(child, std::chrono::seconds(30)), 0);

  // The parent is untouched: it records and assembles as before.
  stop = true;
  for (auto& t : busy) t.join();
  before.finish();
  { auto after = strobe::span("after.fork"); }
  recorder->flush();
  bool saw_after = false;
  for (const auto& t : sink->traces())
    if (t.root_name == "after.fork") saw_after = true;
  EXPECT_TRUE(saw_after);
  EXPECT_TRUE(strobe::Recorder::active());
}

#if defined(__SANITIZE_THREAD__)
#define STROBE_SKIP_FORK GTEST_SKIP() << "ThreadSanitizer does not support fork() with threads running"
#else
#define STROBE_SKIP_FORK (void)0
#endif

TEST(Fork, ChildOfARecordingProcessUnderDropNeverHangs) {
  STROBE_SKIP_FORK;
  fork_while_recording(strobe::OverflowPolicy::drop);
}

TEST(Fork, ChildOfARecordingProcessUnderWaitNeverHangs) {
  STROBE_SKIP_FORK;
  fork_while_recording(strobe::OverflowPolicy::wait);
}

}  // namespace
