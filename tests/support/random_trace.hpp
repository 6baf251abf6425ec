#pragma once
// Random assembled traces for round-trip tests, and a field-by-field comparison that says
// where two traces differ.
//
//   strobe::test::RandomTraces gen(seed);
//   AssembledTrace t = gen.next();               // every field kind the model has
//   EXPECT_EQ(first_difference(t, read_back), "");
//
// The generator keeps the invariants the assembler keeps (and the file format relies on):
// spans in depth-first order with unique ids; a group's members are siblings and carry its
// index in `group`; a chain's segments carry its first_span_id in `segment_of` and their
// segment numbers in order; tokens are zero unless has_tokens; an incomplete span has not
// ended, so it has no end thread.

#include <strobe/model.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace strobe::test {

struct RandomTraceOptions {
  std::size_t max_spans = 40;
  // Share of strings that are long (1 KiB .. 70 KiB): inputs, outputs, attribute values.
  double long_string_share = 0.02;
  std::string service_name = "roundtrip-service";
  std::uint32_t process_id = 4242;
};

class RandomTraces {
 public:
  explicit RandomTraces(std::uint64_t seed, RandomTraceOptions options = {})
      : rng_(seed), options_(std::move(options)) {
    for (int i = 0; i < 4; ++i) threads_.push_back(rng_() | 1);
  }

  [[nodiscard]] std::mt19937_64& rng() noexcept { return rng_; }

  AssembledTrace next() {
    AssembledTrace t;
    t.trace_id = TraceId{rng_(), rng_() | 1};
    t.service_name = options_.service_name;
    t.process_id = options_.process_id;
    t.part = chance(0.2) ? uniform(1, 5) : 0;
    t.partial = chance(0.2);
    if (chance(0.3)) t.drops_since_previous = DropCounts{rng_() % 1000, rng_() % 100000};
    if (chance(0.01)) t.drops_since_previous = DropCounts{~0ull, ~0ull};

    const std::size_t n = chance(0.03) ? 0 : uniform(1, options_.max_spans);
    std::int64_t clock = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(rng_() % 1'000'000'000'000);
    // Depth-first construction: `path` holds the indexes of the current span's ancestors.
    std::vector<std::size_t> path;
    std::vector<std::vector<std::size_t>> children(n);
    for (std::size_t i = 0; i < n; ++i) {
      SpanData s;
      s.span_id = next_span_id();
      if (i == 0) {
        // A later part's first span may hang off a parent handed over earlier.
        s.parent_id = t.part > 0 && chance(0.5) ? next_span_id() : 0;
      } else {
        const std::size_t pop = path.empty() ? 0 : uniform(0, path.size() - 1);
        path.resize(path.size() - pop);
        s.parent_id = t.spans[path.back()].span_id;
        children[path.back()].push_back(i);
      }
      clock += static_cast<std::int64_t>(uniform(0, 5'000'000));
      fill(s, clock, i == 0);
      t.spans.push_back(std::move(s));
      path.push_back(i);
    }
    if (n > 0) t.root_name = chance(0.9) ? t.spans[0].name : str();

    // Groups: runs of siblings under one parent.
    for (std::size_t p = 0; p < n; ++p) {
      const auto& kids = children[p];
      if (kids.size() < 2 || !chance(0.5)) continue;
      std::size_t i = 0;
      while (i + 1 < kids.size()) {
        const std::size_t len = uniform(2, std::min<std::size_t>(5, kids.size() - i));
        if (chance(0.6)) {
          ParallelGroup g;
          g.id = static_cast<std::uint32_t>(t.groups.size());
          g.parent_id = t.spans[p].span_id;
          for (std::size_t k = i; k < i + len; ++k) {
            SpanData& m = t.spans[kids[k]];
            m.group = static_cast<std::int32_t>(g.id);
            g.members.push_back(m.span_id);
          }
          g.start_ns = t.spans[kids[i]].start_ns;
          g.end_ns = g.start_ns + static_cast<std::int64_t>(uniform(0, 10'000'000));
          g.peak_concurrency = static_cast<std::uint32_t>(uniform(2, len));
          t.groups.push_back(std::move(g));
        }
        i += len;
      }
    }
    // Chains: a few spans form the segments of one suspended/resumed operation.
    std::vector<bool> used(n, false);
    const std::size_t chains = n >= 2 && chance(0.4) ? uniform(1, 3) : 0;
    for (std::size_t c = 0; c < chains; ++c) {
      std::vector<std::size_t> segs;
      const std::size_t want = uniform(1, 4);
      for (std::size_t tries = 0; tries < 20 && segs.size() < want; ++tries) {
        const std::size_t i = uniform(0, n - 1);
        if (!used[i]) {
          used[i] = true;
          segs.push_back(i);
        }
      }
      if (segs.empty()) continue;
      SegmentChain ch;
      // The first segment may lie in an earlier part of the trace.
      const bool first_here = chance(0.6);
      ch.first_span_id = first_here ? t.spans[segs[0]].span_id : next_span_id();
      std::uint32_t number = first_here ? 0 : static_cast<std::uint32_t>(uniform(1, 3));
      for (std::size_t i : segs) {
        SpanData& s = t.spans[i];
        s.segment_of = ch.first_span_id;
        s.segment_index = number;
        number += static_cast<std::uint32_t>(uniform(1, 2));
        ch.segments.push_back(s.span_id);
      }
      ch.waited_ns = static_cast<std::int64_t>(uniform(0, 1'000'000'000));
      t.chains.push_back(std::move(ch));
    }
    // The names of its threads, those that have one (one name a thread, as in a batch).
    for (std::size_t k = 0; k < threads_.size(); ++k) {
      if (thread_names_[k].empty()) continue;
      for (const SpanData& s : t.spans) {
        if (s.thread_id == threads_[k] || s.end_thread_id == threads_[k]) {
          t.thread_names.push_back(ThreadName{threads_[k], thread_names_[k]});
          break;
        }
      }
    }
    std::sort(t.thread_names.begin(), t.thread_names.end(),
              [](const ThreadName& a, const ThreadName& b) { return a.thread_id < b.thread_id; });
    return t;
  }

  // A span with only the columns set: name, kind, ids, two timestamps, thread.
  static SpanData plain_span(std::uint64_t id, std::uint64_t parent, const std::string& name, Kind kind,
                             std::int64_t start, std::int64_t end, std::uint64_t thread) {
    SpanData s;
    s.span_id = id;
    s.parent_id = parent;
    s.name = name;
    s.kind = kind;
    s.start_ns = start;
    s.end_ns = end;
    s.thread_id = thread;
    s.end_thread_id = thread;
    return s;
  }

  // A random string: mostly short names from a small vocabulary (so batches share them),
  // sometimes free text with multi-byte UTF-8 and embedded NULs, sometimes long.
  std::string str() {
    static const char* const kWords[] = {"decode_step", "attention", "mlp",   "tool:fetch", "plan",
                                         "generate",    "retrieve",  "embed", "rank",       "k",
                                         "user_id",     "model",     "retry", "temperature", ""};
    const double r = unit();
    if (r < 0.55) return kWords[uniform(0, std::size(kWords) - 1)];
    if (r < 0.55 + options_.long_string_share) return long_text();
    static const char* const kPieces[] = {"a", "Z", "9", " ", "é", "日本語", "🚀", "ß", "\n", "\t", "\"",
                                          "\\", "Ω", "\xEF\xBF\xBD", "<NUL>"};
    std::string s;
    const std::size_t len = uniform(1, 24);
    for (std::size_t i = 0; i < len; ++i) {
      const std::size_t k = uniform(0, std::size(kPieces) - 1);
      if (k == std::size(kPieces) - 1) {
        s.push_back('\0');
      } else {
        s += kPieces[k];
      }
    }
    return s;
  }

 private:
  std::uint64_t next_span_id() { return (rng_() & 0xFFFF'0000'0000'0000ull) | ++local_; }

  bool chance(double p) { return unit() < p; }
  double unit() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::size_t uniform(std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
  }

  std::string long_text() {
    const std::size_t len = uniform(1024, 70 * 1024);
    std::string s;
    s.reserve(len + 4);
    static const char* const kPieces[] = {"lorem ", "ipsum ", "δολορ ", "シット ", "🙂", "\n"};
    while (s.size() < len) s += kPieces[uniform(0, std::size(kPieces) - 1)];
    return s;
  }

  AttrValue value() {
    AttrValue v;
    switch (uniform(0, 3)) {
      case 0: {
        v.type = AttrValue::Type::i64;
        static const std::int64_t kEdges[] = {0, -1, std::numeric_limits<std::int64_t>::min(),
                                              std::numeric_limits<std::int64_t>::max()};
        v.i = chance(0.2) ? kEdges[uniform(0, 3)] : static_cast<std::int64_t>(rng_());
        break;
      }
      case 1: {
        v.type = AttrValue::Type::f64;
        static const double kEdges[] = {0.0, -0.0, std::numeric_limits<double>::infinity(),
                                        -std::numeric_limits<double>::infinity(),
                                        std::numeric_limits<double>::denorm_min(),
                                        std::numeric_limits<double>::max(), 1e-300};
        v.d = chance(0.2) ? kEdges[uniform(0, std::size(kEdges) - 1)]
                          : std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
        break;
      }
      case 2:
        v.type = AttrValue::Type::boolean;
        v.i = chance(0.5) ? 1 : 0;
        break;
      default:
        v.type = AttrValue::Type::string;
        v.s = str();
        break;
    }
    return v;
  }

  std::vector<Attribute> attrs(std::size_t max) {
    std::vector<Attribute> out(uniform(0, max));
    for (Attribute& a : out) {
      a.key = str();
      a.value = value();
      a.truncated = a.value.type == AttrValue::Type::string && chance(0.1);
    }
    return out;
  }

  void fill(SpanData& s, std::int64_t start, bool first) {
    s.name = str();
    s.kind = static_cast<Kind>(uniform(0, kKindCount - 1));
    if (s.kind == Kind::custom) s.kind_name = str();
    s.start_ns = start;
    s.end_ns = start + static_cast<std::int64_t>(chance(0.05) ? 0 : uniform(1, 50'000'000));
    s.thread_id = threads_[uniform(0, threads_.size() - 1)];
    s.end_thread_id = chance(0.15) ? threads_[uniform(0, threads_.size() - 1)] : s.thread_id;
    if (first && chance(0.7)) s.flags |= kSpanTraceRoot;
    const bool rich = chance(0.6);
    if (rich) {
      static const std::uint32_t kFlags[] = {kSpanTruncated, kSpanInvalidUtf8, kSpanLostRecords,
                                             kSpanSuspended, kSpanThrown,      kSpanOneShot,
                                             kSpanOrphan};
      for (std::uint32_t f : kFlags)
        if (chance(0.1)) s.flags |= f;
      const double st = unit();
      if (st < 0.15) {
        s.status = Status::failed;
        s.error_message = str();
        if (chance(0.5)) s.error_data = str();
      } else if (st < 0.25) {
        s.status = Status::incomplete;
        s.flags |= kSpanIncomplete;
        s.end_thread_id = 0;  // it never ended
      }
      if (chance(0.3)) s.input = str();
      if (chance(0.3)) s.output = str();
      if (chance(0.3)) s.model = str();
      for (std::size_t k = uniform(0, 3); k > 0; --k) s.tags.push_back(str());
      if (chance(0.3)) {
        s.has_tokens = true;
        s.tokens = TokenUsage{static_cast<std::int64_t>(rng_() >> 1), static_cast<std::int64_t>(uniform(0, 4096)),
                              -static_cast<std::int64_t>(uniform(0, 10))};
      }
      s.attrs = attrs(6);
      for (std::size_t k = uniform(0, 3); k > 0; --k)
        s.events.push_back(SpanEvent{str(), s.start_ns + static_cast<std::int64_t>(uniform(0, 1000)), attrs(3)});
      if (chance(0.2))
        for (std::size_t k = uniform(1, 3); k > 0; --k) s.links.push_back(SpanLink{TraceId{rng_(), rng_() | 1}, rng_() | 1});
    }
  }

  std::mt19937_64 rng_;
  RandomTraceOptions options_;
  std::vector<std::uint64_t> threads_;
  // Parallel to threads_; the last thread has none.
  std::vector<std::string> thread_names_{"agent-main", "tool-pool-\xC3\xBC", std::string(64, 'w'), ""};
  std::uint64_t local_ = 0;
};

// ---- comparison with a readable answer ----

namespace detail_diff {

inline std::string show(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 60; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 60) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out + "\"";
}
inline std::string show(std::uint64_t v) { return std::to_string(v); }
inline std::string show(std::int64_t v) { return std::to_string(v); }
inline std::string show(std::uint32_t v) { return std::to_string(v); }
inline std::string show(std::int32_t v) { return std::to_string(v); }
inline std::string show(bool v) { return v ? "true" : "false"; }
inline std::string show(Kind v) { return to_string(v); }
inline std::string show(Status v) { return to_string(v); }
inline std::string show(const TraceId& v) { return v.to_hex(); }
inline std::string show(const TokenUsage& v) {
  return "{" + show(v.input) + "," + show(v.output) + "," + show(v.cached_input) + "}";
}
inline std::string show(const DropCounts& v) { return "{" + show(v.spans) + "," + show(v.records) + "}"; }
inline std::string show(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::i64: return "i64 " + show(v.i);
    case AttrValue::Type::f64: {
      std::ostringstream o;
      o << "f64 " << v.d << " (i=" << v.i << ")";
      return o.str();
    }
    case AttrValue::Type::boolean: return "bool " + show(v.i);
    default: return "string " + show(v.s) + " (i=" + show(v.i) + ")";
  }
}
inline std::string show(const Attribute& a) {
  return show(a.key) + "=" + show(a.value) + (a.truncated ? " truncated" : "");
}
inline std::string show(const SpanEvent& e) { return show(e.name) + "@" + show(e.time_ns); }
template <class T>
std::string show(const std::vector<T>& v) {
  std::string out = "[" + std::to_string(v.size()) + ":";
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) out += " " + show(v[i]);
  return out + (v.size() > 8 ? " ...]" : "]");
}

template <class T>
bool field(std::string& out, const std::string& where, const char* name, const T& a, const T& b) {
  if (a == b) return false;
  out = where + "." + name + ": " + show(a) + " vs " + show(b);
  return true;
}

}  // namespace detail_diff

// "" when equal; else the first differing field, e.g.
// "span 3 (id 42).end_thread_id: 7 vs 0".
inline std::string first_difference(const AssembledTrace& a, const AssembledTrace& b) {
  using detail_diff::field;
  std::string d;
  const std::string t = "trace " + a.trace_id.to_hex();
  if (field(d, t, "trace_id", a.trace_id, b.trace_id) || field(d, t, "root_name", a.root_name, b.root_name) ||
      field(d, t, "service_name", a.service_name, b.service_name) ||
      field(d, t, "process_id", a.process_id, b.process_id) || field(d, t, "part", a.part, b.part) ||
      field(d, t, "partial", a.partial, b.partial) ||
      field(d, t, "drops_since_previous", a.drops_since_previous, b.drops_since_previous) ||
      field(d, t, "spans.size", a.spans.size(), b.spans.size()) ||
      field(d, t, "thread_names.size", a.thread_names.size(), b.thread_names.size()))
    return d;
  for (std::size_t i = 0; i < a.thread_names.size(); ++i) {
    const std::string w = t + " thread_names[" + std::to_string(i) + "]";
    if (field(d, w, "thread_id", a.thread_names[i].thread_id, b.thread_names[i].thread_id) ||
        field(d, w, "name", a.thread_names[i].name, b.thread_names[i].name))
      return d;
  }
  for (std::size_t i = 0; i < a.spans.size(); ++i) {
    const SpanData& x = a.spans[i];
    const SpanData& y = b.spans[i];
    const std::string w = t + " span " + std::to_string(i) + " (id " + std::to_string(x.span_id) + ")";
    if (field(d, w, "span_id", x.span_id, y.span_id) || field(d, w, "parent_id", x.parent_id, y.parent_id) ||
        field(d, w, "name", x.name, y.name) || field(d, w, "kind", x.kind, y.kind) ||
        field(d, w, "kind_name", x.kind_name, y.kind_name) || field(d, w, "start_ns", x.start_ns, y.start_ns) ||
        field(d, w, "end_ns", x.end_ns, y.end_ns) || field(d, w, "status", x.status, y.status) ||
        field(d, w, "error_message", x.error_message, y.error_message) ||
        field(d, w, "error_data", x.error_data, y.error_data) || field(d, w, "input", x.input, y.input) ||
        field(d, w, "output", x.output, y.output) || field(d, w, "model", x.model, y.model) ||
        field(d, w, "tags", x.tags, y.tags) || field(d, w, "has_tokens", x.has_tokens, y.has_tokens) ||
        field(d, w, "tokens", x.tokens, y.tokens) || field(d, w, "attrs", x.attrs, y.attrs) ||
        field(d, w, "thread_id", x.thread_id, y.thread_id) ||
        field(d, w, "end_thread_id", x.end_thread_id, y.end_thread_id) ||
        field(d, w, "segment_of", x.segment_of, y.segment_of) ||
        field(d, w, "segment_index", x.segment_index, y.segment_index) ||
        field(d, w, "group", x.group, y.group) || field(d, w, "flags", x.flags, y.flags))
      return d;
    if (field(d, w, "links.size", x.links.size(), y.links.size())) return d;
    for (std::size_t k = 0; k < x.links.size(); ++k) {
      const std::string l = w + " link " + std::to_string(k);
      if (field(d, l, "trace_hi", x.links[k].trace_id.hi, y.links[k].trace_id.hi) ||
          field(d, l, "trace_lo", x.links[k].trace_id.lo, y.links[k].trace_id.lo) ||
          field(d, l, "span_id", x.links[k].span_id, y.links[k].span_id))
        return d;
    }
    if (field(d, w, "events.size", x.events.size(), y.events.size())) return d;
    for (std::size_t k = 0; k < x.events.size(); ++k) {
      const std::string e = w + " event " + std::to_string(k);
      if (field(d, e, "name", x.events[k].name, y.events[k].name) ||
          field(d, e, "time_ns", x.events[k].time_ns, y.events[k].time_ns) ||
          field(d, e, "attrs", x.events[k].attrs, y.events[k].attrs))
        return d;
    }
  }
  if (field(d, t, "groups.size", a.groups.size(), b.groups.size())) return d;
  for (std::size_t i = 0; i < a.groups.size(); ++i) {
    const ParallelGroup& x = a.groups[i];
    const ParallelGroup& y = b.groups[i];
    const std::string w = t + " group " + std::to_string(i);
    if (field(d, w, "id", x.id, y.id) || field(d, w, "parent_id", x.parent_id, y.parent_id) ||
        field(d, w, "members", x.members, y.members) || field(d, w, "start_ns", x.start_ns, y.start_ns) ||
        field(d, w, "end_ns", x.end_ns, y.end_ns) ||
        field(d, w, "peak_concurrency", x.peak_concurrency, y.peak_concurrency))
      return d;
  }
  if (field(d, t, "chains.size", a.chains.size(), b.chains.size())) return d;
  for (std::size_t i = 0; i < a.chains.size(); ++i) {
    const SegmentChain& x = a.chains[i];
    const SegmentChain& y = b.chains[i];
    const std::string w = t + " chain " + std::to_string(i);
    if (field(d, w, "first_span_id", x.first_span_id, y.first_span_id) ||
        field(d, w, "segments", x.segments, y.segments) || field(d, w, "waited_ns", x.waited_ns, y.waited_ns))
      return d;
  }
  if (!(a == b)) return t + ": differs in a field first_difference() does not name";
  return {};
}

}  // namespace strobe::test
