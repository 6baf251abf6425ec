// strobe tree FILE [--trace ID] [--depth N]

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "commands.hpp"
#include "common.hpp"
#include "loss.hpp"

namespace strobe::tool {
namespace {

// Deeper than this, a line says its depth as a number instead of indenting further, so
// a line's length does not grow with the depth of the tree.
constexpr int kMaxIndent = 64;

std::string span_line(const AssembledTrace& t, const SpanData& s) {
  std::string out = std::string(to_string(s.kind));
  if (s.kind == Kind::custom && !s.kind_name.empty()) out += ":" + s.kind_name;
  out += " " + s.name + "  " + format_duration(span_duration(s.start_ns, s.end_ns));
  if (s.status == Status::failed) {
    out += "  FAILED";
    if (!s.error_message.empty()) out += ": " + s.error_message;
  } else if (s.status == Status::incomplete && !is_continued(s.flags)) {
    out += "  INCOMPLETE";
  }
  if (is_placeholder(s.flags)) out += "  [placeholder: begin lost]";
  if (has_lost_records(s.flags)) out += "  [lost records]";
  if (is_orphan(s.flags)) out += "  [orphan]";
  if (lost_name(s.flags)) out += "  [name lost: intern table full]";
  if (is_continued(s.flags)) out += "  [continued]";
  if (s.flags & kSpanCrashed) out += "  [crashed here]";
  if (!s.model.empty()) out += "  model=" + s.model;
  if (s.has_tokens) {
    out += "  tokens=" + std::to_string(s.tokens.input) + "/" + std::to_string(s.tokens.output);
    if (s.tokens.cached_input) out += " (cached " + std::to_string(s.tokens.cached_input) + ")";
  }
  if (s.group >= 0) {
    const ParallelGroup& g = t.groups[static_cast<std::size_t>(s.group)];
    if (g.members.front() == s.span_id)
      out += "  [parallel group " + std::to_string(g.id) + ": " + std::to_string(g.members.size()) +
             " spans, peak " + std::to_string(g.peak_concurrency) + ", " + format_duration(sat_sub(g.end_ns, g.start_ns)) + "]";
  }
  if (s.segment_of != 0) {
    out += "  [segment " + std::to_string(s.segment_index);
    for (const SegmentChain& c : t.chains)
      if (c.first_span_id == s.segment_of && c.segments.size() > 1 && c.segments.front() == s.span_id)
        out += " of " + std::to_string(c.segments.size()) + ", waited " + format_duration(c.waited_ns);
    if (s.flags & kSpanSuspended) out += ", suspended";
    out += "]";
  }
  if ((s.flags & kSpanTraceRoot) && s.parent_id != 0) out += "  [remote parent " + hex64(s.parent_id) + "]";
  if (!s.links.empty()) {
    out += "  [linked to";
    for (std::size_t i = 0; i < s.links.size() && i < 3; ++i) out += " " + hex64(s.links[i].span_id);
    if (s.links.size() > 3) out += " and " + std::to_string(s.links.size() - 3) + " more";
    out += "]";
  }
  if (!s.tags.empty()) {
    out += "  #";
    for (std::size_t i = 0; i < s.tags.size(); ++i) out += (i ? ",#" : "") + s.tags[i];
  }
  for (const Attribute& a : s.attrs) {
    if (a.key == "model") continue;
    out += "  " + a.key + "=";
    switch (a.value.type) {
      case AttrValue::Type::i64: out += std::to_string(a.value.i); break;
      case AttrValue::Type::f64: {
        char b[32];
        std::snprintf(b, sizeof b, "%g", a.value.d);
        out += b;
        break;
      }
      case AttrValue::Type::boolean: out += a.value.i ? "true" : "false"; break;
      case AttrValue::Type::string:
        out += a.value.s.size() > 40 ? "\"" + a.value.s.substr(0, 37) + "...\"" : "\"" + a.value.s + "\"";
        break;
    }
  }
  return out;
}

}  // namespace

// Prints one trace as an indented tree. Iterative, so any depth is fine; past
// kMaxIndent levels a line starts with "[depth N]" instead of more indentation. Every
// span is printed once, even where hostile ids make a cycle.
void print_tree(std::FILE* out, const AssembledTrace& t, int max_depth, std::size_t max_children) {
  std::fprintf(out, "trace %s  %s  %zu spans", t.trace_id.to_hex().c_str(), t.root_name.c_str(), t.spans.size());
  if (!t.groups.empty()) std::fprintf(out, ", %zu parallel groups", t.groups.size());
  if (!t.chains.empty()) std::fprintf(out, ", %zu suspended operations", t.chains.size());
  if (t.partial || t.part > 0) std::fprintf(out, "  (part %u%s)", t.part, t.partial ? ", more follows" : ", last");
  if (t.drops_since_previous.records)
    std::fprintf(out, "  (%llu records dropped before it)", static_cast<unsigned long long>(t.drops_since_previous.records));
  std::fputc('\n', out);
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> kids;
  std::unordered_map<std::uint64_t, std::size_t> pos;
  for (std::size_t i = 0; i < t.spans.size(); ++i) pos[t.spans[i].span_id] = i;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < t.spans.size(); ++i) {
    const SpanData& s = t.spans[i];
    if (s.parent_id != 0 && pos.count(s.parent_id)) {
      kids[s.parent_id].push_back(i);
    } else {
      roots.push_back(i);
    }
  }

  // The prefix of the current level's lines ("│  " and "   " per level), up to kMaxIndent.
  std::string prefix;
  auto lead = [&](int depth) {
    if (depth <= kMaxIndent) {
      std::fputs(prefix.c_str(), out);
    } else {
      std::fprintf(out, "[depth %d] ", depth);
    }
  };
  struct Level {
    const std::vector<std::size_t>* kids;
    std::size_t next;        // the next child to print
    std::size_t prefix_len;  // the prefix's length before this level extended it
    int depth;               // of the children
  };
  std::vector<Level> stack;
  std::vector<bool> printed(t.spans.size(), false);

  // Spans no root reaches (their parent ids form a cycle) are shown as roots of their own:
  // one for each group that a walk from it reaches.
  {
    std::vector<bool> reached(t.spans.size(), false);
    std::vector<std::size_t> todo;
    auto reach = [&](std::size_t from) {
      reached[from] = true;
      todo.push_back(from);
      while (!todo.empty()) {
        const std::size_t i = todo.back();
        todo.pop_back();
        auto it = kids.find(t.spans[i].span_id);
        if (it == kids.end()) continue;
        for (std::size_t k : it->second)
          if (!reached[k]) {
            reached[k] = true;
            todo.push_back(k);
          }
      }
    };
    for (std::size_t r : roots) reach(r);
    for (std::size_t i = 0; i < t.spans.size(); ++i)
      if (!reached[i]) {
        roots.push_back(i);
        reach(i);
      }
  }

  // Prints span i at `depth` and, when it has children to show, opens their level.
  auto visit = [&](std::size_t i, int depth, bool last) {
    printed[i] = true;
    const SpanData& s = t.spans[i];
    lead(depth);
    std::fprintf(out, "%s%s%s\n", depth == 0 ? "" : (last ? "└─ " : "├─ "), s.group >= 0 ? "‖ " : "",
                 span_line(t, s).c_str());
    auto it = kids.find(s.span_id);
    if (it == kids.end()) return;
    const std::size_t prefix_len = prefix.size();
    if (depth + 1 <= kMaxIndent) prefix += depth == 0 ? "" : (last ? "   " : "│  ");
    if (max_depth >= 0 && depth >= max_depth) {
      lead(depth + 1);
      std::fprintf(out, "… %zu children not shown (--depth)\n", it->second.size());
      prefix.resize(prefix_len);
      return;
    }
    stack.push_back(Level{&it->second, 0, prefix_len, depth + 1});
  };

  auto walk = [&](std::size_t root) {
    visit(root, 0, true);
    while (!stack.empty()) {
      Level& level = stack.back();
      const std::vector<std::size_t>& list = *level.kids;
      const std::size_t n = list.size();
      if (level.next >= n) {
        prefix.resize(level.prefix_len);
        stack.pop_back();
        continue;
      }
      std::size_t k = level.next;
      // Long runs of children: the first ones and the last one, with a count between.
      if (max_children > 0 && n > max_children + 1 && k == max_children) {
        lead(level.depth);
        std::fprintf(out, "├─ … %zu more\n", n - max_children - 1);
        k = n - 1;
      }
      level.next = k + 1;
      const int depth = level.depth;  // `level` may not survive visit()
      if (!printed[list[k]]) visit(list[k], depth, k + 1 == n);
    }
  };
  for (std::size_t r : roots)
    if (!printed[r]) walk(r);
}

void add_tree(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("tree", "An indented tree per trace: kinds, durations, status, model, tokens, "
                                         "parallel groups (‖) and suspended/resumed segments; when the run lost data, "
                                         "a warning first and the spans marked ([lost records], [placeholder: begin "
                                         "lost], [orphan]); [continued]: continued in a later part");
  struct Opts {
    std::string file, trace, root;
    int depth = -1;
    std::size_t limit = 0, max_children = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("--trace", o->trace, "only the trace whose id starts with this hex prefix");
  cmd->add_option("--root", o->root, "only traces whose root span has this name");
  cmd->add_option("--limit", o->limit, "show at most N traces");
  cmd->add_option("--depth", o->depth, "show at most N levels below each root")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-children", o->max_children, "show at most N children per span (then a count and the last)");
  cmd->callback([o, &status] {
    // What the run lost goes first (with the first tree shown), so a reader sees it before
    // the trees: one pass reads the counts, the next prints.
    const LossSummary loss = scan_loss(o->file);
    bool first = true;
    std::size_t shown = 0;
    status = for_each_trace(o->file, [&](const serialize::TraceView& tv) {
      if (!o->trace.empty() && tv.trace_id().to_hex().rfind(o->trace, 0) != 0) return;
      if (!o->root.empty() && tv.root_name() != o->root) return;
      if (o->limit != 0 && shown >= o->limit) return;
      if (first && loss.crash_signal() != 0) {
        std::printf("note: the process crashed (%s); the crash flush wrote what it had recorded\n",
                    crash_description(loss.crash_signal(), loss.crash_address()).c_str());
        first = false;
      }
      if (first && loss.recovered()) {
        std::printf("note: the process died without closing its file; strobe recover rebuilt this file from what "
                    "it left\n");
        first = false;
      }
      if (first && loss.lost_data()) {
        std::printf("warning: the run lost data: %s\n", loss.describe().c_str());
        if (const std::string where = loss.most_affected(); !where.empty())
          std::printf("  most affected: %s\n", where.c_str());
        first = false;
      }
      if (!first) std::fputc('\n', stdout);
      first = false;
      print_tree(stdout, tv.materialize(), o->depth, o->max_children);
      ++shown;
    });
    // In a damaged file the trace asked for may lie past the damage: the status stays 4.
    if (shown == 0 && (!o->trace.empty() || !o->root.empty())) {
      if (status != kExitOk) {
        std::fprintf(stderr, "strobe: no trace before the damage in %s matches the selection\n", o->file.c_str());
        return;
      }
      throw ToolError(kExitNo, "no trace in " + o->file + " matches the selection");
    }
  });
}

}  // namespace strobe::tool
