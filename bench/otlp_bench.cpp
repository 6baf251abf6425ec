// Live OTLP export at a steady rate: what OtlpSink costs per span, and whether it keeps up.
//
// One recording thread records child spans at --rate (spinning between them), under a
// root renewed every --spans-per-root spans, into a Recorder whose only sink is an
// OtlpSink posting to a receiver on 127.0.0.1 in this process (it reads each request and
// answers 200, keeping the connection). Reports:
//   exporter_ns_per_span  CPU of OtlpSink per span: its sender thread (batching,
//                         encoding, compression, HTTP) plus consume_compact() on the
//                         recorder's sink thread (copying each trace into the queue)
//   sender / consume      the two parts
//   sink_thread / drainer the recorder's sink thread (consume_compact included) and drainer
//   dropped               spans OtlpSink dropped, and spans the recorder dropped
//   bytes_per_span        request bytes as sent
//
// Usage: strobe_otlp_bench [--rate SPANS_PER_S] [--seconds S] [--spans-per-root N]
//                          [--protocol http/protobuf|http/json] [--compression none|gzip]
//                          [--batch-spans N]

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <strobe/serialize/otlp_sink.hpp>
#include <strobe/strobe.hpp>

namespace {

struct Options {
  double rate = 1'000'000;
  double seconds = 10;
  long spans_per_root = 1024;
  std::string protocol = "http/protobuf";
  std::string compression = "none";
  long batch_spans = 0;  // 0: OtlpSinkOptions' default
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Reads HTTP/1.1 requests (Content-Length framing) and answers each with an empty 200.
class Receiver {
 public:
  Receiver() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 16) != 0) {
      std::perror("strobe_otlp_bench: receiver");
      std::exit(1);
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    for (auto& t : connections_) t.join();
    ::close(listener_);
  }
  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }
  [[nodiscard]] std::uint64_t requests() const { return requests_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) connections_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string buf;
    std::vector<char> chunk(1 << 16);
    while (!stop_) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!read_some(fd, buf, chunk)) return ::close(fd), void();
      }
      std::size_t length = 0;
      for (std::size_t at = 0; at < end;) {
        const std::size_t next = buf.find("\r\n", at);
        std::string line = buf.substr(at, next - at);
        for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (line.rfind("content-length:", 0) == 0) length = std::strtoull(line.c_str() + 15, nullptr, 10);
        at = next + 2;
      }
      buf.erase(0, end + 4);
      while (buf.size() < length)
        if (!read_some(fd, buf, chunk)) return ::close(fd), void();
      buf.erase(0, length);
      static const char kReply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
      if (::send(fd, kReply, sizeof kReply - 1, MSG_NOSIGNAL) < 0) break;
      requests_.fetch_add(1);
    }
    ::close(fd);
  }
  bool read_some(int fd, std::string& buf, std::vector<char>& chunk) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);
      if (ready < 0) return false;
      if (ready == 0) continue;
      const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
      if (n <= 0) return false;
      buf.append(chunk.data(), static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::thread thread_;
  std::vector<std::thread> connections_;  // the accepting thread's until the destructor
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--rate")) {
      o.rate = std::atof(argv[++i]);
    } else if (arg("--seconds")) {
      o.seconds = std::atof(argv[++i]);
    } else if (arg("--spans-per-root")) {
      o.spans_per_root = std::atol(argv[++i]);
    } else if (arg("--protocol")) {
      o.protocol = argv[++i];
    } else if (arg("--compression")) {
      o.compression = argv[++i];
    } else if (arg("--batch-spans")) {
      o.batch_spans = std::atol(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--rate SPANS_PER_S] [--seconds S] [--spans-per-root N] "
                   "[--protocol http/protobuf|http/json] [--compression none|gzip] [--batch-spans N]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  strobe::serialize::otlp::Protocol p;
  strobe::serialize::otlp::Compression c;
  if (o.rate <= 0 || o.seconds <= 0 || o.spans_per_root < 1 || !strobe::serialize::otlp::parse_protocol(o.protocol, p) ||
      !strobe::serialize::otlp::parse_compression(o.compression, c) || o.batch_spans < 0) {
    std::fprintf(stderr, "strobe_otlp_bench: bad arguments\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  Receiver receiver;
  strobe::serialize::OtlpSinkOptions so;
  so.endpoint = receiver.endpoint();
  so.read_environment = false;
  so.protocol = opt.protocol == "http/json" ? strobe::serialize::otlp::Protocol::json : strobe::serialize::otlp::Protocol::protobuf;
  so.compression = opt.compression == "gzip" ? strobe::serialize::otlp::Compression::gzip : strobe::serialize::otlp::Compression::none;
  so.flush_timeout = std::chrono::seconds(30);
  if (opt.batch_spans > 0) so.batch_spans = static_cast<std::size_t>(opt.batch_spans);
  auto otlp = std::make_shared<strobe::serialize::OtlpSink>(so);
  strobe::Stats stats;
  std::uint64_t spans = 0;
  double elapsed_s = 0;
  {
    strobe::Config config;
    config.service_name = "otlp-bench";
    config.sinks = {otlp};
    strobe::Recorder recorder(config);
    static const strobe::Name kRoot("request"), kStep("decode_token");
    const double period = 1e9 / opt.rate;
    const std::int64_t start = now_ns() + 1'000'000;
    const std::int64_t stop = start + static_cast<std::int64_t>(opt.seconds * 1e9);
    strobe::Span root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
    long in_root = 0;
    for (std::uint64_t i = 0;; ++i) {
      const std::int64_t due = start + static_cast<std::int64_t>(static_cast<double>(i) * period);
      if (due >= stop) break;
      while (now_ns() < due) {
      }
      if (++in_root == opt.spans_per_root) {
        root.finish();
        root = strobe::start_span(kRoot, strobe::Kind::agent, {.mark_as_current = true, .new_trace = true});
        in_root = 0;
      }
      { strobe::Span s(kStep, strobe::Kind::step); }
      ++spans;
    }
    root.finish();
    elapsed_s = static_cast<double>(now_ns() - start) / 1e9;
    recorder.flush();  // and OtlpSink's flush: everything queued is sent
    stats = recorder.stats();
  }
  const strobe::serialize::OtlpSink::Stats e = otlp->stats();
  const double n = static_cast<double>(e.spans_queued ? e.spans_queued : 1);
  std::printf(
      "rate %.2f M spans/s  seconds %.1f  spans-per-root %ld  %s  compression %s\n"
      "spans recorded %llu (%.3f M/s), assembled %llu, queued for export %llu, sent %llu in %llu requests (%llu retries)\n"
      "exporter_ns_per_span %.1f  (sender %.1f + consume %.1f)\n"
      "sink_thread_ns_per_span %.1f  drainer_ns_per_span %.1f\n"
      "dropped: exporter %llu, recorder %llu spans (+%llu at the sink queue)\n"
      "bytes_per_span %.1f (before compression %.1f)\n",
      opt.rate / 1e6, opt.seconds, opt.spans_per_root, opt.protocol.c_str(), opt.compression.c_str(),
      static_cast<unsigned long long>(spans), static_cast<double>(spans) / elapsed_s / 1e6,
      static_cast<unsigned long long>(stats.spans_assembled), static_cast<unsigned long long>(e.spans_queued),
      static_cast<unsigned long long>(e.spans_sent), static_cast<unsigned long long>(e.requests),
      static_cast<unsigned long long>(e.retries), static_cast<double>(e.sender_cpu_ns + e.consume_cpu_ns) / n,
      static_cast<double>(e.sender_cpu_ns) / n, static_cast<double>(e.consume_cpu_ns) / n,
      static_cast<double>(stats.sink_cpu_ns) / n, static_cast<double>(stats.drainer_cpu_ns) / n,
      static_cast<unsigned long long>(e.spans_dropped), static_cast<unsigned long long>(stats.spans_dropped),
      static_cast<unsigned long long>(stats.sink_spans_dropped), static_cast<double>(e.bytes_sent) / n,
      static_cast<double>(e.bytes_encoded) / n);
  return 0;
}
