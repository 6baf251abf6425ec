#pragma once
// What a file says its run lost, for every command that reports on a file: the drop
// counts each trace carries (spans and records dropped since the previous trace), the
// spans flagged as damaged by loss, and where it happened. A file can be intact (every
// frame verified, end frame present) and still hold a run that lost data; the two are
// reported apart.

#include <rapidjson/rapidjson.h>
#include <strobe/serialize/reader.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strobe::tool {

// Which loss a span's flags show; continued spans are not a loss.
[[nodiscard]] inline bool has_lost_records(std::uint32_t flags) noexcept { return (flags & kSpanLostRecords) != 0; }
[[nodiscard]] inline bool is_placeholder(std::uint32_t flags) noexcept { return (flags & kSpanPlaceholder) != 0; }
[[nodiscard]] inline bool is_orphan(std::uint32_t flags) noexcept { return (flags & kSpanOrphan) != 0; }
[[nodiscard]] inline bool is_continued(std::uint32_t flags) noexcept { return (flags & kSpanContinued) != 0; }
[[nodiscard]] inline bool lost_name(std::uint32_t flags) noexcept { return (flags & kSpanNameOverflow) != 0; }

// A crashed run's signal and faulting address as text: "SIGSEGV at 0x10", "SIGABRT".
std::string crash_description(int signal, std::uint64_t address);

class LossSummary {
 public:
  // The traces reported as most affected, and the root names.
  static constexpr std::size_t kTopTraces = 5;
  static constexpr std::size_t kTopRoots = 5;
  static constexpr std::size_t kMaxRootNames = 4096;  // distinct root names tracked; later ones count as others

  struct Counts {
    std::uint64_t spans_dropped = 0;       // dropped whole by the recorder (traces' drop counts)
    std::uint64_t sink_spans_dropped = 0;  // assembled, then dropped because the sinks fell behind
    std::uint64_t records_dropped = 0;     // every record dropped, begins included
    std::uint64_t spans_lost_records = 0;  // in the file, but some of their records were dropped
    std::uint64_t placeholders = 0;        // stand-ins for spans whose begin was lost
    std::uint64_t orphans = 0;             // their parent never arrived
    std::uint64_t names_lost = 0;          // a name of theirs did not fit the intern table
    [[nodiscard]] bool any() const noexcept {
      return spans_dropped || sink_spans_dropped || records_dropped || spans_lost_records || placeholders || orphans ||
             names_lost;
    }
    // For ranking: how much of this there is, saturated.
    [[nodiscard]] std::uint64_t weight() const noexcept;
    void add(const Counts& o) noexcept;
  };
  struct TraceLoss {
    std::string trace_id;  // hex
    std::string root;
    std::uint32_t part = 0;
    Counts counts;
  };
  struct RootLoss {
    std::string root;
    std::uint64_t traces = 0;  // traces (parts) with this root that lost data
    Counts counts;
  };

  // Adds one trace (or part) as read from a file.
  void add(const serialize::TraceView& t);
  // Adds the run-level totals a file holds beyond its traces; see loss.cpp.
  void add_file_totals(const serialize::Reader& reader);

  // The run lost data: something was dropped, a span shows that it lost records, or the
  // writer could not write some of what it was given.
  [[nodiscard]] bool lost_data() const noexcept { return total_.any() || unwritten_.frames != 0; }
  // Batches the file's writer failed to write (a full disk), and the traces and spans in them.
  [[nodiscard]] const serialize::WriteLoss& unwritten() const noexcept { return unwritten_; }
  [[nodiscard]] const Counts& counts() const noexcept { return total_; }
  // The process crashed and the crash flush wrote the file's end (0: it did not).
  [[nodiscard]] int crash_signal() const noexcept { return crash_signal_; }
  [[nodiscard]] std::uint64_t crash_address() const noexcept { return crash_address_; }
  // strobe recover rebuilt the file after its process died without closing it.
  [[nodiscard]] bool recovered() const noexcept { return recovered_; }
  [[nodiscard]] std::uint64_t spans() const noexcept { return spans_; }    // spans in the file
  [[nodiscard]] std::uint64_t traces() const noexcept { return traces_; }  // traces (parts) in the file
  [[nodiscard]] std::uint64_t incomplete() const noexcept { return incomplete_; }  // not ended, not continued
  [[nodiscard]] std::uint64_t continued_spans() const noexcept { return continued_; }
  [[nodiscard]] std::uint64_t traces_affected() const noexcept { return traces_affected_; }
  // spans dropped / (spans in the file + spans dropped), counting as dropped the spans the
  // sinks dropped and those the writer could not write; 0 for an empty run.
  [[nodiscard]] double dropped_span_fraction() const noexcept;
  // The most affected first.
  [[nodiscard]] const std::vector<TraceLoss>& top_traces() const noexcept { return top_; }
  [[nodiscard]] std::vector<RootLoss> top_roots() const;

  // "1 span dropped, 3 records dropped, 2 spans lost records"; "nothing lost" when none.
  [[nodiscard]] std::string describe() const;
  // "batch-job 11111111111111112222222222222222 (1 span, 3 records dropped before it); ...";
  // "" when no trace lost data.
  [[nodiscard]] std::string most_affected(std::size_t n = 3) const;

 private:
  Counts total_;
  Counts file_drops_;  // the drops of the current file's traces (add_file_totals resets it)
  int crash_signal_ = 0;
  std::uint64_t crash_address_ = 0;
  bool recovered_ = false;
  serialize::WriteLoss unwritten_;
  std::uint64_t spans_ = 0, traces_ = 0, incomplete_ = 0, continued_ = 0, traces_affected_ = 0;
  std::vector<TraceLoss> top_;
  std::map<std::string, RootLoss, std::less<>> roots_;
  RootLoss other_roots_{"(other roots)", 0, {}};
};

// Reads a whole file for its loss alone (for a command that reports the loss before
// what it prints of the traces). Damage ends the scan silently, keeping what preceded it
// (the command's own pass reports it); an unreadable file throws ToolError(kExitUnreadable).
LossSummary scan_loss(const std::string& path);

// What one trace lost, in words: "1 span, 3 records dropped before it, 2 spans lost records".
std::string describe_trace_loss(const LossSummary::Counts& c);

// The summary as a JSON object (the "loss" object of stats, diff and the HTML page).
template <class W>
void write_loss_json(W& w, const LossSummary& s) {
  auto key = [&](const char* k) { w.Key(k); };
  auto str = [&](const std::string& v) { w.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); };
  auto counts = [&](const LossSummary::Counts& c) {
    key("spans_dropped"); w.Uint64(c.spans_dropped);
    key("sink_spans_dropped"); w.Uint64(c.sink_spans_dropped);
    key("records_dropped"); w.Uint64(c.records_dropped);
    key("spans_lost_records"); w.Uint64(c.spans_lost_records);
    key("placeholders"); w.Uint64(c.placeholders);
    key("orphans"); w.Uint64(c.orphans);
    key("names_lost"); w.Uint64(c.names_lost);
  };
  w.StartObject();
  key("lost_data"); w.Bool(s.lost_data());
  if (s.crash_signal() != 0) {
    key("crash");
    const std::string c = crash_description(s.crash_signal(), s.crash_address());
    str(c);
  }
  if (s.recovered()) {
    key("recovered");
    w.Bool(true);
  }
  key("summary"); str(s.describe());
  counts(s.counts());
  key("unwritten_batches"); w.Uint64(s.unwritten().frames);
  key("unwritten_traces"); w.Uint64(s.unwritten().traces);
  key("unwritten_spans"); w.Uint64(s.unwritten().spans);
  key("incomplete"); w.Uint64(s.incomplete());
  key("continued"); w.Uint64(s.continued_spans());
  key("spans"); w.Uint64(s.spans());
  key("traces"); w.Uint64(s.traces());
  key("traces_affected"); w.Uint64(s.traces_affected());
  key("dropped_span_fraction"); w.Double(s.dropped_span_fraction());
  key("most_affected");
  w.StartArray();
  for (const LossSummary::TraceLoss& t : s.top_traces()) {
    w.StartObject();
    key("trace_id"); str(t.trace_id);
    key("root"); str(t.root);
    key("part"); w.Uint(t.part);
    counts(t.counts);
    w.EndObject();
  }
  w.EndArray();
  key("roots");
  w.StartArray();
  for (const LossSummary::RootLoss& r : s.top_roots()) {
    w.StartObject();
    key("root"); str(r.root);
    key("traces"); w.Uint64(r.traces);
    counts(r.counts);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace strobe::tool
