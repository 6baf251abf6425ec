#pragma once
// strobe export --format chrome: the Chrome Trace Event Format (JSON object form), for
// ui.perfetto.dev, chrome://tracing and speedscope.

#include <cstdio>
#include <string>

namespace strobe::tool {

struct ChromeOptions {
  // Each span's details (ids, kind, status, attributes, ...) go under "args", which
  // Perfetto and chrome://tracing show, instead of under "strobe", which every viewer
  // ignores. speedscope names a frame by its name and args together, so with args every
  // span is a frame of its own there, by-name views cannot group, and it warns at every
  // end (an end carries no args, so its frame's name differs from the begin's).
  bool span_args = false;
};

// Writes the file's traces to `out`; returns the tool's exit status (kExitDamaged for a
// damaged file, whose output covers what precedes the damage).
int export_chrome(const std::string& file, std::FILE* out, const ChromeOptions& options);

}  // namespace strobe::tool
