#pragma once
// JSON output through RapidJSON's streaming Writer, straight to a FILE* in chunks.

#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <string_view>

namespace strobe::tool {

class FileStream {
 public:
  using Ch = char;
  explicit FileStream(std::FILE* f) : f_(f) {}
  ~FileStream() { Flush(); }
  void Put(char c) {
    buf_[n_++] = c;
    if (n_ == sizeof buf_) Flush();
  }
  void Flush() {
    if (n_) std::fwrite(buf_, 1, n_, f_);
    n_ = 0;
  }
  void raw(std::string_view s) {
    for (char c : s) Put(c);
  }

 private:
  std::FILE* f_;
  char buf_[1 << 16];
  std::size_t n_ = 0;
};

using JsonWriter = rapidjson::Writer<FileStream>;

inline void key(JsonWriter& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
inline void str(JsonWriter& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

// A double from a file, which may hold any: a finite one as a number; NaN and infinities,
// which JSON has no number for (RapidJSON writes nothing for them, leaving a key without
// a value), as the strings "NaN", "Infinity", "-Infinity": the proto3 JSON mapping's
// spelling, which OTLP receivers read as doubles, and the HTML page's.
template <class W>
void number(W& w, double v) {
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.String(std::isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
  }
}

}  // namespace strobe::tool
