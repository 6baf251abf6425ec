#include "common.hpp"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <ctime>

#include "loss.hpp"

namespace strobe::tool {

int for_each_trace(const std::string& path, const std::function<void(const serialize::TraceView&)>& fn,
                   serialize::FileInfo* info, LossSummary* loss) {
  std::unique_ptr<serialize::Reader> reader;
  try {
    reader = std::make_unique<serialize::Reader>(path);
  } catch (const serialize::ReadError& e) {
    throw ToolError(kExitUnreadable, e.what());
  }
  if (info) *info = reader->info();
  serialize::BatchView batch;
  while (reader->next(batch)) {
    for (std::size_t i = 0; i < batch.trace_count(); ++i) {
      if (loss) loss->add(batch.trace(i));
      fn(batch.trace(i));
    }
  }
  if (loss) loss->add_file_totals(*reader);
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
  if (ns < 0) {
    // -ns does not exist for INT64_MIN; its magnitude does as unsigned.
    const std::uint64_t mag = std::uint64_t{0} - static_cast<std::uint64_t>(ns);
    const std::int64_t shown = mag > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(mag);
    std::snprintf(buf, sizeof buf, "-%s", format_duration(shown).c_str());
    return buf;
  }
  const double v = static_cast<double>(ns);
  if (ns < 1000) {
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

std::int64_t round_to_int64(double v) noexcept {
  if (std::isnan(v)) return 0;
  // 2^63 is the first double past INT64_MAX; -2^63 is INT64_MIN itself.
  if (v >= 9223372036854775808.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return std::llround(v);
}

std::string to_decimal(__int128 v) {
  const bool negative = v < 0;
  // The magnitude as unsigned: defined for the smallest value too.
  unsigned __int128 mag = negative ? ~static_cast<unsigned __int128>(v) + 1 : static_cast<unsigned __int128>(v);
  char buf[48];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + static_cast<int>(mag % 10));
    mag /= 10;
  } while (mag != 0);
  if (negative) *--p = '-';
  return std::string(p, buf + sizeof buf);
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
