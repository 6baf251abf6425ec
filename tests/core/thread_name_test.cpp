// Thread names: a thread named with strobe::set_thread_name() has that name in every
// trace its spans are in (named before its first span or after, across recorders, after
// it exited); a thread never named has its OS name; "" goes back to the OS name; a long
// name is cut at 64 bytes between UTF-8 sequences; a span ended on another thread brings
// that thread's name too; under thread churn a live thread keeps its name.

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "strobe/strobe.hpp"

namespace {

using strobe::AssembledTrace;
using strobe::Kind;

std::uint64_t os_thread() { return static_cast<std::uint64_t>(::syscall(SYS_gettid)); }

std::string os_name() {
  char buf[64] = {};
  ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
  return buf;
}

std::shared_ptr<strobe::MemorySink> memory() { return std::make_shared<strobe::MemorySink>(); }

// The trace whose root is named `root`.
const AssembledTrace* find(const std::vector<AssembledTrace>& traces, const std::string& root) {
  for (const AssembledTrace& t : traces)
    if (t.root_name == root) return &t;
  return nullptr;
}

TEST(ThreadName, ANamedThreadsSpansCarryItsName) {
  auto sink = memory();
  std::uint64_t named = 0, unnamed = 0;
  std::string unnamed_os;
  {
    strobe::Recorder recorder({.sinks = {sink}});
    std::thread([&] {
      strobe::set_thread_name("tool-pool-1");  // before its first span
      named = os_thread();
      auto root = strobe::trace("named");
      auto child = strobe::span("work", Kind::tool);
    }).join();
    std::thread([&] {
      ::pthread_setname_np(::pthread_self(), "os-named");
      unnamed = os_thread();
      unnamed_os = os_name();
      auto root = strobe::trace("unnamed");
    }).join();
    recorder.flush();
  }
  const auto traces = sink->traces();
  const AssembledTrace* a = find(traces, "named");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->spans.size(), 2u);
  EXPECT_EQ(a->spans[1].thread_id, named);
  EXPECT_EQ(a->thread_name(named), "tool-pool-1");
  ASSERT_EQ(a->thread_names.size(), 1u);
  const AssembledTrace* b = find(traces, "unnamed");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(unnamed_os, "os-named");
  EXPECT_EQ(b->thread_name(unnamed), "os-named") << "a thread never named has its OS name";
  EXPECT_EQ(b->thread_name(named), "") << "only the threads of the trace's spans";
}

TEST(ThreadName, RenamingHoldsForLaterTracesAndEmptyGoesBackToTheOsName) {
  auto sink = memory();
  std::uint64_t tid = 0;
  std::string os;
  {
    strobe::Recorder recorder({.sinks = {sink}});
    std::thread([&] {
      ::pthread_setname_np(::pthread_self(), "os-name");
      tid = os_thread();
      os = os_name();
      { auto t = strobe::trace("first"); }
      recorder.flush();
      strobe::set_thread_name("renamed");  // after attaching
      { auto t = strobe::trace("second"); }
      recorder.flush();
      strobe::set_thread_name("");
      { auto t = strobe::trace("third"); }
      recorder.flush();
    }).join();
  }
  const auto traces = sink->traces();
  ASSERT_NE(find(traces, "first"), nullptr);
  ASSERT_NE(find(traces, "second"), nullptr);
  ASSERT_NE(find(traces, "third"), nullptr);
  EXPECT_EQ(find(traces, "first")->thread_name(tid), os);
  EXPECT_EQ(find(traces, "second")->thread_name(tid), "renamed");
  EXPECT_EQ(find(traces, "third")->thread_name(tid), os);
}

TEST(ThreadName, SpanEndedOnAnotherThreadNamesBothThreads) {
  auto sink = memory();
  std::uint64_t begin_thread = 0, end_thread = 0;
  {
    strobe::Recorder recorder({.sinks = {sink}});
    strobe::set_thread_name("starter");
    begin_thread = os_thread();
    auto root = strobe::trace("handoff");
    strobe::Span moved = strobe::start_span(STROBE_NAME("moved"), Kind::step);
    std::thread([&] {
      strobe::set_thread_name("finisher");
      end_thread = os_thread();
      moved.finish();
    }).join();
    root.finish();
    recorder.flush();
    strobe::set_thread_name("");
  }
  const auto traces = sink->traces();
  const AssembledTrace* t = find(traces, "handoff");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->spans.size(), 2u);
  EXPECT_EQ(t->spans[1].end_thread_id, end_thread);
  EXPECT_EQ(t->thread_name(begin_thread), "starter");
  EXPECT_EQ(t->thread_name(end_thread), "finisher");
}

TEST(ThreadName, NameOutlivesTheThreadAndHoldsAcrossRecorders) {
  std::uint64_t worker = 0;
  auto first = memory();
  {
    strobe::Recorder recorder({.sinks = {first}});
    auto root = strobe::trace("outlived");
    const strobe::Context ctx = strobe::current();
    std::thread([&] {
      strobe::set_thread_name("short-lived");
      worker = os_thread();
      strobe::ContextScope scope(ctx);
      auto s = strobe::span("work", Kind::tool);
    }).join();  // exited (its ring retired and recycled) before the trace closes
    root.finish();
    recorder.flush();
  }
  const auto first_traces = first->traces();  // a copy: find() points into it
  const AssembledTrace* t = find(first_traces, "outlived");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->thread_name(worker), "short-lived");

  strobe::set_thread_name("main-thread");
  const std::uint64_t me = os_thread();
  for (int round = 0; round < 2; ++round) {
    auto sink = memory();
    {
      strobe::Recorder recorder({.sinks = {sink}});
      { auto r = strobe::trace("again"); }
      recorder.flush();
    }
    ASSERT_EQ(sink->traces().size(), 1u);
    EXPECT_EQ(sink->traces()[0].thread_name(me), "main-thread") << "recorder " << round;
  }
  strobe::set_thread_name("");
}

TEST(ThreadName, LongNamesAreCutBetweenUtf8Sequences) {
  auto sink = memory();
  // 62 ASCII bytes, then "é" (2 bytes) and "€" (3 bytes): 64 bytes end after "é".
  const std::string name = std::string(62, 'n') + "\xC3\xA9" + "\xE2\x82\xAC" + "tail";
  // 63 ASCII bytes, then "€": it would straddle byte 64, so it goes whole.
  const std::string straddling = std::string(63, 's') + "\xE2\x82\xAC";
  std::uint64_t a = 0, b = 0;
  {
    strobe::Recorder recorder({.sinks = {sink}});
    std::thread([&] {
      strobe::set_thread_name(name);
      a = os_thread();
      auto t = strobe::trace("long");
    }).join();
    std::thread([&] {
      strobe::set_thread_name(straddling);
      b = os_thread();
      auto t = strobe::trace("straddling");
    }).join();
    recorder.flush();
  }
  const auto traces = sink->traces();
  ASSERT_NE(find(traces, "long"), nullptr);
  ASSERT_NE(find(traces, "straddling"), nullptr);
  EXPECT_EQ(find(traces, "long")->thread_name(a), std::string(62, 'n') + "\xC3\xA9");
  EXPECT_EQ(find(traces, "straddling")->thread_name(b), std::string(63, 's'));
}

// Thread churn: the drainer forgets the names of exited threads once 4096 more have
// exited (bounded memory), never the name of a thread still running, and names each
// short-lived thread's trace while it is held.
TEST(ThreadName, ChurnKeepsTheNamesOfLiveThreads) {
  constexpr int kWaves = 42, kPerWave = 100;  // past the 4096 exited names kept
  auto sink = memory();
  const std::uint64_t me = os_thread();
  std::vector<std::uint64_t> tids(kWaves * kPerWave);
  {
    strobe::Recorder recorder({.sinks = {sink}});
    strobe::set_thread_name("main-live");
    { auto t = strobe::trace("before"); }
    for (int wave = 0; wave < kWaves; ++wave) {
      std::vector<std::thread> threads;
      for (int i = 0; i < kPerWave; ++i) {
        threads.emplace_back([&, k = wave * kPerWave + i] {
          strobe::set_thread_name("gone-" + std::to_string(k));
          tids[k] = os_thread();
          auto t = strobe::trace("churn", {{"k", k}});
        });
      }
      for (auto& t : threads) t.join();
    }
    recorder.flush();
    { auto t = strobe::trace("after"); }
    recorder.flush();
    strobe::set_thread_name("");
  }
  const auto traces = sink->traces();
  ASSERT_NE(find(traces, "after"), nullptr);
  EXPECT_EQ(find(traces, "after")->thread_name(me), "main-live");
  std::size_t churn = 0, named = 0;
  for (const AssembledTrace& t : traces) {
    if (t.root_name != "churn") continue;
    ++churn;
    const std::int64_t k = t.spans[0].attrs[0].value.i;
    named += t.thread_name(tids[static_cast<std::size_t>(k)]) == "gone-" + std::to_string(k);
  }
  EXPECT_EQ(churn, std::size_t{kWaves * kPerWave});
  EXPECT_EQ(named, churn) << "each trace was handed over while its thread's name was held";
}

}  // namespace
