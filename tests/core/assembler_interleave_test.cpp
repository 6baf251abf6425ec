// The Assembler fed hand-built records in every order a drainer can see them: records of
// one span spread over several rings, children before parents, ends before begins, and
// the pass rule that keeps a trace open until a whole pass after it became complete.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "assembler.hpp"
#include "clock.hpp"
#include "render.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/detail/thread_state.hpp"

namespace strobe::detail {
namespace {

using test::render_tree;

constexpr TraceId kTrace{0x1111, 0x2222};
constexpr TraceId kOtherTrace{0x3333, 0x4444};
constexpr std::uint64_t kThreadA = 101, kThreadB = 202, kThreadC = 303;

std::uint32_t name_id(std::string_view s) { return intern(s.data(), s.size()); }

// One record as it sits in a ring, with the thread that owns the ring and, for string
// records, the reassembled text.
struct Item {
  Record rec{};
  std::uint64_t thread = 0;
  std::string text;
};

// Builds records whose ticks are steady-clock ns: tick base + x maps to wall wall0 + x.
class Fixture : public ::testing::Test {
 protected:
  Fixture() : clock_(false), base_(clock_.now_ticks()), wall0_(clock_.to_wall_ns(base_)) {}

  [[nodiscard]] Assembler make(std::size_t partial_spans = 100000) const {
    Assembler::Options o;
    o.service_name = "svc";
    o.process_id = 7;
    o.partial_trace_spans = partial_spans;
    return Assembler(o, clock_);
  }

  [[nodiscard]] std::int64_t wall(std::int64_t x) const { return wall0_ + x; }

  Item begin(std::uint64_t id, std::uint64_t parent, std::string_view name, std::int64_t at,
             std::uint64_t thread, Kind kind = Kind::span, TraceId trace = kTrace) const {
    Item it;
    it.thread = thread;
    Record& r = it.rec;
    r.type = RecType::begin;
    r.flags = parent == 0 ? kTraceRoot : 0;
    r.aux = static_cast<std::uint16_t>(kind);
    r.key = name_id(name);
    r.span_id = id;
    r.ts = base_ + static_cast<std::uint64_t>(at);
    r.payload.begin.trace_hi = trace.hi;
    r.payload.begin.trace_lo = trace.lo;
    r.payload.begin.parent_id = parent;
    return it;
  }

  // Span::next's record: begins `id` and ends its sibling `ended` at the same instant.
  Item chain_next(std::uint64_t id, std::uint64_t parent, std::string_view name, std::int64_t at,
                  std::uint64_t ended, std::uint64_t thread) const {
    Item it = begin(id, parent, name, at, thread);
    it.rec.type = RecType::next;
    it.rec.payload.begin.ended_span = ended;
    return it;
  }

  Item end(std::uint64_t id, std::int64_t at, std::uint64_t thread, Status status = Status::ok,
           std::uint8_t flags = 0) const {
    Item it;
    it.thread = thread;
    it.rec.type = RecType::end;
    it.rec.flags = flags;
    it.rec.aux = static_cast<std::uint16_t>(status);
    it.rec.span_id = id;
    it.rec.ts = base_ + static_cast<std::uint64_t>(at);
    return it;
  }

  static Item attr(std::uint64_t id, std::string_view key, std::int64_t v, std::uint64_t thread,
                   std::uint8_t flags = 0) {
    Item it;
    it.thread = thread;
    it.rec.type = RecType::attr_int;
    it.rec.flags = flags;
    it.rec.key = name_id(key);
    it.rec.span_id = id;
    it.rec.payload.i64 = v;
    return it;
  }

  static Item str(std::uint64_t id, StrKind kind, std::string_view key, std::string text,
                  std::uint64_t thread, std::uint8_t flags = 0) {
    Item it;
    it.thread = thread;
    it.rec.type = RecType::string;
    it.rec.flags = flags;
    it.rec.aux = static_cast<std::uint16_t>(kind);
    it.rec.key = key.empty() ? 0 : name_id(key);
    it.rec.span_id = id;
    it.rec.payload.str.length = static_cast<std::uint32_t>(text.size());
    it.rec.payload.str.original_length = static_cast<std::uint32_t>(text.size());
    it.text = std::move(text);
    return it;
  }

  Item event(std::uint64_t id, std::string_view name, std::int64_t at, std::uint64_t thread) const {
    Item it;
    it.thread = thread;
    it.rec.type = RecType::event;
    it.rec.key = name_id(name);
    it.rec.span_id = id;
    it.rec.ts = base_ + static_cast<std::uint64_t>(at);
    return it;
  }

  static Item link(std::uint64_t id, std::uint64_t previous, std::uint64_t first,
                   std::uint32_t index, std::uint64_t thread) {
    Item it;
    it.thread = thread;
    it.rec.type = RecType::link;
    it.rec.span_id = id;
    it.rec.payload.link.previous_span_id = previous;
    it.rec.payload.link.first_span_id = first;
    it.rec.payload.link.segment_index = index;
    return it;
  }

  static void feed(Assembler& a, const std::vector<Item>& items) {
    for (const Item& it : items) {
      std::string text = it.text;
      a.on_record(it.rec, it.thread, std::move(text));
    }
  }

  // Runs passes until something is emitted (at most `limit`); returns how many it took.
  int passes_until_emitted(Assembler& a, std::vector<AssembledTrace>& out, int limit = 5) {
    for (int p = 1; p <= limit; ++p) {
      a.end_of_pass(out, wall(1'000'000));
      if (!out.empty()) return p;
    }
    return -1;
  }

  Clock clock_;
  std::uint64_t base_;
  std::int64_t wall0_;
};

const SpanData* find(const AssembledTrace& t, std::string_view name) {
  for (const SpanData& s : t.spans)
    if (s.name == name) return &s;
  return nullptr;
}

const SpanData* find(const AssembledTrace& t, std::uint64_t span_id) {
  for (const SpanData& s : t.spans)
    if (s.span_id == span_id) return &s;
  return nullptr;
}

// ---- damaged input ----

// Parents that name each other (only a damaged or hostile record log can hold them): no
// root leads to either span, and both are still handed over, each once.
TEST_F(Fixture, SpansWhoseParentsFormACycleAreHandedOverOnce) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 100, kThreadA),
           begin(2, 3, "left", 10, kThreadB), end(2, 20, kThreadB),
           begin(3, 2, "right", 30, kThreadB), end(3, 40, kThreadB),
           begin(4, 2, "below", 35, kThreadC), end(4, 38, kThreadC)});
  std::vector<AssembledTrace> out;
  ASSERT_GT(passes_until_emitted(a, out), 0);
  ASSERT_EQ(out.size(), 1u);
  std::vector<std::uint64_t> ids;
  for (const SpanData& s : out[0].spans) ids.push_back(s.span_id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(a.open_spans(), 0u);
}

// A span id begun again while the first span with that id is open (only a damaged or
// hostile record log holds one), with the trace handed over in parts of one span: the
// first span ends and is forgotten while the second, open, is kept for the next part.
TEST_F(Fixture, ASpanIdBegunAgainWhileOpenSurvivesPartialHandOver) {
  Assembler a = make(1);
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "first", 10, kThreadA)});
  feed(a, {end(2, 20, kThreadB)});
  feed(a, {begin(2, 1, "second", 30, kThreadC)});
  std::vector<AssembledTrace> out;
  a.end_of_pass(out, wall(1'000'000));
  feed(a, {end(2, 40, kThreadC), end(1, 50, kThreadA)});
  for (int p = 0; p < 3; ++p) a.end_of_pass(out, wall(1'000'000));
  std::vector<std::string> names;
  for (const AssembledTrace& t : out)
    for (const SpanData& s : t.spans)
      if (!(s.flags & kSpanContinued)) names.push_back(s.name);  // else it comes again in a later part
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"first", "root", "second"}));
  EXPECT_EQ(a.open_spans(), 0u);
}

// The same span id in two traces: the first span with it ends, then the second begins
// and takes the id's place in the index, then the first trace closes. The second span
// keeps its place, so its end still finds it and its trace closes whole.
TEST_F(Fixture, ASpanIdInTwoTracesEndsInEach) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(5, 1, "here", 10, kThreadA)});
  feed(a, {end(5, 20, kThreadB)});
  feed(a, {begin(9, 0, "other root", 30, kThreadC, Kind::span, kOtherTrace),
           begin(5, 9, "there", 40, kThreadC, Kind::span, kOtherTrace)});
  feed(a, {end(1, 50, kThreadA)});
  std::vector<AssembledTrace> out;
  for (int p = 0; p < 3; ++p) a.end_of_pass(out, wall(1'000'000));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span here\n");
  out.clear();
  feed(a, {end(5, 60, kThreadB), end(9, 70, kThreadC)});
  for (int p = 0; p < 3; ++p) a.end_of_pass(out, wall(1'000'000));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span other root\n  span there\n");
  EXPECT_FALSE(out[0].partial);
  const SpanData* there = find(out[0], "there");
  ASSERT_NE(there, nullptr);
  EXPECT_EQ(there->end_ns, wall(60));
  EXPECT_EQ(there->flags & kSpanIncomplete, 0u);
  EXPECT_EQ(a.open_spans(), 0u);
}

// Random record logs in which ids repeat, within a trace and across two, and records
// come in any order from four threads, with parts of a few spans: each must assemble
// without a crash (run under the sanitizers), and every begun span must come out, once
// in the part where it ends (or the last one).
TEST_F(Fixture, RecordLogsWithRepeatedSpanIdsAssembleWithoutLoss) {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    Assembler a = make(1 + seed % 4);
    const std::uint64_t threads[] = {kThreadA, kThreadB, kThreadC, 404};
    std::size_t names = 0;
    std::vector<AssembledTrace> out;
    for (int step = 0; step < 60; ++step) {
      const std::uint64_t thread = threads[rng() % 4];
      const std::uint64_t id = 1 + rng() % 6;
      const TraceId trace = rng() % 3 == 0 ? kOtherTrace : kTrace;
      switch (rng() % 4) {
        case 0:
        case 1: {
          const std::uint64_t parent = rng() % 3 == 0 ? 0 : 1 + rng() % 6;
          feed(a, {begin(id, parent == id ? 0 : parent, "s", step, thread, Kind::span, trace)});
          ++names;
          break;
        }
        case 2:
          feed(a, {end(id, step, thread)});
          break;
        default:
          a.end_of_pass(out, wall(1'000'000));
      }
    }
    for (std::uint64_t id = 1; id <= 6; ++id)
      for (int again = 0; again < 4; ++again) feed(a, {end(id, 100, kThreadA)});
    for (int p = 0; p < 3; ++p) a.end_of_pass(out, wall(1'000'000));
    a.flush(out, wall(1'000'000), true);
    std::size_t handed = 0;
    for (const AssembledTrace& t : out)
      for (const SpanData& s : t.spans) handed += s.name == "s" && !(s.flags & kSpanContinued) ? 1 : 0;
    EXPECT_EQ(handed, names) << "seed " << seed;
    EXPECT_EQ(a.open_spans(), 0u) << "seed " << seed;
  }
}

// ---- out-of-order arrival ----

using OutOfOrder = Fixture;

TEST_F(OutOfOrder, ChildEndDrainedBeforeParentBegin) {
  // The child was begun on ring A under the root and finished on ring B; ring B was read first.
  Assembler a = make();
  feed(a, {end(2, 40, kThreadB)});
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "child", 10, kThreadA),
           end(1, 50, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out.size(), 1u);
  const AssembledTrace& t = out[0];
  EXPECT_EQ(render_tree(t), "span root\n  span child\n");
  EXPECT_FALSE(t.partial);
  const SpanData* child = find(t, "child");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->start_ns, wall(10));
  EXPECT_EQ(child->end_ns, wall(40));
  EXPECT_EQ(child->thread_id, kThreadA);
  EXPECT_EQ(child->end_thread_id, kThreadB);
  EXPECT_EQ(child->status, Status::ok);
  EXPECT_EQ(child->flags & (kSpanIncomplete | kSpanOrphan), 0u);
  EXPECT_EQ(a.open_spans(), 0u);
  EXPECT_EQ(a.orphan_records(), 0u);
}

TEST_F(OutOfOrder, ChildBeginAndEndDrainedBeforeParentBegin) {
  // A worker adopted the root's context; its ring was read before the root's ring.
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(2, 1, "worker", 10, kThreadB), attr(2, "n", 5, kThreadB), end(2, 20, kThreadB)});
  a.end_of_pass(out, wall(30));
  EXPECT_TRUE(out.empty());
  feed(a, {begin(1, 0, "root", 0, kThreadA, Kind::agent), end(1, 30, kThreadA)});
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "agent root\n  span worker\n");
  EXPECT_EQ(out[0].root_name, "root");
  const SpanData* w = find(out[0], "worker");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->parent_id, 1u);
  EXPECT_EQ(w->flags & kSpanOrphan, 0u);
  ASSERT_EQ(w->attrs.size(), 1u);
  EXPECT_EQ(w->attrs[0].value.i, 5);
}

TEST_F(OutOfOrder, SpanEndedOnAnotherRingWithTheEndFirst) {
  Assembler a = make();
  feed(a, {end(2, 25, kThreadB, Status::failed)});
  std::vector<AssembledTrace> out;
  a.end_of_pass(out, wall(30));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(a.open_spans(), 1u);  // held for its begin
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "handoff", 5, kThreadA),
           attr(2, "k", 1, kThreadA), end(1, 30, kThreadA)});
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span handoff [failed]\n");
  const SpanData* h = find(out[0], "handoff");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->start_ns, wall(5));
  EXPECT_EQ(h->end_ns, wall(25));
  EXPECT_EQ(h->thread_id, kThreadA);
  EXPECT_EQ(h->end_thread_id, kThreadB);
  EXPECT_EQ(h->attrs.size(), 1u);
  EXPECT_EQ(a.orphan_records(), 0u);
}

TEST_F(OutOfOrder, AttributesAndEventsBeforeTheBegin) {
  // Records another thread wrote for the span reach the assembler before its begin.
  Assembler a = make();
  feed(a, {attr(2, "early", 1, kThreadB), event(2, "tick", 12, kThreadB),
           attr(2, "on_tick", 2, kThreadB, kOnEvent),
           str(2, StrKind::attr_value, "s", std::string(100, 'x'), kThreadB),
           str(2, StrKind::tag, "", "hot", kThreadB), str(2, StrKind::log, "", "note", kThreadB)});
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "late", 10, kThreadA),
           attr(2, "later", 3, kThreadA), end(2, 20, kThreadA), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out.size(), 1u);
  const SpanData* s = find(out[0], "late");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->attrs.size(), 3u);
  EXPECT_EQ(s->attrs[0].key, "early");
  EXPECT_EQ(s->attrs[1].key, "s");
  EXPECT_EQ(s->attrs[1].value.s, std::string(100, 'x'));
  EXPECT_EQ(s->attrs[2].key, "later");
  ASSERT_EQ(s->events.size(), 2u);
  EXPECT_EQ(s->events[0].name, "tick");
  EXPECT_EQ(s->events[0].time_ns, wall(12));
  ASSERT_EQ(s->events[0].attrs.size(), 1u);
  EXPECT_EQ(s->events[0].attrs[0].key, "on_tick");
  EXPECT_EQ(s->events[1].name, "log");
  EXPECT_EQ(s->tags, std::vector<std::string>{"hot"});
  EXPECT_EQ(a.orphan_records(), 0u);
}

// One record of a chain ends a span and begins its sibling: both arrive, with the shared
// instant, whatever else of the ended span came from other rings and in what order.
TEST_F(OutOfOrder, ChainRecordEndsTheSiblingAndBeginsTheNext) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {attr(2, "late", 9, kThreadB)});  // the first stage's attribute, from another ring
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "attention", 10, kThreadA),
           chain_next(3, 1, "mlp", 20, 2, kThreadA), chain_next(4, 1, "norm", 25, 3, kThreadA)});
  a.end_of_pass(out, wall(30));
  a.end_of_pass(out, wall(30));
  EXPECT_TRUE(out.empty()) << "closed with the chain's last stage open";
  feed(a, {end(4, 27, kThreadA), end(1, 30, kThreadA)});
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out.size(), 1u);
  const AssembledTrace& t = out[0];
  EXPECT_EQ(render_tree(t), "span root\n  span attention\n  span mlp\n  span norm\n");
  const SpanData* att = find(t, "attention");
  const SpanData* mlp = find(t, "mlp");
  const SpanData* norm = find(t, "norm");
  ASSERT_TRUE(att && mlp && norm);
  EXPECT_EQ(att->start_ns, wall(10));
  EXPECT_EQ(att->end_ns, wall(20));
  EXPECT_EQ(mlp->start_ns, wall(20));
  EXPECT_EQ(mlp->end_ns, wall(25));
  EXPECT_EQ(norm->end_ns, wall(27));
  for (const SpanData* s : {att, mlp, norm}) {
    EXPECT_EQ(s->status, Status::ok);
    EXPECT_EQ(s->end_thread_id, kThreadA);
    EXPECT_EQ(s->flags & kSpanIncomplete, 0u);
  }
  ASSERT_EQ(att->attrs.size(), 1u);
  EXPECT_EQ(att->attrs[0].key, "late");
  EXPECT_TRUE(t.groups.empty()) << "adjacent stages do not overlap";
  EXPECT_EQ(a.open_spans(), 0u);
  EXPECT_EQ(a.orphan_records(), 0u);
}

// ---- the pass rule: a trace closes a whole pass after it became complete ----

using PassRule = Fixture;

TEST_F(PassRule, CompleteTraceClosesAtTheEndOfTheNextPass) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 10, kThreadA)});
  std::vector<AssembledTrace> out;
  a.end_of_pass(out, wall(20));
  EXPECT_TRUE(out.empty()) << "closed in the pass it became complete";
  a.end_of_pass(out, wall(20));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n");
}

TEST_F(PassRule, RootEndInTheSamePassAsAChildFromAnotherRing) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 50, kThreadA)});  // ring A
  feed(a, {begin(2, 1, "child", 10, kThreadB), end(2, 40, kThreadB)});  // ring B, same pass
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty());
  a.end_of_pass(out, wall(60));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span child\n");
}

TEST_F(PassRule, RootEndOnePassBeforeAChildFromAnotherRing) {
  // Ring B was read before the child began in pass 1; the root's end was read after.
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 50, kThreadA)});
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty());
  feed(a, {begin(2, 1, "child", 10, kThreadB), end(2, 40, kThreadB)});
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty()) << "the child's arrival must restart the wait";
  a.end_of_pass(out, wall(60));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span child\n");
}

TEST_F(PassRule, ChildBeginAndEndOnDifferentRingsInLaterPasses) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 50, kThreadA)});
  a.end_of_pass(out, wall(60));
  feed(a, {begin(2, 1, "child", 10, kThreadB)});  // now open
  a.end_of_pass(out, wall(60));
  a.end_of_pass(out, wall(60));
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty()) << "closed with a span open";
  feed(a, {end(2, 40, kThreadC)});
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty());
  a.end_of_pass(out, wall(60));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span child\n");
  EXPECT_EQ(find(out[0], "child")->end_thread_id, kThreadC);
}

TEST_F(PassRule, EndBeforeBeginDoesNotCountAsEnded) {
  // A grandchild's end arrives early; its begin comes in the pass after the root's end.
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {end(3, 30, kThreadC)});
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "mid", 5, kThreadA),
           end(2, 40, kThreadA), end(1, 50, kThreadA)});
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty());
  feed(a, {begin(3, 2, "leaf", 10, kThreadB)});
  a.end_of_pass(out, wall(60));
  EXPECT_TRUE(out.empty());
  a.end_of_pass(out, wall(60));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span mid\n    span leaf\n");
}

TEST_F(PassRule, TwoTracesInterleavedCloseIndependently) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "first", 0, kThreadA), begin(10, 0, "second", 1, kThreadB, Kind::span, kOtherTrace),
           end(1, 5, kThreadA)});
  a.end_of_pass(out, wall(10));
  a.end_of_pass(out, wall(10));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].root_name, "first");
  EXPECT_EQ(out[0].trace_id, kTrace);
  feed(a, {end(10, 8, kThreadB)});
  a.end_of_pass(out, wall(10));
  a.end_of_pass(out, wall(10));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].root_name, "second");
  EXPECT_EQ(out[1].trace_id, kOtherTrace);
}

TEST_F(PassRule, SuspendedRootDoesNotCloseItsTrace) {
  // The root suspends (its segment ends with kSuspended) and is resumed passes later; a
  // resumed segment's begin carries the root's parent (none) and no flags, as resume()
  // writes it. The operation is one trace: nothing is final until its last segment ends.
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "run", 0, kThreadA, Kind::agent), begin(2, 1, "before", 5, kThreadA),
           end(2, 8, kThreadA), end(1, 10, kThreadA, Status::ok, kSuspended)});
  for (int pass = 0; pass < 4; ++pass) a.end_of_pass(out, wall(20));
  for (const AssembledTrace& t : out) EXPECT_TRUE(t.partial) << "closed while suspended";
  Item resumed = begin(3, 0, "run", 30, kThreadB, Kind::agent);
  resumed.rec.flags = 0;
  feed(a, {resumed, link(3, 1, 1, 1, kThreadB), begin(4, 3, "after", 35, kThreadB),
           end(4, 38, kThreadB), end(3, 40, kThreadB)});
  a.end_of_pass(out, wall(50));
  a.end_of_pass(out, wall(50));
  ASSERT_EQ(out.size(), 1u);
  const AssembledTrace& t = out[0];
  EXPECT_FALSE(t.partial);
  EXPECT_EQ(t.part, 0u);
  EXPECT_EQ(t.root_name, "run");
  EXPECT_EQ(render_tree(t), "agent run #0\n  span before\nagent run #1\n  span after\n");
  ASSERT_EQ(t.chains.size(), 1u);
  EXPECT_EQ(t.chains[0].segments, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(t.chains[0].waited_ns, 20);
  EXPECT_EQ(a.open_spans(), 0u);
}

// ---- every interleaving of three rings gives the same trace ----

using Interleavings = Fixture;

TEST_F(Interleavings, EveryMergeOfThreeRingsAssemblesTheSameTrace) {
  // root (ring A) adopts two workers: "fetch" on ring B with a chain "parse" -> "index", and
  // "tool" begun on ring C but finished on ring A; fetch and tool overlap.
  const std::vector<std::vector<Item>> rings = {
      {begin(1, 0, "root", 0, kThreadA, Kind::agent), attr(1, "k", 1, kThreadA),
       end(3, 70, kThreadA), end(1, 100, kThreadA)},
      {begin(2, 1, "fetch", 10, kThreadB, Kind::retrieval), begin(4, 2, "parse", 20, kThreadB),
       chain_next(5, 2, "index", 30, 4, kThreadB), end(5, 35, kThreadB), end(2, 60, kThreadB)},
      {begin(3, 1, "tool", 40, kThreadC, Kind::tool), attr(3, "n", 2, kThreadC),
       str(3, StrKind::input, "", std::string(90, 'i'), kThreadC)},
  };
  const std::string expected =
      "agent root\n"
      "  || retrieval fetch\n"
      "    span parse\n"
      "    span index\n"
      "  || tool tool\n";

  std::vector<int> order;
  for (int r = 0; r < static_cast<int>(rings.size()); ++r)
    order.insert(order.end(), rings[static_cast<std::size_t>(r)].size(), r);

  // Reference: ring by ring, in one pass.
  AssembledTrace reference;
  {
    Assembler a = make();
    for (const auto& ring : rings) feed(a, ring);
    std::vector<AssembledTrace> out;
    a.end_of_pass(out, wall(200));
    a.end_of_pass(out, wall(200));
    ASSERT_EQ(out.size(), 1u);
    reference = out[0];
  }
  ASSERT_EQ(render_tree(reference), expected);
  ASSERT_EQ(reference.groups.size(), 1u);
  EXPECT_EQ(reference.groups[0].members, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(reference.groups[0].start_ns, wall(10));
  EXPECT_EQ(reference.groups[0].end_ns, wall(70));
  EXPECT_EQ(reference.groups[0].peak_concurrency, 2u);

  // Under sanitizers, try every seventh split point only.
  const std::size_t split_stride = test::stress_scale() < 1 ? 7 : 1;
  std::size_t merges = 0;
  do {
    ++merges;
    std::vector<Item> merged;
    std::vector<std::size_t> next(rings.size(), 0);
    for (int r : order) merged.push_back(rings[static_cast<std::size_t>(r)][next[static_cast<std::size_t>(r)]++]);
    // The merge read in two passes, split anywhere: the first pass never closes the trace
    // and the result never depends on the split.
    for (std::size_t split = merges % split_stride; split <= merged.size(); split += split_stride) {
      Assembler a = make();
      std::vector<AssembledTrace> out;
      feed(a, std::vector<Item>(merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(split)));
      a.end_of_pass(out, wall(200));
      ASSERT_TRUE(out.empty()) << "merge " << merges << " split " << split;
      feed(a, std::vector<Item>(merged.begin() + static_cast<std::ptrdiff_t>(split), merged.end()));
      a.end_of_pass(out, wall(200));
      a.end_of_pass(out, wall(200));
      ASSERT_EQ(out.size(), 1u) << "merge " << merges << " split " << split;
      ASSERT_EQ(render_tree(out[0]), expected) << "merge " << merges << " split " << split;
      ASSERT_EQ(out[0], reference) << "merge " << merges << " split " << split;
      ASSERT_EQ(a.open_spans(), 0u);
    }
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(merges, 27720u);  // 12! / (4! 5! 3!)
}

// Children of one parent on many threads, read ring by ring: they come out in start order
// (span id among equal starts) and their groups are what a brute-force sweep finds, for
// threads taking turns, threads at random, one busy thread among idle ones, more threads
// than the sibling merge keeps at once, and starts shared across threads.
TEST_F(Interleavings, SiblingsFromManyThreadsComeInStartOrder) {
  struct Shape {
    const char* name;
    int threads;
    int per_thread;
    bool busy_first;  // thread 0 runs many short spans while the others run a few long ones
  };
  std::size_t shared_starts = 0;
  for (const Shape shape : {Shape{"turns", 16, 64, false}, Shape{"random", 40, 25, false},
                            Shape{"busy", 60, 10, true}, Shape{"many threads", 100, 4, false}}) {
    SCOPED_TRACE(shape.name);
    std::mt19937_64 rng(42);
    std::vector<std::vector<Item>> rings(static_cast<std::size_t>(shape.threads));
    struct Child {
      std::uint64_t id;
      std::int64_t start, end;
    };
    std::vector<Child> children;
    std::uint64_t next_id = 2;
    for (int t = 0; t < shape.threads; ++t) {
      const std::uint64_t thread = 1000 + static_cast<std::uint64_t>(t);
      const bool busy = shape.busy_first && t == 0;
      const int count = busy ? shape.per_thread * 40 : shape.per_thread;
      std::int64_t at = 1 + static_cast<std::int64_t>(rng() % 50);
      for (int c = 0; c < count; ++c) {
        if (shape.name == std::string_view("turns")) at = 1 + c * 100 + t;  // one each, in turn
        const std::int64_t length = 1 + static_cast<std::int64_t>(rng() % (busy ? 3 : 200));
        const Child ch{next_id++, at, at + length};
        children.push_back(ch);
        rings[static_cast<std::size_t>(t)].push_back(begin(ch.id, 1, "task", ch.start, thread));
        rings[static_cast<std::size_t>(t)].push_back(end(ch.id, ch.end, thread));
        // The next begins when this ends, or later; often at a start another thread shares.
        at = ch.end + static_cast<std::int64_t>(rng() % 4) * 10;
      }
    }
    std::int64_t last = 0;
    for (const Child& c : children) last = std::max(last, c.end);
    Assembler a = make(1u << 20);
    feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, last + 1, kThreadA)});
    for (const auto& ring : rings) feed(a, ring);
    std::vector<AssembledTrace> out;
    ASSERT_GT(passes_until_emitted(a, out), 0);
    ASSERT_EQ(out.size(), 1u);
    const AssembledTrace& got = out[0];
    ASSERT_EQ(got.spans.size(), children.size() + 1);

    std::vector<Child> expected = children;
    std::sort(expected.begin(), expected.end(), [](const Child& x, const Child& y) {
      return x.start != y.start ? x.start < y.start : x.id < y.id;
    });
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(got.spans[i + 1].span_id, expected[i].id) << "at " << i;
      if (i != 0 && expected[i].start == expected[i - 1].start) ++shared_starts;
    }

    // Groups: runs of overlapping siblings in start order, each with its peak concurrency.
    std::vector<ParallelGroup> brute;
    std::int64_t reach = 0;
    std::vector<const Child*> run;
    auto close = [&] {
      if (run.size() >= 2) {
        ParallelGroup g;
        g.id = static_cast<std::uint32_t>(brute.size());
        g.parent_id = 1;
        g.start_ns = wall(run.front()->start);
        for (const Child* c : run) {
          g.members.push_back(c->id);
          g.end_ns = std::max(g.end_ns, wall(c->end));
          std::uint32_t running = 0;
          for (const Child* o : run) running += o->start <= c->start && o->end > c->start ? 1 : 0;
          g.peak_concurrency = std::max(g.peak_concurrency, running);
        }
        brute.push_back(std::move(g));
      }
      run.clear();
    };
    for (const Child& c : expected) {
      if (!run.empty() && c.start >= reach) close();
      reach = run.empty() ? c.end : std::max(reach, c.end);
      run.push_back(&c);
    }
    close();
    EXPECT_EQ(got.groups, brute);
  }
  EXPECT_GT(shared_starts, 0u) << "no two siblings started at once: the tie rule went untried";
}

// ---- flush: open spans handed over incomplete, the trace continues in later parts ----

using Flush = Fixture;

TEST_F(Flush, OpenSpansAreIncompleteAndTheTraceContinues) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA, Kind::agent), attr(1, "before", 1, kThreadA),
           begin(2, 1, "done", 10, kThreadA), end(2, 20, kThreadA),
           begin(3, 1, "waiting", 30, kThreadB, Kind::tool), attr(3, "early", 7, kThreadB),
           str(3, StrKind::input, "", "question", kThreadB)});
  a.flush(out, wall(100), false);
  ASSERT_EQ(out.size(), 1u);
  {
    const AssembledTrace& p0 = out[0];
    EXPECT_EQ(p0.part, 0u);
    EXPECT_TRUE(p0.partial);
    EXPECT_EQ(render_tree(p0), "agent root [incomplete]\n  span done\n  tool waiting [incomplete]\n");
    const SpanData* w = find(p0, "waiting");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->end_ns, wall(100));
    EXPECT_NE(w->flags & kSpanIncomplete, 0u);
    EXPECT_EQ(find(p0, "root")->end_ns, wall(100));
    EXPECT_EQ(find(p0, "done")->end_ns, wall(20));
  }

  // More of the trace, a second flush, then the end.
  feed(a, {begin(4, 3, "inner", 110, kThreadB), end(4, 120, kThreadB)});
  a.flush(out, wall(150), false);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].part, 1u);
  EXPECT_TRUE(out[1].partial);
  EXPECT_EQ(out[1].trace_id, kTrace);
  EXPECT_EQ(render_tree(out[1]), "agent root [incomplete]\n  tool waiting [incomplete]\n    span inner\n");

  feed(a, {attr(3, "late", 8, kThreadB), end(3, 160, kThreadB), end(1, 170, kThreadA)});
  a.end_of_pass(out, wall(200));
  a.end_of_pass(out, wall(200));
  ASSERT_EQ(out.size(), 3u);
  const AssembledTrace& last = out[2];
  EXPECT_EQ(last.part, 2u);
  EXPECT_FALSE(last.partial);
  EXPECT_EQ(last.trace_id, kTrace);
  // The spans that stayed open through the flushes keep everything recorded for them.
  EXPECT_EQ(render_tree(last), "agent root\n  tool waiting\n");
  EXPECT_EQ(last.root_name, "root");
  const SpanData* root = find(last, std::uint64_t{1});
  const SpanData* w = find(last, std::uint64_t{3});
  ASSERT_NE(root, nullptr);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(root->start_ns, wall(0));
  EXPECT_EQ(root->end_ns, wall(170));
  EXPECT_EQ(root->status, Status::ok);
  EXPECT_EQ(root->flags & kSpanIncomplete, 0u);
  EXPECT_NE(root->flags & kSpanTraceRoot, 0u);
  ASSERT_EQ(root->attrs.size(), 1u);
  EXPECT_EQ(root->attrs[0].key, "before");
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->kind, Kind::agent);
  EXPECT_EQ(w->name, "waiting");
  EXPECT_EQ(w->kind, Kind::tool);
  EXPECT_EQ(w->start_ns, wall(30));
  EXPECT_EQ(w->end_ns, wall(160));
  EXPECT_EQ(w->input, "question");
  ASSERT_EQ(w->attrs.size(), 2u);
  EXPECT_EQ(w->attrs[0].key, "early");
  EXPECT_EQ(w->attrs[1].key, "late");
  EXPECT_EQ(a.open_spans(), 0u);
}

TEST_F(Flush, FinalFlushEndsTheTraceInItsLastPart) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "child", 10, kThreadA)});
  a.flush(out, wall(50), false);
  feed(a, {end(2, 60, kThreadA)});
  a.flush(out, wall(80), true);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].part, 0u);
  EXPECT_TRUE(out[0].partial);
  EXPECT_EQ(out[1].part, 1u);
  EXPECT_FALSE(out[1].partial);
  EXPECT_EQ(render_tree(out[1]), "span root [incomplete]\n  span child\n");
  ASSERT_EQ(out[1].spans.size(), 2u);
  EXPECT_EQ(find(out[1], std::uint64_t{1})->end_ns, wall(80));
  EXPECT_EQ(find(out[1], std::uint64_t{2})->end_ns, wall(60));
  EXPECT_EQ(a.open_spans(), 0u);
}

TEST_F(Flush, CompleteTraceIsNotPartial) {
  Assembler a = make();
  std::vector<AssembledTrace> out;
  feed(a, {begin(1, 0, "root", 0, kThreadA), end(1, 10, kThreadA)});
  a.flush(out, wall(20), false);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].partial);
  EXPECT_EQ(out[0].part, 0u);
  a.end_of_pass(out, wall(30));
  a.end_of_pass(out, wall(30));
  EXPECT_EQ(out.size(), 1u) << "emitted twice";
}

TEST_F(Flush, NothingLeftToHandOverMeansNoPart) {
  // The root's begin was lost; its children are handed over in a part once two have ended.
  // A later flush has nothing left of the trace: it hands over no span again, only (once)
  // an empty last part, so that the trace's parts end with one that says none follows.
  Assembler a = make(2);
  std::vector<AssembledTrace> out;
  feed(a, {begin(2, 1, "a", 10, kThreadA), end(2, 20, kThreadA), begin(3, 1, "b", 30, kThreadA),
           end(3, 40, kThreadA)});
  a.end_of_pass(out, wall(50));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].partial);
  ASSERT_EQ(out[0].spans.size(), 3u);  // the lost root stands in as a placeholder in the first part
  EXPECT_EQ(out[0].spans[0].span_id, 1u);
  EXPECT_TRUE(out[0].spans[0].flags & strobe::kSpanPlaceholder);
  EXPECT_EQ(out[0].spans[1].parent_id, 1u);
  EXPECT_EQ(out[0].spans[2].parent_id, 1u);
  a.flush(out, wall(60), false);
  a.flush(out, wall(70), true);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].part, 1u);
  EXPECT_TRUE(out[1].spans.empty());
  EXPECT_FALSE(out[1].partial);
}

// ---- parallel groups: each span's own [start, end), strict overlap ----

using Groups = Fixture;

TEST_F(Groups, TouchingIntervalsAreNotAGroup) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "a", 0, kThreadA), end(2, 10, kThreadA),
           begin(3, 1, "b", 10, kThreadA), end(3, 20, kThreadA), begin(4, 1, "c", 20, kThreadB),
           end(4, 30, kThreadB), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  EXPECT_TRUE(out[0].groups.empty());
  for (const SpanData& s : out[0].spans) EXPECT_EQ(s.group, -1) << s.name;
}

TEST_F(Groups, OverlapJoinsTouchingNeighboursTransitively) {
  // a [0,10) and c [10,15) touch; b [5,20) overlaps both: one group, at most two at once.
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "a", 0, kThreadA), end(2, 10, kThreadA),
           begin(3, 1, "b", 5, kThreadB), end(3, 20, kThreadB), begin(4, 1, "c", 10, kThreadA),
           end(4, 15, kThreadA), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out[0].groups.size(), 1u);
  const ParallelGroup& g = out[0].groups[0];
  EXPECT_EQ(g.id, 0u);
  EXPECT_EQ(g.parent_id, 1u);
  EXPECT_EQ(g.members, (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(g.start_ns, wall(0));
  EXPECT_EQ(g.end_ns, wall(20));
  EXPECT_EQ(g.peak_concurrency, 2u);
}

TEST_F(Groups, SeparateGroupsUnderOneParent) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "a", 0, kThreadA), end(2, 10, kThreadA),
           begin(3, 1, "b", 2, kThreadB), end(3, 8, kThreadB), begin(5, 1, "d", 3, kThreadC),
           end(5, 9, kThreadC), begin(4, 1, "c", 10, kThreadA), end(4, 20, kThreadA),
           begin(6, 1, "e", 15, kThreadB), end(6, 25, kThreadB), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  const auto& groups = out[0].groups;
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].members, (std::vector<std::uint64_t>{2, 3, 5}));
  EXPECT_EQ(groups[0].start_ns, wall(0));
  EXPECT_EQ(groups[0].end_ns, wall(10));
  EXPECT_EQ(groups[0].peak_concurrency, 3u);
  EXPECT_EQ(groups[1].id, 1u);
  EXPECT_EQ(groups[1].members, (std::vector<std::uint64_t>{4, 6}));
  EXPECT_EQ(groups[1].start_ns, wall(10));
  EXPECT_EQ(groups[1].end_ns, wall(25));
  EXPECT_EQ(groups[1].peak_concurrency, 2u);
  for (const SpanData& s : out[0].spans) {
    if (s.name == "root") {
      EXPECT_EQ(s.group, -1);
    } else {
      EXPECT_EQ(s.group, (s.name == "c" || s.name == "e") ? 1 : 0) << s.name;
    }
  }
}

TEST_F(Groups, OverlapThroughAGrandchildDoesNotGroup) {
  // a [0,10) and b [10,20) are siblings; a's child outlives a and overlaps b, but groups
  // use each span's own interval and only siblings.
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "a", 0, kThreadA),
           begin(3, 2, "a_child", 5, kThreadB), end(2, 10, kThreadA), begin(4, 1, "b", 10, kThreadA),
           end(3, 15, kThreadB), end(4, 20, kThreadA), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  EXPECT_TRUE(out[0].groups.empty());
  EXPECT_EQ(render_tree(out[0]), "span root\n  span a\n    span a_child\n  span b\n");
}

TEST_F(Groups, GroupsAreFoundPerParentAtEveryDepth) {
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "a", 0, kThreadA),
           begin(3, 2, "x", 1, kThreadB), begin(4, 2, "y", 2, kThreadC), end(3, 5, kThreadB),
           end(4, 6, kThreadC), end(2, 10, kThreadA), begin(5, 1, "b", 10, kThreadA),
           end(5, 20, kThreadA), end(1, 30, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out[0].groups.size(), 1u);
  EXPECT_EQ(out[0].groups[0].parent_id, 2u);
  EXPECT_EQ(out[0].groups[0].members, (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(render_tree(out[0]), "span root\n  span a\n    || span x\n    || span y\n  span b\n");
}

TEST_F(Groups, SegmentsOfOneOperationNeverGroup) {
  // "wait" suspended at 10, resumed at 15 on another thread, suspended at 20, resumed at
  // 20 (touching), ended at 30: three segments, one chain, no group.
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "wait", 0, kThreadA, Kind::tool),
           end(2, 10, kThreadA, Status::ok, kSuspended)});
  feed(a, {begin(3, 1, "wait", 15, kThreadB, Kind::tool), link(3, 2, 2, 1, kThreadB),
           end(3, 20, kThreadB, Status::ok, kSuspended), begin(4, 1, "wait", 20, kThreadB, Kind::tool),
           link(4, 3, 2, 2, kThreadB), end(4, 30, kThreadB, Status::failed)});
  feed(a, {end(1, 40, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  const AssembledTrace& t = out[0];
  EXPECT_TRUE(t.groups.empty());
  EXPECT_EQ(render_tree(t), "span root\n  tool wait #0\n  tool wait #1\n  tool wait #2 [failed]\n");
  ASSERT_EQ(t.chains.size(), 1u);
  EXPECT_EQ(t.chains[0].first_span_id, 2u);
  EXPECT_EQ(t.chains[0].segments, (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(t.chains[0].waited_ns, 5);
  for (const SpanData& s : t.spans) {
    if (s.name != "wait") continue;
    EXPECT_EQ(s.segment_of, 2u);
    EXPECT_EQ((s.flags & kSpanSuspended) != 0, s.span_id != 4) << s.span_id;
  }
}

TEST_F(Groups, SegmentsJoinAGroupThroughAnOverlappingSibling) {
  // Segments [0,10) and [15,25) of one operation, and a sibling [5,20) overlapping both.
  Assembler a = make();
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "op", 0, kThreadA),
           end(2, 10, kThreadA, Status::ok, kSuspended), begin(3, 1, "op", 15, kThreadA),
           link(3, 2, 2, 1, kThreadA), end(3, 25, kThreadA)});
  feed(a, {begin(4, 1, "other", 5, kThreadB), end(4, 20, kThreadB)});
  feed(a, {end(1, 40, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out[0].groups.size(), 1u);
  EXPECT_EQ(out[0].groups[0].members, (std::vector<std::uint64_t>{2, 4, 3}));
  EXPECT_EQ(out[0].groups[0].peak_concurrency, 2u);
  EXPECT_EQ(out[0].groups[0].end_ns, wall(25));
  ASSERT_EQ(out[0].chains.size(), 1u);
  EXPECT_EQ(out[0].chains[0].segments, (std::vector<std::uint64_t>{2, 3}));
}

TEST_F(Groups, SuspendedSegmentEndArrivesBeforeItsLink) {
  // The resumed segment is suspended again from another thread; that end is read first.
  Assembler a = make();
  feed(a, {end(3, 20, kThreadC, Status::ok, kSuspended)});
  feed(a, {begin(1, 0, "root", 0, kThreadA), begin(2, 1, "op", 0, kThreadA),
           end(2, 10, kThreadA, Status::ok, kSuspended)});
  feed(a, {begin(3, 1, "op", 15, kThreadB), link(3, 2, 2, 1, kThreadB),
           begin(4, 1, "op", 25, kThreadB), link(4, 3, 2, 2, kThreadB), end(4, 30, kThreadB)});
  feed(a, {end(1, 40, kThreadA)});
  std::vector<AssembledTrace> out;
  ASSERT_EQ(passes_until_emitted(a, out), 2);
  ASSERT_EQ(out[0].chains.size(), 1u);
  EXPECT_EQ(out[0].chains[0].segments, (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(out[0].chains[0].waited_ns, 10);
  EXPECT_EQ(render_tree(out[0]), "span root\n  span op #0\n  span op #1\n  span op #2\n");
}

}  // namespace
}  // namespace strobe::detail
