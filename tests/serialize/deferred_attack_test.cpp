// Deferred assembly under churn and from hostile files:
//
// - many short-lived threads, each naming itself and recording a few spans (their rings
//   retired and recycled): every span in the file, on its thread's name;
// - frames where they do not belong (a records frame under a header that does not say
//   records, a batch frame in a file of the log), names out of sequence, a log cut in the
//   middle of a pass, and every cell's words damaged in turn: a clear error with a byte
//   offset, never a crash (run this under ASan too);
// - a Recorder ended and a new one with the log: the earlier one's records stay out.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <strobe/serialize/format.hpp>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;

namespace {

using strobe::test::TempDir;

// ---- thread churn ----

TEST(DeferredChurn, EveryShortLivedThreadsSpansOnItsName) {
  const TempDir tmp;
  const std::string path = (tmp.path / "churn.strobe").string();
  constexpr int kThreads = 300, kSpans = 4, kAtOnce = 6;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    Recorder rec(Config{.ring_capacity = 1u << 10, .overflow = OverflowPolicy::wait, .sinks = {file},
                        .assembly = strobe::Assembly::deferred});
    for (int base = 0; base < kThreads; base += kAtOnce) {
      std::vector<std::thread> threads;
      for (int k = base; k < base + kAtOnce && k < kThreads; ++k)
        threads.emplace_back([k] {
          strobe::set_thread_name("churn-" + std::to_string(k));
          auto root = strobe::trace("t" + std::to_string(k));
          for (int i = 0; i < kSpans; ++i) auto s = strobe::span("s" + std::to_string(k), Kind::step);
        });
      for (auto& t : threads) t.join();
    }
  }
  Reader reader(path);
  ASSERT_TRUE(reader.info().records);
  BatchView b;
  std::map<std::string, int> spans;       // root name -> spans
  std::map<std::string, std::string> bad;  // span name -> its thread's name, when wrong
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) {
      const AssembledTrace t = b.trace(i).materialize();
      std::map<std::uint64_t, std::string> names;
      for (const ThreadName& n : t.thread_names) names[n.thread_id] = n.name;
      for (const SpanData& s : t.spans) {
        ++spans[t.root_name];
        const std::string k = s.name.substr(1);
        if (names[s.thread_id] != "churn-" + k) bad[s.name] = names[s.thread_id];
      }
    }
  ASSERT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly());
  EXPECT_EQ(spans.size(), static_cast<std::size_t>(kThreads));
  for (const auto& [root, n] : spans) EXPECT_EQ(n, kSpans + 1) << root;
  EXPECT_TRUE(bad.empty()) << bad.size() << " spans on the wrong thread name, e.g. " << bad.begin()->first << " on '"
                           << bad.begin()->second << "'";
}

// ---- hostile files ----

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct Frame {
  std::size_t at;       // of its header
  std::uint32_t length;  // of its payload
  FrameType type;
};

std::vector<Frame> frames_of(const std::string& bytes) {
  std::vector<Frame> out;
  std::size_t at = kPreambleSize;
  while (at + kFrameHeaderSize <= bytes.size()) {
    std::uint32_t length = 0;
    std::memcpy(&length, bytes.data() + at, 4);
    out.push_back({at, length, static_cast<FrameType>(static_cast<unsigned char>(bytes[at + 4]))});
    at += kFrameHeaderSize + ((length + 7u) & ~7u);
  }
  return out;
}

std::string frame_bytes(const std::string& bytes, const Frame& f) {
  return bytes.substr(f.at, kFrameHeaderSize + ((f.length + 7u) & ~7u));
}

// A frame of `type` holding `payload`, with its checksums.
std::string make_frame(FrameType type, const std::string& payload) {
  std::string out(kFrameHeaderSize, '\0');
  const auto length = static_cast<std::uint32_t>(payload.size());
  std::memcpy(out.data(), &length, 4);
  out[4] = static_cast<char>(type);
  const std::uint32_t pcrc = crc32c(payload.data(), payload.size());
  std::memcpy(out.data() + 8, &pcrc, 4);
  const std::uint32_t hcrc = crc32c(out.data(), 12);
  std::memcpy(out.data() + 12, &hcrc, 4);
  out += payload;
  out.resize(kFrameHeaderSize + ((length + 7u) & ~7u), '\0');
  return out;
}

struct Outcome {
  std::size_t traces = 0;
  std::size_t spans = 0;  // each counted where it ended (not in the parts that continue it)
  std::string error;
  bool threw = false;
  bool ended = false;
};

Outcome read_file(const TempDir& tmp, const std::string& content, const std::string& name) {
  const fs::path p = tmp.path / (name + ".strobe");
  std::ofstream(p, std::ios::binary) << content;
  Outcome o;
  try {
    Reader reader(p.string());
    BatchView b;
    while (reader.next(b))
      for (std::size_t i = 0; i < b.trace_count(); ++i) {
        for (const SpanData& s : b.trace(i).materialize().spans) o.spans += (s.flags & kSpanContinued) == 0;
        ++o.traces;
      }
    if (reader.error()) o.error = reader.error()->what();
    o.ended = reader.ended_cleanly();
  } catch (const ReadError& e) {
    o.threw = true;
    o.error = e.what();
  }
  return o;
}

// Both files of one workload: 10 traces, each closed by a flush (records frames each).
struct Files {
  std::string assembled, deferred;
};

Files record_both(const TempDir& tmp) {
  Files f;
  for (bool deferred : {false, true}) {
    const std::string path = (tmp.path / (deferred ? "d.strobe" : "a.strobe")).string();
    {
      auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
      Recorder rec(Config{.sinks = {file}, .assembly = deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process});
      for (int k = 0; k < 10; ++k) {
        {
          // Names of the log's own (the intern table is the process's): a names cell each pass.
          static int calls = 0;
          const std::string prefix = (deferred ? "d" : "a") + std::to_string(k == 0 ? ++calls : calls) + "_";
          auto root = strobe::trace(prefix + "root" + std::to_string(k));
          for (int i = 0; i < 20; ++i) {
            auto s = strobe::span(prefix + "name" + std::to_string(k) + "_" + std::to_string(i % 3), Kind::step);
            s.attr("i", i);
          }
        }
        rec.flush();
      }
    }
    (deferred ? f.deferred : f.assembled) = read_bytes(path);
  }
  return f;
}

bool has_offset(const std::string& error) { return error.find("byte ") != std::string::npos; }

TEST(DeferredHostile, FramesWhereTheyDoNotBelong) {
  const TempDir tmp;
  const Files f = record_both(tmp);
  const std::vector<Frame> af = frames_of(f.assembled), df = frames_of(f.deferred);
  ASSERT_GE(df.size(), 4u);
  std::vector<Frame> records, batches;
  for (const Frame& x : df)
    if (x.type == FrameType::records) records.push_back(x);
  for (const Frame& x : af)
    if (x.type == FrameType::batch) batches.push_back(x);
  ASSERT_GE(records.size(), 3u);
  ASSERT_GE(batches.size(), 3u);

  // A records frame after the first batch of an assembled file.
  std::string a = f.assembled;
  a.insert(batches[1].at, frame_bytes(f.deferred, records[1]));
  Outcome o = read_file(tmp, a, "records_in_assembled");
  EXPECT_FALSE(o.threw) << o.error;
  EXPECT_NE(o.error.find("a records frame in a file whose header does not say records"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("byte " + std::to_string(batches[1].at)), std::string::npos) << o.error;
  EXPECT_EQ(o.traces, 1u);
  EXPECT_FALSE(o.ended);

  // A batch frame in the middle of a file of the log.
  std::string d = f.deferred;
  d.insert(records[2].at, frame_bytes(f.assembled, batches[0]));
  o = read_file(tmp, d, "batch_in_log");
  EXPECT_FALSE(o.threw) << o.error;
  EXPECT_NE(o.error.find("a batch frame in a file of the record log"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("byte " + std::to_string(records[2].at)), std::string::npos) << o.error;
  EXPECT_GT(o.traces, 0u);
  EXPECT_FALSE(o.ended);
}

// The cells of a records frame's payload (64 bytes each).
struct Cell {
  std::uint32_t magic, kind, count, bytes;
  std::uint64_t v[6];
};
static_assert(sizeof(Cell) == 64);

// Rewrites records frame `index` of a file of the log through `edit` (payload in, payload
// out); the checksums made right again, so that only the log's own checks see the damage.
template <class Edit>
std::string rewrite_records(const std::string& bytes, std::size_t index, Edit edit) {
  std::string out = bytes.substr(0, kPreambleSize);
  std::size_t seen = 0;
  for (const Frame& f : frames_of(bytes)) {
    if (f.type == FrameType::records && seen++ == index) {
      out += make_frame(FrameType::records, edit(bytes.substr(f.at + kFrameHeaderSize, f.length)));
    } else {
      out += frame_bytes(bytes, f);
    }
  }
  return out;
}

std::size_t records_frames(const std::string& bytes) {
  std::size_t n = 0;
  for (const Frame& f : frames_of(bytes)) n += f.type == FrameType::records;
  return n;
}

std::vector<std::size_t> cells_of_kind(const std::string& payload, std::uint32_t kind) {
  std::vector<std::size_t> out;
  // Walk: the cells that follow a batch, names, thread or crash cell are its contents.
  for (std::size_t at = 0; at + 64 <= payload.size();) {
    Cell c;
    std::memcpy(&c, payload.data() + at, 64);
    if (c.kind == kind) out.push_back(at);
    at += 64 + ((c.bytes + 63) / 64) * 64;
  }
  return out;
}

TEST(DeferredHostile, NamesOutOfSequence) {
  const TempDir tmp;
  const Files f = record_both(tmp);
  // The frame whose names cell comes second (its first id above 0), renumbered.
  bool edited = false;
  for (std::size_t i = 1; i < records_frames(f.deferred) && !edited; ++i) {
    for (std::uint64_t delta : {std::uint64_t{1}, std::uint64_t{0} - 1, std::uint64_t{1} << 40}) {
      bool here = false;
      const std::string damaged = rewrite_records(f.deferred, i, [&](std::string p) {
        for (std::size_t at : cells_of_kind(p, 4)) {
          Cell c;
          std::memcpy(&c, p.data() + at, 64);
          if (c.v[0] == 0) continue;
          c.v[0] += delta;
          std::memcpy(p.data() + at, &c, 64);
          here = true;
          break;
        }
        return p;
      });
      if (!here) break;
      edited = true;
      const Outcome o = read_file(tmp, damaged, "names_" + std::to_string(delta));
      EXPECT_FALSE(o.threw) << o.error;
      // The byte of the damaged frame (frames keep their places: the payload's size is the same).
      std::size_t at = 0, seen = 0;
      for (const Frame& x : frames_of(damaged))
        if (x.type == FrameType::records && seen++ == i) at = x.at;
      EXPECT_NE(o.error.find("byte " + std::to_string(at) + ":"), std::string::npos) << "'" << o.error << "'";
      EXPECT_NE(o.error.find("names out of sequence"), std::string::npos) << o.error;
      EXPECT_FALSE(o.ended);
      EXPECT_LE(o.traces, 10u);
    }
  }
  EXPECT_TRUE(edited) << "no names cell after the first frame's";
}

TEST(DeferredHostile, ALogCutInTheMiddleOfAPass) {
  const TempDir tmp;
  const Files f = record_both(tmp);
  const std::size_t n = records_frames(f.deferred);
  ASSERT_GE(n, 3u);
  // A frame whose last pass lost its end cell (the frame's checksums right, so the log
  // alone knows): its batches, names and thread names are all there, the pass is not.
  bool cut = false;
  std::string damaged;
  for (std::size_t i = 1; i < n && !cut; ++i)
    damaged = rewrite_records(f.deferred, i, [&](std::string p) {
      const std::vector<std::size_t> passes = cells_of_kind(p, 6);
      if (cells_of_kind(p, 3).empty() || passes.empty() || passes.back() + 64 != p.size()) return p;
      cut = true;
      return p.substr(0, passes.back());
    });
  ASSERT_TRUE(cut);
  const Outcome o = read_file(tmp, damaged, "cut_mid_pass");
  EXPECT_FALSE(o.threw) << o.error;
  EXPECT_TRUE(has_offset(o.error)) << "'" << o.error << "'";
  EXPECT_NE(o.error.find("pass"), std::string::npos) << o.error;
  EXPECT_FALSE(o.ended);
  EXPECT_GE(o.traces, 1u);
  EXPECT_LE(o.traces, 10u);

  // Every records frame cut at every cell boundary and inside cells: an error or the
  // traces, never a crash. (A cut right after a pass's end looks like a frame of fewer
  // passes: what follows may then read as orphans in traces of their own, at most one a
  // span of the 210 the log holds.)
  for (std::size_t i = 0; i < n; ++i)
  for (std::size_t keep = 8; keep < 4096; keep += 24) {
    bool shorter = false;
    const std::string c = rewrite_records(f.deferred, i, [&](std::string p) {
      shorter = keep < p.size();
      return p.substr(0, keep);
    });
    if (!shorter) break;
    const Outcome q = read_file(tmp, c, "cut");
    EXPECT_FALSE(q.threw) << q.error;
    EXPECT_LE(q.traces, 210u) << "frame " << i << " cut to " << keep << " bytes: " << q.error;
    EXPECT_LE(q.spans, 210u) << "frame " << i << " cut to " << keep << " bytes: no span twice";
    if (!q.error.empty()) EXPECT_TRUE(has_offset(q.error)) << q.error;
  }
}

// Every 8-byte word of every cell header and the first bytes of the records, set to
// values a hostile file would choose: the reader reports or reads, and never crashes.
TEST(DeferredHostile, EveryWordDamagedNeverCrashes) {
  const TempDir tmp;
  const Files f = record_both(tmp);
  const std::size_t n = records_frames(f.deferred);
  const std::uint64_t values[] = {0, 0xffffffffull, ~0ull, 1ull << 32, 65};
  // The first frame (start, clock, names) and the first that holds a batch.
  std::size_t with_batch = 0;
  for (std::size_t i = 0; i < n && with_batch == 0; ++i)
    (void)rewrite_records(f.deferred, i, [&](std::string p) {
      if (!cells_of_kind(p, 3).empty()) with_batch = i;
      return p;
    });
  ASSERT_NE(with_batch, 0u);
  std::size_t errors = 0, runs = 0;
  for (std::size_t frame : {std::size_t{0}, with_batch}) {
    std::size_t payload = 0;
    {
      std::size_t seen = 0;
      for (const Frame& x : frames_of(f.deferred))
        if (x.type == FrameType::records && seen++ == frame) payload = x.length;
    }
    for (std::size_t word = 0; word * 8 < std::min<std::size_t>(payload, 64 * 12); ++word)
      for (std::uint64_t v : values) {
        const std::string damaged = rewrite_records(f.deferred, frame, [&](std::string p) {
          std::memcpy(p.data() + word * 8, &v, 8);
          return p;
        });
        const Outcome o = read_file(tmp, damaged, "word");
        ++runs;
        EXPECT_FALSE(o.threw) << "frame " << frame << " word " << word << " = " << v << ": " << o.error;
        if (!o.error.empty()) {
          ++errors;
          EXPECT_TRUE(has_offset(o.error)) << o.error;
        }
      }
  }
  EXPECT_GT(errors, runs / 8) << "damage is noticed";
}

// ---- the generation filter ----

// A thread's span open across the end of one Recorder and the start of another (which
// defers assembly), and a span that thread begins while no Recorder runs: none of it
// reaches the second file, which holds its own trace whole.
std::multiset<std::string> across_two_recorders(const TempDir& tmp, bool first_deferred, bool second_deferred) {
  const std::string first = (tmp.path / "first.strobe").string(), second = (tmp.path / "second.strobe").string();
  std::atomic<int> step{0};
  std::thread worker;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = first});
    Recorder rec(Config{.sinks = {file}, .assembly = first_deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process});
    worker = std::thread([&] {
      strobe::set_thread_name("worker");
      std::optional<Span> old_root(strobe::trace("old_root"));
      std::optional<Span> old_child(strobe::span("old_child", Kind::step));
      step = 1;
      while (step.load() < 2) std::this_thread::yield();
      // The second recorder runs: these end there, and this one begins there under an old parent.
      { auto s = strobe::span("old_grandchild", Kind::step); }
      old_child.reset();
      old_root.reset();
      {
        auto r = strobe::trace("worker_new");
        auto s = strobe::span("worker_new_child", Kind::step);
      }
      step = 3;
    });
    while (step.load() < 1) std::this_thread::yield();
  }
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = second});
    Recorder rec(Config{.sinks = {file}, .assembly = second_deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process});
    step = 2;
    while (step.load() < 3) std::this_thread::yield();
    auto r = strobe::trace("new_root");
    auto s = strobe::span("new_child", Kind::step);
  }
  worker.join();
  std::optional<ReadError> error;
  const std::vector<AssembledTrace> traces = read_all(second, &error);
  EXPECT_FALSE(error) << error->what();
  std::multiset<std::string> names;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans) names.insert(s.name + (s.status == Status::ok ? "" : "(incomplete)"));
  fs::remove(first);
  fs::remove(second);
  return names;
}

std::string joined(const std::multiset<std::string>& names) {
  std::string all;
  for (const std::string& n : names) all += n + " ";
  return all;
}

// A thread's spans open across the end of one Recorder and the start of another (which
// defers assembly), and a span it begins in the second under a parent of the first: the
// second file holds what an assembling second Recorder would have written, and nothing
// the first one began.
TEST(DeferredGeneration, AnEarlierRecordersRecordsStayOut) {
  const TempDir tmp;
  for (bool first_deferred : {false, true}) {
    const std::multiset<std::string> assembled = across_two_recorders(tmp, first_deferred, false);
    const std::multiset<std::string> deferred = across_two_recorders(tmp, first_deferred, true);
    EXPECT_EQ(joined(deferred), joined(assembled)) << "first deferred: " << first_deferred;
    for (const char* old : {"old_root", "old_child"}) {
      EXPECT_EQ(deferred.count(old), 0u) << joined(deferred);
      EXPECT_EQ(deferred.count(std::string(old) + "(incomplete)"), 0u) << joined(deferred);
    }
    for (const char* now : {"new_root", "new_child", "worker_new", "worker_new_child"})
      EXPECT_EQ(deferred.count(now), 1u) << joined(deferred);
  }
}


// A thread recording without a pause while one Recorder ends and another (which defers
// assembly) starts: what the second file holds is whole — every span ended, none an
// orphan of the first Recorder's, none incomplete — and the file passes as intact.
TEST(DeferredGeneration, RecordingThroughTheChangeOfRecorders) {
  const TempDir tmp;
  for (int round = 0; round < 5; ++round) {
    const std::string first = (tmp.path / "first.strobe").string(), second = (tmp.path / "second.strobe").string();
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> spans{0};
    std::optional<std::thread> worker;
    {
      auto file = std::make_shared<FileSink>(FileSinkOptions{.path = first});
      Recorder rec(Config{.sinks = {file}, .assembly = (round % 2 == 0) ? strobe::Assembly::deferred : strobe::Assembly::in_process});
      worker.emplace([&] {
        strobe::set_thread_name("through");
        while (!stop.load()) {
          auto root = strobe::trace("loop");
          for (int i = 0; i < 8; ++i) {
            auto s = strobe::span("w", Kind::step);
            s.attr("i", i);
          }
          spans.fetch_add(9);
        }
      });
      while (spans.load() < 2000) std::this_thread::yield();
    }
    std::uint64_t at_start = 0;
    {
      auto file = std::make_shared<FileSink>(FileSinkOptions{.path = second});
      Recorder rec(Config{.overflow = OverflowPolicy::wait, .sinks = {file}, .assembly = strobe::Assembly::deferred});
      at_start = spans.load();
      while (spans.load() < at_start + 5000) std::this_thread::yield();
      stop = true;
      worker->join();
      EXPECT_EQ(rec.stats().orphan_records, 0u);
    }
    Reader reader(second);
    BatchView b;
    std::uint64_t total = 0, not_ok = 0, roots = 0;
    while (reader.next(b))
      for (std::size_t i = 0; i < b.trace_count(); ++i)
        for (SpanView s : b.trace(i).spans()) {
          ++total;
          roots += s.name() == "loop";
          not_ok += s.status() != Status::ok;
        }
    ASSERT_FALSE(reader.error()) << reader.error()->what();
    EXPECT_TRUE(reader.ended_cleanly());
    EXPECT_EQ(not_ok, 0u) << "round " << round << ": spans incomplete or failed of " << total;
    EXPECT_GE(total + 9, 5000u);  // the loop running at the change began under the first
    EXPECT_LE(total, spans.load() - at_start + 9);
    // Every trace whole: a loop and its 8 steps; the steps of the loop that began under
    // the first Recorder are roots of their own (the hot path starts a trace when the
    // context is another Recorder's), at most 8.
    EXPECT_GE(total, roots * 9);
    EXPECT_LE(total - roots * 9, 8u) << total << " spans, " << roots << " loops";
    fs::remove(first);
    fs::remove(second);
  }
}


// ---- fork, and readers in threads ----

#if defined(__SANITIZE_THREAD__)
#define STROBE_SKIP_FORK GTEST_SKIP() << "ThreadSanitizer does not support fork() with threads running"
#else
#define STROBE_SKIP_FORK (void)0
#endif

// fork() while threads record with the log: the child (recording off in it) flushes,
// ends its copy of the Recorder and of the FileSink and exits; the parent's file is
// untouched by it and reads back whole, with what the parent recorded after the fork.
TEST(DeferredFork, TheChildLeavesTheParentsFileAlone) {
  STROBE_SKIP_FORK;
  const TempDir tmp;
  const std::string path = (tmp.path / "fork.strobe").string();
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    auto recorder = std::make_unique<Recorder>(Config{.ring_capacity = 1024, .sinks = {file}, .assembly = strobe::Assembly::deferred});
    std::atomic<bool> stop{false};
    std::vector<std::thread> busy;
    for (int i = 0; i < 2; ++i)
      busy.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          auto root = strobe::trace("parent.busy");
          auto s = strobe::span("parent.step");
          s.attr("i", 1);
        }
      });
    auto before = strobe::span("before.fork", Kind::agent);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const pid_t child = ::fork();
    if (child == 0) {
      for (int i = 0; i < 20000; ++i) {
        auto s = strobe::span("child.span");
        if (s.recording()) ::_exit(10);
      }
      before.finish();
      recorder->flush();
      recorder.reset();
      file.reset();
      ::_exit(0);
    }
    ASSERT_GT(child, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    stop = true;
    for (auto& t : busy) t.join();
    before.finish();
    { auto after = strobe::trace("after.fork"); }
  }
  Reader reader(path);
  BatchView b;
  std::set<std::string> roots;
  std::uint64_t child_spans = 0;
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i)
      for (SpanView s : b.trace(i).spans()) {
        roots.insert(std::string(b.trace(i).root_name()));
        child_spans += s.name() == "child.span";
      }
  ASSERT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly());
  EXPECT_TRUE(roots.count("after.fork"));
  EXPECT_TRUE(roots.count("before.fork"));
  EXPECT_EQ(child_spans, 0u);
}

// Readers of files of the log in several threads at once, while a Recorder of this
// process records (the replay interns names into the process's table): each reads every
// trace, and the recording loses nothing.
TEST(DeferredReaders, InThreadsWhileThisProcessRecords) {
  const TempDir tmp;
  const std::string path = (tmp.path / "shared.strobe").string();
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    Recorder rec(Config{.sinks = {file}, .assembly = strobe::Assembly::deferred});
    for (int k = 0; k < 50; ++k) {
      auto root = strobe::trace("shared" + std::to_string(k));
      for (int i = 0; i < 20; ++i) auto s = strobe::span("shared_step" + std::to_string(i), Kind::step);
    }
  }
  const std::string live = (tmp.path / "live.strobe").string();
  std::atomic<int> failures{0};
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = live});
    Recorder rec(Config{.overflow = OverflowPolicy::wait, .sinks = {file}, .assembly = strobe::Assembly::deferred});
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r)
      readers.emplace_back([&, r] {
        for (int round = 0; round < 4; ++round) {
          auto s = strobe::trace("reading" + std::to_string(r));
          std::optional<ReadError> error;
          const std::vector<AssembledTrace> traces = read_all(path, &error);
          std::size_t spans = 0;
          for (const AssembledTrace& t : traces) spans += t.spans.size();
          if (error || traces.size() != 50 || spans != 50 * 21) failures.fetch_add(1);
        }
      });
    for (auto& t : readers) t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  std::optional<ReadError> error;
  const std::vector<AssembledTrace> traces = read_all(live, &error);
  ASSERT_FALSE(error) << error->what();
  EXPECT_EQ(traces.size(), 12u);
}


// Threads that record and flush at once, a small sink queue (the drainer leaves records
// in the rings while it is full): with the wait policy every span reaches the file,
// once, and the stats count them.
TEST(DeferredFlush, ConcurrentFlushesWithASmallQueueLoseNothing) {
  const TempDir tmp;
  const std::string path = (tmp.path / "flushes.strobe").string();
  constexpr int kThreads = 4, kTraces = 60, kSpans = 30;
  Stats stats;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    Recorder rec(Config{.ring_capacity = 1u << 10, .overflow = OverflowPolicy::wait, .sink_queue_spans = 64,
                        .sinks = {file}, .assembly = strobe::Assembly::deferred});
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k)
      threads.emplace_back([&rec, k] {
        for (int t = 0; t < kTraces; ++t) {
          {
            auto root = strobe::trace("f" + std::to_string(k));
            for (int i = 0; i < kSpans; ++i) {
              auto s = strobe::span("fs", Kind::step);
              s.attr("i", i);
            }
          }
          if (t % 7 == k) rec.flush();
        }
      });
    for (auto& t : threads) t.join();
    rec.flush();
    stats = rec.stats();
  }
  std::optional<ReadError> error;
  const std::vector<AssembledTrace> traces = read_all(path, &error);
  ASSERT_FALSE(error) << error->what();
  // A flush while another thread's trace is open hands it over in parts: a span is
  // counted in the part it ended in (the others hold it continued).
  std::map<std::string, int> per_root;
  std::size_t spans = 0;
  for (const AssembledTrace& t : traces) {
    for (const SpanData& s : t.spans) {
      if (s.flags & kSpanContinued) continue;
      ++spans;
      EXPECT_EQ(s.status, Status::ok) << s.name;
      per_root[s.name] += s.name[0] == 'f' && s.name != "fs";
    }
  }
  for (const auto& [root, n] : per_root)
    if (root != "fs") EXPECT_EQ(n, kTraces) << root;
  EXPECT_EQ(per_root.size(), static_cast<std::size_t>(kThreads + 1));
  EXPECT_EQ(spans, static_cast<std::size_t>(kThreads * kTraces * (kSpans + 1)));
  EXPECT_EQ(stats.spans_recorded, spans);
  EXPECT_EQ(stats.spans_dropped, 0u);
}


// Two files of the log, each with many names of its own, read in one process (strobe
// diff, a script reading a directory of files): the replay interns every name of a log
// into this process's table, which holds 2^18 names; the second file's names must still
// read as written. Each file is recorded in a child process, so that this process's
// table holds only what reading puts there.
//
// Disabled: it fails (the table fills while the second file is read, and its last ~38,000
// spans read as the table's overflow name). The Assembler and the FileSink that the
// Reader assembles through resolve names in the process's one table (name_of), so a
// replay cannot keep a table of its own without their taking one; until then this test
// says what goes wrong.
TEST(DeferredNames, DISABLED_TwoFilesWithManyNamesReadInOneProcess) {
  STROBE_SKIP_FORK;
  const TempDir tmp;
  constexpr int kNames = 150000;
  const std::string a = (tmp.path / "a.strobe").string(), b = (tmp.path / "b.strobe").string();
  for (const std::string* path : {&a, &b}) {
    const pid_t child = ::fork();
    if (child == 0) {
      {
        auto file = std::make_shared<FileSink>(FileSinkOptions{.path = *path});
        Recorder rec(Config{.overflow = OverflowPolicy::wait, .sinks = {file}, .assembly = strobe::Assembly::deferred});
        const std::string prefix = path == &a ? "a" : "b";
        auto root = strobe::trace(prefix + "root");
        for (int i = 0; i < kNames; ++i) auto s = strobe::span(prefix + std::to_string(i), Kind::step);
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  for (const std::string* path : {&a, &b}) {
    const char prefix = path == &a ? 'a' : 'b';
    std::optional<ReadError> error;
    const std::vector<AssembledTrace> traces = read_all(*path, &error);
    ASSERT_FALSE(error) << error->what();
    std::size_t spans = 0, wrong = 0;
    std::string example;
    for (const AssembledTrace& t : traces)
      for (const SpanData& s : t.spans) {
        spans += (s.flags & kSpanContinued) == 0;  // the root is in every part, ended in the last
        if (s.name.empty() || s.name[0] != prefix) {
          if (wrong++ == 0) example = s.name;
        }
      }
    EXPECT_EQ(spans, static_cast<std::size_t>(kNames + 1)) << prefix;
    EXPECT_EQ(wrong, 0u) << "file " << prefix << ": " << wrong << " spans with another name, e.g. '" << example << "'";
  }
}

}  // namespace
