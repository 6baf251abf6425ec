// strobe tree FILE [--trace ID] [--depth N]

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "commands.hpp"
#include "common.hpp"

namespace strobe::tool {
namespace {

std::string span_line(const AssembledTrace& t, const SpanData& s) {
  std::string out = std::string(to_string(s.kind));
  if (s.kind == Kind::custom && !s.kind_name.empty()) out += ":" + s.kind_name;
  out += " " + s.name + "  " + format_duration(s.duration_ns());
  if (s.status == Status::failed) {
    out += "  FAILED";
    if (!s.error_message.empty()) out += ": " + s.error_message;
  } else if (s.status == Status::incomplete) {
    out += "  INCOMPLETE";
  }
  if (!s.model.empty()) out += "  model=" + s.model;
  if (s.has_tokens) {
    out += "  tokens=" + std::to_string(s.tokens.input) + "/" + std::to_string(s.tokens.output);
    if (s.tokens.cached_input) out += " (cached " + std::to_string(s.tokens.cached_input) + ")";
  }
  if (s.group >= 0) {
    const ParallelGroup& g = t.groups[static_cast<std::size_t>(s.group)];
    if (g.members.front() == s.span_id)
      out += "  [parallel group " + std::to_string(g.id) + ": " + std::to_string(g.members.size()) +
             " spans, peak " + std::to_string(g.peak_concurrency) + ", " + format_duration(g.end_ns - g.start_ns) + "]";
  }
  if (s.segment_of != 0) {
    out += "  [segment " + std::to_string(s.segment_index);
    for (const SegmentChain& c : t.chains)
      if (c.first_span_id == s.segment_of && c.segments.size() > 1 && c.segments.front() == s.span_id)
        out += " of " + std::to_string(c.segments.size()) + ", waited " + format_duration(c.waited_ns);
    if (s.flags & kSpanSuspended) out += ", suspended";
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
  auto walk = [&](auto&& self, std::size_t i, const std::string& prefix, bool last, int depth) -> void {
    const SpanData& s = t.spans[i];
    const char* branch = depth == 0 ? "" : (last ? "└─ " : "├─ ");
    const char* par = s.group >= 0 ? "‖ " : "";
    std::fprintf(out, "%s%s%s%s\n", prefix.c_str(), branch, par, span_line(t, s).c_str());
    auto it = kids.find(s.span_id);
    if (it == kids.end()) return;
    if (max_depth >= 0 && depth >= max_depth) {
      std::fprintf(out, "%s%s… %zu children not shown (--depth)\n", prefix.c_str(), depth == 0 ? "" : (last ? "   " : "│  "),
                   it->second.size());
      return;
    }
    const std::string next = prefix + (depth == 0 ? "" : (last ? "   " : "│  "));
    const std::size_t n = it->second.size();
    // Long runs of children: the first ones and the last one, with a count between.
    const bool cut = max_children > 0 && n > max_children + 1;
    for (std::size_t k = 0; k < n; ++k) {
      if (cut && k == max_children) {
        std::fprintf(out, "%s├─ … %zu more\n", next.c_str(), n - max_children - 1);
        k = n - 1;
      }
      self(self, it->second[k], next, k + 1 == n, depth + 1);
    }
  };
  for (std::size_t r : roots) walk(walk, r, "", true, 0);
}

void add_tree(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("tree", "An indented tree per trace: kinds, durations, status, model, tokens, "
                                         "parallel groups (‖) and suspended/resumed segments");
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
    std::size_t shown = 0;
    bool first = true;
    status = for_each_trace(o->file, [&](const serialize::TraceView& tv) {
      if (!o->trace.empty() && tv.trace_id().to_hex().rfind(o->trace, 0) != 0) return;
      if (!o->root.empty() && tv.root_name() != o->root) return;
      if (o->limit != 0 && shown >= o->limit) return;
      if (!first) std::fputc('\n', stdout);
      first = false;
      print_tree(stdout, tv.materialize(), o->depth, o->max_children);
      ++shown;
    });
    if (shown == 0 && (!o->trace.empty() || !o->root.empty()))
      throw ToolError(kExitNo, "no trace in " + o->file + " matches the selection");
  });
}

}  // namespace strobe::tool
