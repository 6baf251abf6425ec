// libFuzzer target for what `strobe recover` parses: a recovery directory's journal,
// names log and ring file, as a killed process (or anyone) may have left them. Any bytes
// must give recovered traces, warnings, or a one-line RecoveryError naming the file,
// never a crash, a sanitizer report or an unbounded allocation.
//
// An input is three files: u32 journal size, u32 names size, the journal, the names log,
// and the rest as one ring file. Each input is read twice: as it is, and with every
// journal cell that starts like a batch header made consistent (position and check), so
// that mutations get past the check into the batches' records and the assembler.

#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "recovery.hpp"

namespace {

namespace sd = strobe::detail;

struct Dir {
  std::string path;
  Dir() {
    char name[] = "/tmp/strobe-recovery-fuzz-XXXXXX";
    if (::mkdtemp(name) == nullptr) __builtin_trap();
    path = name;
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void put(const char* name, const std::uint8_t* data, std::size_t size) const {
    const std::string p = path + "/" + name;
    if (size == SIZE_MAX) {
      ::unlink(p.c_str());
      return;
    }
    FILE* f = std::fopen(p.c_str(), "wb");
    if (f == nullptr) __builtin_trap();
    if (size != 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
    std::fclose(f);
  }
};

volatile std::uint64_t g_sink;

void read_and_replay(const std::string& path) {
  try {
    const sd::RecoveredRun run = sd::read_recovery(path);
    std::vector<std::string> warnings;
    const std::vector<strobe::AssembledTrace> traces = sd::replay_recovery(run, warnings);
    for (const strobe::AssembledTrace& t : traces) g_sink = g_sink + t.spans.size() + t.root_name.size();
  } catch (const sd::RecoveryError& e) {
    const std::string what = e.what();
    if (what.rfind(path + "/", 0) != 0 || what.find('\n') != std::string::npos) __builtin_trap();
  }
}

// Makes every cell with the batch magic a consistent header (its own position, a valid
// check) whose count fits the journal.
void repair_journal(std::vector<std::uint8_t>& j) {
  if (j.size() < sd::kRecoveryPage + 2 * sizeof(sd::Record)) return;
  sd::JournalHeader h;
  std::memcpy(&h, j.data(), sizeof h);
  const std::uint64_t cells = (j.size() - sd::kRecoveryPage) / sizeof(sd::Record);
  if (cells < 2) return;
  std::uint64_t cap = 2;
  while (cap * 2 <= cells && cap < (std::uint64_t{1} << 20)) cap *= 2;
  h.capacity = cap;
  if (h.written < cap / 2) h.written = cap + h.written % cap;
  std::memcpy(j.data(), &h, sizeof h);
  const std::uint64_t first = h.written - cap;
  for (std::uint64_t pos = first; pos < h.written; ++pos) {
    std::uint8_t* c = j.data() + sd::kRecoveryPage + (pos & (cap - 1)) * sizeof(sd::Record);
    sd::JournalBatch b;
    std::memcpy(&b, c, sizeof b);
    if (b.magic != sd::kBatchMagic) continue;
    b.position = pos;
    b.count = static_cast<std::uint32_t>(b.count % (h.written - pos));
    b.check = sd::batch_check(b);
    std::memcpy(c, &b, sizeof b);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint32_t jn = 0, nn = 0;
  std::memcpy(&jn, data, 4);
  std::memcpy(&nn, data + 4, 4);
  const std::size_t rest = size - 8;
  const std::size_t journal = std::min<std::size_t>(jn, rest);
  const std::size_t names = std::min<std::size_t>(nn, rest - journal);
  const std::uint8_t* p = data + 8;
  const Dir d;  // one per input, removed after it: nothing is left behind however the run ends
  d.put("journal", p, journal);
  d.put("names", p + journal, names);
  d.put("ring-1-1", p + journal + names, rest - journal - names);
  read_and_replay(d.path);
  std::vector<std::uint8_t> repaired(p, p + journal);
  repair_journal(repaired);
  d.put("journal", repaired.data(), repaired.size());
  read_and_replay(d.path);
  return 0;
}
