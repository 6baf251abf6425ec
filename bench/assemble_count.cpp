// A fixed amount of assembly work, for instruction counts: on a shared VM whose speed
// changes from minute to minute, counting instructions compares two builds where timings
// cannot. Assembles ITERATIONS traces of one shape of strobe_assemble_bench and prints
// the spans handed over. scripts/count_assembly.sh runs it under Valgrind's cachegrind
// twice per shape (100 and 1,100 traces, so that what both spend setting up cancels)
// and prints instructions per span.

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "assemble_shapes.hpp"

int main(int argc, char** argv) {
  using namespace strobe::bench;
  void (*write)(TraceWriter&) = nullptr;
  const std::string_view shape = argc == 3 ? argv[1] : "";
  if (shape == "flat") write = write_flat;
  if (shape == "deep") write = write_deep;
  if (shape == "fanout") write = write_fanout;
  char* end = nullptr;
  const long iterations = argc == 3 ? std::strtol(argv[2], &end, 10) : 0;
  if (write == nullptr || end == nullptr || *end != '\0' || iterations <= 0) {
    std::fprintf(stderr, "usage: %s flat|deep|fanout ITERATIONS\n", argv[0]);
    return 2;
  }
  ShapeFeeder feeder(write);
  for (long i = 0; i < iterations; ++i) feeder.pass();
  std::printf("%llu\n", static_cast<unsigned long long>(feeder.spans));
  return 0;
}
