// Config::recovery_dir inside one process: threads that come and go record into rings in
// files, the drainer journals, recorders with and without the mode follow each other
// (threads move between heap and file rings), and a clean end leaves nothing behind.
// What the files hold at a moment is read back as strobe recover reads them. Under
// ThreadSanitizer (thread.core.recovery_test) this is the mode's concurrency check.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "recovery.hpp"
#include "strobe/strobe.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

std::size_t ring_files(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) n += e.path().filename().string().rfind("ring-", 0) == 0;
  return n;
}

void churn(int threads, int spans_each) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([t, spans_each] {
      strobe::set_thread_name("worker-" + std::to_string(t));
      auto root = strobe::trace("work");
      for (int i = 0; i < spans_each; ++i) {
        auto s = strobe::span("item", strobe::Kind::step);
        s.attr("i", static_cast<std::int64_t>(i));
        if (i % 100 == 0) s.input("a string long enough to take continuation records in the ring and the journal");
      }
    });
  for (auto& w : workers) w.join();
}

TEST(Recovery, ThreadsComeAndGoAndACleanEndLeavesNothing) {
  strobe::test::TempDir tmp;
  const fs::path dir = tmp.path / "run.strobe.recovery";
  auto sink = std::make_shared<strobe::MemorySink>();
  {
    strobe::Recorder recorder({.ring_capacity = 1024,
                               .overflow = strobe::OverflowPolicy::wait,
                               .sinks = {sink},
                               .recovery_dir = dir.string(),
                               .recovery_journal_records = 1 << 14});
    ASSERT_TRUE(fs::exists(dir / "journal"));
    ASSERT_TRUE(fs::exists(dir / "names"));
    for (int round = 0; round < 3; ++round) churn(3, 2000);
    recorder.flush();
    EXPECT_GE(ring_files(dir), 1u);
    EXPECT_LE(ring_files(dir), 3u + 2u + 1u) << "retired rings are reused or freed with their files";
  }
  EXPECT_FALSE(fs::exists(dir)) << "a clean end removes the directory";
  std::size_t items = 0;
  for (const strobe::AssembledTrace& t : sink->traces())
    for (const strobe::SpanData& s : t.spans) items += s.name == "item" && !(s.flags & strobe::kSpanContinued);
  EXPECT_EQ(items, 3u * 3u * 2000u);
}

TEST(Recovery, RecordersWithAndWithoutTheModeFollowEachOther) {
  strobe::test::TempDir tmp;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ended{0};
  // A thread that records throughout, across recorders: its ring moves between the heap
  // and the files.
  std::thread steady([&] {
    while (!stop.load()) {
      auto s = strobe::span("steady", strobe::Kind::step);
      ended.fetch_add(1);
    }
  });
  for (int i = 0; i < 4; ++i) {
    auto sink = std::make_shared<strobe::MemorySink>();
    strobe::Config config{.ring_capacity = 1024, .sinks = {sink}};
    if (i % 2 == 0) {
      config.recovery_dir = (tmp.path / ("run" + std::to_string(i) + ".recovery")).string();
      config.recovery_journal_records = 1 << 13;
    }
    strobe::Recorder recorder(std::move(config));
    const std::uint64_t before = ended.load();
    while (ended.load() < before + 20000) std::this_thread::yield();
    churn(2, 500);
  }
  stop.store(true);
  steady.join();
  for (int i = 0; i < 4; i += 2) EXPECT_FALSE(fs::exists(tmp.path / ("run" + std::to_string(i) + ".recovery")));
}

// The directory of a live recorder, read as strobe recover reads it: the journal's
// batches and the rings' unread records parse, and the names resolve.
TEST(Recovery, ALiveDirectoryReadsBack) {
  strobe::test::TempDir tmp;
  const fs::path dir = tmp.path / "live.recovery";
  strobe::Recorder recorder({.ring_capacity = 1024,
                             .overflow = strobe::OverflowPolicy::wait,
                             .recovery_dir = dir.string(),
                             .recovery_journal_records = 1 << 14});
  churn(2, 3000);
  recorder.flush();
  const strobe::detail::RecoveredRun run = strobe::detail::read_recovery(dir.string());
  EXPECT_TRUE(run.warnings.empty()) << run.warnings.front();
  EXPECT_GT(run.journal_records, 0u);
  bool named = false;
  for (const auto& [id, text] : run.names) named |= text == "item";
  EXPECT_TRUE(named);
  EXPECT_FALSE(run.batches.empty());
}

TEST(Recovery, BadJournalSizesAreConfigErrors) {
  strobe::test::TempDir tmp;
  for (std::size_t records : {std::size_t{1000}, std::size_t{1024}, std::size_t{1} << 29}) {
    strobe::Config c{.ring_capacity = 1024, .recovery_dir = (tmp.path / "x").string(), .recovery_journal_records = records};
    EXPECT_THROW(strobe::Recorder r(c), strobe::ConfigError) << records;
  }
  strobe::Config c{.recovery_dir = "/proc/strobe-cannot-be-here"};
  EXPECT_THROW(strobe::Recorder r(c), strobe::ConfigError);
}

}  // namespace
