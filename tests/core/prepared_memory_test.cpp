// Config::expected_trace_spans, in a test binary of its own: the first measurement must
// meet the process's allocator as a fresh process has it.

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>

#include "strobe/strobe.hpp"

namespace {

// Config::expected_trace_spans: the drainer's memory for a trace that large is written
// when the Recorder starts, so assembling and handing over the first such trace meets no
// fresh memory (on a VM that backs memory lazily a first touch costs ~14 us a page, and
// the drainer stalled tens of milliseconds on a 37,000-span trace). Counted in page
// faults: without preparation the same trace faults in megabytes.
std::int64_t minor_faults() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Counts rows as the drainer hands them over: resolving them into plain values (the
// default consume) would allocate on the sink thread, and this measures the drainer.
class RowCounter final : public strobe::Sink {
 public:
  explicit RowCounter(std::atomic<std::uint64_t>& spans) : spans_(spans) {}
  void consume_compact(const strobe::CompactTrace& t) override {
    std::uint64_t n = 0;
    for (const strobe::SpanRow& r : t.spans) n += (r.flags & strobe::kSpanContinued) ? 0 : 1;  // the root, once
    spans_.fetch_add(n, std::memory_order_relaxed);
  }
  void consume(const strobe::AssembledTrace& t) override { spans_.fetch_add(t.spans.size(), std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t>& spans_;
};

std::int64_t faults_for_first_large_trace(std::size_t prepared) {
  constexpr int kChildren = 30000;
  std::atomic<std::uint64_t> spans{0};
  auto counter = std::make_shared<RowCounter>(spans);
  strobe::Recorder recorder({.ring_capacity = 1u << 17,  // holds the whole trace
                             .overflow = strobe::OverflowPolicy::wait,
                             .expected_trace_spans = prepared,
                             .sinks = {counter}});
  EXPECT_TRUE(strobe::prepare_thread());  // the ring's pages, before counting
  const std::int64_t before = minor_faults();
  {
    auto root = strobe::trace("large");
    for (int i = 0; i < kChildren; ++i) {
      STROBE_SPAN(child, "child");
    }
  }
  recorder.flush();
  const std::int64_t faults = minor_faults() - before;
  EXPECT_EQ(spans.load(), static_cast<std::uint64_t>(kChildren + 1));
  EXPECT_EQ(recorder.stats().spans_dropped, 0u);
  return faults;
}

#if !defined(STROBE_TEST_SANITIZED)  // sanitizer allocators fault on their own schedule
TEST(PreparedMemory, FirstLargeTraceFaultsNoFreshPages) {
  const std::int64_t cold = faults_for_first_large_trace(0);
  const std::int64_t prepared = faults_for_first_large_trace(30001);
  std::printf("page faults for a first 30,001-span trace: %lld unprepared, %lld prepared\n",
              static_cast<long long>(cold), static_cast<long long>(prepared));
  EXPECT_GT(cold, 1000) << "the unprepared trace should have met fresh memory";
  EXPECT_LT(prepared, cold / 4);
}
#endif

TEST(PreparedMemory, ExpectedTraceSpansIsBounded) {
  EXPECT_THROW(strobe::Recorder({.expected_trace_spans = (std::size_t{1} << 22) + 1}), strobe::ConfigError);
}

}  // namespace
