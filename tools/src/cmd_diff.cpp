// strobe diff BASE NEW [--threshold PCT] [--alpha P] [--json]
//
// Per span name: the latency change between two runs, judged by a two-sided
// Mann-Whitney U test (normal approximation with tie correction) so that noise is not
// reported as change. A name is "slower" when the test rejects equality at --alpha AND
// its median grew by at least --threshold percent; any slower name makes the exit
// status 1, so the command can gate CI.
//
// Loss: a run that lost data is named in a warning; when either run dropped more than
// 1% of its spans (dropped / (in the file + dropped)) the comparison is called doubtful.
// Neither changes the exit status.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "commands.hpp"
#include "common.hpp"
#include "json.hpp"
#include "loss.hpp"

namespace strobe::tool {
namespace {

// Up to kCap durations per name, uniformly sampled (reservoir) so memory stays bounded.
struct Samples {
  static constexpr std::size_t kCap = 20000;
  std::vector<std::int64_t> v;
  std::uint64_t seen = 0;
  void add(std::int64_t x, std::mt19937_64& rng) {
    ++seen;
    if (v.size() < kCap) {
      v.push_back(x);
      return;
    }
    const std::uint64_t j = rng() % seen;
    if (j < kCap) v[j] = x;
  }
};

using Runs = std::map<std::string, Samples, std::less<>>;

// Above this share of spans dropped, a run's medians are doubtful.
constexpr double kDoubtfulDropShare = 0.01;

int load(const std::string& file, Runs& runs, LossSummary& loss) {
  std::mt19937_64 rng(0x5eed);
  return for_each_trace(file, [&](const serialize::TraceView& t) {
    for (serialize::SpanView s : t.spans()) {
      if (s.status() == Status::incomplete) continue;  // no real duration
      if (is_placeholder(s.flags())) continue;         // a stand-in: not the span's name or times
      auto it = runs.find(s.name());
      if (it == runs.end()) it = runs.emplace(std::string(s.name()), Samples{}).first;
      it->second.add(span_duration(s.start_ns(), s.end_ns()), rng);
    }
  }, nullptr, &loss);
}

double median(std::vector<std::int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? double(v[n / 2]) : (double(v[n / 2 - 1]) + double(v[n / 2])) / 2.0;
}

// Two-sided p-value of the Mann-Whitney U test.
double mann_whitney_p(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  const double n1 = double(a.size()), n2 = double(b.size()), n = n1 + n2;
  std::vector<std::pair<std::int64_t, int>> all;
  all.reserve(a.size() + b.size());
  for (auto x : a) all.emplace_back(x, 0);
  for (auto x : b) all.emplace_back(x, 1);
  std::sort(all.begin(), all.end());
  double r1 = 0, ties = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double rank = (double(i + 1) + double(j)) / 2.0;
    const double t = double(j - i);
    ties += t * t * t - t;
    for (std::size_t k = i; k < j; ++k)
      if (all[k].second == 0) r1 += rank;
    i = j;
  }
  const double u1 = r1 - n1 * (n1 + 1) / 2.0;
  const double mu = n1 * n2 / 2.0;
  const double var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)));
  if (var <= 0) return 1.0;
  const double z = (std::abs(u1 - mu) - 0.5) / std::sqrt(var);
  return std::erfc(std::max(0.0, z) / std::sqrt(2.0));
}

struct Row {
  std::string name;
  std::uint64_t n_base = 0, n_new = 0;
  double med_base = 0, med_new = 0, change_pct = 0, p = 1;
  std::string verdict;
};

}  // namespace

void add_diff(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("diff", "Per span name latency change between two runs, with a Mann-Whitney U test; "
                                         "exit 1 when a span got significantly slower than --threshold. Warns when a "
                                         "run lost data, and calls the comparison doubtful when either run dropped "
                                         "more than 1% of its spans");
  struct Opts {
    std::string base, next;
    double threshold = 5.0, alpha = 0.01;
    std::size_t min_samples = 8;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("BASE", o->base, "baseline strobe file")->required();
  cmd->add_option("NEW", o->next, "new strobe file")->required();
  cmd->add_option("--threshold", o->threshold, "smallest median change, in percent, worth reporting")->check(CLI::NonNegativeNumber);
  cmd->add_option("--alpha", o->alpha, "significance level of the test")->check(CLI::Range(1e-12, 0.5));
  cmd->add_option("--min-samples", o->min_samples, "fewer samples than this in either run: not judged");
  cmd->add_flag("--json", o->json, "JSON output");
  cmd->callback([o, &status] {
    Runs base, next;
    LossSummary base_loss, next_loss;
    const int s1 = load(o->base, base, base_loss);
    const int s2 = load(o->next, next, next_loss);
    const bool doubtful = base_loss.dropped_span_fraction() > kDoubtfulDropShare ||
                          next_loss.dropped_span_fraction() > kDoubtfulDropShare;
    std::vector<Row> rows;
    bool slower = false;
    for (auto& [name, b] : base) {
      Row r;
      r.name = name;
      r.n_base = b.seen;
      r.med_base = median(b.v);
      auto it = next.find(name);
      if (it == next.end()) {
        r.verdict = "gone";
        rows.push_back(r);
        continue;
      }
      r.n_new = it->second.seen;
      r.med_new = median(it->second.v);
      r.change_pct = r.med_base > 0 ? (r.med_new - r.med_base) / r.med_base * 100.0 : 0;
      if (b.v.size() < o->min_samples || it->second.v.size() < o->min_samples) {
        r.verdict = "too few samples";
      } else {
        r.p = mann_whitney_p(b.v, it->second.v);
        const bool significant = r.p < o->alpha && std::abs(r.change_pct) >= o->threshold;
        r.verdict = !significant ? "~" : (r.change_pct > 0 ? "slower" : "faster");
        slower = slower || r.verdict == "slower";
      }
      rows.push_back(r);
    }
    for (auto& [name, n] : next)
      if (!base.count(name)) rows.push_back(Row{name, 0, n.seen, 0, median(n.v), 0, 1, "new"});
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.change_pct > b.change_pct; });
    if (o->json) {
      FileStream fs(stdout);
      JsonWriter w(fs);
      w.StartObject();
      key(w, "threshold_pct"); w.Double(o->threshold);
      key(w, "alpha"); w.Double(o->alpha);
      key(w, "regression"); w.Bool(slower);
      key(w, "doubtful"); w.Bool(doubtful);
      key(w, "loss");
      w.StartObject();
      key(w, "base"); write_loss_json(w, base_loss);
      key(w, "new"); write_loss_json(w, next_loss);
      w.EndObject();
      key(w, "spans");
      w.StartArray();
      for (const Row& r : rows) {
        w.StartObject();
        key(w, "name"); str(w, r.name);
        key(w, "base_count"); w.Uint64(r.n_base);
        key(w, "new_count"); w.Uint64(r.n_new);
        key(w, "base_median_ns"); w.Double(r.med_base);
        key(w, "new_median_ns"); w.Double(r.med_new);
        key(w, "change_pct"); w.Double(r.change_pct);
        key(w, "p_value"); w.Double(r.p);
        key(w, "verdict"); str(w, r.verdict);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      fs.raw("\n");
    } else {
      struct Side {
        const char* label;
        const std::string& path;
        const LossSummary& loss;
      };
      const Side sides[] = {{"BASE", o->base, base_loss}, {"NEW", o->next, next_loss}};
      for (const Side& side : sides)
        if (side.loss.lost_data())
          std::printf("warning: %s (%s) lost data: %s\n", side.label, side.path.c_str(), side.loss.describe().c_str());
      if (doubtful) {
        std::printf("warning: the comparison is doubtful: ");
        bool more = false;
        for (const Side& side : sides) {
          if (side.loss.dropped_span_fraction() <= kDoubtfulDropShare) continue;
          std::printf("%s%s dropped %.2f%% of its spans", more ? ", " : "", side.label,
                      side.loss.dropped_span_fraction() * 100.0);
          more = true;
        }
        std::printf(" (more than %.0f%%)\n", kDoubtfulDropShare * 100.0);
      }
      if (base_loss.lost_data() || next_loss.lost_data()) std::printf("\n");
      std::size_t width = 4;
      for (const Row& r : rows) width = std::max(width, std::min<std::size_t>(40, r.name.size()));
      std::printf("%-*s %9s %9s %12s %12s %9s %10s  %s\n", int(width), "name", "base n", "new n", "base p50", "new p50",
                  "change", "p-value", "verdict");
      for (const Row& r : rows) {
        std::printf("%-*s %9llu %9llu %12s %12s %+8.1f%% %10.2g  %s\n", int(width), r.name.substr(0, width).c_str(),
                    static_cast<unsigned long long>(r.n_base), static_cast<unsigned long long>(r.n_new),
                    format_duration(round_to_int64(r.med_base)).c_str(), format_duration(round_to_int64(r.med_new)).c_str(),
                    r.change_pct, r.p, r.verdict.c_str());
      }
      std::printf("%s (threshold %.1f%%, alpha %g)\n", slower ? "REGRESSION: a span got significantly slower" : "no significant slowdown",
                  o->threshold, o->alpha);
    }
    status = slower ? kExitNo : std::max(s1, s2);
  });
}

}  // namespace strobe::tool
