// strobe push FILE --endpoint http://HOST:4318/v1/traces
//
// OTLP/HTTP with JSON bodies. Spans are batched into TracesData bodies of at most
// --batch-bytes (default 4 MiB, never above the 64 MiB OTLP limit; a single span larger
// than that is sent alone); each request has connect and total timeouts; 429, 502, 503,
// 504 and network errors are retried with exponential backoff (Retry-After honoured,
// capped at 30 s), at most --retries times; a 200 reply's partialSuccess (rejectedSpans,
// errorMessage) is reported, and spans the collector rejected make the exit status 5.

#include <curl/curl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.hpp"
#include "common.hpp"
#include "otlp.hpp"

namespace strobe::tool {
namespace {

struct PushOptions {
  std::string file, endpoint;
  std::vector<std::string> headers;
  double timeout_s = 30;
  int retries = 5;
  std::size_t batch_bytes = 4u << 20;
  int backoff_ms = 500;
};

struct Reply {
  long code = 0;
  std::string body;
  std::string error;  // transport error
  long retry_after_s = -1;
};

std::size_t on_body(char* p, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

std::size_t on_header(char* p, std::size_t size, std::size_t n, void* user) {
  std::string line(p, size * n);
  const std::string key = "retry-after:";
  if (line.size() > key.size()) {
    std::string lower = line.substr(0, key.size());
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == key) *static_cast<long*>(user) = std::strtol(line.c_str() + key.size(), nullptr, 10);
  }
  return size * n;
}

class Poster {
 public:
  explicit Poster(const PushOptions& o) : o_(o) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ = curl_easy_init();
    if (!curl_) throw ToolError(kExitOutput, "cannot initialise libcurl");
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    for (const std::string& h : o.headers) headers_ = curl_slist_append(headers_, h.c_str());
  }
  ~Poster() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
    curl_global_cleanup();
  }

  Reply post(const std::string& body) {
    Reply r;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, o_.endpoint.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(o_.timeout_s, 10.0) * 1000));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.timeout_s * 1000));
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &r.retry_after_s);
    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) {
      r.error = curl_easy_strerror(rc);
      return r;
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.code);
    return r;
  }

 private:
  const PushOptions& o_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

// Builds TracesData bodies span by span and sends them when they reach the batch size.
class Pusher {
 public:
  explicit Pusher(const PushOptions& o) : o_(o), poster_(o) {}

  void add(const serialize::FileInfo& info, const AssembledTrace& t) {
    const auto prev = otlp::previous_segments(t);
    for (const SpanData& s : t.spans) {
      // Each span is written on its own first, so that a body is sent before the span
      // that would take it past --batch-bytes ("," before it, "]}]}]}" to close).
      span_buf_.Clear();
      rapidjson::Writer<rapidjson::StringBuffer> sw(span_buf_);
      otlp::span(sw, t, s, prev);
      if (open_ && buf_.GetSize() + 1 + span_buf_.GetSize() + kClosing > o_.batch_bytes) send();
      if (!open_) start(info);
      w_->RawValue(span_buf_.GetString(), span_buf_.GetSize(), rapidjson::kObjectType);
      ++spans_in_body_;
    }
  }

  // False when the collector rejected spans (a partial success): they are lost there.
  bool finish() {
    if (open_) send();
    if (rejected_ == 0) {
      std::printf("pushed %llu spans in %llu requests to %s (%llu retries, 0 spans rejected)\n",
                  static_cast<unsigned long long>(spans_sent_), static_cast<unsigned long long>(requests_),
                  o_.endpoint.c_str(), static_cast<unsigned long long>(retries_));
      return true;
    }
    const std::uint64_t accepted = spans_sent_ > rejected_ ? spans_sent_ - rejected_ : 0;
    std::printf("sent %llu spans in %llu requests to %s (%llu retries): %llu accepted, %llu spans rejected "
                "by the collector\n",
                static_cast<unsigned long long>(spans_sent_), static_cast<unsigned long long>(requests_),
                o_.endpoint.c_str(), static_cast<unsigned long long>(retries_),
                static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected_));
    return false;
  }

 private:
  void start(const serialize::FileInfo& info) {
    buf_.Clear();
    w_ = std::make_unique<rapidjson::Writer<rapidjson::StringBuffer>>(buf_);
    auto& w = *w_;
    w.StartObject();
    w.Key("resourceSpans");
    w.StartArray();
    w.StartObject();
    w.Key("resource");
    w.StartObject();
    w.Key("attributes");
    w.StartArray();
    otlp::attr_str(w, "service.name", info.service_name);
    otlp::attr_int(w, "process.pid", info.process_id);
    if (!info.host_name.empty()) otlp::attr_str(w, "host.name", info.host_name);
    w.EndArray();
    w.EndObject();
    w.Key("scopeSpans");
    w.StartArray();
    w.StartObject();
    w.Key("scope");
    w.StartObject();
    w.Key("name");
    w.String("strobe");
    w.Key("version");
    w.String("0.1.0");
    w.EndObject();
    w.Key("spans");
    w.StartArray();
    open_ = true;
  }

  void send() {
    auto& w = *w_;
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
    open_ = false;
    const std::string body(buf_.GetString(), buf_.GetSize());
    for (int attempt = 0;; ++attempt) {
      ++requests_;
      const Reply r = poster_.post(body);
      const bool transient = !r.error.empty() || r.code == 429 || r.code == 502 || r.code == 503 || r.code == 504;
      if (r.error.empty() && r.code >= 200 && r.code < 300) {
        report_partial(r.body);
        spans_sent_ += spans_in_body_;
        break;
      }
      const std::string why = !r.error.empty() ? r.error : "HTTP " + std::to_string(r.code) + excerpt(r.body);
      if (!transient || attempt >= o_.retries)
        throw ToolError(kExitOutput, "push to " + o_.endpoint + " failed after " + std::to_string(attempt + 1) +
                                         " attempt(s): " + why);
      ++retries_;
      long wait_ms = static_cast<long>(o_.backoff_ms) << std::min(attempt, 6);
      if (r.retry_after_s >= 0) wait_ms = std::max(wait_ms, r.retry_after_s * 1000);
      wait_ms = std::min(wait_ms, 30'000L);
      std::fprintf(stderr, "strobe: %s; retrying in %ld ms\n", why.c_str(), wait_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
    spans_in_body_ = 0;
  }

  static std::string excerpt(const std::string& body) {
    if (body.empty()) return "";
    std::string e = body.substr(0, 200);
    for (char& c : e)
      if (c == '\n' || c == '\r') c = ' ';
    return ": " + e;
  }

  void report_partial(const std::string& body) {
    if (body.empty()) return;
    rapidjson::Document d;
    d.Parse(body.c_str(), body.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("partialSuccess") || !d["partialSuccess"].IsObject()) return;
    const auto& ps = d["partialSuccess"];
    std::uint64_t rejected = 0;
    if (ps.HasMember("rejectedSpans")) {
      const auto& v = ps["rejectedSpans"];
      if (v.IsString()) rejected = std::strtoull(v.GetString(), nullptr, 10);
      else if (v.IsUint64()) rejected = v.GetUint64();
    }
    const std::string msg = ps.HasMember("errorMessage") && ps["errorMessage"].IsString() ? ps["errorMessage"].GetString() : "";
    if (rejected == 0 && msg.empty()) return;
    rejected_ += rejected;
    std::fprintf(stderr, "strobe: collector accepted the request partially: %llu spans rejected%s%s\n",
                 static_cast<unsigned long long>(rejected), msg.empty() ? "" : ": ", msg.c_str());
  }

  static constexpr std::size_t kClosing = 6;  // "]}]}]}" ends a body

  const PushOptions& o_;
  Poster poster_;
  rapidjson::StringBuffer buf_, span_buf_;
  std::unique_ptr<rapidjson::Writer<rapidjson::StringBuffer>> w_;
  bool open_ = false;
  std::uint64_t spans_in_body_ = 0, spans_sent_ = 0, requests_ = 0, retries_ = 0, rejected_ = 0;
};

}  // namespace

void add_push(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("push", "Send the traces to an OpenTelemetry collector over OTLP/HTTP (JSON)");
  auto o = std::make_shared<PushOptions>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  cmd->add_option("--endpoint", o->endpoint, "OTLP/HTTP traces URL, e.g. http://localhost:4318/v1/traces")->required();
  cmd->add_option("--header,-H", o->headers, "extra HTTP header 'Name: value' (repeatable)");
  cmd->add_option("--timeout", o->timeout_s, "seconds per request")->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--retries", o->retries, "retries of a request on 429/5xx/network errors")->check(CLI::Range(0, 20));
  cmd->add_option("--batch-bytes", o->batch_bytes, "largest request body")->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  cmd->add_option("--backoff-ms", o->backoff_ms, "first retry delay; doubles each time")->check(CLI::Range(0, 60000));
  cmd->callback([o, &status] {
    Pusher pusher(*o);
    serialize::FileInfo info;
    status = for_each_trace(o->file, [&](const serialize::TraceView& tv) { pusher.add(info, tv.materialize()); }, &info);
    if (!pusher.finish() && status == kExitOk) status = kExitOutput;
  });
}

}  // namespace strobe::tool
