#pragma once
// The process's resident memory, for tests that bound what strobe touches.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace strobe::test {

// Resident set size in bytes from /proc/self/status: "VmRSS" (now) or "VmHWM" (the peak
// so far); -1 when it cannot be read.
inline std::int64_t rss_bytes(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  std::int64_t kib = -1;
  const std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = std::strtoll(line + n + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

}  // namespace strobe::test
