// Seeds for recovery_fuzz: the recovery directory of a recorder that is still running
// (threads, strings, events, an open trace and closed ones), packed as recovery_fuzz reads
// an input: u32 journal size, u32 names size, journal, names, one ring file.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "strobe/strobe.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<char> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void pack(const fs::path& dir, const fs::path& ring, const fs::path& out) {
  const std::vector<char> j = slurp(dir / "journal"), n = slurp(dir / "names"), r = slurp(ring);
  std::ofstream f(out, std::ios::binary);
  const std::uint32_t sizes[2] = {static_cast<std::uint32_t>(j.size()), static_cast<std::uint32_t>(n.size())};
  f.write(reinterpret_cast<const char*>(sizes), sizeof sizes);
  f.write(j.data(), static_cast<std::streamsize>(j.size()));
  f.write(n.data(), static_cast<std::streamsize>(n.size()));
  f.write(r.data(), static_cast<std::streamsize>(r.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path dir = fs::temp_directory_path() / "strobe-recovery-seed.recovery";
  try {
    fs::create_directories(out);
    // Never destroyed: a recorder's end removes its directory.
    auto* recorder = new strobe::Recorder({.ring_capacity = 64, .recovery_dir = dir.string(),
                                           .recovery_journal_records = 256});
    auto open = strobe::trace("open_root");
    std::thread worker([] {
      strobe::set_thread_name("worker");
      for (int i = 0; i < 6; ++i) {
        auto root = strobe::trace("request");
        auto s = strobe::span("tool_call", strobe::Kind::tool);
        s.attr("i", static_cast<std::int64_t>(i)).input("a string long enough for continuation records, twice over");
        s.event("tick");
      }
    });
    worker.join();
    recorder->flush();
    auto tail = strobe::span("unread", strobe::Kind::step);  // left in the ring
    tail.attr("x", 1.5);
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("ring-", 0) == 0)
        pack(dir, e.path(), out / ("seed-ring-" + std::to_string(n++)));
    fs::remove_all(dir);
    std::fflush(nullptr);
    std::_Exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strobe_recovery_fuzz_corpus: %s\n", e.what());
    return 1;
  }
}
