// Records a small trace into a file and reads it back through the installed headers.
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer.strobe";
  auto file = std::make_shared<strobe::serialize::FileSink>(strobe::serialize::FileSinkOptions{.path = path});
  {
    strobe::Recorder recorder({.service_name = "consumer", .sinks = {file}});
    auto root = strobe::trace("consumer-agent");
    STROBE_SPAN(step, "step", strobe::Kind::step);
    step.attr("n", 1);
  }
  file->close();
  const auto traces = strobe::serialize::read_all(path);
  if (traces.size() != 1 || traces[0].spans.size() != 2) {
    std::printf("unexpected: %zu traces\n", traces.size());
    return 1;
  }
  std::printf("consumer ok: %s with %zu spans\n", traces[0].root_name.c_str(), traces[0].spans.size());
  return 0;
}
