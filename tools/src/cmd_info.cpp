// strobe info FILE / strobe validate FILE

#include <algorithm>
#include <climits>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"

namespace strobe::tool {
namespace {

struct Summary {
  std::uint64_t traces = 0, partial = 0, spans = 0, drop_spans = 0, drop_records = 0, incomplete = 0, failed = 0;
  std::int64_t first = INT64_MAX, last = INT64_MIN;
};

}  // namespace

void add_info(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("info", "Header, trace/span counts, time range, drops, and whether the file ended cleanly");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "strobe file")->required();
  cmd->callback([file, &status] {
    Summary s;
    serialize::FileInfo info;
    serialize::Reader reader = [&] {
      try {
        return serialize::Reader(*file);
      } catch (const serialize::ReadError& e) {
        throw ToolError(kExitUnreadable, e.what());
      }
    }();
    info = reader.info();
    serialize::BatchView batch;
    std::uint64_t batches = 0;
    while (reader.next(batch)) {
      ++batches;
      for (std::size_t i = 0; i < batch.trace_count(); ++i) {
        const serialize::TraceView& t = batch.trace(i);
        ++s.traces;
        if (t.partial()) ++s.partial;
        s.drop_spans += t.drops().spans;
        s.drop_records += t.drops().records;
        for (serialize::SpanView sp : t.spans()) {
          ++s.spans;
          s.first = std::min(s.first, sp.start_ns());
          s.last = std::max(s.last, sp.end_ns());
          if (sp.status() == Status::incomplete) ++s.incomplete;
          if (sp.status() == Status::failed) ++s.failed;
        }
      }
    }
    std::printf("file        %s (%llu bytes)\n", file->c_str(), static_cast<unsigned long long>(reader.size()));
    std::printf("format      %u.%u, written by %s\n", info.major, info.minor, info.writer.c_str());
    std::printf("service     %s  host %s  pid %u\n", info.service_name.c_str(), info.host_name.c_str(), info.process_id);
    std::printf("clock       %s (%.6f ns/tick), recorder started %s\n", info.clock.c_str(), info.ns_per_tick,
                iso8601(info.start_ns).c_str());
    std::printf("batches     %llu\n", static_cast<unsigned long long>(batches));
    std::printf("traces      %llu (%llu partial parts)\n", static_cast<unsigned long long>(s.traces),
                static_cast<unsigned long long>(s.partial));
    std::printf("spans       %llu (%llu failed, %llu incomplete)\n", static_cast<unsigned long long>(s.spans),
                static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.incomplete));
    if (s.spans > 0)
      std::printf("time range  %s .. %s (%s)\n", iso8601(s.first).c_str(), iso8601(s.last).c_str(),
                  format_duration(s.last - s.first).c_str());
    std::printf("drops       %llu spans, %llu records%s\n", static_cast<unsigned long long>(s.drop_spans),
                static_cast<unsigned long long>(s.drop_records), s.drop_records ? "  (lossy: some spans missing)" : "");
    if (reader.ended_cleanly()) {
      std::printf("ended       cleanly\n");
    } else {
      std::printf("ended       NOT cleanly: %s\n", reader.error() ? reader.error()->message().c_str() : "?");
    }
    if (reader.error()) {
      std::fflush(stdout);
      std::fprintf(stderr, "strobe: warning: %s (output covers what precedes it)\n", reader.error()->what());
      status = kExitDamaged;
    }
  });
}

void add_validate(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("validate", "Verify every frame and buffer; exit 0 when the file is clean");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "strobe file")->required();
  cmd->callback([file, &status] {
    std::unique_ptr<serialize::Reader> reader;
    try {
      reader = std::make_unique<serialize::Reader>(*file);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    serialize::BatchView batch;
    std::uint64_t batches = 0, traces = 0, spans = 0;
    while (reader->next(batch)) {
      ++batches;
      traces += batch.trace_count();
      for (std::size_t i = 0; i < batch.trace_count(); ++i) spans += batch.trace(i).span_count();
    }
    if (reader->error()) {
      std::fprintf(stderr, "strobe: %s\n", reader->error()->what());
      status = kExitNo;
      return;
    }
    std::printf("%s: ok (%llu batches, %llu traces, %llu spans, ended cleanly)\n", file->c_str(),
                static_cast<unsigned long long>(batches), static_cast<unsigned long long>(traces),
                static_cast<unsigned long long>(spans));
  });
}

}  // namespace strobe::tool
