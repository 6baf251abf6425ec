#pragma once
// Renders an assembled trace as an indented tree, for readable test failures:
//
//   agent rag-agent
//     plan analyze_query
//       || retrieval fetch        <- member of a parallel group
//       llm generate [failed]
//       tool wait #1              <- segment 1 of a suspended/resumed operation
//
// Members of one parallel group are printed in name order (their start order depends
// on the scheduler); everything else in start order.

#include <strobe/model.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace strobe::test {

inline std::string render_tree(const AssembledTrace& t) {
  std::map<std::uint64_t, std::vector<std::size_t>> kids;
  std::map<std::uint64_t, std::size_t> pos;
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
  auto order = [&](std::vector<std::size_t>& v) {
    // Stable: keep start order, but sort each run of one group by name.
    std::size_t i = 0;
    while (i < v.size()) {
      std::size_t j = i + 1;
      const int g = t.spans[v[i]].group;
      while (g >= 0 && j < v.size() && t.spans[v[j]].group == g) ++j;
      std::stable_sort(v.begin() + i, v.begin() + j, [&](std::size_t a, std::size_t b) {
        return t.spans[a].name < t.spans[b].name;
      });
      i = j;
    }
  };
  std::string out;
  auto line = [&](auto&& self, std::size_t i, int depth) -> void {
    const SpanData& s = t.spans[i];
    out.append(static_cast<std::size_t>(depth) * 2, ' ');
    if (s.group >= 0) out += "|| ";
    out += to_string(s.kind);
    if (s.kind == Kind::custom && !s.kind_name.empty()) out += ":" + s.kind_name;
    out += " " + s.name;
    if (s.segment_of != 0) out += " #" + std::to_string(s.segment_index);
    if (s.status != Status::ok) out += std::string(" [") + to_string(s.status) + "]";
    out += "\n";
    auto it = kids.find(s.span_id);
    if (it == kids.end()) return;
    order(it->second);
    for (std::size_t k : it->second) self(self, k, depth + 1);
  };
  order(roots);
  for (std::size_t r : roots) line(line, r, 0);
  return out;
}

// Iteration counts for stress tests: smaller under sanitizers (STROBE_TEST_SCALE may
// override, e.g. STROBE_TEST_SCALE=10 for a long soak).
inline double stress_scale() {
  if (const char* s = std::getenv("STROBE_TEST_SCALE")) return std::max(0.001, std::atof(s));
#if defined(STROBE_TEST_SANITIZED)
  return 0.05;
#else
  return 1.0;
#endif
}

}  // namespace strobe::test
