// strobe push FILE [--endpoint http://HOST:4318/v1/traces] [--protocol http/protobuf|http/json]
//                  [--compression none|gzip]
//
// What a flag leaves unset comes from the standard OpenTelemetry variables, as an SDK
// reads them: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (the
// endpoint; one of the two or --endpoint is needed), OTEL_EXPORTER_OTLP_HEADERS (added
// to -H; a name given with -H wins), OTEL_EXPORTER_OTLP_PROTOCOL,
// OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (over
// the resource the file gives: service.name, host.name, process.pid).
//
// OTLP/HTTP: protobuf ExportTraceServiceRequest bodies (application/x-protobuf, the
// default, as the OpenTelemetry SDKs') or their JSON form (application/json), gzip
// optional (Content-Encoding: gzip). Spans are batched into bodies of at most
// --batch-bytes before compression (default 4 MiB, never above the 64 MiB OTLP limit; a
// single span larger than that is sent alone); each request has connect and total timeouts; 429, 502, 503,
// 504 and network errors are retried with exponential backoff (Retry-After honoured,
// capped at 30 s), at most --retries times; a 200 reply's partialSuccess (rejectedSpans,
// errorMessage) is reported, and spans the collector rejected make the exit status 5.

#include <curl/curl.h>
#include <rapidjson/document.h>
#include <protozero/pbf_reader.hpp>
#include <strobe/serialize/otlp.hpp>
#include <strobe/serialize/otlp_sink.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <cstdio>
#include <thread>

#include "commands.hpp"
#include "common.hpp"

namespace strobe::tool {
namespace {

struct PushOptions {
  std::string file, endpoint;
  std::vector<std::string> headers;
  double timeout_s = 30;
  int retries = 5;
  std::size_t batch_bytes = 4u << 20;
  int backoff_ms = 500;
  std::string protocol = "http/protobuf";
  std::string compression = "none";
  // From OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES: set over the file's resource.
  std::string service_name;
  std::vector<Attribute> resource_attributes;
};

// Fills what the flags left unset from the OTEL_* variables (resolve_otlp_options, as
// OtlpSink reads them); a value that cannot be used is a bad argument, named.
void apply_environment(PushOptions& o, bool endpoint_given, bool protocol_given, bool compression_given) {
  serialize::OtlpSinkOptions so;
  so.endpoint = o.endpoint;
  if (protocol_given) so.protocol = o.protocol == "http/json" ? serialize::otlp::Protocol::json : serialize::otlp::Protocol::protobuf;
  if (compression_given)
    so.compression = o.compression == "gzip" ? serialize::otlp::Compression::gzip : serialize::otlp::Compression::none;
  for (const std::string& h : o.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos) continue;  // passed to curl as it is
    std::string_view value = std::string_view(h).substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    so.headers.emplace_back(h.substr(0, colon), std::string(value));
  }
  try {
    so = serialize::resolve_otlp_options(std::move(so));
  } catch (const ConfigError& e) {
    throw ToolError(kExitUsage, e.what());
  }
  const char* traces = std::getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const char* base = std::getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (!endpoint_given && (traces == nullptr || *traces == '\0') && (base == nullptr || *base == '\0'))
    throw ToolError(kExitUsage,
                    "push: no endpoint: give --endpoint, or set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
                    "OTEL_EXPORTER_OTLP_ENDPOINT");
  o.endpoint = so.endpoint;
  o.protocol = so.protocol == serialize::otlp::Protocol::json ? "http/json" : "http/protobuf";
  o.compression = so.compression == serialize::otlp::Compression::gzip ? "gzip" : "none";
  std::vector<std::string> headers;
  for (const auto& [name, value] : so.headers) headers.push_back(name + ": " + value);
  for (const std::string& h : o.headers)
    if (h.find(':') == std::string::npos) headers.push_back(h);
  o.headers = std::move(headers);
  o.service_name = so.service_name;
  o.resource_attributes = so.resource_attributes;
}

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
    serialize::otlp::Protocol protocol = serialize::otlp::Protocol::protobuf;
    (void)serialize::otlp::parse_protocol(o.protocol, protocol);  // checked by the option
    headers_ = curl_slist_append(headers_, (std::string("Content-Type: ") + serialize::otlp::content_type(protocol)).c_str());
    if (o.compression == "gzip") headers_ = curl_slist_append(headers_, "Content-Encoding: gzip");
    for (const std::string& h : o.headers) headers_ = curl_slist_append(headers_, h.c_str());
  }
  ~Poster() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
    curl_global_cleanup();
  }

  Reply post(std::string_view body) {
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

// Builds request bodies span by span and sends them when they reach the batch size.
class Pusher {
 public:
  explicit Pusher(const PushOptions& o)
      : o_(o), poster_(o), writer_(o.protocol == "http/json" ? serialize::otlp::Protocol::json : serialize::otlp::Protocol::protobuf) {}

  void add(const serialize::FileInfo& info, const AssembledTrace& t) {
    if (!resource_) {
      resource_ = serialize::otlp::resource_of(info);
      for (const Attribute& a : o_.resource_attributes) {
        if (a.value.type == AttrValue::Type::string) {
          resource_->set(a.key, a.value.s);
        } else if (a.value.type == AttrValue::Type::i64) {
          resource_->set(a.key, a.value.i);
        }
      }
      if (!o_.service_name.empty()) resource_->set("service.name", o_.service_name);
    }
    writer_.begin_trace(t);
    for (std::size_t i = 0; i < t.spans.size(); ++i) {
      // Each span is encoded on its own first, so that a body is sent before the span
      // that would take it past --batch-bytes.
      const std::size_t n = writer_.prepare(i);
      if (open_ && writer_.size() + n > o_.batch_bytes) send();
      if (!open_) {
        writer_.begin(*resource_);
        open_ = true;
      }
      writer_.append_prepared();
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
  void send() {
    writer_.end();
    open_ = false;
    std::string_view body = writer_.data();
    if (o_.compression == "gzip") {
      serialize::otlp::gzip(body, gzipped_);
      body = gzipped_;
    }
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

  // ExportTraceServiceResponse.partial_success (1): rejected_spans (1), error_message (2).
  static void partial_from_protobuf(const std::string& body, std::uint64_t& rejected, std::string& msg) {
    try {
      protozero::pbf_reader response(body);
      while (response.next(1, protozero::pbf_wire_type::length_delimited)) {
        protozero::pbf_reader ps = response.get_message();
        while (ps.next()) {
          if (ps.tag() == 1 && ps.wire_type() == protozero::pbf_wire_type::varint) {
            rejected = static_cast<std::uint64_t>(ps.get_int64());
          } else if (ps.tag() == 2 && ps.wire_type() == protozero::pbf_wire_type::length_delimited) {
            msg = ps.get_string();
          } else {
            ps.skip();
          }
        }
      }
    } catch (const protozero::exception&) {  // not a response: nothing to report
    }
  }

  void report_partial(const std::string& body) {
    if (body.empty()) return;
    if (body[0] != '{') {
      std::uint64_t rejected = 0;
      std::string msg;
      partial_from_protobuf(body, rejected, msg);
      note_partial(rejected, msg);
      return;
    }
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
    note_partial(rejected, msg);
  }

  void note_partial(std::uint64_t rejected, const std::string& msg) {
    if (rejected == 0 && msg.empty()) return;
    rejected_ += rejected;
    std::fprintf(stderr, "strobe: collector accepted the request partially: %llu spans rejected%s%s\n",
                 static_cast<unsigned long long>(rejected), msg.empty() ? "" : ": ", msg.c_str());
  }

  const PushOptions& o_;
  Poster poster_;
  serialize::otlp::RequestWriter writer_;
  std::optional<serialize::otlp::Resource> resource_;
  std::string gzipped_;
  bool open_ = false;
  std::uint64_t spans_in_body_ = 0, spans_sent_ = 0, requests_ = 0, retries_ = 0, rejected_ = 0;
};

}  // namespace

void add_push(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("push", "Send the traces to an OpenTelemetry collector over OTLP/HTTP (protobuf or JSON)");
  auto o = std::make_shared<PushOptions>();
  cmd->add_option("FILE", o->file, "strobe file")->required();
  auto* endpoint = cmd->add_option("--endpoint", o->endpoint,
                                   "OTLP/HTTP traces URL, e.g. http://localhost:4318/v1/traces (default: "
                                   "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces)");
  cmd->add_option("--header,-H", o->headers, "extra HTTP header 'Name: value' (repeatable)");
  cmd->add_option("--timeout", o->timeout_s, "seconds per request")->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--retries", o->retries, "retries of a request on 429/5xx/network errors")->check(CLI::Range(0, 20));
  cmd->add_option("--batch-bytes", o->batch_bytes, "largest request body")->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  cmd->add_option("--backoff-ms", o->backoff_ms, "first retry delay; doubles each time")->check(CLI::Range(0, 60000));
  auto* protocol = cmd->add_option("--protocol", o->protocol,
                                   "http/protobuf (default, or OTEL_EXPORTER_OTLP_PROTOCOL) or http/json")
                       ->check(CLI::IsMember({"http/protobuf", "http/json"}));
  auto* compression = cmd->add_option("--compression", o->compression,
                                      "none (default, or OTEL_EXPORTER_OTLP_COMPRESSION) or gzip (Content-Encoding: gzip)")
                          ->check(CLI::IsMember({"none", "gzip"}));
  cmd->callback([o, &status, endpoint, protocol, compression] {
    apply_environment(*o, endpoint->count() != 0, protocol->count() != 0, compression->count() != 0);
    Pusher pusher(*o);
    serialize::FileInfo info;
    status = for_each_trace(o->file, [&](const serialize::TraceView& tv) { pusher.add(info, tv.materialize()); }, &info);
    if (!pusher.finish() && status == kExitOk) status = kExitOutput;
  });
}

}  // namespace strobe::tool
