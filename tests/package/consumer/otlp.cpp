// strobe::otlp from the package: an OtlpSink with nobody listening counts what it could
// not send, and the encoder writes a request.
#include <strobe/serialize/otlp.hpp>
#include <strobe/serialize/otlp_sink.hpp>
#include <strobe/strobe.hpp>

#include <chrono>
#include <cstdio>
#include <memory>

int main() {
  strobe::serialize::OtlpSinkOptions o;
  o.endpoint = "http://127.0.0.1:9/v1/traces";  // the discard port: nobody answers
  o.read_environment = false;
  o.flush_timeout = std::chrono::milliseconds(100);
  auto otlp = std::make_shared<strobe::serialize::OtlpSink>(o);
  {
    strobe::Recorder recorder({.service_name = "consumer", .sinks = {otlp}});
    auto s = strobe::trace("consumer-otlp");
  }
  const auto stats = otlp->stats();
  std::printf("otlp: %llu queued, %llu sent\n", static_cast<unsigned long long>(stats.spans_queued),
              static_cast<unsigned long long>(stats.spans_sent));
  strobe::serialize::otlp::RequestWriter w(strobe::serialize::otlp::Protocol::protobuf);
  w.begin(strobe::serialize::otlp::Resource{});
  w.end();
  return stats.spans_queued == 1 && stats.spans_sent == 0 && !w.data().empty() ? 0 : 1;
}
