#pragma once
// A scripted OTLP/HTTP collector for the tests of `strobe push` and OtlpSink: a tiny
// HTTP/1.1 server on 127.0.0.1 (an ephemeral port, or one given) in its own thread. It
// answers each request with the next scripted reply ("Connection: close", Content-Length
// framing; "Expect: 100-continue" honoured; extra headers such as Retry-After; or no
// answer at all, `hang`, until it stops) and stops by itself after the script's length in
// requests (with `repeat_last`: never; the last reply answers every later request) or
// after `lifetime`, whichever comes first, or when stop() is called.
//
//   strobe::test::Collector collector({{503, "{}"}, {200, "{}"}});
//   run_tool({"push", file, "--endpoint", collector.endpoint()});
//   collector.stop();
//   EXPECT_EQ(collector.requests().size(), 2u);

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace strobe::test {

struct Reply {
  int status = 200;
  std::string body = "{}";
  std::vector<std::pair<std::string, std::string>> headers = {};
  bool hang = false;  // read the request, then never answer (until the collector stops)
};

struct Request {
  std::string method, target, version;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  bool sent_continue = false;  // the client asked for "Expect: 100-continue" and got it
  std::chrono::steady_clock::time_point received;  // when its last byte arrived
};

class Collector {
 public:
  explicit Collector(std::vector<Reply> script, std::chrono::milliseconds lifetime = std::chrono::seconds(5),
                     bool repeat_last = false, int port = 0)
      : script_(std::move(script)), deadline_(std::chrono::steady_clock::now() + lifetime), repeat_last_(repeat_last) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(listener_, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << "port " << port;
    EXPECT_EQ(::listen(listener_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Collector() {
    stop();
    ::close(listener_);
  }
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }
  [[nodiscard]] int port() const { return port_; }

  // While it serves: the requests so far (each complete), and how many.
  [[nodiscard]] std::vector<Request> requests_so_far() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  [[nodiscard]] std::size_t request_count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

  // Stops serving (at once, or after the request in progress) and waits for the thread.
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // After stop().
  [[nodiscard]] const std::vector<Request>& requests() const { return requests_; }

 private:
  void serve() {
    while (!stopping_ && (repeat_last_ || served_ < script_.size()) && std::chrono::steady_clock::now() < deadline_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int conn = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      Request req;
      if (read_request(conn, req)) {
        const Reply& reply = script_.empty() ? kDefault : script_[std::min(served_, script_.size() - 1)];
        ++served_;
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(std::move(req));
        }
        if (reply.hang) {
          while (!stopping_ && std::chrono::steady_clock::now() < deadline_)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } else {
          send_reply(conn, reply);
        }
      }
      ::close(conn);
    }
  }

  // Waits for readable data until the deadline; false on timeout, error or EOF.
  bool read_some(int fd, std::string& into) {
    while (!stopping_ && std::chrono::steady_clock::now() < deadline_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 20);
      if (ready < 0) return false;
      if (ready == 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      into.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    return false;
  }

  static void send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  bool read_request(int fd, Request& req) {
    std::string data;
    std::size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos)
      if (!read_some(fd, data)) return false;
    std::size_t line_end = data.find("\r\n");
    {
      const std::string line = data.substr(0, line_end);
      const std::size_t a = line.find(' '), b = line.rfind(' ');
      if (a == std::string::npos || a == b) return false;
      req.method = line.substr(0, a);
      req.target = line.substr(a + 1, b - a - 1);
      req.version = line.substr(b + 1);
    }
    while (line_end < header_end) {
      const std::size_t next = data.find("\r\n", line_end + 2);
      const std::string line = data.substr(line_end + 2, next - line_end - 2);
      line_end = next;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      req.headers[name] = line.substr(v);
    }
    if (req.headers.count("transfer-encoding")) return false;  // Content-Length framing only
    const std::size_t length = req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    std::string body = data.substr(header_end + 4);
    if (body.size() < length && req.headers.count("expect") && req.headers["expect"] == "100-continue") {
      send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
      req.sent_continue = true;
    }
    while (body.size() < length)
      if (!read_some(fd, body)) return false;
    req.body = body.substr(0, length);
    req.received = std::chrono::steady_clock::now();
    return true;
  }

  static void send_reply(int fd, const Reply& r) {
    const char* reason = r.status == 200 ? "OK" : r.status == 400 ? "Bad Request" : r.status == 503 ? "Service Unavailable" : "Status";
    std::string extra;
    for (const auto& [name, value] : r.headers) extra += name + ": " + value + "\r\n";
    send_all(fd, "HTTP/1.1 " + std::to_string(r.status) + " " + reason +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) +
                     "\r\n" + extra + "Connection: close\r\n\r\n" + r.body);
  }

  inline static const Reply kDefault{};
  std::vector<Reply> script_;
  std::chrono::steady_clock::time_point deadline_;
  bool repeat_last_ = false;
  std::size_t served_ = 0;  // the serving thread's
  mutable std::mutex mutex_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<Request> requests_;  // under mutex_
};

// The span ids of one TracesData body; a failure when it is not one.
inline std::vector<std::string> span_ids_of(const std::string& body) {
  std::vector<std::string> ids;
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    ADD_FAILURE() << "body is not a JSON object: " << body.substr(0, 200);
    return ids;
  }
  auto rs = d.FindMember("resourceSpans");
  if (rs == d.MemberEnd() || !rs->value.IsArray()) {
    ADD_FAILURE() << "no resourceSpans";
    return ids;
  }
  for (const auto& r : rs->value.GetArray()) {
    auto ss = r.FindMember("scopeSpans");
    if (!r.IsObject() || ss == r.MemberEnd() || !ss->value.IsArray()) {
      ADD_FAILURE() << "no scopeSpans";
      continue;
    }
    for (const auto& scope : ss->value.GetArray()) {
      auto spans = scope.FindMember("spans");
      if (spans == scope.MemberEnd() || !spans->value.IsArray()) {
        ADD_FAILURE() << "no spans";
        continue;
      }
      for (const auto& s : spans->value.GetArray()) {
        auto id = s.FindMember("spanId");
        if (id == s.MemberEnd() || !id->value.IsString()) {
          ADD_FAILURE() << "span without spanId";
          continue;
        }
        ids.emplace_back(id->value.GetString());
      }
    }
  }
  return ids;
}

}  // namespace strobe::test
