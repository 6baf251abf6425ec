// The drainer's scratch memory comes from a private mimalloc heap, and loading mimalloc
// must not replace the process's malloc (Debian's libmimalloc.so exports malloc/free).
#include <dlfcn.h>
#include <strobe/strobe.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "assembler.hpp"

namespace {

std::string library_of(void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

TEST(ScratchHeap, ProcessMallocIsNotReplacedByMimalloc) {
  auto sink = std::make_shared<strobe::MemorySink>();
  {
    strobe::Recorder recorder({.sinks = {sink}});
    { auto s = strobe::span("work"); }
    recorder.flush();
  }
  ASSERT_EQ(sink->traces().size(), 1u);
#if defined(STROBE_TEST_SANITIZED)
  EXPECT_FALSE(strobe::detail::ScratchHeap::uses_mimalloc()) << "sanitizer builds use the fallback";
#else
  EXPECT_TRUE(strobe::detail::ScratchHeap::uses_mimalloc()) << "libmimalloc could not be loaded";
#endif
  void* m = dlsym(RTLD_DEFAULT, "malloc");
  const std::string lib = library_of(m);
  EXPECT_EQ(lib.find("mimalloc"), std::string::npos) << "malloc resolves to " << lib;
}

TEST(ScratchHeap, ReleaseFreesEverythingAtOnceAndIsReusable) {
  strobe::detail::ScratchHeap heap;
  for (int round = 0; round < 100; ++round) {
    {
      std::pmr::vector<std::pmr::vector<int>> v(&heap);
      for (int i = 0; i < 1000; ++i) v.emplace_back(100, i);
      ASSERT_EQ(v.back()[99], 999);
    }  // containers go before the heap is released
    heap.release();
  }
}

}  // namespace
