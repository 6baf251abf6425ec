// Deferred assembly (Assembly::deferred): the file holds the record log and the Reader
// assembles it. The same workload recorded both ways reads back as the same traces (every
// field but ids and times); drops are counted exactly; the wait policy loses nothing with
// many threads; damage and truncation give the traces before them and a clear error; and
// a Recorder refuses sinks that cannot take the log.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "every_kind.hpp"
#include "refusing_sink.hpp"
#include "render.hpp"
#include "rss.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;

namespace {

using strobe::test::TempDir;

std::string value_text(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: return "i" + std::to_string(v.i);
    case AttrValue::Type::f64: return "d" + std::to_string(v.d);
    case AttrValue::Type::boolean: return v.i ? "true" : "false";
    default: return "s" + v.s;
  }
}

std::string attrs_text(const std::vector<Attribute>& attrs) {
  std::vector<std::string> parts;
  for (const Attribute& a : attrs) parts.push_back(a.key + "=" + value_text(a.value) + (a.truncated ? "(cut)" : ""));
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) out += p + ",";
  return out;
}

// Everything a trace says but its ids, times, order and parallel groups: each span's
// fields, with its place in the tree as the path of its ancestors' names. Groups and the
// order of siblings follow from times, which differ between two runs of the same work (a
// one-shot span backdated by 5 ms overlaps what ran just before it, or not, as the
// scheduler had it): the test checks a group that the work makes certain apart.
std::string describe(const AssembledTrace& t) {
  std::map<std::uint64_t, const SpanData*> by_id;
  for (const SpanData& s : t.spans) by_id[s.span_id] = &s;
  auto path = [&](const SpanData& s) {
    std::string p = s.name;
    for (const SpanData* at = &s; at->parent_id != 0;) {
      const auto it = by_id.find(at->parent_id);
      if (it == by_id.end()) break;
      at = it->second;
      p = at->name + "/" + p;
    }
    return p;
  };
  std::string out = "root " + t.root_name + " part " + std::to_string(t.part) + (t.partial ? " partial" : "") +
                    " drops " + std::to_string(t.drops_since_previous.spans) + "/" +
                    std::to_string(t.drops_since_previous.records) + "\n";
  std::map<std::uint64_t, std::string> thread_name;
  for (const ThreadName& n : t.thread_names) thread_name[n.thread_id] = n.name;
  std::vector<std::string> spans;
  for (const SpanData& s : t.spans) {
    std::string d = path(s) + "|" + to_string(s.kind) + ":" + s.kind_name + "|" + to_string(s.status) + "|flags " +
                    std::to_string(s.flags) + "|" + attrs_text(s.attrs) + "|in " + s.input + "|out " + s.output +
                    "|model " + s.model + "|err " + s.error_message + "/" + s.error_data + "|thread " +
                    thread_name[s.thread_id] + "|segment " + std::to_string(s.segment_index) + "|links " +
                    std::to_string(s.links.size());
    if (s.has_tokens)
      d += "|tokens " + std::to_string(s.tokens.input) + "/" + std::to_string(s.tokens.output) + "/" +
           std::to_string(s.tokens.cached_input);
    for (const std::string& tag : s.tags) d += "|tag " + tag;
    for (const SpanEvent& e : s.events) d += "|event " + e.name + " " + attrs_text(e.attrs);
    spans.push_back(std::move(d));
  }
  std::sort(spans.begin(), spans.end());
  for (const std::string& s : spans) out += s + "\n";
  out += "chains " + std::to_string(t.chains.size()) + "\n";
  return out;
}

// Every kind of record (every_kind.hpp), thread names, a span name that is not UTF-8,
// workers that name their threads, and a long loop under one root handed over in parts.
void workload(Recorder& rec) {
  strobe::set_thread_name("main-worker");
  strobe::test::record_every_kind(rec);
  {
    auto run = strobe::trace("named-threads");
    auto odd = strobe::span(std::string("name-\xc3\x28", 7), Kind::step);  // not UTF-8
    const Context ctx = strobe::current();
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w) {
      workers.emplace_back([ctx, w] {
        strobe::set_thread_name("pool-" + std::to_string(w));
        ContextScope scope(ctx);
        auto s = strobe::span("pooled", Kind::retrieval);
        s.attr("w", w);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the three overlap: a group
      });
    }
    for (auto& t : workers) t.join();
  }
  rec.flush();
  // A decode loop under one root: handed over in parts (partial_trace_spans), with each
  // step's chain and an attribute.
  {
    auto request = strobe::trace("request");
    for (int i = 0; i < 700; ++i) {
      STROBE_SPAN(step, "token", Kind::step);
      step.attr("i", i);
      step.next(STROBE_NAME("attention")).next(STROBE_NAME("mlp"));
      if (i % 100 == 0) rec.flush();  // parts at flushes too, wherever the loop is
    }
  }
  rec.flush();
}

struct Recorded {
  std::vector<AssembledTrace> traces;
  Stats stats;
  FileEndInfo end;
  bool ended = false;
  bool records = false;
};

Recorded record(const fs::path& path, bool deferred) {
  Recorded r;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path.string(), .batch_spans = 64});
    Recorder rec(Config{.max_string_bytes = 256,
                        .partial_trace_spans = 150,
                        .service_name = "deferred-test",
                        .sinks = {file},
                        .assembly = deferred ? strobe::Assembly::deferred : strobe::Assembly::in_process});
    workload(rec);
    r.stats = rec.stats();
  }
  Reader reader(path.string());
  r.records = reader.info().records;
  BatchView b;
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) r.traces.push_back(b.trace(i).materialize());
  EXPECT_FALSE(reader.error()) << reader.error()->what();
  r.end = reader.end_info();
  r.ended = reader.ended_cleanly();
  return r;
}

// The spans a file holds, each once (a span continued across parts counts at its end).
std::uint64_t whole_spans(const std::vector<AssembledTrace>& traces) {
  std::uint64_t n = 0;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans) n += (s.flags & kSpanContinued) ? 0 : 1;
  return n;
}

}  // namespace

TEST(Deferred, SameTracesAsAssemblingInProcess) {
  const TempDir tmp;
  const Recorded assembled = record(tmp.path / "assembled.strobe", false);
  const Recorded deferred = record(tmp.path / "deferred.strobe", true);
  EXPECT_FALSE(assembled.records);
  EXPECT_TRUE(deferred.records);
  EXPECT_TRUE(deferred.ended);
  EXPECT_EQ(deferred.stats.spans_dropped, 0u);
  EXPECT_EQ(deferred.stats.sink_errors, 0u);
  EXPECT_EQ(deferred.stats.spans_assembled, 0u);  // nothing is assembled in the process
  EXPECT_EQ(deferred.stats.spans_recorded, assembled.stats.spans_recorded);
  // The loop's parts depend on when passes and flushes fell, so traces are compared
  // whole for the traces that are not the loop's, and the loop's by what it holds.
  std::vector<std::string> want, got;
  std::multiset<std::string> want_loop, got_loop;
  auto split = [](const Recorded& run, std::vector<std::string>& whole, std::multiset<std::string>& loop) {
    for (const AssembledTrace& t : run.traces) {
      if (t.root_name != "request") {
        whole.push_back(describe(t));
        continue;
      }
      for (const SpanData& s : t.spans)
        if (!(s.flags & kSpanContinued)) loop.insert(s.name + "|" + attrs_text(s.attrs) + "|" + to_string(s.status));
    }
  };
  split(assembled, want, want_loop);
  split(deferred, got, got_loop);
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << "trace #" << i;
  EXPECT_EQ(got_loop.size(), 1u + 700 * 3);
  EXPECT_TRUE(got_loop == want_loop);
  EXPECT_EQ(whole_spans(deferred.traces), whole_spans(assembled.traces));
  EXPECT_EQ(whole_spans(deferred.traces), deferred.stats.spans_recorded);
  // The three pooled workers overlap (each sleeps 50 ms): one group, in both.
  for (const Recorded* run : {&assembled, &deferred}) {
    const auto named = std::find_if(run->traces.begin(), run->traces.end(),
                                    [](const AssembledTrace& t) { return t.root_name == "named-threads"; });
    ASSERT_NE(named, run->traces.end());
    ASSERT_EQ(named->groups.size(), 1u);
    EXPECT_EQ(named->groups[0].members.size(), 3u);
    EXPECT_EQ(named->groups[0].peak_concurrency, 3u);
  }
  // The loop was handed over in parts that form one tree with its root.
  std::size_t parts = 0;
  for (const AssembledTrace& t : deferred.traces) parts += t.root_name == "request";
  EXPECT_GE(parts, 5u);
}

// A ring far too small for a burst: what is dropped is counted, and the file's traces and
// end frame say exactly that much.
TEST(Deferred, DropsAreCountedExactly) {
  const TempDir tmp;
  const fs::path path = tmp.path / "drops.strobe";
  Stats stats;
  const int n = 20000;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path.string()});
    Recorder rec(Config{.ring_capacity = 64, .sinks = {file}, .assembly = strobe::Assembly::deferred});
    {
      auto root = strobe::trace("burst");
      for (int i = 0; i < n - 1; ++i) STROBE_SPAN(s, "tick", Kind::step);
    }
    rec.flush();
    stats = rec.stats();
  }
  EXPECT_GT(stats.spans_dropped, 0u);
  Reader reader(path.string());
  BatchView b;
  std::vector<AssembledTrace> traces;
  DropCounts carried;
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) {
      traces.push_back(b.trace(i).materialize());
      carried += traces.back().drops_since_previous;
    }
  ASSERT_FALSE(reader.error()) << reader.error()->what();
  EXPECT_TRUE(reader.ended_cleanly());
  EXPECT_EQ(reader.end_info().spans_dropped, stats.spans_dropped);
  EXPECT_EQ(reader.end_info().records_dropped, stats.records_dropped);
  EXPECT_LE(carried.spans, stats.spans_dropped);
  // Every span begun is in the file or counted as dropped (a span whose begin found the
  // ring full but whose end fit is kept: its begin is written late).
  std::uint64_t kept = 0;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans) kept += !(s.flags & (kSpanContinued | kSpanPlaceholder));
  EXPECT_EQ(kept + stats.spans_dropped, static_cast<std::uint64_t>(n));
}

// The wait policy with small rings and threads starting and ending: nothing is lost, and
// each thread's spans come back under its root.
TEST(Deferred, WaitPolicyLosesNothingAcrossThreads) {
  const TempDir tmp;
  const fs::path path = tmp.path / "wait.strobe";
  const int threads = 4;
  const int per_thread = static_cast<int>(20000 * std::min(1.0, strobe::test::stress_scale()));
  Stats stats;
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path.string()});
    Recorder rec(Config{.ring_capacity = 256, .overflow = OverflowPolicy::wait, .sink_queue_spans = 1024,
                        .sinks = {file}, .assembly = strobe::Assembly::deferred});
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([t, per_thread] {
        strobe::set_thread_name("w" + std::to_string(t));
        auto root = strobe::trace("thread-" + std::to_string(t));
        for (int i = 0; i < per_thread; ++i) {
          STROBE_SPAN(s, "work", Kind::step);
          if (i % 1000 == 0) s.attr("i", i);
        }
      });
    for (auto& th : pool) th.join();
    rec.flush();
    stats = rec.stats();
  }
  EXPECT_EQ(stats.spans_dropped, 0u);
  EXPECT_EQ(stats.records_dropped, 0u);
  std::optional<ReadError> error;
  const std::vector<AssembledTrace> traces = read_all(path.string(), &error);
  ASSERT_FALSE(error) << error->what();
  std::map<std::string, std::uint64_t> spans_by_root;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans) spans_by_root[t.root_name] += !(s.flags & kSpanContinued);
  ASSERT_EQ(spans_by_root.size(), static_cast<std::size_t>(threads));
  for (const auto& [root, n] : spans_by_root) EXPECT_EQ(n, static_cast<std::uint64_t>(per_thread) + 1) << root;
}

// Damage in a records frame, or a file cut short: the traces before it, then an error
// that names the byte; the file is not said to have ended cleanly.
TEST(Deferred, DamageAndTruncationReportWhereAndKeepWhatCameBefore) {
  const TempDir tmp;
  const fs::path path = tmp.path / "log.strobe";
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path.string()});
    Recorder rec(Config{.sinks = {file}, .assembly = strobe::Assembly::deferred});
    for (int k = 0; k < 20; ++k) {
      {
        auto root = strobe::trace("t" + std::to_string(k));
        for (int i = 0; i < 50; ++i) STROBE_SPAN(s, "child", Kind::step);
      }
      rec.flush();  // a records frame a trace, or so
    }
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 4096u);
  const std::size_t whole = read_all(path.string()).size();
  EXPECT_EQ(whole, 20u);
  auto try_file = [&](const std::string& content, const char* what) {
    const fs::path damaged = tmp.path / (std::string(what) + ".strobe");
    std::ofstream(damaged, std::ios::binary) << content;
    Reader reader(damaged.string());
    EXPECT_TRUE(reader.info().records);
    BatchView b;
    std::size_t traces = 0;
    while (reader.next(b)) traces += b.trace_count();
    ASSERT_TRUE(reader.error()) << what;
    EXPECT_NE(std::string(reader.error()->what()).find("byte "), std::string::npos) << reader.error()->what();
    EXPECT_FALSE(reader.ended_cleanly()) << what;
    EXPECT_GT(traces, 0u) << what;
    EXPECT_LE(traces, whole) << what;
  };
  std::string flipped = bytes;
  flipped[bytes.size() * 2 / 3] ^= 0x5a;
  try_file(flipped, "flipped");
  try_file(bytes.substr(0, bytes.size() * 2 / 3), "truncated");
}

TEST(Deferred, RefusesSinksThatCannotTakeTheLog) {
  const TempDir tmp;
  EXPECT_THROW(Recorder(Config{.sinks = {std::make_shared<MemorySink>()}, .assembly = strobe::Assembly::deferred}), ConfigError);
  auto rotating = std::make_shared<FileSink>(
      FileSinkOptions{.path = (tmp.path / "r.strobe").string(), .rotate_bytes = 1 << 20});
  EXPECT_FALSE(rotating->takes_records());
  EXPECT_THROW(Recorder(Config{.sinks = {rotating}, .assembly = strobe::Assembly::deferred}), ConfigError);
  auto plain = std::make_shared<FileSink>(FileSinkOptions{.path = (tmp.path / "p.strobe").string()});
  EXPECT_TRUE(plain->takes_records());
  EXPECT_NO_THROW(Recorder(Config{.sinks = {plain}, .assembly = strobe::Assembly::deferred}));
}

// Assembly::automatic (the default) defers when there is a sink and every sink takes the
// log, and says what it took in Recorder::config().
TEST(Deferred, AutomaticDefersWhenEverySinkTakesTheLog) {
  const TempDir tmp;
  auto file = [&](const char* name, std::size_t rotate = 0) {
    return std::make_shared<FileSink>(FileSinkOptions{.path = (tmp.path / name).string(), .rotate_bytes = rotate});
  };
  auto taken = [](Config c) { return Recorder(std::move(c)).config().assembly; };
  EXPECT_EQ(Config{}.assembly, Assembly::automatic);
  EXPECT_EQ(taken(Config{}), Assembly::in_process);  // no sink: nothing to store a log
  EXPECT_EQ(taken(Config{.sinks = {file("a.strobe")}}), Assembly::deferred);
  EXPECT_EQ(taken(Config{.sinks = {file("b.strobe"), file("c.strobe")}}), Assembly::deferred);
  EXPECT_EQ(taken(Config{.sinks = {file("d.strobe"), std::make_shared<MemorySink>()}}), Assembly::in_process);
  EXPECT_EQ(taken(Config{.sinks = {file("e.strobe", 1 << 20)}}), Assembly::in_process);  // rotation
  EXPECT_EQ(taken(Config{.sinks = {file("f.strobe")}, .assembly = Assembly::in_process}), Assembly::in_process);
  EXPECT_THROW(Recorder(Config{.assembly = static_cast<Assembly>(7)}), ConfigError);
  EXPECT_STREQ(to_string(Assembly::deferred), "deferred");
  // A file the default wrote is the record log; one assembled in the process is not.
  EXPECT_TRUE(Reader((tmp.path / "a.strobe").string()).info().records);
  EXPECT_FALSE(Reader((tmp.path / "f.strobe").string()).info().records);
}

// A log that cannot be assembled for want of room for its temporary file says where it
// looked and what to do instead; assembling it once into a chosen path still works.
TEST(Deferred, NoRoomForTheTemporaryFileSaysWhatToDo) {
  const TempDir tmp;
  const std::string path = (tmp.path / "log.strobe").string();
  {
    auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path});
    Recorder rec(Config{.sinks = {file}});
    auto root = strobe::trace("request");
    { auto s = strobe::span("step", Kind::step); }
  }
  const char* before = std::getenv("TMPDIR");
  const std::string saved = before != nullptr ? before : "";
  const std::string missing = (tmp.path / "no-such-dir").string();
  ::setenv("TMPDIR", missing.c_str(), 1);
  std::string message;
  try {
    Reader reader(path);
  } catch (const ReadError& e) {
    message = e.what();
  }
  if (before != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("TMPDIR"), std::string::npos) << message;
  EXPECT_NE(message.find("strobe assemble"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  const std::string out = (tmp.path / "assembled.strobe").string();
  serialize::assemble(path, out);
  Reader assembled(out);
  EXPECT_FALSE(assembled.info().records);
  BatchView b;
  std::size_t spans = 0;
  while (assembled.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) spans += b.trace(i).span_count();
  EXPECT_EQ(spans, 2u);
}

using strobe::test::RefusesOneChunk;

// A chunk the sink did not store, in a file that never got its end frame (the process was
// killed): the resync that followed the loss says what was lost, so the file still tells.
TEST(Deferred, AChunkLostBeforeAKillIsCountedWithoutTheEndFrame) {
  const TempDir tmp;
  const fs::path path = tmp.path / "log.strobe", cut = tmp.path / "killed.strobe";
  auto file = std::make_shared<FileSink>(FileSinkOptions{.path = path.string()});
  auto sink = std::make_shared<RefusesOneChunk>(file);
  {
    Recorder rec(Config{.sinks = {sink}});
    for (const char* name : {"first", "lost", "after", "later"}) {
      {
        auto root = strobe::trace(name);
        { auto s = strobe::span(std::string(name) + "-step", Kind::step); }
      }
      rec.flush();
    }
    fs::copy_file(path, cut);  // as a SIGKILL leaves it: flushed, no end frame
  }
  ASSERT_GT(sink->refused_spans(), 0u);
  Reader reader(cut.string());
  BatchView b;
  std::vector<std::string> roots;
  while (reader.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) roots.push_back(std::string(b.trace(i).root_name()));
  ASSERT_TRUE(reader.error());
  EXPECT_NE(std::string(reader.error()->what()).find("without an end frame"), std::string::npos) << reader.error()->what();
  EXPECT_FALSE(reader.ended_cleanly());
  EXPECT_EQ(reader.write_loss().frames, 1u);
  EXPECT_EQ(reader.write_loss().spans, sink->refused_spans());
  EXPECT_EQ(roots.back(), "later");  // read on past the loss
  EXPECT_LT(roots.size(), 4u);
}

// Deferred assembly prepares no memory for assembling (expected_trace_spans touches the
// assembler's memory up front: ~740 MB at its largest, 2^22).
TEST(Deferred, PreparesNoAssemblerMemoryForExpectedTraces) {
  const TempDir tmp;
  auto file = std::make_shared<FileSink>(FileSinkOptions{.path = (tmp.path / "log.strobe").string()});
  const std::int64_t before = strobe::test::rss_bytes("VmRSS");
  Recorder rec(Config{.expected_trace_spans = std::size_t{1} << 22, .sinks = {file}});
  ASSERT_EQ(rec.config().assembly, Assembly::deferred);
  const std::int64_t after = strobe::test::rss_bytes("VmRSS");
  ASSERT_GT(before, 0) << "no /proc/self/status";
  EXPECT_LT(after - before, std::int64_t{256} << 20);
}
