// strobe html FILE -o OUT.html
//
// One self-contained page: the viewer (tools/viewer/viewer.html, compiled in) with the
// file's traces embedded as JSON where the page holds its data marker. Traces are
// streamed one at a time, so memory stays bounded by the largest trace (plus a bounded
// table of strings already written).
//
// The per-span columns of a trace are one base64 string ("z") of fixed-width integers
// (1, 2 or 4 bytes, the narrowest that holds the trace's values): about 18 bytes a span
// where JSON numbers took 25, and the page reads them as typed arrays, with no parsing.
// Time differences are exact for any times a file holds: a column with a value beyond
// 32 bits is written as varints of up to 128 bits, so a difference beyond int64 is
// written as it is.
//
// Data layout (the page's decoder in viewer.html is its reader):
//   {"v":2, "traces":[T...], "service", "host", "pid", "start", "clock", "writer",
//    "spanCount", "traceCount", "damaged", "loss": what the run lost (loss.hpp, write_loss_json)}
//   T = {"id": trace id hex, "r": root name, "part", "partial", "drops": [spans, records],
//        "b": earliest start ns (decimal string), "S": strings new to the table,
//        "H": high 32 bits of span ids, "T": thread ids (decimal strings),
//        "TN": [[index into T, name]...] for the threads the trace names, "n": span count,
//        "z": base64 of the columns (class Columns: 8 width codes, then each column at
//        its width, or as varints), n values each, spans in file order (depth-first);
//        u unsigned, s signed:
//          name (u), kind | status << 4 (u), start - previous start (s; first: - b),
//          duration (s), thread index into T (u), index - parent index (u; 0: none here),
//          low 32 bits of the id - previous low bits with the same high bits (s; the
//          first: - L[its high bits' index], "L" holding each one's first low bits),
//          index into H (u; only when H has more than one entry),
//        "x": [[index, detail]...] for spans with more than the columns hold,
//        "xp": [[index, parent id hex]...] for parents outside this part,
//        "g": [[parent index, id, start - b, end - b, peak, [member indexes]]...],
//        "c": [[waited ns, [segment indexes], first segment id hex]...]}
//   Strings are indexes into one table that grows trace by trace ("S").
//   detail = {"a": [key, type, value, ...] (type 0 int, 1 float, 2 bool, 3 string index;
//             +4 when truncated; a value JavaScript cannot hold exactly is a string),
//             "e": [[name, time - start, attrs]...], "m", "tk": [in, out, cached], "tg",
//             "in", "out", "em", "ed", "kn" (string indexes), "f" flags, "et" end thread,
//             "sg" segment index, "lk": [[trace id hex, span id hex]...] its links}
//   Beyond 2^53, the JSON numbers (g, c, e, drops) are decimal strings.

#include <rapidjson/writer.h>
#include <strobe_viewer_html.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "loss.hpp"

namespace strobe::tool {
namespace {

constexpr std::string_view kDataMarker = "@STROBE_DATA@";

// A RapidJSON output stream for JSON inside <script type="application/json">: the HTML
// parser ends a script at "</script" and changes state at "<!--", so "</" becomes "<\/"
// and "<!" becomes "\u003c!". '<' occurs in JSON text only inside strings, where both
// spellings mean the same characters.
class ScriptSafeStream {
 public:
  using Ch = char;
  explicit ScriptSafeStream(std::FILE* f) : f_(f) {}
  ~ScriptSafeStream() { Flush(); }
  ScriptSafeStream(const ScriptSafeStream&) = delete;
  ScriptSafeStream& operator=(const ScriptSafeStream&) = delete;

  void Put(char c) {
    if (pending_lt_) {
      pending_lt_ = false;
      if (c == '/') {
        put_raw("<\\/");
        return;
      }
      if (c == '!') {
        put_raw("\\u003c!");
        return;
      }
      put_byte('<');
    }
    if (c == '<') {
      pending_lt_ = true;
      return;
    }
    put_byte(c);
  }
  void Flush() {
    if (pending_lt_) {
      pending_lt_ = false;
      put_byte('<');
    }
    if (n_) std::fwrite(buf_, 1, n_, f_);
    n_ = 0;
  }

 private:
  void put_byte(char c) {
    buf_[n_++] = c;
    if (n_ == sizeof buf_) {
      std::fwrite(buf_, 1, n_, f_);
      n_ = 0;
    }
  }
  void put_raw(std::string_view s) {
    for (char c : s) put_byte(c);
  }

  std::FILE* f_;
  char buf_[1 << 16];
  std::size_t n_ = 0;
  bool pending_lt_ = false;
};

using Writer = rapidjson::Writer<ScriptSafeStream>;

void key(Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
void str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

// Integers beyond 2^53 lose digits as JavaScript numbers: those go out as strings.
void safe_int(Writer& w, std::int64_t v) {
  constexpr std::int64_t kExact = std::int64_t{1} << 53;
  if (v > -kExact && v < kExact) {
    w.Int64(v);
  } else {
    str(w, std::to_string(v));
  }
}

// a - b, exactly: a number within 2^53, else a decimal string (a - b may not fit int64).
void safe_diff(Writer& w, std::int64_t a, std::int64_t b) {
  constexpr __int128 kExact = __int128{1} << 53;
  const __int128 d = static_cast<__int128>(a) - b;
  if (d > -kExact && d < kExact) {
    w.Int64(static_cast<std::int64_t>(d));
  } else {
    str(w, to_decimal(d));
  }
}

// The page's string table, deduplicated across traces. Per trace: begin_trace(), add()
// each of its strings, write fresh() (the strings new to the page) as "S", refer to
// strings by at(), end_trace(). What is remembered across traces is capped in bytes; past
// the cap a repeated string is written again under a new index: bytes lost, not meaning.
class StringTable {
 public:
  static constexpr std::size_t kRememberBytes = std::size_t{64} << 20;

  void begin_trace() {
    local_.clear();
    fresh_.clear();
  }
  // Registers s (which must outlive the trace) and returns its index.
  std::uint32_t add(std::string_view s) {
    if (auto it = local_.find(s); it != local_.end()) return it->second;
    std::uint32_t index;
    if (auto it = known_.find(s); it != known_.end()) {
      index = it->second;
    } else {
      index = next_++;
      fresh_.push_back(s);
    }
    local_.emplace(s, index);
    return index;
  }
  // The index of a string registered in this trace.
  [[nodiscard]] std::uint32_t at(std::string_view s) const { return local_.at(s); }
  [[nodiscard]] const std::vector<std::string_view>& fresh() const noexcept { return fresh_; }
  // Remembers this trace's new strings for the next traces, within the cap.
  void end_trace() {
    for (std::string_view s : fresh_) {
      if (remembered_bytes_ + s.size() > kRememberBytes) break;
      remembered_bytes_ += s.size();
      known_.emplace(std::string(s), local_.at(s));
    }
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> known_;
  std::size_t remembered_bytes_ = 0;
  std::unordered_map<std::string_view, std::uint32_t> local_;
  std::vector<std::string_view> fresh_;
  std::uint32_t next_ = 0;
};

// The columns of one trace (the page's "z"): a header of 8 width codes, one per column,
// then the columns. A column whose values all fit 1, 2 or 4 bytes (unsigned, or two's
// complement for a signed column) is written at that width, little-endian, starting at
// a multiple of its width: the page reads it as a typed array. Any other column is
// LEB128 varints (code 0; zigzag when signed), which hold up to 128 bits exactly.
class Columns {
 public:
  static constexpr std::size_t kMaxColumns = 8;

  void clear() {
    bytes_.assign(kMaxColumns, '\0');
    columns_ = 0;
  }
  // Appends a column: one value a span.
  void add(const std::vector<__int128>& values, bool is_signed) {
    __int128 lo = 0, hi = 0;
    for (const __int128 v : values) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    unsigned width = 0;
    for (const unsigned w : {1u, 2u, 4u}) {
      const __int128 range = __int128{1} << (8 * w);
      if (is_signed ? lo >= -range / 2 && hi < range / 2 : hi < range) {
        width = w;
        break;
      }
    }
    bytes_[columns_++] = static_cast<char>(width);
    if (width == 0) {
      for (const __int128 v : values) {
        const auto uv = static_cast<unsigned __int128>(v);
        varint(!is_signed ? uv : v < 0 ? ~(uv << 1) : uv << 1);  // zigzag: 0, -1, 1, -2 as 0, 1, 2, 3
      }
      return;
    }
    bytes_.resize((bytes_.size() + width - 1) / width * width, '\0');
    for (const __int128 v : values) {
      const auto uv = static_cast<unsigned __int128>(v);
      for (unsigned k = 0; k < width; ++k) bytes_.push_back(static_cast<char>(static_cast<unsigned>(uv >> (8 * k))));
    }
  }
  [[nodiscard]] std::string base64() const {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes_.size() + 2) / 3 * 4);
    std::size_t i = 0;
    const auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes_[k])); };
    for (; i + 2 < bytes_.size(); i += 3) {
      const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
      for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(v >> shift) & 63]);
    }
    if (i < bytes_.size()) {
      const std::uint32_t v = byte(i) << 16 | (i + 1 < bytes_.size() ? byte(i + 1) << 8 : 0);
      out.push_back(kAlphabet[(v >> 18) & 63]);
      out.push_back(kAlphabet[(v >> 12) & 63]);
      out.push_back(i + 1 < bytes_.size() ? kAlphabet[(v >> 6) & 63] : '=');
      out.push_back('=');
    }
    return out;
  }

 private:
  void varint(unsigned __int128 v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>(static_cast<unsigned>(v & 0x7f) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
  }

  std::string bytes_;
  std::size_t columns_ = 0;
};

bool has_detail(const SpanData& s) {
  return !s.attrs.empty() || !s.events.empty() || !s.model.empty() || s.has_tokens || !s.tags.empty() ||
         !s.input.empty() || !s.output.empty() || !s.error_message.empty() || !s.error_data.empty() ||
         !s.kind_name.empty() || s.flags != 0 || s.segment_of != 0 || !s.links.empty() ||
         (s.end_thread_id != 0 && s.end_thread_id != s.thread_id);
}

class PageData {
 public:
  explicit PageData(std::FILE* out) : stream_(out), w_(stream_) {}

  void begin() {
    w_.StartObject();
    key(w_, "v");
    w_.Int(2);
    key(w_, "traces");
    w_.StartArray();
  }

  void trace(const AssembledTrace& t) {
    strings_.begin_trace();
    register_strings(t);
    const std::size_t n = t.spans.size();

    std::int64_t base = n ? t.spans[0].start_ns : 0;
    for (const SpanData& s : t.spans) base = std::min(base, s.start_ns);
    std::unordered_map<std::uint64_t, std::size_t> index_of;
    index_of.reserve(n);
    for (std::size_t i = 0; i < n; ++i) index_of.emplace(t.spans[i].span_id, i);

    // Small per-trace tables: high id bits and threads.
    std::vector<std::uint32_t> highs;
    std::unordered_map<std::uint32_t, std::uint32_t> high_index;
    std::vector<std::uint64_t> threads;
    std::unordered_map<std::uint64_t, std::uint32_t> thread_index;
    auto thread_of = [&](std::uint64_t tid) {
      auto [it, fresh] = thread_index.emplace(tid, static_cast<std::uint32_t>(threads.size()));
      if (fresh) threads.push_back(tid);
      return it->second;
    };
    std::vector<std::uint32_t> span_high(n), span_thread(n), end_thread(n);
    for (std::size_t i = 0; i < n; ++i) {
      const SpanData& s = t.spans[i];
      const auto hi = static_cast<std::uint32_t>(s.span_id >> 32);
      auto [it, fresh] = high_index.emplace(hi, static_cast<std::uint32_t>(highs.size()));
      if (fresh) highs.push_back(hi);
      span_high[i] = it->second;
      span_thread[i] = thread_of(s.thread_id);
    }
    for (std::size_t i = 0; i < n; ++i)
      end_thread[i] = t.spans[i].end_thread_id ? thread_of(t.spans[i].end_thread_id) : span_thread[i];

    w_.StartObject();
    key(w_, "id"); str(w_, t.trace_id.to_hex());
    key(w_, "r"); w_.Uint(strings_.at(t.root_name));
    key(w_, "part"); w_.Uint(t.part);
    key(w_, "partial"); w_.Bool(t.partial);
    if (t.drops_since_previous.spans || t.drops_since_previous.records) {
      key(w_, "drops");
      w_.StartArray();
      safe_int(w_, static_cast<std::int64_t>(std::min<std::uint64_t>(t.drops_since_previous.spans, INT64_MAX)));
      safe_int(w_, static_cast<std::int64_t>(std::min<std::uint64_t>(t.drops_since_previous.records, INT64_MAX)));
      w_.EndArray();
    }
    key(w_, "b"); str(w_, std::to_string(base));
    key(w_, "S");
    w_.StartArray();
    for (std::string_view s : strings_.fresh()) str(w_, s);
    w_.EndArray();
    key(w_, "H");
    w_.StartArray();
    for (std::uint32_t h : highs) w_.Uint(h);
    w_.EndArray();
    key(w_, "T");
    w_.StartArray();
    for (std::uint64_t tid : threads) str(w_, std::to_string(tid));
    w_.EndArray();
    if (!t.thread_names.empty()) {
      key(w_, "TN");
      w_.StartArray();
      for (std::size_t k = 0; k < threads.size(); ++k) {
        const std::string_view name = t.thread_name(threads[k]);
        if (name.empty()) continue;
        w_.StartArray();
        w_.Uint64(k);
        w_.Uint(strings_.at(name));
        w_.EndArray();
      }
      w_.EndArray();
    }

    key(w_, "n"); w_.Uint64(n);
    cols_.clear();
    std::vector<__int128>& v = column_;
    v.resize(n);
    const auto add = [&](bool is_signed, auto&& value) {
      for (std::size_t i = 0; i < n; ++i) v[i] = value(i);
      cols_.add(v, is_signed);
    };
    add(false, [&](std::size_t i) { return strings_.at(t.spans[i].name); });
    add(false, [&](std::size_t i) {
      return static_cast<unsigned>(t.spans[i].kind) | (static_cast<unsigned>(t.spans[i].status) << 4);
    });
    add(true, [&](std::size_t i) {
      return static_cast<__int128>(t.spans[i].start_ns) - (i ? t.spans[i - 1].start_ns : base);
    });
    add(true, [&](std::size_t i) { return static_cast<__int128>(t.spans[i].end_ns) - t.spans[i].start_ns; });
    add(false, [&](std::size_t i) { return span_thread[i]; });
    add(false, [&](std::size_t i) {
      const SpanData& s = t.spans[i];
      auto it = s.parent_id ? index_of.find(s.parent_id) : index_of.end();
      return it == index_of.end() || it->second >= i ? std::size_t{0} : i - it->second;
    });
    // Each high part's first low bits go in "L", so that the deltas stay small.
    std::vector<std::int64_t> last_low(highs.size(), -1);
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t& first = last_low[span_high[i]];
      if (first < 0) first = static_cast<std::int64_t>(t.spans[i].span_id & 0xffffffffu);
    }
    key(w_, "L");
    w_.StartArray();
    for (const std::int64_t low : last_low) w_.Int64(low);
    w_.EndArray();
    add(true, [&](std::size_t i) {
      const auto low = static_cast<std::int64_t>(t.spans[i].span_id & 0xffffffffu);
      const std::int64_t d = low - last_low[span_high[i]];
      last_low[span_high[i]] = low;
      return d;
    });
    if (highs.size() > 1) add(false, [&](std::size_t i) { return span_high[i]; });
    key(w_, "z"); str(w_, cols_.base64());

    key(w_, "x");
    w_.StartArray();
    for (std::size_t i = 0; i < n; ++i) {
      const SpanData& s = t.spans[i];
      if (!has_detail(s)) continue;
      w_.StartArray();
      w_.Uint64(i);
      detail(s, end_thread[i], span_thread[i]);
      w_.EndArray();
    }
    w_.EndArray();

    key(w_, "xp");
    w_.StartArray();
    for (std::size_t i = 0; i < n; ++i) {
      const SpanData& s = t.spans[i];
      if (s.parent_id == 0) continue;
      auto it = index_of.find(s.parent_id);
      if (it != index_of.end() && it->second < i) continue;
      w_.StartArray();
      w_.Uint64(i);
      str(w_, hex64(s.parent_id));
      w_.EndArray();
    }
    w_.EndArray();

    key(w_, "g");
    w_.StartArray();
    for (const ParallelGroup& g : t.groups) {
      w_.StartArray();
      auto parent = index_of.find(g.parent_id);
      w_.Int64(parent == index_of.end() ? -1 : static_cast<std::int64_t>(parent->second));
      w_.Uint(g.id);
      safe_diff(w_, g.start_ns, base);
      safe_diff(w_, g.end_ns, base);
      w_.Uint(g.peak_concurrency);
      w_.StartArray();
      for (std::uint64_t m : g.members)
        if (auto it = index_of.find(m); it != index_of.end()) w_.Uint64(it->second);
      w_.EndArray();
      w_.EndArray();
    }
    w_.EndArray();

    key(w_, "c");
    w_.StartArray();
    for (const SegmentChain& c : t.chains) {
      w_.StartArray();
      safe_int(w_, c.waited_ns);
      w_.StartArray();
      for (std::uint64_t sid : c.segments)
        if (auto it = index_of.find(sid); it != index_of.end()) w_.Uint64(it->second);
      w_.EndArray();
      str(w_, hex64(c.first_span_id));
      w_.EndArray();
    }
    w_.EndArray();
    w_.EndObject();

    strings_.end_trace();
    ++traces_;
    spans_ += n;
  }

  void end(const serialize::FileInfo& info, bool damaged, const LossSummary& loss) {
    w_.EndArray();
    key(w_, "service"); str(w_, info.service_name);
    key(w_, "host"); str(w_, info.host_name);
    key(w_, "pid"); w_.Uint(info.process_id);
    key(w_, "start"); str(w_, std::to_string(info.start_ns));
    key(w_, "clock"); str(w_, info.clock);
    key(w_, "writer"); str(w_, info.writer);
    key(w_, "traceCount"); w_.Uint64(traces_);
    key(w_, "spanCount"); w_.Uint64(spans_);
    key(w_, "damaged"); w_.Bool(damaged);
    key(w_, "loss"); write_loss_json(w_, loss);
    w_.EndObject();
    stream_.Flush();
  }

 private:
  void register_strings(const AssembledTrace& t) {
    strings_.add(t.root_name);
    for (const ThreadName& tn : t.thread_names)
      if (!tn.name.empty()) strings_.add(tn.name);
    for (const SpanData& s : t.spans) strings_.add(s.name);
    for (const SpanData& s : t.spans) {
      if (!has_detail(s)) continue;
      for (const Attribute& a : s.attrs) {
        strings_.add(a.key);
        if (a.value.type == AttrValue::Type::string) strings_.add(a.value.s);
      }
      for (const SpanEvent& e : s.events) {
        strings_.add(e.name);
        for (const Attribute& a : e.attrs) {
          strings_.add(a.key);
          if (a.value.type == AttrValue::Type::string) strings_.add(a.value.s);
        }
      }
      for (const std::string& tag : s.tags) strings_.add(tag);
      for (const std::string* p : {&s.model, &s.input, &s.output, &s.error_message, &s.error_data, &s.kind_name})
        if (!p->empty()) strings_.add(*p);
    }
  }

  void attrs(const std::vector<Attribute>& list) {
    w_.StartArray();
    for (const Attribute& a : list) {
      w_.Uint(strings_.at(a.key));
      const unsigned truncated = a.truncated ? 4 : 0;
      switch (a.value.type) {
        case AttrValue::Type::i64:
          w_.Uint(0 + truncated);
          safe_int(w_, a.value.i);
          break;
        case AttrValue::Type::f64:
          w_.Uint(1 + truncated);
          if (std::isfinite(a.value.d)) {
            w_.Double(a.value.d);
          } else {
            w_.String(std::isnan(a.value.d) ? "NaN" : a.value.d > 0 ? "Infinity" : "-Infinity");
          }
          break;
        case AttrValue::Type::boolean:
          w_.Uint(2 + truncated);
          w_.Uint(a.value.i != 0 ? 1 : 0);
          break;
        case AttrValue::Type::string:
          w_.Uint(3 + truncated);
          w_.Uint(strings_.at(a.value.s));
          break;
      }
    }
    w_.EndArray();
  }

  void detail(const SpanData& s, std::uint32_t end_thread, std::uint32_t thread) {
    auto text = [&](std::string_view k, const std::string& v) {
      if (v.empty()) return;
      key(w_, k);
      w_.Uint(strings_.at(v));
    };
    w_.StartObject();
    if (!s.attrs.empty()) {
      key(w_, "a");
      attrs(s.attrs);
    }
    if (!s.events.empty()) {
      key(w_, "e");
      w_.StartArray();
      for (const SpanEvent& e : s.events) {
        w_.StartArray();
        w_.Uint(strings_.at(e.name));
        safe_diff(w_, e.time_ns, s.start_ns);
        attrs(e.attrs);
        w_.EndArray();
      }
      w_.EndArray();
    }
    text("m", s.model);
    if (s.has_tokens) {
      key(w_, "tk");
      w_.StartArray();
      safe_int(w_, s.tokens.input);
      safe_int(w_, s.tokens.output);
      safe_int(w_, s.tokens.cached_input);
      w_.EndArray();
    }
    if (!s.tags.empty()) {
      key(w_, "tg");
      w_.StartArray();
      for (const std::string& tag : s.tags) w_.Uint(strings_.at(tag));
      w_.EndArray();
    }
    text("in", s.input);
    text("out", s.output);
    text("em", s.error_message);
    text("ed", s.error_data);
    text("kn", s.kind_name);
    if (s.flags) {
      key(w_, "f");
      w_.Uint(s.flags);
    }
    if (s.segment_of != 0) {
      key(w_, "sg");
      w_.Uint(s.segment_index);
    }
    if (!s.links.empty()) {
      key(w_, "lk");
      w_.StartArray();
      for (const SpanLink& l : s.links) {
        w_.StartArray();
        const std::string trace = l.trace_id.to_hex(), span = hex64(l.span_id);
        w_.String(trace.data(), static_cast<rapidjson::SizeType>(trace.size()));
        w_.String(span.data(), static_cast<rapidjson::SizeType>(span.size()));
        w_.EndArray();
      }
      w_.EndArray();
    }
    if (end_thread != thread) {
      key(w_, "et");
      w_.Uint(end_thread);
    }
    w_.EndObject();
  }

  ScriptSafeStream stream_;
  Writer w_;
  StringTable strings_;
  Columns cols_;
  std::vector<__int128> column_;
  std::uint64_t traces_ = 0, spans_ = 0;
};

void write_raw(std::FILE* out, std::string_view s) { std::fwrite(s.data(), 1, s.size(), out); }

int write_page(const std::string& file, std::FILE* out) {
  const std::string_view page(reinterpret_cast<const char*>(kViewerHtml), kViewerHtml_size);
  const std::size_t at = page.find(kDataMarker);
  if (at == std::string_view::npos) throw ToolError(kExitOutput, "html: the built-in viewer page has no data marker");
  write_raw(out, page.substr(0, at));
  serialize::FileInfo info;
  LossSummary loss;
  PageData data(out);
  data.begin();
  const int status =
      for_each_trace(file, [&](const serialize::TraceView& tv) { data.trace(tv.materialize()); }, &info, &loss);
  data.end(info, status == kExitDamaged, loss);
  write_raw(out, page.substr(at + kDataMarker.size()));
  return status;
}

}  // namespace

void add_html(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("html", "Write a self-contained HTML page: a timeline of every thread and the execution "
                                         "flow of each trace as a graph; a banner when the run lost data, spans that lost "
                                         "records marked");
  struct Opts {
    std::string file, out = "strobe.html";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("-o,--output", o->out, "output HTML file ('-' for stdout)");
  cmd->callback([o, &status] {
    // An unreadable file fails before the output is created.
    try {
      serialize::Reader probe(o->file);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    }
    Output out(o->out);
    status = write_page(o->file, out.file());
    out.close();
  });
}

}  // namespace strobe::tool
