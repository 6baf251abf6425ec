#include "common.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>

namespace strobe::tool {

int for_each_trace(const std::string& path, const std::function<void(const serialize::TraceView&)>& fn,
                   serialize::FileInfo* info) {
  std::unique_ptr<serialize::Reader> reader;
  try {
    reader = std::make_unique<serialize::Reader>(path);
  } catch (const serialize::ReadError& e) {
    throw ToolError(kExitUnreadable, e.what());
  }
  if (info) *info = reader->info();
  serialize::BatchView batch;
  while (reader->next(batch))
    for (std::size_t i = 0; i < batch.trace_count(); ++i) fn(batch.trace(i));
  if (const auto& err = reader->error()) {
    std::fprintf(stderr, "strobe: warning: %s (output covers what precedes it)\n", err->what());
    return kExitDamaged;
  }
  return kExitOk;
}

Output::Output(const std::string& path) : path_(path) {
  if (path == "-") {
    f_ = stdout;
    return;
  }
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw ToolError(kExitOutput, "cannot write " + path + ": " + std::strerror(errno));
}

Output::~Output() {
  if (f_ && f_ != stdout) std::fclose(f_);
}

void Output::close() {
  if (!f_) return;
  const bool bad = std::ferror(f_) != 0 || std::fflush(f_) != 0;
  if (f_ != stdout) std::fclose(f_);
  f_ = nullptr;
  if (bad) throw ToolError(kExitOutput, "error writing " + path_ + ": " + std::strerror(errno));
}

std::string format_duration(std::int64_t ns) {
  char buf[64];
  const double v = static_cast<double>(ns);
  if (ns < 0) {
    std::snprintf(buf, sizeof buf, "-%s", format_duration(-ns).c_str());
  } else if (ns < 1000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " ns", ns);
  } else if (ns < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f us", v / 1e3);
  } else if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f ms", v / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f s", v / 1e9);
  }
  return buf;
}

std::string iso8601(std::int64_t unix_ns) {
  std::int64_t secs = unix_ns / 1'000'000'000;
  std::int64_t frac = unix_ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09" PRId64 "Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

}  // namespace strobe::tool
