#pragma once
// OtlpSink: live export over OTLP/HTTP (protobuf or JSON, gzip optional) to an
// OpenTelemetry Collector, Jaeger, Tempo, ... Library strobe::otlp (libcurl, zlib).
//
//   auto otlp = std::make_shared<strobe::serialize::OtlpSink>();  // OTEL_* variables, or
//                                                                   // http://127.0.0.1:4318
//   strobe::Recorder recorder({.service_name = "agent", .sinks = {otlp}});
//
//   recorder's sink thread                 OtlpSink's sender thread ("strobe-otlp")
//   consume_compact(trace) ── copy ──► bounded queue ──► batches (spans, bytes, delay)
//   (never waits for the network;         (spans + bytes)    encode, gzip, POST (libcurl)
//    a full queue drops the trace                           retry 429/502/503/504 and
//    and counts it)                                         network errors: backoff with
//                                                           jitter, Retry-After; a batch
//                                                           not sent by its deadline is
//                                                           dropped and counted
//
// What is dropped is counted (stats()) and told to the receiver: the next batch's
// resource carries strobe.spans_dropped (the exporter's drops so far) and
// strobe.recorder.spans_dropped (spans the recorder lost, as its traces said).

#include <strobe/sink.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strobe/serialize/otlp.hpp"

namespace strobe::serialize {

struct OtlpSinkOptions {
  // The traces URL. "": OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else
  // OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended, else
  // http://127.0.0.1:4318/v1/traces.
  std::string endpoint;
  // Extra request headers (name, value), e.g. {"Authorization", "Bearer ..."}.
  // OTEL_EXPORTER_OTLP_HEADERS (k=v,k2=v2, URL-encoded) adds to them; a name given here wins.
  std::vector<std::pair<std::string, std::string>> headers;
  // Unset: OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json), else http/protobuf.
  std::optional<otlp::Protocol> protocol;
  // Unset: OTEL_EXPORTER_OTLP_COMPRESSION (gzip, none), else none. gzip costs the sender
  // thread far more CPU than the encoding (a plain span's 151 bytes become ~10); worth it
  // on a slow link.
  std::optional<otlp::Compression> compression;
  // zlib's level for gzip, 1 (fastest) to 9 (smallest). On this project's 2.1 GHz VM,
  // level 6 cost the sender ~1.7 µs a plain span, level 1 ~0.5 µs (strobe_otlp_bench).
  int gzip_level = 1;
  // service.name. "": OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES,
  // else the recorder's Config::service_name.
  std::string service_name;
  // More resource attributes, after OTEL_RESOURCE_ATTRIBUTES's (a key given here wins).
  std::vector<Attribute> resource_attributes;
  // false: no OTEL_* variable is read.
  bool read_environment = true;

  // The queue between consume_compact() and the sender: spans (events count as spans)
  // and bytes held, the batch being sent included. A trace that does not fit is dropped
  // whole and counted (one larger than the bounds goes in only when the queue is empty). Larger: rides out a longer outage of the receiver, holds more memory.
  std::size_t queue_spans = std::size_t{1} << 18;
  std::size_t queue_bytes = std::size_t{128} << 20;
  // A batch is sent once it holds batch_spans spans or batch_bytes bytes (before
  // compression), or its oldest span has waited batch_delay. Larger batches cost less per
  // span; a shorter delay shows spans sooner.
  std::size_t batch_spans = 8192;
  std::size_t batch_bytes = std::size_t{4} << 20;
  std::chrono::milliseconds batch_delay{200};

  // One request, connecting included.
  std::chrono::milliseconds request_timeout{10000};
  // A batch's attempts and the waits between them, in all: what is not sent by then is
  // dropped and counted.
  std::chrono::milliseconds export_timeout{30000};
  // The wait before the first retry; it doubles each time, up to backoff_max, each wait
  // drawn between half and all of it (jitter). A Retry-After reply header sets the wait.
  std::chrono::milliseconds backoff_initial{250};
  std::chrono::milliseconds backoff_max{8000};
  // flush() (Recorder::flush(), shutdown) waits at most this long for what is queued to
  // be sent. The destructor too; what is left then is dropped and counted.
  std::chrono::milliseconds flush_timeout{5000};
  // The sender thread calls it with one line for each failed attempt and each drop.
  std::function<void(const std::string&)> on_error;
};

// The options with the OTEL_* environment applied (what OtlpSink's constructor does):
// every field that was left unset filled in. Throws strobe::ConfigError naming the
// variable for a value it cannot use (a protocol other than http/protobuf or http/json,
// a compression other than gzip or none, a header or resource entry without '=', a bad
// %-escape, an endpoint that is not an http:// or https:// URL), and for bad options.
[[nodiscard]] OtlpSinkOptions resolve_otlp_options(OtlpSinkOptions options);

class OtlpSink final : public Sink {
 public:
  // Resolves the options (resolve_otlp_options: may throw ConfigError before anything
  // starts) and starts the sender thread.
  explicit OtlpSink(OtlpSinkOptions options = {});
  // Sends what is queued for at most flush_timeout, drops and counts the rest, stops.
  ~OtlpSink() override;
  OtlpSink(const OtlpSink&) = delete;
  OtlpSink& operator=(const OtlpSink&) = delete;

  // Sink thread. The resource: service, host, process, telemetry.sdk.*.
  void open(const RecorderInfo& info) override;
  // Sink thread. Copies the trace into the queue, or drops and counts it when the queue
  // is full; never waits for the sender (it takes the queue's lock, which the sender
  // holds only to move items). No network I/O.
  void consume_compact(const CompactTrace& trace) override;
  void consume(const AssembledTrace& trace) override;
  // Sink thread. Drops no trace carried: added to strobe.recorder.spans_dropped.
  void lost(const DropCounts& drops) override;
  // Sink thread. Sends what is queued now and waits until it is sent (or dropped) or
  // flush_timeout has passed; what is still queued then goes on being sent.
  void flush() override;

  struct Stats {
    std::uint64_t spans_queued = 0;   // accepted into the queue
    std::uint64_t spans_sent = 0;     // in requests the receiver accepted (2xx)
    // Lost here: the queue was full, a batch failed (a permanent error, or its deadline
    // passed), or still queued when the sink was destroyed.
    std::uint64_t spans_dropped = 0;
    std::uint64_t spans_dropped_queue_full = 0;  // of spans_dropped
    // Sent, but the receiver said it rejected them (a 2xx reply's partial_success, in
    // protobuf or JSON); also in spans_sent.
    std::uint64_t spans_rejected = 0;
    std::uint64_t batches_sent = 0;
    std::uint64_t batches_failed = 0;  // dropped
    std::uint64_t requests = 0;        // attempts
    std::uint64_t retries = 0;
    std::uint64_t bytes_encoded = 0;  // request bodies before compression
    std::uint64_t bytes_sent = 0;     // as sent
    std::uint64_t queued_spans_now = 0;
    // CPU time: the sender thread's, and consume_compact()'s on the sink thread.
    std::uint64_t sender_cpu_ns = 0;
    std::uint64_t consume_cpu_ns = 0;
    std::string last_error;
  };
  // Any thread.
  [[nodiscard]] Stats stats() const;
  // As resolved: the URL, the protocol, the compression.
  [[nodiscard]] const OtlpSinkOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strobe::serialize
