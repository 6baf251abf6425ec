#include "loss.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "common.hpp"

namespace strobe::tool {
namespace {

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

std::string crash_description(int signal, std::uint64_t address) {
  const char* name = signal == 11 ? "SIGSEGV" : signal == 7 ? "SIGBUS" : signal == 4 ? "SIGILL"
                     : signal == 8 ? "SIGFPE" : signal == 6 ? "SIGABRT" : nullptr;
  std::string out = name ? name : "signal " + std::to_string(signal);
  if (address != 0) {
    char b[32];
    std::snprintf(b, sizeof b, " at 0x%llx", static_cast<unsigned long long>(address));
    out += b;
  }
  return out;
}

std::uint64_t LossSummary::Counts::weight() const noexcept {
  return sat_add(sat_add(sat_add(sat_add(spans_dropped, sink_spans_dropped), records_dropped),
                         sat_add(spans_lost_records, placeholders)),
                 sat_add(orphans, names_lost));
}

void LossSummary::Counts::add(const Counts& o) noexcept {
  spans_dropped = sat_add(spans_dropped, o.spans_dropped);
  sink_spans_dropped = sat_add(sink_spans_dropped, o.sink_spans_dropped);
  records_dropped = sat_add(records_dropped, o.records_dropped);
  spans_lost_records = sat_add(spans_lost_records, o.spans_lost_records);
  placeholders = sat_add(placeholders, o.placeholders);
  orphans = sat_add(orphans, o.orphans);
  names_lost = sat_add(names_lost, o.names_lost);
}

void LossSummary::add(const serialize::TraceView& t) {
  Counts c;
  c.spans_dropped = t.drops().spans;
  c.records_dropped = t.drops().records;
  c.sink_spans_dropped = t.drops().sink_spans;
  for (serialize::SpanView s : t.spans()) {
    const std::uint32_t f = s.flags();
    if (has_lost_records(f)) ++c.spans_lost_records;
    if (is_placeholder(f)) ++c.placeholders;
    if (is_orphan(f)) ++c.orphans;
    if (lost_name(f)) ++c.names_lost;
    if (is_continued(f)) {
      ++continued_;
    } else if (s.status() == Status::incomplete) {
      ++incomplete_;
    }
  }
  file_drops_.spans_dropped = sat_add(file_drops_.spans_dropped, c.spans_dropped);
  file_drops_.records_dropped = sat_add(file_drops_.records_dropped, c.records_dropped);
  file_drops_.sink_spans_dropped = sat_add(file_drops_.sink_spans_dropped, c.sink_spans_dropped);
  spans_ = sat_add(spans_, t.span_count());
  ++traces_;
  total_.add(c);
  if (!c.any()) return;
  ++traces_affected_;

  const std::string_view root = t.root_name();
  auto it = roots_.find(root);
  if (it == roots_.end() && roots_.size() < kMaxRootNames) it = roots_.emplace(std::string(root), RootLoss{std::string(root), 0, {}}).first;
  RootLoss& r = it == roots_.end() ? other_roots_ : it->second;
  ++r.traces;
  r.counts.add(c);

  // The few traces that lost most, heaviest first (the earliest among equals).
  const std::uint64_t w = c.weight();
  if (top_.size() == kTopTraces && top_.back().counts.weight() >= w) return;
  TraceLoss tl{t.trace_id().to_hex(), std::string(root), t.part(), c};
  auto at = std::find_if(top_.begin(), top_.end(), [&](const TraceLoss& x) { return x.counts.weight() < w; });
  top_.insert(at, std::move(tl));
  if (top_.size() > kTopTraces) top_.pop_back();
}

// Run-level loss a file records beyond its traces joins the per-trace counts here, and
// only here: lost_data(), describe() and the JSON read what it fills: what the writer
// failed to write (running totals, so the latest frame read has them all; 0 in files
// before format 1.1), and the drops the end frame counts beyond those its traces carry
// (those noticed after the run's last trace, or that came with traces dropped because
// the sinks fell behind; they reach the file with a flush, not with a trace).
void LossSummary::add_file_totals(const serialize::Reader& reader) {
  if (reader.ended_cleanly()) {
    const serialize::FileEndInfo& e = reader.end_info();
    auto beyond = [](std::uint64_t end, std::uint64_t traces) { return end > traces ? end - traces : 0; };
    Counts trailing;
    trailing.spans_dropped = beyond(e.spans_dropped, file_drops_.spans_dropped);
    trailing.records_dropped = beyond(e.records_dropped, file_drops_.records_dropped);
    trailing.sink_spans_dropped = beyond(e.sink_dropped_spans, file_drops_.sink_spans_dropped);
    total_.add(trailing);
    recovered_ |= e.recovered;
    if (e.crash_signal != 0) {
      crash_signal_ = e.crash_signal;
      crash_address_ = e.crash_address;
    }
  }
  file_drops_ = {};
  const serialize::WriteLoss w = reader.write_loss();
  unwritten_.frames = std::max(unwritten_.frames, w.frames);
  unwritten_.traces = std::max(unwritten_.traces, w.traces);
  unwritten_.spans = std::max(unwritten_.spans, w.spans);
}

double LossSummary::dropped_span_fraction() const noexcept {
  const double dropped = static_cast<double>(total_.spans_dropped) + static_cast<double>(total_.sink_spans_dropped) +
                         static_cast<double>(unwritten_.spans);
  const double all = static_cast<double>(spans_) + dropped;
  return all > 0 ? dropped / all : 0.0;
}

std::vector<LossSummary::RootLoss> LossSummary::top_roots() const {
  std::vector<RootLoss> out;
  for (const auto& [name, r] : roots_) out.push_back(r);
  if (other_roots_.traces) out.push_back(other_roots_);
  std::stable_sort(out.begin(), out.end(), [](const RootLoss& a, const RootLoss& b) {
    return a.counts.weight() > b.counts.weight();
  });
  if (out.size() > kTopRoots) out.resize(kTopRoots);
  return out;
}

std::string LossSummary::describe() const {
  const Counts& c = total_;
  std::vector<std::string> parts;
  if (c.spans_dropped) parts.push_back(plural(c.spans_dropped, "span dropped", "spans dropped"));
  if (c.sink_spans_dropped)
    parts.push_back(plural(c.sink_spans_dropped, "span", "spans") + " dropped because the sinks fell behind");
  if (unwritten_.frames)
    parts.push_back(plural(unwritten_.spans, "span", "spans") + " (" + plural(unwritten_.traces, "trace", "traces") +
                    ") in " + plural(unwritten_.frames, "batch", "batches") + " the writer failed to write");
  if (!parts.empty()) {
    // The share of the run's spans dropped whole, after the last count of them.
    const double pct = dropped_span_fraction() * 100.0;
    char share[48];
    if (pct < 0.01) {
      std::snprintf(share, sizeof share, " (under 0.01%% of the run's spans)");
    } else {
      std::snprintf(share, sizeof share, " (%.2f%% of the run's spans)", pct);
    }
    parts.back() += share;
  }
  if (c.records_dropped) parts.push_back(plural(c.records_dropped, "record dropped", "records dropped"));
  if (c.spans_lost_records) parts.push_back(plural(c.spans_lost_records, "span lost records", "spans lost records"));
  if (c.placeholders) parts.push_back(plural(c.placeholders, "placeholder (begin lost)", "placeholders (begin lost)"));
  if (c.orphans) parts.push_back(plural(c.orphans, "orphan (parent never arrived)", "orphans (parent never arrived)"));
  if (c.names_lost)
    parts.push_back(plural(c.names_lost, "span", "spans") + " with a name the intern table could not hold");
  if (parts.empty()) return "nothing lost";
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

LossSummary scan_loss(const std::string& path) {
  LossSummary loss;
  std::unique_ptr<serialize::Reader> reader;
  try {
    reader = std::make_unique<serialize::Reader>(path);
  } catch (const serialize::ReadError& e) {
    throw ToolError(kExitUnreadable, e.what());
  }
  serialize::BatchView batch;
  while (reader->next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i) loss.add(batch.trace(i));
  loss.add_file_totals(*reader);
  return loss;
}

std::string describe_trace_loss(const LossSummary::Counts& c) {
  std::vector<std::string> parts;
  if (c.spans_dropped || c.records_dropped) {
    std::string d;
    if (c.spans_dropped) d = plural(c.spans_dropped, "span", "spans");
    if (c.records_dropped) d += (d.empty() ? "" : ", ") + plural(c.records_dropped, "record", "records");
    parts.push_back(d + " dropped before it");
  }
  if (c.sink_spans_dropped)
    parts.push_back(plural(c.sink_spans_dropped, "span", "spans") + " dropped by the sink queue before it");
  if (c.spans_lost_records) parts.push_back(plural(c.spans_lost_records, "span lost records", "spans lost records"));
  if (c.placeholders) parts.push_back(plural(c.placeholders, "placeholder", "placeholders"));
  if (c.orphans) parts.push_back(plural(c.orphans, "orphan", "orphans"));
  if (c.names_lost) parts.push_back(plural(c.names_lost, "name", "names") + " lost");
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

std::string LossSummary::most_affected(std::size_t n) const {
  std::string out;
  for (std::size_t i = 0; i < top_.size() && i < n; ++i) {
    const TraceLoss& t = top_[i];
    out += (i ? "; " : "") + (t.root.empty() ? std::string("(no root)") : t.root) + " " + t.trace_id;
    if (t.part) out += " part " + std::to_string(t.part);
    out += " (" + describe_trace_loss(t.counts) + ")";
  }
  if (!out.empty() && traces_affected_ > std::min<std::uint64_t>(n, top_.size()))
    out += "; " + plural(traces_affected_ - std::min<std::uint64_t>(n, top_.size()), "more trace", "more traces");
  return out;
}

}  // namespace strobe::tool
