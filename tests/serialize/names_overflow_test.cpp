// More distinct names than the intern table holds (2^18): none is rewritten silently.
// Past the bound every name reads "<too many names>", is counted in
// Stats::names_overflowed, and flags its span (kSpanNameOverflow) through to the file.
// Its own binary: the table is process-wide and stays full.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>

#include <filesystem>
#include <string>

#include "strobe/strobe.hpp"
#include "temp_dir.hpp"

namespace {

TEST(NamesOverflow, PastTheBoundNamesAreCountedAndTheirSpansFlagged) {
  const strobe::test::TempDir tmp;
  const std::string path = (tmp.path / "names.strobe").string();
  constexpr int kNames = 300'000;  // past 2^18 = 262,144
  auto file = std::make_shared<strobe::serialize::FileSink>([&] {
    strobe::serialize::FileSinkOptions o;
    o.path = path;
    return o;
  }());
  strobe::Stats stats;
  {
    strobe::Recorder recorder({.overflow = strobe::OverflowPolicy::wait, .sinks = {file}});
    auto root = strobe::trace("names");
    for (int i = 0; i < kNames; ++i) {
      auto s = strobe::span("span-" + std::to_string(i));
      s.attr("key-" + std::to_string(i), i);
    }
    root.finish();
    recorder.flush();
    stats = recorder.stats();
  }
  file->close();
  EXPECT_GT(stats.names_overflowed, 0u);

  strobe::serialize::Reader reader(path);
  strobe::serialize::BatchView b;
  std::uint64_t flagged = 0, overflowed_names = 0, spans = 0;
  while (reader.next(b))
    for (std::size_t t = 0; t < b.trace_count(); ++t)
      for (strobe::serialize::SpanView s : b.trace(t).spans()) {
        if (s.flags() & strobe::kSpanContinued) continue;  // the root, open across parts
        ++spans;
        const bool flag = (s.flags() & strobe::kSpanNameOverflow) != 0;
        flagged += flag ? 1 : 0;
        if (s.name() == "<too many names>") {
          ++overflowed_names;
          EXPECT_TRUE(flag) << "a rewritten name without its flag";
        }
      }
  EXPECT_EQ(spans, static_cast<std::uint64_t>(kNames) + 1);
  EXPECT_GT(overflowed_names, 0u);
  EXPECT_GE(flagged, overflowed_names);  // a kept name with an overflowed key is flagged too
  // Each overflowed span name and attribute key was counted once.
  EXPECT_LE(flagged, stats.names_overflowed);
  EXPECT_GE(stats.names_overflowed, overflowed_names);
  std::printf("names overflowed %llu, spans flagged %llu, spans renamed %llu of %llu\n",
              static_cast<unsigned long long>(stats.names_overflowed), static_cast<unsigned long long>(flagged),
              static_cast<unsigned long long>(overflowed_names), static_cast<unsigned long long>(spans));
}

}  // namespace
