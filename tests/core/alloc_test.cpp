// The hot path never allocates once a thread has begun its first span. Global operator
// new/delete are replaced in this program with versions that count the allocations of
// the thread under test (a thread_local switch, so the drainer's own work is not counted).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>

#include "render.hpp"
#include "strobe/strobe.hpp"

namespace {

constinit thread_local bool t_counting = false;
constinit thread_local std::uint64_t t_allocations = 0;
constinit thread_local std::size_t t_first_size = 0;

void note(std::size_t size) noexcept {
  if (t_counting && t_allocations++ == 0) t_first_size = size;
}

void* allocate(std::size_t size) noexcept {
  note(size);
  return std::malloc(size == 0 ? 1 : size);
}

void* allocate_aligned(std::size_t size, std::align_val_t align) noexcept {
  note(size);
  std::size_t a = static_cast<std::size_t>(align);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  return ::posix_memalign(&p, a, size == 0 ? 1 : size) == 0 ? p : nullptr;
}

void* allocate_or_throw(std::size_t size) {
  for (;;) {
    if (void* p = allocate(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocate_aligned_or_throw(std::size_t size, std::align_val_t align) {
  for (;;) {
    if (void* p = allocate_aligned(size, align)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

void* operator new(std::size_t n) { return allocate_or_throw(n); }
void* operator new[](std::size_t n) { return allocate_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_aligned_or_throw(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_aligned_or_throw(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate_aligned(n, a);
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using strobe::Kind;

// Counts this thread's allocations while alive.
class CountAllocations {
 public:
  CountAllocations() noexcept {
    t_allocations = 0;
    t_first_size = 0;
    t_counting = true;
  }
  ~CountAllocations() { t_counting = false; }
  CountAllocations(const CountAllocations&) = delete;
  CountAllocations& operator=(const CountAllocations&) = delete;
};

// The counter itself: it sees this thread's allocations and not another thread's.
TEST(Alloc, CountingOperatorNewSeesThisThreadOnly) {
  std::atomic<int> phase{0};
  std::thread other([&] {
    while (phase.load() != 1) std::this_thread::yield();
    auto q = std::make_unique<long[]>(16);
    phase.store(2);
  });
  std::uint64_t here = 0;
  {
    CountAllocations counting;
    auto p = std::make_unique<int>(1);
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
    here = t_allocations;
  }
  other.join();
  EXPECT_EQ(here, 1u);
}

// A million spans (two int, a double and a bool attribute each), most of them begun by
// next() chains, cost the recording thread not a single allocation.
TEST(Alloc, HotPathAllocatesNothingAfterTheFirstSpan) {
  std::atomic<std::uint64_t> spans_seen{0};
  auto counter = std::make_shared<strobe::CallbackSink>([&](const strobe::AssembledTrace& t) {
    spans_seen.fetch_add(t.spans.size(), std::memory_order_relaxed);
  });
  strobe::Config config;
  config.sinks = {counter};
  config.overflow = strobe::OverflowPolicy::wait;  // lossless: every span must arrive
  config.ring_capacity = 1u << 16;
  config.drain_interval = std::chrono::microseconds(200);
  strobe::Recorder recorder(config);

  static const strobe::Name kIndex("index");
  static const strobe::Name kLayer("layer");
  constexpr int kSpansPerTrace = 1000;  // a root and a next() chain of 999 stages
  const auto total = std::max<std::int64_t>(
      kSpansPerTrace * 10, static_cast<std::int64_t>(1'000'000 * strobe::test::stress_scale()));
  const std::int64_t traces = total / kSpansPerTrace;

  auto record_trace = [&](std::int64_t i) noexcept {
    STROBE_SPAN(step, "decode_step", Kind::llm);
    step.attr(kIndex, i).attr(kLayer, -1).attr("temperature", 0.7).attr("cached", false);
    STROBE_SPAN(stage, "stage", Kind::step);
    stage.attr(kIndex, i).attr(kLayer, 0).attr("scale", 1.0).attr("fused", true);
    for (int layer = 1; layer < kSpansPerTrace - 1; ++layer) {
      STROBE_NEXT(stage, "stage")
          .attr(kIndex, i)
          .attr(kLayer, layer)
          .attr("scale", layer * 0.5)
          .attr("fused", (layer & 1) != 0);
    }
  };

  record_trace(-1);  // attaches this thread (takes a ring) and interns every name
  std::uint64_t allocations = 0;
  std::size_t first_size = 0;
  {
    CountAllocations counting;
    for (std::int64_t i = 0; i < traces; ++i) record_trace(i);
    allocations = t_allocations;
    first_size = t_first_size;
  }
  recorder.flush();

  EXPECT_EQ(allocations, 0u) << "the first allocation asked for " << first_size << " bytes";
  const strobe::Stats stats = recorder.stats();
  EXPECT_EQ(stats.spans_dropped, 0u);
  EXPECT_EQ(stats.records_dropped, 0u);
  const auto expected = static_cast<std::uint64_t>((traces + 1) * kSpansPerTrace);
  EXPECT_EQ(stats.spans_recorded, expected);
  EXPECT_EQ(spans_seen.load(), expected);
}

}  // namespace
