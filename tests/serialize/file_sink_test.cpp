// The FileSink: rotation, durability on flush, and every I/O error path (no directory,
// disk full, file removed) — reported in one line, counted, never blocking a recording
// thread, and never leaving a file the reader cannot read up to its last whole frame.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "random_trace.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;
using strobe::test::first_difference;

namespace {

using strobe::test::TempDir;

// on_error runs on the drainer thread; tests read the messages from theirs.
struct Messages {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> callback() {
    return [this](const std::string& m) {
      std::lock_guard lock(mutex);
      lines.push_back(m);
    };
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mutex);
    return lines;
  }
};

void expect_one_line_naming(const std::string& message, const std::string& path, const std::string& what) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find(what), std::string::npos) << message;
}

// A small tmpfs, so that the disk really fills up. Needs CAP_SYS_ADMIN.
class TinyFilesystem {
 public:
  explicit TinyFilesystem(const fs::path& dir, const char* size) : dir_(dir) {
    fs::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) == 0;
  }
  ~TinyFilesystem() { unmount(); }
  void unmount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  TinyFilesystem(const TinyFilesystem&) = delete;
  TinyFilesystem& operator=(const TinyFilesystem&) = delete;
  [[nodiscard]] bool mounted() const noexcept { return mounted_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
};

// A file removed under a running sink, as the sink and the recorder report it: one error,
// a second file, one line naming the path.
void expect_one_removal_reported(const Stats& stats, const FileSink& sink, Messages& messages, const std::string& path) {
  EXPECT_EQ(stats.sink_errors, 1u);
  EXPECT_EQ(sink.counters().io_errors, 1u);
  EXPECT_EQ(sink.counters().files, 2u);
  const std::vector<std::string> lines = messages.get();
  ASSERT_EQ(lines.size(), 1u);
  expect_one_line_naming(lines[0], path, "removed");
}

// Fills the 64 KiB filesystem `filler` lies on with it, leaving ~24 KiB for a trace file.
void fill_leaving_24k(const fs::path& filler) {
  std::ofstream f(filler, std::ios::binary);
  const std::string block(4096, 'f');
  for (int i = 0; i < 10; ++i) f << block;
}

// Every trace the reader has left, in order; the reader is then at its end.
std::vector<AssembledTrace> read_traces(Reader& reader) {
  BatchView batch;
  std::vector<AssembledTrace> got;
  while (reader.next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i) got.push_back(batch.trace(i).materialize());
  return got;
}

}  // namespace

TEST(FileSink, RotatesBySizeAndEveryFileStandsAlone) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "run.strobe").string();
  strobe::test::RandomTraces gen(11, {.max_spans = 12, .long_string_share = 0, .service_name = "rotation",
                                      .process_id = 5});
  std::vector<AssembledTrace> written;
  FileSink::Counters counters;
  std::string last_path;
  {
    FileSink sink({.path = path, .batch_spans = 16, .rotate_bytes = 4096});
    RecorderInfo info;
    info.service_name = "rotation";
    info.process_id = 5;
    sink.open(info);
    for (int i = 0; i < 80; ++i) {
      written.push_back(gen.next());
      sink.consume(written.back());
    }
    sink.close();
    counters = sink.counters();
    last_path = sink.current_path();
  }
  ASSERT_GE(counters.files, 3u);
  EXPECT_EQ(counters.io_errors, 0u);
  EXPECT_EQ(counters.traces, written.size());
  EXPECT_EQ(last_path, (dir / ("run." + std::to_string(counters.files - 1) + ".strobe")).string());
  std::vector<AssembledTrace> all;
  std::uint64_t bytes = 0;
  for (std::uint64_t i = 0; i < counters.files; ++i) {
    const std::string p = i == 0 ? path : (dir / ("run." + std::to_string(i) + ".strobe")).string();
    SCOPED_TRACE(p);
    ASSERT_TRUE(fs::exists(p));
    bytes += fs::file_size(p);
    Reader r(p);
    EXPECT_EQ(r.info().service_name, "rotation");
    BatchView b;
    std::size_t traces = 0;
    while (r.next(b)) {
      for (std::size_t k = 0; k < b.trace_count(); ++k) all.push_back(b.trace(k).materialize());
      traces += b.trace_count();
    }
    EXPECT_FALSE(r.error()) << r.error()->what();
    EXPECT_TRUE(r.ended_cleanly());
    EXPECT_EQ(r.end_info().traces, traces);
    // A file ends soon after it reaches the limit: at most one batch beyond it.
    if (i + 1 < counters.files) EXPECT_GE(fs::file_size(p), 4096u);
  }
  EXPECT_FALSE(fs::exists(dir / ("run." + std::to_string(counters.files) + ".strobe")));
  EXPECT_EQ(bytes, counters.bytes);
  ASSERT_EQ(all.size(), written.size());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(first_difference(written[i], all[i]), "");
}

// Rotated names: the index goes before the extension, or at the end when there is none
// (a dot in a directory name is not an extension).
TEST(FileSink, RotatedFileNames) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  fs::create_directories(dir / "d.x");
  strobe::test::RandomTraces gen(3, {.max_spans = 4, .long_string_share = 0});
  for (const std::string& base : {(dir / "plain").string(), (dir / "d.x" / "run").string()}) {
    FileSink sink({.path = base, .batch_spans = 1, .rotate_bytes = 1});
    for (int i = 0; i < 3; ++i) sink.consume(gen.next());
    sink.close();
    EXPECT_TRUE(fs::exists(base));
    EXPECT_TRUE(fs::exists(base + ".1"));
    EXPECT_TRUE(fs::exists(base + ".2"));
    EXPECT_NO_THROW((void)read_all(base + ".2"));
  }
}

// flush() makes everything consumed so far readable (with fsync: durable) while the file
// stays open; the reader then reports the missing end frame and keeps every trace.
TEST(FileSink, FlushWithFsyncMakesTracesReadable) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "synced.strobe").string();
  strobe::test::RandomTraces gen(5);
  std::vector<AssembledTrace> written;
  FileSink sink({.path = path, .fsync_on_flush = true});
  RecorderInfo info;
  info.service_name = "roundtrip-service";
  info.process_id = 4242;
  sink.open(info);
  sink.flush();  // nothing consumed yet: the header only
  for (int i = 0; i < 5; ++i) {
    written.push_back(gen.next());
    sink.consume(written.back());
  }
  EXPECT_EQ(sink.counters().batches, 0u) << "below batch_spans nothing is written before flush";
  sink.flush();
  EXPECT_EQ(sink.counters().batches, 1u);
  std::optional<ReadError> error;
  std::vector<AssembledTrace> got = read_all(path, &error);
  ASSERT_TRUE(error);
  EXPECT_NE(error->message().find("without an end frame"), std::string::npos) << error->what();
  ASSERT_EQ(got.size(), written.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(first_difference(written[i], got[i]), "");

  sink.close();
  sink.close();                  // a second close does nothing
  sink.consume(written.front());  // nor does a consume after it
  sink.flush();
  error.reset();
  got = read_all(path, &error);
  EXPECT_FALSE(error) << error->what();
  EXPECT_EQ(got.size(), written.size());
  EXPECT_EQ(sink.counters().io_errors, 0u);
}

TEST(FileSink, MissingDirectoryThrowsBeforeRecording) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "no" / "such" / "dir" / "run.strobe").string();
  try {
    FileSink sink({.path = path});
    FAIL() << "opened a file in a missing directory";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(FileSink({.path = ""}), std::invalid_argument);
  EXPECT_THROW(FileSink({.path = (dir / "x.strobe").string(), .batch_spans = 0}), std::invalid_argument);
}

// The disk fills up under a running recorder: every failed write is reported in one line
// and counted (sink and recorder), recording goes on while the sink is stuck in its error
// path, the file is cut back to its last whole frame, and writing resumes once there is
// space again.
TEST(FileSink, DiskFullIsReportedAndTheFileStaysReadable) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const fs::path mnt = dir / "tiny";
  TinyFilesystem tiny(mnt, "64k");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string path = (mnt / "run.strobe").string();
  const fs::path filler = mnt / "filler";
  fill_leaving_24k(filler);
  // The first error holds the drainer inside on_error until the test lets it go.
  Messages messages;
  std::mutex stall_mutex;
  std::condition_variable stall_cv;
  bool stalled = false, released = false;
  auto on_error = [&](const std::string& m) {
    messages.callback()(m);
    std::unique_lock lock(stall_mutex);
    if (stalled) return;
    stalled = true;
    stall_cv.notify_all();
    stall_cv.wait_for(lock, std::chrono::seconds(5), [&] { return released; });
  };
  auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path, .batch_spans = 32, .on_error = on_error});
  Stats stats;
  std::uint64_t recorded = 0, roots = 0;
  {
    // Assembled in the process: the sink counts traces and batches (the record log's loss
    // is deferred_test's).
    Recorder rec(Config{.service_name = "disk-full", .sinks = {sink}, .assembly = Assembly::in_process});
    strobe::prepare_thread();
    const std::string payload(300, 'p');
    auto round = [&] {
      auto root = strobe::trace("fill");
      ++roots;
      for (int i = 0; i < 50; ++i) {
        auto s = strobe::span("chunk", Kind::step);
        s.attr("payload", payload).attr("i", i);
        ++recorded;
      }
    };
    // Fill the disk until the drainer meets ENOSPC writing a batch (no flush: the drainer
    // writes a batch whenever 32 spans are buffered).
    bool hit = false;
    for (int r = 0; r < 400 && !hit; ++r) {
      round();
      std::unique_lock lock(stall_mutex);
      hit = stall_cv.wait_for(lock, std::chrono::milliseconds(r < 20 ? 0 : 20), [&] { return stalled; });
    }
    ASSERT_TRUE(hit) << "the disk never filled up";
    // The drainer is held in on_error now; a recording thread that waited for it would
    // wait the whole 5 s.
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 40; ++r) round();
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    {
      std::lock_guard lock(stall_mutex);
      released = true;
    }
    stall_cv.notify_all();
    EXPECT_LT(elapsed, std::chrono::seconds(2)) << "recording waited for the stuck sink";

    rec.flush();
    stats = rec.stats();
    const FileSink::Counters c = sink->counters();
    EXPECT_GT(c.io_errors, 0u);
    EXPECT_GT(stats.sink_errors, 0u);
    EXPECT_EQ(stats.spans_recorded + stats.spans_dropped, recorded + roots);

    // The file is cut back to its last whole frame: readable, only the end frame missing.
    {
      std::optional<ReadError> error;
      const auto got = read_all(path, &error);
      ASSERT_TRUE(error);
      EXPECT_NE(error->message().find("without an end frame"), std::string::npos) << error->what();
      EXPECT_EQ(got.size(), c.traces);
      for (const AssembledTrace& t : got) EXPECT_EQ(t.service_name, "disk-full");
    }
    const std::vector<std::string> lines = messages.get();
    ASSERT_FALSE(lines.empty());
    for (const std::string& m : lines) expect_one_line_naming(m, path, "No space left on device");

    // Space again: writing resumes.
    fs::remove(filler);
    const std::uint64_t errors_before = c.io_errors;
    {
      auto root = strobe::trace("after");
      auto s = strobe::span("recovered", Kind::step);
    }
    rec.flush();
    EXPECT_EQ(sink->counters().io_errors, errors_before);
    EXPECT_GT(sink->counters().traces, c.traces);
  }
  EXPECT_NO_THROW(sink->close());
  std::optional<ReadError> error;
  const auto got = read_all(path, &error);
  EXPECT_FALSE(error) << error->what();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().root_name, "after");
  EXPECT_EQ(got.size(), sink->counters().traces);
}

// Removing the file under a running sink: the next flush reports it and starts a new
// file at the same path, which later traces go to and which reads cleanly.
TEST(FileSink, FileRemovedWhileWritingStartsANewFile) {
  const TempDir tmp;
  const fs::path& dir = tmp.path;
  const std::string path = (dir / "removed.strobe").string();
  Messages messages;
  auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path, .on_error = messages.callback()});
  Stats stats;
  {
    Recorder rec(Config{.sinks = {sink}, .assembly = Assembly::in_process});
    {
      auto root = strobe::trace("before");
    }
    rec.flush();
    ASSERT_TRUE(fs::remove(path));
    rec.flush();  // notices the removal
    EXPECT_TRUE(fs::exists(path)) << "a new file is started at the same path";
    {
      auto root = strobe::trace("after");
      auto child = strobe::span("child");
    }
    rec.flush();
    stats = rec.stats();
  }
  sink->close();
  expect_one_removal_reported(stats, *sink, messages, path);
  std::optional<ReadError> error;
  const auto got = read_all(path, &error);
  EXPECT_FALSE(error) << error->what();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].root_name, "after");
  EXPECT_EQ(got[0].spans.size(), 2u);
}

// The header is written as the recorder starts, not later on the sink thread: a process
// killed in its first milliseconds (while its threads keep the sink thread from running)
// still leaves a file that reads, with what the recorder said of itself.
TEST(FileSink, TheHeaderIsOnDiskWhenTheRecorderConstructorReturns) {
  for (const Assembly assembly : {Assembly::automatic, Assembly::in_process}) {
    SCOPED_TRACE(to_string(assembly));
    const TempDir tmp;
    const std::string path = (tmp.path / "early.strobe").string();
    const std::string copy = (tmp.path / "copy.strobe").string();
    auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    {
      Recorder rec(Config{.service_name = "early", .sinks = {sink}, .assembly = assembly});
      // What a kill now would leave behind.
      fs::copy_file(path, copy);
    }
    const Reader reader(copy);
    EXPECT_EQ(reader.info().service_name, "early");
    EXPECT_EQ(reader.info().records, assembly == Assembly::automatic);
  }
}

// A run into a filesystem that stays full: the file tells what it lost. Every span the
// recorder handed over is either in the file or counted as lost in it (the next batch
// that could be written, or the end frame), and the end frame carries the recorder's drops.
TEST(FileSink, FullFilesystemFileCountsWhatItCouldNotWrite) {
  const TempDir tmp;
  const fs::path mnt = tmp.path / "tiny";
  TinyFilesystem tiny(mnt, "64k");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string path = (mnt / "run.strobe").string();
  auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path, .batch_spans = 64});
  Stats stats;
  {
    Recorder rec(Config{.service_name = "full", .sinks = {sink}, .assembly = Assembly::in_process});
    const std::string payload(200, 'p');
    for (int r = 0; r < 200; ++r) {
      {
        auto root = strobe::trace("fill");
        for (int i = 0; i < 20; ++i) strobe::span("chunk", Kind::step).attr("payload", payload);
      }
      if (r % 20 == 0) rec.flush();  // between traces: no span is handed over twice (continued)
    }
    rec.flush();
    stats = rec.stats();
  }
  sink->close();
  const FileSink::Counters c = sink->counters();
  ASSERT_GT(c.lost_frames, 0u) << "the filesystem never filled up";
  EXPECT_EQ(c.spans + c.lost_spans, stats.spans_assembled);

  Reader reader(path);
  BatchView batch;
  std::uint64_t spans = 0, dropped = 0;
  while (reader.next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i) {
      spans += batch.trace(i).span_count();
      dropped += batch.trace(i).drops().spans;
    }
  const WriteLoss loss = reader.write_loss();
  if (reader.error()) std::printf("reader: %s\n", reader.error()->what());
  std::printf("sink: %llu spans written in %llu batches, %llu lost in %llu frames, %llu io errors\n",
              static_cast<unsigned long long>(c.spans), static_cast<unsigned long long>(c.batches),
              static_cast<unsigned long long>(c.lost_spans), static_cast<unsigned long long>(c.lost_frames),
              static_cast<unsigned long long>(c.io_errors));
  std::printf("in the file %llu spans, lost %llu spans in %llu frames; recorder assembled %llu; end frame %s\n",
              static_cast<unsigned long long>(spans), static_cast<unsigned long long>(loss.spans),
              static_cast<unsigned long long>(loss.frames), static_cast<unsigned long long>(stats.spans_assembled),
              reader.ended_cleanly() ? "written" : "missing");
  EXPECT_EQ(spans, c.spans);
  if (reader.ended_cleanly()) {
    // The end frame tells the whole loss.
    EXPECT_EQ(loss.spans, c.lost_spans);
    EXPECT_EQ(loss.frames, c.lost_frames);
    EXPECT_EQ(spans + loss.spans, stats.spans_assembled);
    EXPECT_EQ(reader.end_info().spans_dropped, stats.spans_dropped);
    EXPECT_EQ(reader.end_info().records_dropped, stats.records_dropped);
  } else {
    // No room even for the end frame: the file says it did not end cleanly, and what it
    // says it lost is at most what was lost.
    EXPECT_LE(loss.spans, c.lost_spans);
  }
}

// The record log (what a FileSink alone gets by default) into a disk that fills up and
// then has space again: a chunk that could not be written is counted as lost, and what
// comes after it reads on past it — the recorder restates the log (a resync) before the
// sink's next chunk — so the file has no damage, spans after the loss carry names first
// logged in the lost chunk, and every span recorded is in the file or counted as lost.
TEST(FileSink, RecordLogReadsOnPastAChunkThatCouldNotBeWritten) {
  const TempDir tmp;
  const fs::path mnt = tmp.path / "tiny";
  TinyFilesystem tiny(mnt, "64k");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string path = (mnt / "run.strobe").string();
  const fs::path filler = mnt / "filler";
  fill_leaving_24k(filler);
  Messages messages;
  auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path, .on_error = messages.callback()});
  Stats stats;
  std::string lost_name;
  {
    Recorder rec(Config{.service_name = "log-full", .sinks = {sink}});
    ASSERT_EQ(rec.config().assembly, Assembly::deferred);
    const std::string payload(300, 'p');
    // A round a chunk, each with a name of its own, until a chunk could not be written:
    // the last round's name was logged only in that chunk.
    for (int r = 0; r < 400 && sink->counters().lost_frames == 0; ++r) {
      lost_name = "chunk-" + std::to_string(r);
      {
        auto root = strobe::trace("fill");
        for (int i = 0; i < 20; ++i) strobe::span(lost_name, Kind::step).attr("payload", payload);
      }
      rec.flush();
    }
    ASSERT_GT(sink->counters().lost_frames, 0u) << "the disk never filled up";
    fs::remove(filler);  // space again
    {
      auto root = strobe::trace("after");
      { auto s = strobe::span(lost_name, Kind::step); }  // its name's only cell was lost
      { auto s = strobe::span("chunk-0", Kind::step); }  // written before the loss
    }
    rec.flush();
    stats = rec.stats();
  }
  sink->close();
  const FileSink::Counters c = sink->counters();
  EXPECT_EQ(stats.sink_errors, c.io_errors);

  Reader reader(path);
  EXPECT_TRUE(reader.info().records);
  const std::vector<AssembledTrace> got = read_traces(reader);
  EXPECT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly());
  ASSERT_FALSE(got.empty());
  const AssembledTrace& after = got.back();
  EXPECT_EQ(after.root_name, "after");
  std::vector<std::string> names;
  for (const SpanData& s : after.spans) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"after", lost_name, "chunk-0"}));
  std::uint64_t spans = 0;
  for (const AssembledTrace& t : got)
    for (const SpanData& s : t.spans) spans += (s.flags & (kSpanPlaceholder | kSpanContinued)) ? 0 : 1;
  const WriteLoss loss = reader.write_loss();
  EXPECT_EQ(loss.frames, c.lost_frames);
  EXPECT_GT(loss.spans, 0u);
  EXPECT_EQ(spans + loss.spans, stats.spans_recorded);
  for (const std::string& m : messages.get()) expect_one_line_naming(m, path, "No space left on device");
}

// The record log's file removed under a running recorder: the chunk that found it gone
// is counted as lost in the new file started at the path, and the new file reads alone
// (the recorder restates the log in it), names logged only into the removed file included.
TEST(FileSink, RecordLogFileRemovedWhileWritingStartsANewFileThatReadsAlone) {
  const TempDir tmp;
  const std::string path = (tmp.path / "removed.strobe").string();
  Messages messages;
  auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = path, .on_error = messages.callback()});
  Stats stats;
  {
    Recorder rec(Config{.sinks = {sink}});
    ASSERT_EQ(rec.config().assembly, Assembly::deferred);
    {
      auto root = strobe::trace("before");
      { auto s = strobe::span("named-before", Kind::step); }
    }
    rec.flush();
    ASSERT_TRUE(fs::remove(path));
    {
      auto root = strobe::trace("lost");
    }
    rec.flush();  // its chunk finds the file removed: lost, and a new file is started
    EXPECT_TRUE(fs::exists(path)) << "a new file is started at the same path";
    {
      auto root = strobe::trace("after");
      { auto s = strobe::span("named-before", Kind::step); }
    }
    rec.flush();
    stats = rec.stats();
  }
  sink->close();
  expect_one_removal_reported(stats, *sink, messages, path);
  Reader reader(path);
  const std::vector<AssembledTrace> got = read_traces(reader);
  EXPECT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].root_name, "after");
  ASSERT_EQ(got[0].spans.size(), 2u);
  EXPECT_EQ(got[0].spans[1].name, "named-before");
  EXPECT_EQ(reader.write_loss().frames, 1u);
  EXPECT_EQ(reader.write_loss().spans, 1u);  // the root "lost"
}
