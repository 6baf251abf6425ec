// strobe stats FILE [--by name|kind] [--json]

#include <algorithm>
#include <cstdio>
#include <map>

#include "commands.hpp"
#include "common.hpp"
#include "distribution.hpp"
#include "json.hpp"
#include "loss.hpp"

namespace strobe::tool {
namespace {

struct Group {
  Distribution d;
  std::uint64_t errors = 0, incomplete = 0;
  Total tok_in, tok_out, tok_cached;
  [[nodiscard]] bool saturated() const noexcept {
    return d.sum().saturated() || tok_in.saturated() || tok_out.saturated() || tok_cached.saturated();
  }
};

// A token count as summed: a negative one (no recorder writes it) counts as 0.
std::int64_t token_count(std::int64_t v, std::uint64_t& negative) {
  if (v >= 0) return v;
  ++negative;
  return 0;
}

// A sum for the table; ">" in front when it reached the largest value.
std::string total_text(const Total& t) { return (t.saturated() ? ">" : "") + std::to_string(t.value()); }

}  // namespace

void add_stats(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("stats", "Per span name (or kind): count, total, mean, p50/p90/p99/max, errors, tokens; "
                                          "a warning first when the run lost data (--json: a \"loss\" object)");
  struct Opts {
    std::string file, by = "name";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("--by", o->by, "group by span name or kind")->check(CLI::IsMember({"name", "kind"}));
  cmd->add_flag("--json", o->json,
                "JSON output: {\"groups\": [...], \"negative_token_values\": N, \"loss\": {...}}");
  cmd->callback([o, &status] {
    std::map<std::string, Group, std::less<>> groups;
    LossSummary loss;
    std::uint64_t negative_tokens = 0;
    status = for_each_trace(o->file, [&](const serialize::TraceView& t) {
      for (serialize::SpanView s : t.spans()) {
        // A placeholder stands in for a span whose begin was lost: its name and times are
        // not the span's. It is counted in the loss, not here.
        if (is_placeholder(s.flags())) continue;
        const std::string_view k = o->by == "kind" ? std::string_view(to_string(s.kind())) : s.name();
        auto it = groups.find(k);
        if (it == groups.end()) it = groups.emplace(std::string(k), Group{}).first;
        Group& g = it->second;
        g.d.add(span_duration(s.start_ns(), s.end_ns()));
        if (s.status() == Status::failed) ++g.errors;
        if (s.status() == Status::incomplete) ++g.incomplete;
        if (s.has_tokens()) {
          const TokenUsage u = s.tokens();
          g.tok_in.add(token_count(u.input, negative_tokens));
          g.tok_out.add(token_count(u.output, negative_tokens));
          g.tok_cached.add(token_count(u.cached_input, negative_tokens));
        }
      }
    }, nullptr, &loss);
    std::vector<std::pair<std::string, Group*>> rows;
    for (auto& [name, g] : groups) rows.emplace_back(name, &g);
    std::stable_sort(rows.begin(), rows.end(),
                     [](auto& a, auto& b) { return a.second->d.sum().exact() > b.second->d.sum().exact(); });
    if (o->json) {
      FileStream fs(stdout);
      JsonWriter w(fs);
      w.StartObject();
      key(w, "groups");
      w.StartArray();
      for (auto& [name, g] : rows) {
        w.StartObject();
        key(w, o->by);
        str(w, name);
        key(w, "count"); w.Uint64(g->d.count());
        key(w, "total_ns"); w.Int64(g->d.sum().value());
        key(w, "mean_ns"); w.Int64(g->d.mean());
        key(w, "p50_ns"); w.Int64(g->d.quantile(0.50));
        key(w, "p90_ns"); w.Int64(g->d.quantile(0.90));
        key(w, "p99_ns"); w.Int64(g->d.quantile(0.99));
        key(w, "max_ns"); w.Int64(g->d.max());
        key(w, "errors"); w.Uint64(g->errors);
        key(w, "incomplete"); w.Uint64(g->incomplete);
        key(w, "input_tokens"); w.Int64(g->tok_in.value());
        key(w, "output_tokens"); w.Int64(g->tok_out.value());
        key(w, "cached_input_tokens"); w.Int64(g->tok_cached.value());
        if (g->saturated()) {
          key(w, "saturated"); w.Bool(true);  // a sum above reached INT64_MAX
        }
        w.EndObject();
      }
      w.EndArray();
      key(w, "negative_token_values"); w.Uint64(negative_tokens);
      key(w, "loss");
      write_loss_json(w, loss);
      w.EndObject();
      fs.raw("\n");
      return;
    }
    if (loss.lost_data()) {
      std::printf("warning: the run lost data: %s\n", loss.describe().c_str());
      if (const std::string where = loss.most_affected(); !where.empty()) std::printf("  most affected: %s\n", where.c_str());
      std::printf("\n");
    }
    std::size_t width = 4;
    for (auto& r : rows) width = std::max(width, r.first.size());
    width = std::min<std::size_t>(width, 40);
    std::printf("%-*s %9s %11s %11s %11s %11s %11s %11s %7s  %s\n", static_cast<int>(width), o->by.c_str(), "count",
                "total", "mean", "p50", "p90", "p99", "max", "errors", "tokens in/out/cached");
    for (auto& [name, g] : rows) {
      std::string tokens = "-";
      if (g->tok_in.nonzero() || g->tok_out.nonzero() || g->tok_cached.nonzero())
        tokens = total_text(g->tok_in) + "/" + total_text(g->tok_out) + "/" + total_text(g->tok_cached);
      std::printf("%-*s %9llu %11s %11s %11s %11s %11s %11s %7llu  %s\n", static_cast<int>(width),
                  name.substr(0, width).c_str(), static_cast<unsigned long long>(g->d.count()),
                  ((g->d.sum().saturated() ? ">" : "") + format_duration(g->d.sum().value())).c_str(),
                  format_duration(g->d.mean()).c_str(), format_duration(g->d.quantile(0.5)).c_str(),
                  format_duration(g->d.quantile(0.9)).c_str(), format_duration(g->d.quantile(0.99)).c_str(),
                  format_duration(g->d.max()).c_str(), static_cast<unsigned long long>(g->errors), tokens.c_str());
    }
    if (negative_tokens)
      std::printf("note: %llu negative token counts were read as 0\n", static_cast<unsigned long long>(negative_tokens));
  });
}

}  // namespace strobe::tool
