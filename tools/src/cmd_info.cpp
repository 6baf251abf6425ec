// strobe info FILE / strobe validate FILE [--strict]
//
// Both tell two things apart: whether the file is intact (every frame verified, the end
// frame present) and whether the run it records lost data (spans or records dropped,
// spans that lost records, placeholders, orphans). An intact file can hold a lossy run.

#include <algorithm>
#include <climits>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "loss.hpp"

namespace strobe::tool {
namespace {

struct Summary {
  std::uint64_t traces = 0, partial = 0, spans = 0, failed = 0;
  std::int64_t first = INT64_MAX, last = INT64_MIN;
};

std::string crash_description(const serialize::FileEndInfo& e) {
  return tool::crash_description(e.crash_signal, e.crash_address);  // loss.hpp
}

serialize::Reader open_reader(const std::string& path) {
  try {
    return serialize::Reader(path);
  } catch (const serialize::ReadError& e) {
    throw ToolError(kExitUnreadable, e.what());
  }
}

}  // namespace

void add_info(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("info", "Header, trace/span counts, time range, drops, whether the file is intact, "
                                         "and whether the run lost data");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "strobe file")->required();
  cmd->callback([file, &status] {
    Summary s;
    LossSummary loss;
    serialize::Reader reader = open_reader(*file);
    const serialize::FileInfo info = reader.info();
    serialize::BatchView batch;
    std::uint64_t batches = 0;
    while (reader.next(batch)) {
      ++batches;
      for (std::size_t i = 0; i < batch.trace_count(); ++i) {
        const serialize::TraceView& t = batch.trace(i);
        loss.add(t);
        ++s.traces;
        if (t.partial()) ++s.partial;
        for (serialize::SpanView sp : t.spans()) {
          ++s.spans;
          s.first = std::min(s.first, sp.start_ns());
          s.last = std::max(s.last, sp.end_ns());
          if (sp.status() == Status::failed) ++s.failed;
        }
      }
    }
    loss.add_file_totals(reader);
    const bool intact = !reader.error() && reader.ended_cleanly();
    std::printf("file        %s (%llu bytes)\n", file->c_str(), static_cast<unsigned long long>(reader.size()));
    std::printf("format      %u.%u, written by %s\n", info.major, info.minor, info.writer.c_str());
    if (info.records) std::printf("contents    the record log of a recorder that deferred assembly: assembled as read\n");
    std::printf("service     %s  host %s  pid %u\n", info.service_name.c_str(), info.host_name.c_str(), info.process_id);
    std::printf("clock       %s (%.6f ns/tick), recorder started %s\n", info.clock.c_str(), info.ns_per_tick,
                iso8601(info.start_ns).c_str());
    std::printf("batches     %llu\n", static_cast<unsigned long long>(batches));
    std::printf("traces      %llu (%llu partial parts)\n", static_cast<unsigned long long>(s.traces),
                static_cast<unsigned long long>(s.partial));
    std::printf("spans       %llu (%llu failed, %llu incomplete", static_cast<unsigned long long>(s.spans),
                static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(loss.incomplete()));
    if (loss.continued_spans())
      std::printf(", %llu continued in a later part", static_cast<unsigned long long>(loss.continued_spans()));
    std::printf(")\n");
    if (s.spans > 0)
      std::printf("time range  %s .. %s (%s)\n", iso8601(s.first).c_str(), iso8601(s.last).c_str(),
                  format_duration(sat_sub(s.last, s.first)).c_str());
    const LossSummary::Counts& dropped = loss.counts();  // the traces' drop counts, summed
    std::printf("drops       %llu spans, %llu records", static_cast<unsigned long long>(dropped.spans_dropped),
                static_cast<unsigned long long>(dropped.records_dropped));
    if (dropped.sink_spans_dropped)
      std::printf(", %llu spans the sinks fell behind on",
                  static_cast<unsigned long long>(dropped.sink_spans_dropped));
    std::printf("\n");
    if (reader.repaired_strings() != 0)
      std::printf("strings     %llu not valid UTF-8 (shown with U+FFFD for each bad sequence)\n",
                  static_cast<unsigned long long>(reader.repaired_strings()));
    if (reader.ended_cleanly() && reader.end_info().crash_signal != 0) {
      std::printf("ended       by a CRASH: %s; the crash flush wrote what the rings held\n",
                  crash_description(reader.end_info()).c_str());
    } else if (reader.ended_cleanly() && reader.end_info().recovered) {
      std::printf("ended       RECOVERED: the process died without closing the file (SIGKILL, the OOM killer?); "
                  "strobe recover rebuilt what its recovery directory held\n");
    } else if (reader.ended_cleanly()) {
      std::printf("ended       cleanly\n");
    } else {
      std::printf("ended       NOT cleanly: %s\n", reader.error() ? reader.error()->message().c_str() : "?");
    }
    if (intact) {
      std::printf("integrity   intact: every frame verified, end frame present\n");
    } else {
      std::printf("integrity   DAMAGED: the counts cover what precedes the damage\n");
    }
    if (loss.lost_data()) {
      std::printf("loss        the run LOST DATA: %s\n", loss.describe().c_str());
      if (const std::string where = loss.most_affected(); !where.empty())
        std::printf("            most affected: %s\n", where.c_str());
    } else {
      std::printf("loss        none: nothing dropped, every span whole\n");
    }
    if (reader.error()) {
      std::fflush(stdout);
      std::fprintf(stderr, "strobe: warning: %s (output covers what precedes it)\n", reader.error()->what());
      status = kExitDamaged;
    }
  });
}

void add_validate(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand(
      "validate",
      "Verify every frame and buffer. Exit 0 when the file is intact (also when the run it records lost data: "
      "that is said on the line printed); 1 when it is damaged, or with --strict when the run lost data");
  struct Opts {
    std::string file;
    bool strict = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_flag("--strict", o->strict, "exit 1 also when the file is intact but the run lost data");
  cmd->callback([o, &status] {
    std::unique_ptr<serialize::Reader> reader;
    try {
      reader = std::make_unique<serialize::Reader>(o->file);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    serialize::BatchView batch;
    LossSummary loss;
    std::uint64_t batches = 0, traces = 0, spans = 0;
    while (reader->next(batch)) {
      ++batches;
      traces += batch.trace_count();
      for (std::size_t i = 0; i < batch.trace_count(); ++i) {
        spans += batch.trace(i).span_count();
        loss.add(batch.trace(i));
      }
    }
    loss.add_file_totals(*reader);
    if (reader->error()) {
      std::fprintf(stderr, "strobe: %s\n", reader->error()->what());
      status = kExitNo;
      return;
    }
    std::string counts = std::to_string(batches) + " batches, " + std::to_string(traces) + " traces, " +
                         std::to_string(spans) + " spans";
    if (const std::uint64_t bad = reader->repaired_strings(); bad != 0) {
      // Not written by strobe (which repairs every string it records): a foreign or altered file.
      counts += "; " + std::to_string(bad) + " strings not valid UTF-8, shown repaired";
      if (o->strict) status = kExitNo;
    }
    if (reader->end_info().crash_signal != 0)
      counts += "; the process crashed (" + crash_description(reader->end_info()) + "): the crash flush wrote it";
    if (reader->end_info().recovered) counts += "; recovered by strobe recover after the process died";
    if (!loss.lost_data()) {
      std::printf("%s: ok (%s, ended cleanly)\n", o->file.c_str(), counts.c_str());
      return;
    }
    std::printf("%s: file intact (%s, every frame verified, end frame present); the run lost data: %s\n",
                o->file.c_str(), counts.c_str(), loss.describe().c_str());
    if (o->strict) status = kExitNo;
  });
}

}  // namespace strobe::tool
