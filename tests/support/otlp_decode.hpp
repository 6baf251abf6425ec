#pragma once
// What an OTLP receiver decodes from strobe's requests, through the official generated
// code (tests/support/otlp_proto/decode_otlp.js: protobufjs static code generated from
// opentelemetry-proto, in the npm package @opentelemetry/otlp-proto-exporter-base, which
// scripts/setup_otlp_proto.sh installs), and a file export read into the same canonical
// form, so that the two compare span by span:
//
//   const Decoded got = decode_requests(collector.requests());
//   EXPECT_EQ(got.errors, std::vector<std::string>{});
//   EXPECT_EQ(span_difference(got.spans, decode_export_lines(otlp_jsonl_text, dir).spans), "");

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "otlp_collector.hpp"

#ifndef STROBE_OTLP_PROTO_DIR
#error "STROBE_OTLP_PROTO_DIR must name tests/support/otlp_proto"
#endif

namespace strobe::test {

struct DecodedRequest {
  std::string source;
  std::size_t spans = 0;
  std::string resource;  // its attributes, canonical JSON: [["key",{"s":"value"}],...]
};

struct Decoded {
  std::vector<std::string> errors;  // a request that did not decode: "error <file>: <why>"
  std::vector<DecodedRequest> requests;
  std::multiset<std::string> spans;  // canonical JSON of each span
};

inline bool otlp_decoder_installed() {
  return std::filesystem::exists(std::filesystem::path(STROBE_OTLP_PROTO_DIR) /
                                 "node_modules/@opentelemetry/otlp-proto-exporter-base/build/src/generated/root.js");
}

// Runs the decoder on "kind:encoding:path" arguments.
inline Decoded run_decoder(const std::vector<std::string>& args) {
  Decoded d;
  if (!otlp_decoder_installed()) {
    ADD_FAILURE() << "the OTLP decoder is not installed in " << STROBE_OTLP_PROTO_DIR
                  << ": run scripts/setup_otlp_proto.sh";
    d.errors.push_back("decoder not installed");
    return d;
  }
  std::string cmd = "node '" + std::string(STROBE_OTLP_PROTO_DIR) + "/decode_otlp.js'";
  for (const std::string& a : args) cmd += " '" + a + "'";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    d.errors.push_back("cannot run node");
    return d;
  }
  std::string out;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("span ", 0) == 0) {
      d.spans.insert(line.substr(5));
    } else if (line.rfind("request ", 0) == 0) {
      std::istringstream fields(line.substr(8));
      DecodedRequest r;
      fields >> r.source >> r.spans;
      std::getline(fields >> std::ws, r.resource);
      d.requests.push_back(r);
    } else {
      d.errors.push_back(line);
    }
  }
  if (status != 0 && d.errors.empty()) d.errors.push_back("the decoder exited with " + std::to_string(status));
  return d;
}

// Each request as a receiver gets it: Content-Type says protobuf or JSON,
// Content-Encoding gzip or none.
inline Decoded decode_requests(const std::vector<Request>& requests, const std::filesystem::path& dir) {
  std::vector<std::string> args;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    const auto header = [&](const char* name) { return r.headers.count(name) ? r.headers.at(name) : std::string(); };
    const std::string type = header("content-type");
    const std::string kind = type == "application/x-protobuf" ? "protobuf" : type == "application/json" ? "json" : "unknown-type";
    const std::string encoding = header("content-encoding").empty() ? "none" : header("content-encoding");
    const std::filesystem::path file = dir / ("request-" + std::to_string(i) + ".bin");
    std::ofstream(file, std::ios::binary) << r.body;
    args.push_back(kind + ":" + encoding + ":" + file.string());
  }
  if (args.empty()) return {};
  return run_decoder(args);
}

// OTLP/JSON lines (strobe export --format otlp), in the same canonical form.
inline Decoded decode_export_lines(const std::string& text, const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "export.jsonl";
  std::ofstream(file, std::ios::binary) << text;
  return run_decoder({"file:none:" + file.string()});
}

// "" when both hold the same spans; else the spans only one of them holds, one a line
// ("received only: ...", "expected only: ...").
inline std::string span_difference(const std::multiset<std::string>& received, const std::multiset<std::string>& expected) {
  std::string out;
  std::multiset<std::string> rest = expected;
  for (const std::string& s : received) {
    auto it = rest.find(s);
    if (it == rest.end()) {
      out += "received only: " + s + "\n";
    } else {
      rest.erase(it);
    }
  }
  for (const std::string& s : rest) out += "expected only: " + s + "\n";
  return out;
}

}  // namespace strobe::test
