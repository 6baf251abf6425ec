#pragma once
// JSON output through RapidJSON's streaming Writer, straight to a FILE* in chunks.

#include <rapidjson/writer.h>

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

}  // namespace strobe::tool
