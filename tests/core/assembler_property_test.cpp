// Randomized property test of the whole pipeline: a random span forest is executed for
// real (nesting, cross-thread adoption, suspend/resume across threads, ends on other
// threads, attributes, events, failures), and the assembled traces must reproduce it
// exactly. Parallel groups are recomputed by brute force from the assembled intervals.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

// A key set twice keeps its first place and its last value (set_attribute semantics).
std::vector<strobe::Attribute> last_value_wins(const std::vector<strobe::Attribute>& in) {
  std::vector<strobe::Attribute> out;
  for (const strobe::Attribute& a : in) {
    auto it = std::find_if(out.begin(), out.end(), [&](const strobe::Attribute& o) { return o.key == a.key; });
    if (it == out.end()) {
      out.push_back(a);
    } else {
      *it = a;
    }
  }
  return out;
}

using strobe::AssembledTrace;
using strobe::Attribute;
using strobe::AttrValue;
using strobe::Kind;
using strobe::SpanData;
using strobe::Status;

constexpr int kWorkers = 4;

// ---- the generated forest ----

struct EventSpec {
  std::string name;
  std::vector<Attribute> attrs;
};

struct SegmentSpec {
  std::vector<Attribute> attrs;
  std::vector<EventSpec> events;
  std::vector<std::vector<int>> batches;  // child node ids; the children of a batch run concurrently
  int resume_on = -1;                     // segments after the first: -1 the suspending thread, else a worker
};

struct NodeSpec {
  int id = 0;
  int parent = -1;  // -1: a trace root
  int parent_segment = 0;
  Kind kind = Kind::span;
  std::string custom_kind;  // non-empty: Kind::custom
  int place = -1;           // -1: runs on its parent's thread; else handed to that worker
  int end_on = -1;          // leaves only: >= 0 finishes the span on that worker
  bool failed = false;
  std::vector<SegmentSpec> segments;

  [[nodiscard]] std::string name() const { return "n" + std::to_string(id); }
  [[nodiscard]] std::string error() const { return "e" + std::to_string(id); }
};

struct Forest {
  std::vector<NodeSpec> nodes;
  std::vector<int> roots;
};

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  Forest make() {
    max_depth_ = pick(1, 5);
    max_fanout_ = pick(1, 5);
    max_nodes_ = pick(5, 60);
    const int roots = pick(1, 3);
    for (int r = 0; r < roots; ++r) forest_.roots.push_back(node(-1, 0, 0, pick(-1, kWorkers - 1)));
    return std::move(forest_);
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  AttrValue value() {
    AttrValue v;
    switch (pick(0, 3)) {
      case 0:
        v.type = AttrValue::Type::i64;
        v.i = static_cast<std::int64_t>(rng_());
        break;
      case 1:
        v.type = AttrValue::Type::f64;
        v.d = std::uniform_real_distribution<double>(-1e9, 1e9)(rng_);
        break;
      case 2:
        v.type = AttrValue::Type::boolean;
        v.i = chance(0.5) ? 1 : 0;
        break;
      default: {
        v.type = AttrValue::Type::string;
        const int len = chance(0.3) ? pick(33, 300) : pick(0, 32);  // long ones need continuations
        for (int i = 0; i < len; ++i) v.s.push_back(static_cast<char>(pick(32, 126)));
        break;
      }
    }
    return v;
  }

  std::vector<Attribute> attrs(int max) {
    static const char* const kKeys[] = {"a", "b", "gen_ai.usage.input_tokens", "k"};
    std::vector<Attribute> out(static_cast<std::size_t>(pick(0, max)));
    for (Attribute& a : out) {
      a.key = kKeys[pick(0, 3)];
      a.value = value();
    }
    return out;
  }

  int node(int parent, int parent_segment, int depth, int place) {
    const int id = static_cast<int>(forest_.nodes.size());
    forest_.nodes.emplace_back();
    {
      NodeSpec& n = forest_.nodes.back();
      n.id = id;
      n.parent = parent;
      n.parent_segment = parent_segment;
      n.place = place;
      n.kind = static_cast<Kind>(pick(0, 7));
      if (parent >= 0 && chance(0.1)) {
        n.kind = Kind::custom;
        n.custom_kind = "kind" + std::to_string(pick(0, 2));
      }
      n.failed = chance(0.2);
      n.segments.resize(chance(0.7) ? 1 : static_cast<std::size_t>(pick(2, 4)));
    }
    const std::size_t segments = forest_.nodes[static_cast<std::size_t>(id)].segments.size();
    for (std::size_t k = 0; k < segments; ++k) {
      SegmentSpec seg;
      seg.attrs = attrs(3);
      for (int e = pick(0, 2); e > 0; --e) seg.events.push_back({"ev" + std::to_string(pick(0, 3)), attrs(2)});
      if (k > 0) seg.resume_on = pick(-1, kWorkers - 1);
      forest_.nodes[static_cast<std::size_t>(id)].segments[k] = std::move(seg);
      int children = depth < max_depth_ ? pick(0, max_fanout_) : 0;
      while (children > 0 && static_cast<int>(forest_.nodes.size()) < max_nodes_) {
        const int size = std::min(children, pick(1, 3));
        children -= size;
        std::vector<int> batch;
        for (int c = 0; c < size; ++c) {
          // A batch of one runs on this thread or is handed over; larger ones mostly fan out.
          const bool handed = size == 1 ? chance(0.4) : chance(0.8);
          batch.push_back(node(id, static_cast<int>(k), depth + 1, handed ? pick(0, kWorkers - 1) : -1));
        }
        forest_.nodes[static_cast<std::size_t>(id)].segments[k].batches.push_back(std::move(batch));
      }
    }
    NodeSpec& n = forest_.nodes[static_cast<std::size_t>(id)];
    if (parent >= 0 && n.segments.size() == 1 && n.segments[0].batches.empty() &&
        n.kind != Kind::custom && chance(0.3))
      n.end_on = pick(0, kWorkers - 1);
    return id;
  }

  std::mt19937_64 rng_;
  Forest forest_;
  int max_depth_ = 0, max_fanout_ = 0, max_nodes_ = 0;
};

// ---- execution: four workers; a thread waiting for work it handed over runs its own
// queue meanwhile, so nested hand-overs never deadlock ----

class Pool {
 public:
  using Job = std::pair<int, std::function<void()>>;  // worker, or -1 for the calling thread

  Pool() {
    for (int i = 0; i < kWorkers; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Posts the jobs for workers, runs the calling thread's own, and waits for all.
  void run_all(std::vector<Job> jobs) {
    Join join;
    {
      std::lock_guard lock(mutex_);
      for (Job& j : jobs) {
        if (j.first < 0) continue;
        ++join.left;
        queues_[static_cast<std::size_t>(j.first)].push_back(Task{std::move(j.second), &join});
      }
    }
    cv_.notify_all();
    for (Job& j : jobs)
      if (j.first < 0) j.second();
    std::unique_lock lock(mutex_);
    while (join.left > 0) {
      if (t_worker >= 0 && !queues_[static_cast<std::size_t>(t_worker)].empty()) {
        run_one(lock);
        continue;
      }
      cv_.wait(lock);
    }
  }

 private:
  struct Join {
    int left = 0;
  };
  struct Task {
    std::function<void()> fn;
    Join* join;
  };

  void run_one(std::unique_lock<std::mutex>& lock) {
    auto& q = queues_[static_cast<std::size_t>(t_worker)];
    Task t = std::move(q.front());
    q.pop_front();
    lock.unlock();
    t.fn();
    lock.lock();
    if (--t.join->left == 0) cv_.notify_all();
  }

  void work(int index) {
    t_worker = index;
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!queues_[static_cast<std::size_t>(index)].empty()) {
        run_one(lock);
        continue;
      }
      if (stop_) return;
      cv_.wait(lock);
    }
  }

  inline static thread_local int t_worker = -1;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queues_[kWorkers];
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

strobe::Value to_value(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: return strobe::Value(v.i);
    case AttrValue::Type::f64: return strobe::Value(v.d);
    case AttrValue::Type::boolean: return strobe::Value(v.i != 0);
    case AttrValue::Type::string: break;
  }
  return strobe::Value(std::string_view(v.s));
}

class Runner {
 public:
  Runner(const Forest& f, Pool& pool) : f_(f), pool_(pool) {}

  void run() {
    std::vector<Pool::Job> jobs;
    for (int r : f_.roots) jobs.emplace_back(spec(r).place, [this, r] { run_root(r); });
    pool_.run_all(std::move(jobs));
  }

 private:
  const NodeSpec& spec(int id) const { return f_.nodes[static_cast<std::size_t>(id)]; }

  void run_root(int id) {
    const NodeSpec& n = spec(id);
    run_segment(n, 0, strobe::start_span(strobe::Name(n.name()), n.kind,
                                         {.mark_as_current = true, .new_trace = true}));
  }

  // The parent's context is current on the calling thread.
  void run_child(int id) {
    const NodeSpec& n = spec(id);
    if (n.end_on >= 0) {
      strobe::Span s = strobe::start_span(strobe::Name(n.name()), n.kind);
      fill(s, n.segments[0]);
      if (n.failed) s.fail(n.error());
      pool_.run_all({{n.end_on, [&s] { s.finish(); }}});
      return;
    }
    run_segment(n, 0,
                n.kind == Kind::custom ? strobe::span(n.name(), std::string_view(n.custom_kind))
                                       : strobe::span(n.name(), n.kind));
  }

  static void fill(strobe::Span& s, const SegmentSpec& seg) {
    for (const Attribute& a : seg.attrs) s.attr(std::string_view(a.key), to_value(a.value));
    for (const EventSpec& e : seg.events) {
      const std::string_view name(e.name);
      switch (e.attrs.size()) {
        case 0: s.event(name); break;
        case 1: s.event(name, {{e.attrs[0].key, to_value(e.attrs[0].value)}}); break;
        default:
          s.event(name, {{e.attrs[0].key, to_value(e.attrs[0].value)},
                         {e.attrs[1].key, to_value(e.attrs[1].value)}});
          break;
      }
    }
  }

  void run_segment(const NodeSpec& n, std::size_t k, strobe::Span s) {
    const SegmentSpec& seg = n.segments[k];
    fill(s, seg);
    for (const std::vector<int>& batch : seg.batches) {
      const strobe::Context ctx = strobe::current();
      std::vector<Pool::Job> jobs;
      for (int c : batch) {
        if (spec(c).place < 0) {
          jobs.emplace_back(-1, [this, c] { run_child(c); });
        } else {
          jobs.emplace_back(spec(c).place, [this, c, ctx] {
            strobe::ContextScope scope(ctx);
            run_child(c);
          });
        }
      }
      pool_.run_all(std::move(jobs));
    }
    if (k + 1 == n.segments.size()) {
      if (n.failed) s.fail(n.error());
      s.finish();
      return;
    }
    const strobe::SuspendToken token = s.suspend();
    auto next = [this, &n, k, token] { run_segment(n, k + 1, strobe::resume(token)); };
    const int where = n.segments[k + 1].resume_on;
    if (where < 0) {
      next();
    } else {
      pool_.run_all({{where, next}});
    }
  }

  const Forest& f_;
  Pool& pool_;
};

// ---- checks ----

// Parallel groups by brute force: per parent, connected components (size >= 2) of the graph
// whose edges join siblings with a non-empty intersection of their [start, end).
std::vector<strobe::ParallelGroup> brute_force_groups(const AssembledTrace& t) {
  std::map<std::uint64_t, std::vector<std::size_t>> siblings;
  for (std::size_t i = 0; i < t.spans.size(); ++i) siblings[t.spans[i].parent_id].push_back(i);
  std::vector<strobe::ParallelGroup> groups;
  for (const auto& [parent, sibs] : siblings) {
    std::vector<std::size_t> comp(sibs.size());
    std::iota(comp.begin(), comp.end(), 0);
    auto root = [&](std::size_t x) {
      while (comp[x] != x) x = comp[x];
      return x;
    };
    for (std::size_t a = 0; a < sibs.size(); ++a) {
      for (std::size_t b = a + 1; b < sibs.size(); ++b) {
        const SpanData& x = t.spans[sibs[a]];
        const SpanData& y = t.spans[sibs[b]];
        if (std::max(x.start_ns, y.start_ns) < std::min(x.end_ns, y.end_ns)) comp[root(a)] = root(b);
      }
    }
    std::map<std::size_t, std::vector<const SpanData*>> members;
    for (std::size_t a = 0; a < sibs.size(); ++a) members[root(a)].push_back(&t.spans[sibs[a]]);
    for (auto& [r, m] : members) {
      if (m.size() < 2) continue;
      std::sort(m.begin(), m.end(), [](const SpanData* x, const SpanData* y) {
        return x->start_ns != y->start_ns ? x->start_ns < y->start_ns : x->span_id < y->span_id;
      });
      strobe::ParallelGroup g;
      g.parent_id = parent;
      g.start_ns = m.front()->start_ns;
      g.end_ns = m.front()->end_ns;
      for (const SpanData* s : m) {
        g.members.push_back(s->span_id);
        g.end_ns = std::max(g.end_ns, s->end_ns);
        std::uint32_t live = 0;  // members running at s's start
        for (const SpanData* o : m) live += o->start_ns <= s->start_ns && s->start_ns < o->end_ns;
        g.peak_concurrency = std::max(g.peak_concurrency, live);
      }
      groups.push_back(std::move(g));
    }
  }
  return groups;
}

std::string describe(const strobe::ParallelGroup& g) {
  std::ostringstream os;
  os << "parent " << g.parent_id << " [" << g.start_ns << ", " << g.end_ns << ") peak "
     << g.peak_concurrency << " members";
  for (std::uint64_t m : g.members) os << ' ' << m;
  return os.str();
}

void check_groups(const AssembledTrace& t) {
  auto key = [](const strobe::ParallelGroup& g) { return std::make_pair(g.parent_id, g.members.front()); };
  auto by_key = [&](const strobe::ParallelGroup& a, const strobe::ParallelGroup& b) { return key(a) < key(b); };
  std::vector<strobe::ParallelGroup> expected = brute_force_groups(t);
  std::vector<strobe::ParallelGroup> actual = t.groups;
  std::map<std::uint64_t, std::int32_t> group_of;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].id, i);
    for (std::uint64_t m : actual[i].members) group_of[m] = static_cast<std::int32_t>(i);
    actual[i].id = 0;
  }
  for (const SpanData& s : t.spans) {
    auto it = group_of.find(s.span_id);
    EXPECT_EQ(s.group, it == group_of.end() ? -1 : it->second) << s.name;
  }
  std::sort(expected.begin(), expected.end(), by_key);
  std::sort(actual.begin(), actual.end(), by_key);
  std::vector<std::string> want, got;
  for (const auto& g : expected) want.push_back(describe(g));
  for (const auto& g : actual) got.push_back(describe(g));
  EXPECT_EQ(got, want);
}

// t.spans is depth-first with children in (start, span id) order.
void check_order(const AssembledTrace& t) {
  std::map<std::uint64_t, std::vector<const SpanData*>> kids;
  std::map<std::uint64_t, bool> present;
  for (const SpanData& s : t.spans) present[s.span_id] = true;
  std::vector<const SpanData*> roots;
  for (const SpanData& s : t.spans) {
    if (s.parent_id != 0 && present.count(s.parent_id)) {
      kids[s.parent_id].push_back(&s);
    } else {
      roots.push_back(&s);
    }
  }
  auto earlier = [](const SpanData* a, const SpanData* b) {
    return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->span_id < b->span_id;
  };
  std::vector<std::uint64_t> want;
  auto visit = [&](auto&& self, const SpanData* s) -> void {
    want.push_back(s->span_id);
    auto& k = kids[s->span_id];
    std::sort(k.begin(), k.end(), earlier);
    for (const SpanData* c : k) self(self, c);
  };
  std::sort(roots.begin(), roots.end(), earlier);
  for (const SpanData* r : roots) visit(visit, r);
  std::vector<std::uint64_t> got;
  for (const SpanData& s : t.spans) got.push_back(s.span_id);
  EXPECT_EQ(got, want);
}

void check_trace(const Forest& f, int root, const AssembledTrace& t) {
  EXPECT_FALSE(t.partial);
  EXPECT_EQ(t.part, 0u);
  std::map<std::string, std::vector<const SpanData*>> by_name;
  for (const SpanData& s : t.spans) by_name[s.name].push_back(&s);

  std::vector<int> subtree{root};
  for (std::size_t i = 0; i < subtree.size(); ++i)
    for (const SegmentSpec& seg : f.nodes[static_cast<std::size_t>(subtree[i])].segments)
      for (const auto& batch : seg.batches) subtree.insert(subtree.end(), batch.begin(), batch.end());

  std::size_t expected_spans = 0;
  std::vector<strobe::SegmentChain> chains;
  std::map<int, std::vector<const SpanData*>> segments_of;
  for (int id : subtree) {
    const NodeSpec& n = f.nodes[static_cast<std::size_t>(id)];
    expected_spans += n.segments.size();
    std::vector<const SpanData*> segs = by_name[n.name()];
    ASSERT_EQ(segs.size(), n.segments.size()) << n.name();
    std::sort(segs.begin(), segs.end(),
              [](const SpanData* a, const SpanData* b) { return a->segment_index < b->segment_index; });
    segments_of[id] = segs;
  }
  ASSERT_EQ(t.spans.size(), expected_spans);

  for (int id : subtree) {
    const NodeSpec& n = f.nodes[static_cast<std::size_t>(id)];
    const auto& segs = segments_of[id];
    const std::size_t last = segs.size() - 1;
    strobe::SegmentChain chain{segs[0]->span_id, {}, 0};
    for (std::size_t k = 0; k < segs.size(); ++k) {
      const SpanData& s = *segs[k];
      SCOPED_TRACE(n.name() + " segment " + std::to_string(k));
      EXPECT_EQ(s.kind, n.kind);
      EXPECT_EQ(s.kind_name, n.custom_kind);
      EXPECT_EQ(s.attrs, last_value_wins(n.segments[k].attrs));
      const auto& want_events = n.segments[k].events;
      ASSERT_EQ(s.events.size(), want_events.size());
      for (std::size_t e = 0; e < want_events.size(); ++e) {
        EXPECT_EQ(s.events[e].name, want_events[e].name);
        EXPECT_EQ(s.events[e].attrs, last_value_wins(want_events[e].attrs));
        EXPECT_GE(s.events[e].time_ns, s.start_ns);
        EXPECT_LE(s.events[e].time_ns, s.end_ns);
      }
      if (n.parent < 0) {
        EXPECT_EQ(s.parent_id, 0u);
        if (k == 0) EXPECT_NE(s.flags & strobe::kSpanTraceRoot, 0u);
      } else {
        const SpanData* p = segments_of.at(n.parent)[static_cast<std::size_t>(n.parent_segment)];
        EXPECT_EQ(s.parent_id, p->span_id);
        EXPECT_EQ(s.flags & strobe::kSpanTraceRoot, 0u);
      }
      EXPECT_EQ(s.flags & (strobe::kSpanIncomplete | strobe::kSpanOrphan | strobe::kSpanLostRecords |
                           strobe::kSpanThrown | strobe::kSpanTruncated),
                0u);
      EXPECT_EQ((s.flags & strobe::kSpanSuspended) != 0, k < last);
      const bool failed = n.failed && k == last;
      EXPECT_EQ(s.status, failed ? Status::failed : Status::ok);
      EXPECT_EQ(s.error_message, failed ? n.error() : "");
      EXPECT_LE(s.start_ns, s.end_ns);
      if (segs.size() == 1) {
        EXPECT_EQ(s.segment_of, 0u);
        EXPECT_EQ(s.segment_index, 0u);
      } else {
        EXPECT_EQ(s.segment_of, segs[0]->span_id);
        EXPECT_EQ(s.segment_index, k);
        chain.segments.push_back(s.span_id);
        if (k > 0) chain.waited_ns += s.start_ns - segs[k - 1]->end_ns;
      }
    }
    if (segs.size() > 1) chains.push_back(std::move(chain));
  }

  auto by_first = [](const strobe::SegmentChain& a, const strobe::SegmentChain& b) {
    return a.first_span_id < b.first_span_id;
  };
  std::vector<strobe::SegmentChain> got = t.chains;
  std::sort(got.begin(), got.end(), by_first);
  std::sort(chains.begin(), chains.end(), by_first);
  EXPECT_EQ(got, chains);
  check_order(t);
  check_groups(t);
}

std::string describe_all(const std::vector<AssembledTrace>& traces) {
  std::string all;
  for (const AssembledTrace& t : traces)
    all += "part " + std::to_string(t.part) + (t.partial ? " (partial)\n" : "\n") +
           strobe::test::render_tree(t);
  return all;
}

TEST(AssemblerProperty, RandomForestsAssembleExactly) {
  const int seeds = std::max(40, static_cast<int>(200 * strobe::test::stress_scale()));
  Pool pool;
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.ring_capacity = 256;  // small: rings wrap and writers wait for the drainer
  config.overflow = strobe::OverflowPolicy::wait;
  config.drain_interval = std::chrono::microseconds(200);
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  strobe::Stats before = recorder.stats();
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Forest forest = Generator(static_cast<std::uint64_t>(seed)).make();
    Runner(forest, pool).run();
    recorder.flush();
    const std::vector<AssembledTrace> traces = sink->take();
    const strobe::Stats after = recorder.stats();
    std::size_t spans = 0;
    for (const NodeSpec& n : forest.nodes) spans += n.segments.size();
    EXPECT_EQ(after.spans_recorded - before.spans_recorded, spans);
    EXPECT_EQ(after.spans_assembled - before.spans_assembled, spans);
    EXPECT_EQ(after.spans_dropped, 0u);
    EXPECT_EQ(after.records_dropped, 0u);
    EXPECT_EQ(after.orphan_records, 0u);
    EXPECT_EQ(after.misuse, 0u);
    before = after;
    ASSERT_EQ(traces.size(), forest.roots.size()) << describe_all(traces);
    for (int root : forest.roots) {
      const std::string name = forest.nodes[static_cast<std::size_t>(root)].name();
      auto it = std::find_if(traces.begin(), traces.end(),
                             [&](const AssembledTrace& t) { return t.root_name == name; });
      ASSERT_NE(it, traces.end()) << name;
      SCOPED_TRACE(strobe::test::render_tree(*it));
      check_trace(forest, root, *it);
    }
    if (HasFailure()) break;  // one seed's report is enough
  }
}

// A trace root that suspends (the agent waits) and resumes on another thread is one
// operation: its trace must stay open through the wait and come out whole, with the chain.
TEST(AssemblerProperty, SuspendedRootKeepsItsTraceOpen) {
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.drain_interval = std::chrono::microseconds(100);
  config.sinks = {sink};
  strobe::Recorder recorder(config);
  strobe::SuspendToken token;
  std::uint64_t first = 0;
  {
    strobe::Span run = strobe::trace("agent");
    first = run.span_id();
    { auto before = strobe::span("before"); }
    token = run.suspend();
  }
  // Many drain passes go by while the operation waits.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::thread([&] {
    strobe::Span again = strobe::resume(token);
    auto after = strobe::span("after");
  }).join();
  recorder.flush();
  const std::vector<AssembledTrace> traces = sink->take();
  ASSERT_EQ(traces.size(), 1u) << describe_all(traces);
  const AssembledTrace& t = traces[0];
  EXPECT_FALSE(t.partial);
  EXPECT_EQ(t.root_name, "agent");
  EXPECT_EQ(strobe::test::render_tree(t), "agent agent #0\n  span before\nagent agent #1\n  span after\n");
  ASSERT_EQ(t.chains.size(), 1u);
  EXPECT_EQ(t.chains[0].first_span_id, first);
  EXPECT_EQ(t.chains[0].segments.size(), 2u);
  EXPECT_GT(t.chains[0].waited_ns, 0);
}

// A pool thread that recorded under an earlier Recorder adopts a context of the current
// one: its first span must attach to the adopted parent, not start a new trace.
TEST(AssemblerProperty, AdoptedContextSurvivesARecorderChange) {
  Pool pool;
  {
    strobe::Recorder first;
    pool.run_all({{0, [] { auto s = strobe::span("under_first"); }}});
  }
  auto sink = std::make_shared<strobe::MemorySink>();
  strobe::Config config;
  config.sinks = {sink};
  strobe::Recorder second(config);
  {
    auto root = strobe::trace("root");
    const strobe::Context ctx = strobe::current();
    pool.run_all({{0, [ctx] {
                     strobe::ContextScope scope(ctx);
                     auto child = strobe::span("adopted");
                   }}});
  }
  second.flush();
  const std::vector<AssembledTrace> traces = sink->take();
  ASSERT_EQ(traces.size(), 1u) << "the adopted span started a trace of its own";
  EXPECT_EQ(strobe::test::render_tree(traces[0]), "agent root\n  span adopted\n");
}

}  // namespace
