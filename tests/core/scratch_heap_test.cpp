// The drainer's scratch memory: an arena over blocks from mimalloc (loaded privately:
// loading it must not replace the process's malloc, as Debian's libmimalloc.so exports
// malloc/free), rewound after every pass and kept for the next.
#include <dlfcn.h>
#include <strobe/strobe.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

TEST(ScratchHeap, APassThatGrewLeavesOneBlockOfItsSizeAndLaterPassesAllocateNothing) {
  strobe::detail::ScratchHeap heap;
  auto pass = [&] {
    for (int i = 0; i < 200; ++i) {
      void* p = heap.allocate(10'000, 8);
      std::memset(p, i, 10'000);  // every byte is usable
    }
    heap.release();
  };
  pass();
  const std::size_t held = heap.held_bytes();
  EXPECT_GE(held, 200u * 10'000);
  for (int round = 0; round < 20; ++round) {
    pass();
    EXPECT_EQ(heap.held_bytes(), held) << "round " << round;
  }
}

TEST(ScratchHeap, AllocationsAreAlignedAndDoNotOverlap) {
  strobe::detail::ScratchHeap heap;
  std::vector<std::pair<std::uintptr_t, std::size_t>> got;
  for (std::size_t i = 0; i < 3000; ++i) {
    const std::size_t align = std::size_t{1} << (i % 8);  // 1 .. 128
    const std::size_t bytes = (i * 37) % 5000;
    void* p = heap.allocate(bytes, align);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << i;
    got.emplace_back(reinterpret_cast<std::uintptr_t>(p), bytes);
  }
  std::sort(got.begin(), got.end());
  for (std::size_t i = 1; i < got.size(); ++i) ASSERT_GE(got[i].first, got[i - 1].first + got[i - 1].second) << i;
  heap.release();
}

TEST(ScratchHeap, MoreThanTheKeptBytesIsGivenBack) {
  strobe::detail::ScratchHeap heap;
  (void)heap.allocate(strobe::detail::ScratchHeap::kKeptBytes + 1, 8);
  heap.release();
  EXPECT_EQ(heap.held_bytes(), 0u);
  (void)heap.allocate(100, 8);
  heap.release();
  EXPECT_EQ(heap.held_bytes(), strobe::detail::ScratchHeap::kFirstBlock);
}

TEST(ScratchHeap, ScratchArraysLeaveTheirElementsUnwritten) {
  strobe::detail::ScratchHeap heap;
  {
    strobe::detail::ScratchArray<std::uint32_t> a(1000, &heap);
    for (auto& x : a) x = 0xabababab;
  }
  heap.release();
  // The same bytes again: growing does not zero them (as std::vector's resize would).
  strobe::detail::ScratchArray<std::uint32_t> b(1000, &heap);
  unsigned char bytes[4];
  std::memcpy(bytes, &b[500], 4);  // bytes, as they lie
  EXPECT_EQ(bytes[0], 0xab);
  EXPECT_EQ(bytes[3], 0xab);
  b.resize(2000);
  EXPECT_EQ(b.size(), 2000u);
  strobe::detail::ScratchArray<std::uint32_t> c(&heap);
  c.push_back(7);
  c.assign(10, 3);
  EXPECT_EQ(c[9], 3u);
}

}  // namespace
