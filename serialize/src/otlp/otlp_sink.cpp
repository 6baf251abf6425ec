// OtlpSink: the queue (consume_compact on the recorder's sink thread), the sender thread
// (batches, encoding, gzip, POST through a libcurl multi handle so that a stop can cut
// a request short, retries), and the OTEL_* environment. Protobuf without gzip: the
// spans are encoded straight into libcurl's upload buffer as it asks for the body
// (proto_request.hpp), sized beforehand for the head's lengths.

#include <strobe/serialize/otlp_sink.hpp>

#include <curl/curl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "otlp/proto_request.hpp"

namespace strobe::serialize {

// ---- the environment ----

namespace {

using Clock = std::chrono::steady_clock;

std::string trim(std::string_view s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding (W3C Baggage octets, as the OTel spec has OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES).
std::string url_decode(std::string_view s, const char* variable) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      throw ConfigError(std::string(variable) + ": a '%' not followed by two hex digits in '" + std::string(s) + "'");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// "k=v,k2=v2": keys and values trimmed and %-decoded; empty entries skipped.
std::vector<std::pair<std::string, std::string>> parse_pairs(std::string_view text, const char* variable) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string entry = trim(text.substr(at, comma - at));
    at = comma + 1;
    if (entry.empty()) continue;
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError(std::string(variable) + ": '" + entry + "' is not key=value");
    std::string key = url_decode(trim(std::string_view(entry).substr(0, eq)), variable);
    std::string value = url_decode(trim(std::string_view(entry).substr(eq + 1)), variable);
    if (key.empty()) throw ConfigError(std::string(variable) + ": '" + entry + "' has an empty key");
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

bool is_http_url(std::string_view url) {
  return (url.rfind("http://", 0) == 0 && url.size() > 7) || (url.rfind("https://", 0) == 0 && url.size() > 8);
}

}  // namespace

OtlpSinkOptions resolve_otlp_options(OtlpSinkOptions o) {
  const bool read = o.read_environment;
  // OTEL_EXPORTER_OTLP_TRACES_<X> first, then OTEL_EXPORTER_OTLP_<X>.
  const auto signal_env = [&](const char* what, std::string& name) -> const char* {
    if (!read) return nullptr;
    name = std::string("OTEL_EXPORTER_OTLP_TRACES_") + what;
    if (const char* v = env(name.c_str())) return v;
    name = std::string("OTEL_EXPORTER_OTLP_") + what;
    return env(name.c_str());
  };
  std::string name;
  if (o.endpoint.empty()) {
    if (const char* v = read ? env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") : nullptr) {
      o.endpoint = trim(v);
      if (!is_http_url(o.endpoint))
        throw ConfigError("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '" + o.endpoint + "' is not an http:// or https:// URL");
    } else if (const char* base = read ? env("OTEL_EXPORTER_OTLP_ENDPOINT") : nullptr) {
      std::string b = trim(base);
      if (!is_http_url(b)) throw ConfigError("OTEL_EXPORTER_OTLP_ENDPOINT: '" + b + "' is not an http:// or https:// URL");
      if (b.back() != '/') b.push_back('/');
      o.endpoint = b + "v1/traces";
    } else {
      o.endpoint = "http://127.0.0.1:4318/v1/traces";
    }
  } else if (!is_http_url(o.endpoint)) {
    throw ConfigError("OtlpSinkOptions::endpoint: '" + o.endpoint + "' is not an http:// or https:// URL");
  }
  if (const char* v = signal_env("HEADERS", name)) {
    for (auto& pair : parse_pairs(v, name.c_str())) {
      std::string& key = pair.first;  // not a structured binding: clang 14 cannot capture one
      std::string& value = pair.second;
      const bool given = std::any_of(o.headers.begin(), o.headers.end(), [&](const auto& h) {
        return std::equal(h.first.begin(), h.first.end(), key.begin(), key.end(),
                          [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); });
      });
      if (!given) o.headers.emplace_back(std::move(key), std::move(value));
    }
  }
  for (const auto& [key, value] : o.headers)
    if (key.empty() || key.find_first_of(":\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
      throw ConfigError("OTLP header '" + key + "': a name must be non-empty without ':', and neither may hold a line break");
  if (!o.protocol) {
    o.protocol = otlp::Protocol::protobuf;
    if (const char* v = signal_env("PROTOCOL", name)) {
      otlp::Protocol p;
      if (!otlp::parse_protocol(trim(v), p))
        throw ConfigError(name + ": '" + trim(v) + "' is not supported (http/protobuf or http/json)");
      o.protocol = p;
    }
  }
  if (!o.compression) {
    o.compression = otlp::Compression::none;
    if (const char* v = signal_env("COMPRESSION", name)) {
      otlp::Compression c;
      if (!otlp::parse_compression(trim(v), c)) throw ConfigError(name + ": '" + trim(v) + "' is not supported (gzip or none)");
      o.compression = c;
    }
  }
  if (read) {
    if (const char* v = env("OTEL_RESOURCE_ATTRIBUTES")) {
      std::vector<Attribute> attrs;
      for (auto& [key, value] : parse_pairs(v, "OTEL_RESOURCE_ATTRIBUTES")) {
        AttrValue av;
        av.type = AttrValue::Type::string;
        av.s = std::move(value);
        attrs.push_back(Attribute{std::move(key), std::move(av), false});
      }
      // Before the options' own, which win.
      o.resource_attributes.insert(o.resource_attributes.begin(), attrs.begin(), attrs.end());
    }
    if (o.service_name.empty())
      if (const char* v = env("OTEL_SERVICE_NAME")) o.service_name = trim(v);
  }
  if (o.gzip_level < 1 || o.gzip_level > 9) throw ConfigError("OtlpSinkOptions::gzip_level must be 1 to 9");
  if (o.queue_spans == 0 || o.queue_bytes == 0 || o.batch_spans == 0 || o.batch_bytes < 1024)
    throw ConfigError("OtlpSinkOptions: queue_spans, queue_bytes and batch_spans must be positive, batch_bytes at least 1024");
  if (o.request_timeout.count() <= 0 || o.export_timeout.count() <= 0 || o.flush_timeout.count() < 0 ||
      o.backoff_initial.count() < 0 || o.backoff_max < o.backoff_initial || o.batch_delay.count() < 0)
    throw ConfigError("OtlpSinkOptions: timeouts must be positive, backoff_max at least backoff_initial");
  return o;
}

// ---- the sink ----

namespace {

struct Item {
  std::unique_ptr<CompactTrace> compact;
  std::unique_ptr<AssembledTrace> assembled;
  std::size_t rows = 0;    // spans to send
  std::size_t weight = 0;  // spans and events: what the queue's span bound counts
  std::size_t bytes = 0;   // memory held
  Clock::time_point queued_at;
};

std::size_t extra_bytes(const std::vector<Attribute>& attrs) {
  std::size_t n = attrs.size() * sizeof(Attribute);
  for (const Attribute& a : attrs) n += a.key.size() + a.value.s.size();
  return n;
}

std::size_t bytes_of(const CompactTrace& t, std::size_t& events) {
  std::size_t n = sizeof(CompactTrace) + t.spans.size() * sizeof(SpanRow) + t.extras.size() * sizeof(SpanExtra);
  for (const SpanExtra& x : t.extras) {
    n += x.kind_name.size() + x.error_message.size() + x.error_data.size() + x.input.size() + x.output.size() +
         x.model.size() + extra_bytes(x.attrs);
    for (const std::string& tag : x.tags) n += tag.size() + sizeof(std::string);
    for (const SpanEvent& e : x.events) n += sizeof(SpanEvent) + e.name.size() + extra_bytes(e.attrs);
    events += x.events.size();
  }
  return n;
}

std::size_t bytes_of(const AssembledTrace& t, std::size_t& events) {
  std::size_t n = sizeof(AssembledTrace) + t.spans.size() * sizeof(SpanData);
  for (const SpanData& s : t.spans) {
    n += s.name.size() + s.kind_name.size() + s.error_message.size() + s.error_data.size() + s.input.size() +
         s.output.size() + s.model.size() + extra_bytes(s.attrs);
    for (const SpanEvent& e : s.events) n += sizeof(SpanEvent) + e.name.size() + extra_bytes(e.attrs);
    events += s.events.size();
  }
  return n;
}

// An item for trace (its size and queue weight set; the trace itself not yet taken).
template <class Trace>
Item item_for(const Trace& trace) {
  Item item;
  std::size_t events = 0;
  item.bytes = bytes_of(trace, events);
  item.rows = trace.spans.size();
  item.weight = item.rows + events;
  return item;
}

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// A request body: `head`, then (protobuf) the batch's spans, written into libcurl's
// upload buffer when it reads the body.
struct Upload {
  std::string_view head;
  otlp::detail::ProtoBatch* spans = nullptr;
  std::size_t at = 0;  // in head
};

std::size_t on_read(char* p, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const std::size_t room = size * n;
  const std::size_t k = std::min(room, u->head.size() - u->at);
  std::memcpy(p, u->head.data() + u->at, k);
  u->at += k;
  return k + (u->spans && k < room ? u->spans->write(p + k, room - k) : 0);
}

int on_seek(void* user, curl_off_t offset, int origin) {
  auto* u = static_cast<Upload*>(user);
  if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
  u->at = 0;
  if (u->spans) u->spans->rewind();
  return CURL_SEEKFUNC_OK;
}

struct Reply {
  long code = 0;
  std::string body;
  std::string error;  // transport error
  long retry_after_ms = -1;
  bool aborted = false;
};

std::size_t on_body(char* p, std::size_t size, std::size_t n, void* user) {
  auto* r = static_cast<Reply*>(user);
  if (r->body.size() < 4096) r->body.append(p, std::min(size * n, 4096 - r->body.size()));
  return size * n;
}

// Retry-After: delay-seconds or an HTTP-date.
std::size_t on_header(char* p, std::size_t size, std::size_t n, void* user) {
  const std::string_view line(p, size * n);
  constexpr std::string_view key = "retry-after:";
  if (line.size() <= key.size()) return size * n;
  for (std::size_t i = 0; i < key.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != key[i]) return size * n;
  const std::string value = trim(line.substr(key.size()));
  auto* r = static_cast<Reply*>(user);
  if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    r->retry_after_ms = std::min(std::strtol(value.c_str(), nullptr, 10), 86'400L) * 1000;
  } else if (const time_t when = curl_getdate(value.c_str(), nullptr); when >= 0) {
    const time_t now = ::time(nullptr);
    r->retry_after_ms = when > now ? static_cast<long>(std::min<time_t>(when - now, 86'400)) * 1000 : 0;
  }
  return size * n;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

struct OtlpSink::Impl {
  OtlpSinkOptions o;
  curl_slist* headers = nullptr;
  CURLM* multi = nullptr;
  CURL* easy = nullptr;

  mutable std::mutex mu;
  std::condition_variable wake;     // the sender waits on it
  std::condition_variable drained;  // flush() waits on it
  std::deque<Item> queue;           // under mu
  std::size_t queue_weight = 0;     // of `queue`, under mu
  std::size_t queue_bytes_now = 0;  // of `queue`, under mu
  std::size_t held_weight = 0;      // queue + the sender's items, under mu
  std::size_t held_bytes = 0;       // under mu
  int flushing = 0;                 // flush() calls waiting, under mu
  otlp::Resource resource;          // under mu
  std::uint64_t resource_version = 1;  // under mu
  std::string last_error;           // under mu
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> stop_deadline_ns{0};  // steady clock, valid once stopping

  std::atomic<std::uint64_t> spans_queued{0}, spans_sent{0}, spans_dropped{0}, dropped_queue_full{0}, batches_sent{0},
      batches_failed{0}, requests{0}, retries{0}, bytes_encoded{0}, bytes_sent{0}, consume_cpu{0},
      recorder_dropped{0}, spans_rejected{0};
  std::thread sender;

  // The sender's.
  std::optional<otlp::RequestWriter> writer;  // JSON
  std::optional<otlp::detail::ProtoBatch> batch;  // protobuf
  std::string head, resource_fields, joined;  // protobuf: a request's head, its resource; gzip's input
  std::atomic<std::uint64_t> sender_cpu_at_exit{0};
  std::string gzipped;
  std::minstd_rand rng{std::random_device{}()};
  otlp::Resource sender_resource;
  std::uint64_t sender_resource_version = 0;

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  }
  bool past_stop_deadline() const {
    return stopping.load(std::memory_order_acquire) && now_ns() >= stop_deadline_ns.load(std::memory_order_acquire);
  }
  Clock::time_point limit(Clock::time_point deadline) const {
    if (!stopping.load(std::memory_order_acquire)) return deadline;
    return std::min(deadline, Clock::time_point(std::chrono::nanoseconds(stop_deadline_ns.load(std::memory_order_acquire))));
  }

  void error(const std::string& line) {
    {
      std::lock_guard lock(mu);
      last_error = line;
    }
    if (o.on_error) o.on_error(line);
  }

  void enqueue(Item item) {
    const std::size_t rows = item.rows;
    if (rows == 0) return;
    bool wake_sender = false;
    {
      std::lock_guard lock(mu);
      // As the recorder's own sink queue: a trace larger than the bounds still goes into
      // an empty queue.
      if (held_weight > 0 && (held_weight + item.weight > o.queue_spans || held_bytes + item.bytes > o.queue_bytes)) {
        spans_dropped.fetch_add(rows, std::memory_order_relaxed);
        dropped_queue_full.fetch_add(rows, std::memory_order_relaxed);
        return;
      }
      held_weight += item.weight;
      held_bytes += item.bytes;
      queue_weight += item.weight;
      queue_bytes_now += item.bytes;
      item.queued_at = Clock::now();
      queue.push_back(std::move(item));
      wake_sender = queue_weight >= o.batch_spans || queue_bytes_now >= o.batch_bytes || queue.size() == 1;
    }
    spans_queued.fetch_add(rows, std::memory_order_relaxed);
    if (wake_sender) wake.notify_one();
  }

  void release(const Item& item) {
    {
      std::lock_guard lock(mu);
      held_weight -= item.weight;
      held_bytes -= item.bytes;
    }
    drained.notify_all();
  }

  // ---- the sender thread ----

  void run() {
    pthread_setname_np(pthread_self(), "strobe-otlp");
    std::deque<Item> mine;
    for (;;) {
      {
        std::unique_lock lock(mu);
        for (;;) {
          if (stopping.load(std::memory_order_acquire)) break;
          if (queue.empty()) {
            wake.wait(lock);
            continue;
          }
          if (flushing > 0 || queue_weight >= o.batch_spans || queue_bytes_now >= o.batch_bytes) break;
          const Clock::time_point due = queue.front().queued_at + o.batch_delay;
          if (Clock::now() >= due) break;
          wake.wait_until(lock, due);
        }
        if (queue.empty()) break;  // stopping, and nothing is left
        // A batch's worth from the front, the rest left to fill the next batch: taking
        // the whole queue sent a full batch and a short one each time (twice the
        // requests, each costing about as much as a few hundred spans).
        std::size_t weight = 0, bytes = 0;
        do {
          weight += queue.front().weight;
          bytes += queue.front().bytes;
          mine.push_back(std::move(queue.front()));
          queue.pop_front();
        } while (!queue.empty() && weight + queue.front().weight <= o.batch_spans &&
                 bytes + queue.front().bytes <= o.batch_bytes);
        queue_weight -= weight;
        queue_bytes_now -= bytes;
        if (sender_resource_version != resource_version) {
          sender_resource = resource;
          sender_resource_version = resource_version;
        }
      }
      send_items(mine);
      mine.clear();
    }
    sender_cpu_at_exit.store(thread_cpu_ns(), std::memory_order_relaxed);
  }

  otlp::Resource batch_resource() const {
    otlp::Resource r = sender_resource;
    if (const std::uint64_t d = spans_dropped.load(std::memory_order_relaxed)) r.set("strobe.spans_dropped", static_cast<std::int64_t>(d));
    if (const std::uint64_t d = recorder_dropped.load(std::memory_order_relaxed))
      r.set("strobe.recorder.spans_dropped", static_cast<std::int64_t>(d));
    return r;
  }

  // Out of time at the stop: the item is dropped without encoding (counted, released).
  bool dropped_at_deadline(const Item& item) {
    if (!past_stop_deadline()) return false;
    spans_dropped.fetch_add(item.rows, std::memory_order_relaxed);
    release(item);
    return true;
  }
  // The item's trace, in whichever form it was queued, to the request writer.
  template <class Writer>
  static void begin_trace(Writer& w, const Item& item) {
    if (item.compact) {
      w.begin_trace(*item.compact);
    } else {
      w.begin_trace(*item.assembled);
    }
  }

  // Batches of the items' spans, each sent (or dropped) before the next is built; an
  // item's memory is handed back once its last span has gone.
  void send_items(std::deque<Item>& items) {
    if (batch) return send_protobuf(items);
    std::vector<const Item*> finished;  // whose last span is in the batch being built
    std::size_t rows_in_batch = 0;
    bool open = false;
    const auto send = [&] {
      if (open) send_batch(rows_in_batch);
      open = false;
      rows_in_batch = 0;
      for (const Item* it : finished) release(*it);
      finished.clear();
    };
    for (const Item& item : items) {
      if (dropped_at_deadline(item)) continue;
      begin_trace(*writer, item);
      for (std::size_t i = 0; i < item.rows; ++i) {
        if (open && rows_in_batch >= o.batch_spans) send();
        if (!open) {
          writer->begin(batch_resource());
          open = true;
        }
        if (!writer->add_within(i, o.batch_bytes)) {  // full: it goes first in the next batch
          send();
          writer->begin(batch_resource());
          open = true;
          writer->append_prepared();
        }
        ++rows_in_batch;
      }
      finished.push_back(&item);
    }
    send();
  }

  // As send_items(), protobuf: each span sized (batch->measure()) to decide where it
  // goes, the request written only as libcurl reads it.
  void send_protobuf(std::deque<Item>& items) {
    std::vector<const Item*> finished;  // whose last span is in the batch being built
    std::size_t bound = 0;              // of the head
    bool open = false;
    const auto send = [&] {
      if (open) {
        otlp::detail::put_request_head(resource_fields, batch->bytes(), head);
        send_body(Upload{head, &*batch}, head.size() + batch->bytes(), batch->spans());
      }
      open = false;
      batch->clear();
      for (const Item* it : finished) release(*it);
      finished.clear();
    };
    for (const Item& item : items) {
      if (dropped_at_deadline(item)) continue;
      begin_trace(*batch, item);
      for (std::size_t i = 0; i < item.rows; ++i) {
        if (open && batch->spans() >= o.batch_spans) send();
        if (!open) {
          resource_fields.clear();
          otlp::detail::put_resource(batch_resource(), resource_fields);
          bound = otlp::detail::head_bound(resource_fields.size());
          open = true;
        }
        std::size_t n = batch->measure(i);
        if (batch->spans() > 0 && bound + batch->bytes() + n > o.batch_bytes) {  // full: it goes first in the next batch
          send();
          resource_fields.clear();
          otlp::detail::put_resource(batch_resource(), resource_fields);
          bound = otlp::detail::head_bound(resource_fields.size());
          open = true;
          n = batch->measure(i);
        }
        batch->add();
      }
      finished.push_back(&item);
    }
    send();
  }

  void send_batch(std::size_t rows) {
    writer->end();
    send_body(Upload{writer->data()}, writer->data().size(), rows);
  }

  // One request's attempts: body is `size` bytes.
  void send_body(Upload body, std::size_t size, std::size_t rows) {
    bytes_encoded.fetch_add(size, std::memory_order_relaxed);
    if (o.compression == otlp::Compression::gzip) {
      std::string_view in = body.head;
      if (body.spans) {  // in one piece for zlib
        joined.resize(size);
        std::memcpy(joined.data(), body.head.data(), body.head.size());
        body.spans->rewind();
        std::size_t at = body.head.size();
        while (at < size) {
          const std::size_t k = body.spans->write(joined.data() + at, size - at);
          if (k == 0) break;
          at += k;
        }
        in = joined;
      }
      try {
        otlp::gzip(in, gzipped, o.gzip_level);
      } catch (const std::exception& e) {
        fail(rows, std::string("gzip: ") + e.what());
        return;
      }
      body = Upload{gzipped};
      size = gzipped.size();
    }
    const Clock::time_point deadline = Clock::now() + o.export_timeout;
    std::chrono::milliseconds backoff = o.backoff_initial;
    for (int attempt = 0;; ++attempt) {
      const Clock::time_point until = limit(deadline);
      if (Clock::now() >= until) {
        fail(rows, "deadline passed before the batch could be sent");
        return;
      }
      body.at = 0;
      if (body.spans) body.spans->rewind();
      const Reply r = post(body, size, until);
      requests.fetch_add(1, std::memory_order_relaxed);
      if (r.error.empty() && r.code >= 200 && r.code < 300) {
        spans_sent.fetch_add(rows, std::memory_order_relaxed);
        batches_sent.fetch_add(1, std::memory_order_relaxed);
        bytes_sent.fetch_add(size, std::memory_order_relaxed);
        std::uint64_t rejected = 0;
        std::string message;
        if (partial_success(r.body, rejected, message) && (rejected > 0 || !message.empty())) {
          spans_rejected.fetch_add(rejected, std::memory_order_relaxed);
          error("strobe otlp: " + o.endpoint + ": the receiver rejected " + std::to_string(rejected) + " of " +
                std::to_string(rows) + " spans" + (message.empty() ? "" : ": " + message));
        }
        return;
      }
      const std::string why = r.aborted ? "stopped" : !r.error.empty() ? r.error : "HTTP " + std::to_string(r.code) + excerpt(r.body);
      const bool transient = !r.aborted && (!r.error.empty() || r.code == 429 || r.code == 502 || r.code == 503 || r.code == 504);
      if (!transient) {
        fail(rows, why);
        return;
      }
      // Full jitter over the upper half: [backoff/2, backoff].
      auto wait = std::chrono::milliseconds(backoff.count() / 2 +
                                            static_cast<long>(rng() % static_cast<unsigned long>(backoff.count() / 2 + 1)));
      if (r.retry_after_ms >= 0) wait = std::chrono::milliseconds(r.retry_after_ms);
      backoff = std::min(o.backoff_max, backoff * 2);
      if (Clock::now() + wait >= limit(deadline)) {
        fail(rows, why + "; the next attempt would pass the batch's deadline");
        return;
      }
      retries.fetch_add(1, std::memory_order_relaxed);
      error("strobe otlp: " + o.endpoint + ": " + why + "; retrying in " + std::to_string(wait.count()) + " ms");
      std::unique_lock lock(mu);
      const Clock::time_point resume = Clock::now() + wait;
      while (Clock::now() < resume && !past_stop_deadline()) wake.wait_until(lock, std::min(resume, limit(resume)));
    }
  }

  // ExportTraceServiceResponse.partial_success (1) { rejected_spans (1), error_message (2) },
  // in protobuf or its JSON form. False when the body holds none.
  static bool partial_success(const std::string& body, std::uint64_t& rejected, std::string& message) {
    if (body.empty()) return false;
    if (body[0] == '{') {
      const std::size_t at = body.find("\"rejectedSpans\"");
      if (at != std::string::npos) {
        std::size_t i = body.find(':', at);
        while (i != std::string::npos && i < body.size() && (body[i] == ':' || body[i] == ' ' || body[i] == '"')) ++i;
        if (i != std::string::npos) rejected = std::strtoull(body.c_str() + i, nullptr, 10);
      }
      const std::size_t m = body.find("\"errorMessage\"");
      if (m != std::string::npos) {
        const std::size_t open = body.find('"', body.find(':', m));
        const std::size_t close = open == std::string::npos ? open : body.find('"', open + 1);
        if (close != std::string::npos) message = body.substr(open + 1, close - open - 1);
      }
      return at != std::string::npos || m != std::string::npos;
    }
    const auto varint = [&](std::size_t& i, std::uint64_t& v) {
      v = 0;
      for (int shift = 0; i < body.size() && shift < 64; shift += 7) {
        const auto b = static_cast<unsigned char>(body[i++]);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
      }
      return false;
    };
    std::size_t i = 0;
    std::uint64_t key = 0, len = 0;
    if (!varint(i, key) || key != ((1u << 3) | 2) || !varint(i, len) || len > body.size() - i) return false;
    const std::size_t end = i + len;
    while (i < end) {
      std::uint64_t k = 0, v = 0;
      if (!varint(i, k)) return false;
      if (k == ((1u << 3) | 0)) {
        if (!varint(i, v)) return false;
        rejected = v;
      } else if (k == ((2u << 3) | 2)) {
        if (!varint(i, v) || v > end - i) return false;
        message.assign(body, i, v);
        i += v;
      } else {
        return true;  // a field this reader does not know: what it has read stands
      }
    }
    return true;
  }

  static std::string excerpt(const std::string& body) {
    if (body.empty()) return "";
    std::string e = body.substr(0, 200);
    for (char& c : e)
      if (c == '\n' || c == '\r' || static_cast<unsigned char>(c) < 0x20) c = ' ';
    return ": " + e;
  }

  void fail(std::size_t rows, const std::string& why) {
    batches_failed.fetch_add(1, std::memory_order_relaxed);
    spans_dropped.fetch_add(rows, std::memory_order_relaxed);
    error("strobe otlp: " + o.endpoint + ": dropped a batch of " + std::to_string(rows) + " spans: " + why);
  }

  // One attempt, cut short at `until` or when the sink stops past its deadline.
  Reply post(Upload& body, std::size_t size, Clock::time_point until) {
    Reply r;
    const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    const long timeout_ms = static_cast<long>(std::max<std::int64_t>(1, std::min<std::int64_t>(left_ms, o.request_timeout.count())));
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, o.endpoint.c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    if (!body.spans) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.head.data());
    } else {  // libcurl reads the body: the spans written into its upload buffer
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(easy, CURLOPT_READDATA, &body);
      curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek);
      curl_easy_setopt(easy, CURLOPT_SEEKDATA, &body);
    }
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    // The body goes through this buffer into the socket (protobuf: written into it): at
    // its default 64 KiB a batch of ~1 MiB took a dozen send() calls and as many polls,
    // at its maximum (2 MiB, allocated for the transfer's duration) two; ~20% of the
    // sender's CPU at 1 M spans/s.
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &r);
    curl_multi_add_handle(multi, easy);
    int running = 1;
    CURLcode result = CURLE_OK;
    bool done = false;
    while (!done) {
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left))
        if (m->msg == CURLMSG_DONE) {
          result = m->data.result;
          done = true;
        }
      if (done || running == 0) break;
      if (past_stop_deadline()) {
        r.aborted = true;
        break;
      }
      curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    curl_multi_remove_handle(multi, easy);
    if (r.aborted) return r;
    if (result != CURLE_OK) {
      r.error = curl_easy_strerror(result);
      return r;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.code);
    return r;
  }
};

OtlpSink::OtlpSink(OtlpSinkOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.o = resolve_otlp_options(std::move(options));
  if (*m.o.protocol == otlp::Protocol::protobuf) {
    m.batch.emplace();
  } else {
    m.writer.emplace(*m.o.protocol);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  m.multi = curl_multi_init();
  m.easy = curl_easy_init();
  if (!m.multi || !m.easy) {
    if (m.easy) curl_easy_cleanup(m.easy);
    if (m.multi) curl_multi_cleanup(m.multi);
    curl_global_cleanup();
    throw std::runtime_error("OtlpSink: cannot initialise libcurl");
  }
  m.headers = curl_slist_append(m.headers, (std::string("Content-Type: ") + otlp::content_type(*m.o.protocol)).c_str());
  if (*m.o.compression == otlp::Compression::gzip) m.headers = curl_slist_append(m.headers, "Content-Encoding: gzip");
  m.headers = curl_slist_append(m.headers, "Expect:");  // no 100-continue round trip
  for (const auto& [key, value] : m.o.headers) m.headers = curl_slist_append(m.headers, (key + ": " + value).c_str());
  RecorderInfo info;
  info.service_name = "strobe";
  info.host_name = host_name();
  info.process_id = static_cast<std::uint32_t>(::getpid());
  open(info);
  m.sender = std::thread([&m] { m.run(); });
}

OtlpSink::~OtlpSink() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    m.stop_deadline_ns.store(Impl::now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(m.o.flush_timeout).count(),
                             std::memory_order_release);
    m.stopping.store(true, std::memory_order_release);
  }
  m.wake.notify_all();
  curl_multi_wakeup(m.multi);
  if (m.sender.joinable()) m.sender.join();
  curl_slist_free_all(m.headers);
  curl_easy_cleanup(m.easy);
  curl_multi_cleanup(m.multi);
  curl_global_cleanup();
}

void OtlpSink::open(const RecorderInfo& info) {
  Impl& m = *impl_;
  otlp::Resource r = otlp::resource_of(info);
  for (const Attribute& a : m.o.resource_attributes) {
    if (a.value.type == AttrValue::Type::string) {
      r.set(a.key, a.value.s);
    } else {
      r.attributes.erase(std::remove_if(r.attributes.begin(), r.attributes.end(), [&](const Attribute& x) { return x.key == a.key; }),
                         r.attributes.end());
      r.attributes.push_back(a);
    }
  }
  if (!m.o.service_name.empty()) r.set("service.name", m.o.service_name);
  std::lock_guard lock(m.mu);
  m.resource = std::move(r);
  ++m.resource_version;
}

void OtlpSink::consume_compact(const CompactTrace& trace) {
  const std::uint64_t cpu0 = thread_cpu_ns();
  Impl& m = *impl_;
  m.recorder_dropped.fetch_add(trace.drops_since_previous.spans + trace.drops_since_previous.sink_spans,
                               std::memory_order_relaxed);
  Item item = item_for(trace);
  item.compact = std::make_unique<CompactTrace>(trace);
  item.compact->service_name = {};  // the recorder's; not read
  m.enqueue(std::move(item));
  m.consume_cpu.fetch_add(thread_cpu_ns() - cpu0, std::memory_order_relaxed);
}

void OtlpSink::consume(const AssembledTrace& trace) {
  const std::uint64_t cpu0 = thread_cpu_ns();
  Impl& m = *impl_;
  m.recorder_dropped.fetch_add(trace.drops_since_previous.spans + trace.drops_since_previous.sink_spans,
                               std::memory_order_relaxed);
  Item item = item_for(trace);
  item.assembled = std::make_unique<AssembledTrace>(trace);
  m.enqueue(std::move(item));
  m.consume_cpu.fetch_add(thread_cpu_ns() - cpu0, std::memory_order_relaxed);
}

void OtlpSink::lost(const DropCounts& drops) {
  impl_->recorder_dropped.fetch_add(drops.spans + drops.sink_spans, std::memory_order_relaxed);
}

void OtlpSink::flush() {
  Impl& m = *impl_;
  std::unique_lock lock(m.mu);
  if (m.held_weight == 0) return;
  ++m.flushing;
  m.wake.notify_one();
  m.drained.wait_for(lock, m.o.flush_timeout, [&] { return m.held_weight == 0; });
  --m.flushing;
}

OtlpSink::Stats OtlpSink::stats() const {
  const Impl& m = *impl_;
  Stats s;
  s.spans_queued = m.spans_queued.load(std::memory_order_relaxed);
  s.spans_sent = m.spans_sent.load(std::memory_order_relaxed);
  s.spans_dropped = m.spans_dropped.load(std::memory_order_relaxed);
  s.spans_dropped_queue_full = m.dropped_queue_full.load(std::memory_order_relaxed);
  s.spans_rejected = m.spans_rejected.load(std::memory_order_relaxed);
  s.batches_sent = m.batches_sent.load(std::memory_order_relaxed);
  s.batches_failed = m.batches_failed.load(std::memory_order_relaxed);
  s.requests = m.requests.load(std::memory_order_relaxed);
  s.retries = m.retries.load(std::memory_order_relaxed);
  s.bytes_encoded = m.bytes_encoded.load(std::memory_order_relaxed);
  s.bytes_sent = m.bytes_sent.load(std::memory_order_relaxed);
  s.consume_cpu_ns = m.consume_cpu.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(m.mu);
    s.queued_spans_now = m.held_weight;
    s.last_error = m.last_error;
  }
  s.sender_cpu_ns = m.sender_cpu_at_exit.load(std::memory_order_relaxed);
  clockid_t cid;
  if (s.sender_cpu_ns == 0 && m.sender.joinable() && pthread_getcpuclockid(const_cast<std::thread&>(m.sender).native_handle(), &cid) == 0) {
    timespec ts{};
    if (clock_gettime(cid, &ts) == 0)
      s.sender_cpu_ns = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
  }
  return s;
}

const OtlpSinkOptions& OtlpSink::options() const noexcept { return impl_->o; }

}  // namespace strobe::serialize
