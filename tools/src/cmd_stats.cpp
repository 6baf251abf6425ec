// strobe stats FILE [--by name|kind] [--json]

#include <algorithm>
#include <cstdio>
#include <map>

#include "commands.hpp"
#include "common.hpp"
#include "distribution.hpp"
#include "json.hpp"

namespace strobe::tool {
namespace {

struct Group {
  Distribution d;
  std::uint64_t errors = 0, incomplete = 0;
  std::int64_t tok_in = 0, tok_out = 0, tok_cached = 0;
};

}  // namespace

void add_stats(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("stats", "Per span name (or kind): count, total, mean, p50/p90/p99/max, errors, tokens");
  struct Opts {
    std::string file, by = "name";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("--by", o->by, "group by span name or kind")->check(CLI::IsMember({"name", "kind"}));
  cmd->add_flag("--json", o->json, "JSON output");
  cmd->callback([o, &status] {
    std::map<std::string, Group, std::less<>> groups;
    status = for_each_trace(o->file, [&](const serialize::TraceView& t) {
      for (serialize::SpanView s : t.spans()) {
        const std::string_view k = o->by == "kind" ? std::string_view(to_string(s.kind())) : s.name();
        auto it = groups.find(k);
        if (it == groups.end()) it = groups.emplace(std::string(k), Group{}).first;
        Group& g = it->second;
        g.d.add(s.duration_ns());
        if (s.status() == Status::failed) ++g.errors;
        if (s.status() == Status::incomplete) ++g.incomplete;
        if (s.has_tokens()) {
          const TokenUsage u = s.tokens();
          g.tok_in += u.input;
          g.tok_out += u.output;
          g.tok_cached += u.cached_input;
        }
      }
    });
    std::vector<std::pair<std::string, Group*>> rows;
    for (auto& [name, g] : groups) rows.emplace_back(name, &g);
    std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second->d.sum() > b.second->d.sum(); });
    if (o->json) {
      FileStream fs(stdout);
      JsonWriter w(fs);
      w.StartArray();
      for (auto& [name, g] : rows) {
        w.StartObject();
        key(w, o->by);
        str(w, name);
        key(w, "count"); w.Uint64(g->d.count());
        key(w, "total_ns"); w.Int64(static_cast<std::int64_t>(g->d.sum()));
        key(w, "mean_ns"); w.Int64(static_cast<std::int64_t>(g->d.mean()));
        key(w, "p50_ns"); w.Int64(g->d.quantile(0.50));
        key(w, "p90_ns"); w.Int64(g->d.quantile(0.90));
        key(w, "p99_ns"); w.Int64(g->d.quantile(0.99));
        key(w, "max_ns"); w.Int64(g->d.max());
        key(w, "errors"); w.Uint64(g->errors);
        key(w, "incomplete"); w.Uint64(g->incomplete);
        key(w, "input_tokens"); w.Int64(g->tok_in);
        key(w, "output_tokens"); w.Int64(g->tok_out);
        key(w, "cached_input_tokens"); w.Int64(g->tok_cached);
        w.EndObject();
      }
      w.EndArray();
      fs.raw("\n");
      return;
    }
    std::size_t width = 4;
    for (auto& r : rows) width = std::max(width, r.first.size());
    width = std::min<std::size_t>(width, 40);
    std::printf("%-*s %9s %11s %11s %11s %11s %11s %11s %7s  %s\n", static_cast<int>(width), o->by.c_str(), "count",
                "total", "mean", "p50", "p90", "p99", "max", "errors", "tokens in/out/cached");
    for (auto& [name, g] : rows) {
      std::string tokens = "-";
      if (g->tok_in || g->tok_out || g->tok_cached)
        tokens = std::to_string(g->tok_in) + "/" + std::to_string(g->tok_out) + "/" + std::to_string(g->tok_cached);
      std::printf("%-*s %9llu %11s %11s %11s %11s %11s %11s %7llu  %s\n", static_cast<int>(width),
                  name.substr(0, width).c_str(), static_cast<unsigned long long>(g->d.count()),
                  format_duration(static_cast<std::int64_t>(g->d.sum())).c_str(),
                  format_duration(static_cast<std::int64_t>(g->d.mean())).c_str(),
                  format_duration(g->d.quantile(0.5)).c_str(), format_duration(g->d.quantile(0.9)).c_str(),
                  format_duration(g->d.quantile(0.99)).c_str(), format_duration(g->d.max()).c_str(),
                  static_cast<unsigned long long>(g->errors), tokens.c_str());
    }
  });
}

}  // namespace strobe::tool
