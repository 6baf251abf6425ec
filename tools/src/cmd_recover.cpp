// strobe recover [-o OUT] FILE|DIR: rebuilds what a process that died without closing its
// file (SIGKILL, the OOM killer) had recorded, from its recovery directory
// (Config::recovery_dir), into a new file: the traces the file holds, then those the
// journal and the rings still had, less the spans the file already holds.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "commands.hpp"
#include "common.hpp"
#include "recovery.hpp"
#include "strobe/serialize/reader.hpp"
#include "strobe/serialize/writer.hpp"

namespace strobe::tool {
namespace {

struct SpanKey {
  std::uint64_t hi, lo, span;
  bool operator==(const SpanKey&) const = default;
};
struct SpanKeyHash {
  std::size_t operator()(const SpanKey& k) const noexcept {
    return (k.hi * 0x9e3779b97f4a7c15ull) ^ (k.lo * 0xff51afd7ed558ccdull) ^ (k.span * 0xc4ceb9fe1a85ec53ull);
  }
};

// What the output file already holds.
struct Held {
  std::vector<AssembledTrace> traces;
  std::unordered_set<SpanKey, SpanKeyHash> ended;      // every appearance but continued ones
  std::unordered_set<SpanKey, SpanKeyHash> continued;  // open when a part was handed over
  std::unordered_map<SpanKey, std::uint32_t, SpanKeyHash> next_part;  // by trace (span = 0)
  std::optional<serialize::FileInfo> info;
  std::optional<serialize::FileEndInfo> end;  // when the file was closed (a crash flush, say)
  serialize::WriteLoss lost;  // what the file's writer failed to write (Reader::write_loss)
  std::uint64_t spans = 0;
  std::string damage;
};

Held read_held(const std::string& path) {
  Held h;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return h;
  std::unique_ptr<serialize::Reader> reader;
  try {
    reader = std::make_unique<serialize::Reader>(path);
  } catch (const serialize::ReadError& e) {
    h.damage = e.what();
    return h;
  }
  h.info = reader->info();
  serialize::BatchView batch;
  while (reader->next(batch)) {
    for (std::size_t i = 0; i < batch.trace_count(); ++i) {
      AssembledTrace t = batch.trace(i).materialize();
      for (const SpanData& s : t.spans) {
        const SpanKey k{t.trace_id.hi, t.trace_id.lo, s.span_id};
        ((s.flags & kSpanContinued) != 0 ? h.continued : h.ended).insert(k);
      }
      std::uint32_t& next = h.next_part[SpanKey{t.trace_id.hi, t.trace_id.lo, 0}];
      next = std::max(next, t.part + 1);
      h.spans += t.spans.size();
      h.traces.push_back(std::move(t));
    }
  }
  if (reader->error()) h.damage = reader->error()->what();
  if (reader->ended_cleanly()) h.end = reader->end_info();
  h.lost = reader->write_loss();
  return h;
}

// Drops from t the spans the file holds: ended ones, and open ones it already showed open
// (their recovered appearance says no more); a placeholder for a span the file holds too.
// Groups and chains follow. False when nothing is left.
bool keep_new(AssembledTrace& t, const Held& held) {
  std::unordered_set<std::uint64_t> gone;
  std::vector<SpanData> kept;
  for (SpanData& s : t.spans) {
    const SpanKey k{t.trace_id.hi, t.trace_id.lo, s.span_id};
    const bool open = (s.flags & (kSpanIncomplete | kSpanPlaceholder)) != 0;
    if (held.ended.count(k) != 0 || (open && held.continued.count(k) != 0)) {
      gone.insert(s.span_id);
      continue;
    }
    kept.push_back(std::move(s));
  }
  t.spans = std::move(kept);
  if (t.spans.empty()) return false;
  if (gone.empty()) return true;
  std::vector<ParallelGroup> groups;
  std::vector<std::int32_t> renumber(t.groups.size(), -1);
  for (std::size_t g = 0; g < t.groups.size(); ++g) {
    ParallelGroup& pg = t.groups[g];
    std::erase_if(pg.members, [&](std::uint64_t id) { return gone.count(id) != 0; });
    if (pg.members.size() < 2) continue;
    renumber[g] = static_cast<std::int32_t>(groups.size());
    pg.id = static_cast<std::uint32_t>(groups.size());
    groups.push_back(std::move(pg));
  }
  t.groups = std::move(groups);
  for (SpanData& s : t.spans)
    s.group = s.group >= 0 && static_cast<std::size_t>(s.group) < renumber.size() ? renumber[s.group] : -1;
  for (SegmentChain& c : t.chains)
    std::erase_if(c.segments, [&](std::uint64_t id) { return gone.count(id) != 0; });
  std::erase_if(t.chains, [](const SegmentChain& c) { return c.segments.empty(); });
  return true;
}

}  // namespace

void add_recover(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand(
      "recover",
      "Rebuild what a process that died without closing its file (SIGKILL, the OOM killer) had recorded, from "
      "its recovery directory (Config::recovery_dir, FILE.recovery), into a new file marked recovered");
  struct Opts {
    std::string path;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("PATH", o->path, "the run's file (its directory is FILE.recovery) or the recovery directory")
      ->required();
  cmd->add_option("-o,--output", o->out, "the file to write (default: FILE with .recovered.strobe)");
  cmd->callback([o, &status] {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::string dir = o->path, file = o->path;
    const std::string suffix = ".recovery";
    if (fs::is_directory(o->path, ec)) {
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      file = dir.size() > suffix.size() && dir.compare(dir.size() - suffix.size(), suffix.size(), suffix) == 0
                 ? dir.substr(0, dir.size() - suffix.size())
                 : std::string();
    } else {
      dir = o->path + suffix;
    }
    std::string out = o->out;
    if (out.empty()) {
      if (file.empty()) throw ToolError(kExitUsage, "name the output with -o: " + dir + " does not end in .recovery");
      const std::string ext = ".strobe";
      const bool has_ext = file.size() > ext.size() && file.compare(file.size() - ext.size(), ext.size(), ext) == 0;
      out = (has_ext ? file.substr(0, file.size() - ext.size()) : file) + ".recovered.strobe";
    }

    detail::RecoveredRun run;
    try {
      run = detail::read_recovery(dir);
    } catch (const detail::RecoveryError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    Held held = file.empty() ? Held{} : read_held(file);
    std::vector<std::string> warnings = run.warnings;
    if (!held.damage.empty()) warnings.push_back(held.damage + " (the file's traces before it are kept)");
    std::vector<AssembledTrace> rebuilt = detail::replay_recovery(run, warnings);

    std::uint64_t recovered_spans = 0, recovered_traces = 0;
    std::vector<AssembledTrace> added;
    for (AssembledTrace& t : rebuilt) {
      if (!keep_new(t, held)) continue;
      std::uint32_t& next = held.next_part[SpanKey{t.trace_id.hi, t.trace_id.lo, 0}];
      t.part = next++;
      for (const SpanData& s : t.spans) recovered_spans += (s.flags & kSpanContinued) == 0;
      ++recovered_traces;
      added.push_back(std::move(t));
    }

    RecorderInfo info;
    if (held.info) {
      info.service_name = held.info->service_name;
      info.host_name = held.info->host_name;
      info.process_id = held.info->process_id;
      info.start_ns = held.info->start_ns;
      info.clock = held.info->clock;
      info.ns_per_tick = held.info->ns_per_tick;
    } else {
      info.service_name = run.service_name;
      info.host_name = run.host_name;
      info.process_id = run.process_id;
      info.start_ns = run.start_ns;
      info.clock = run.clock.tsc ? "tsc" : "steady";
      info.ns_per_tick = run.clock.ns_per_tick;
    }
    try {
      serialize::FileSinkOptions options;
      options.path = out;
      options.recovered = true;
      serialize::FileSink sink(std::move(options));
      sink.open(info);
      for (const AssembledTrace& t : held.traces) sink.consume(t);
      for (const AssembledTrace& t : added) sink.consume(t);
      if (held.end && held.end->crash_signal != 0)  // the crash flush had closed it: say so again
        sink.crashed(CrashInfo{held.end->crash_signal, held.end->crash_address, {}});
      // What the file's writer failed to write goes on being said (the journal may have
      // given some of it back: which, nothing tells, so the count stays whole).
      sink.carry_end(serialize::Encoder::Lost{held.lost.frames, held.lost.traces, held.lost.spans}, true);
      sink.close();
      if (sink.counters().io_errors != 0) throw ToolError(kExitOutput, "strobe: cannot write " + out);
    } catch (const std::system_error& e) {
      throw ToolError(kExitOutput, e.what());
    }
    for (const std::string& w : warnings) std::fprintf(stderr, "strobe: warning: %s\n", w.c_str());
    std::printf("%s: %llu spans from %s, %llu spans in %llu traces recovered (%llu journal and %llu ring records "
                "replayed)\n",
                out.c_str(), static_cast<unsigned long long>(held.spans), file.empty() ? "(no file)" : file.c_str(),
                static_cast<unsigned long long>(recovered_spans), static_cast<unsigned long long>(recovered_traces),
                static_cast<unsigned long long>(run.journal_records), static_cast<unsigned long long>(run.ring_records));
    status = kExitOk;
  });
}

}  // namespace strobe::tool
