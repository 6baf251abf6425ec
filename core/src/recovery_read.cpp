// The recovery mode's reading side (strobe recover): the files a dead process left,
// checked field by field (they may be torn, truncated or hostile), and replayed.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_set>

#include "assembler.hpp"
#include "intern.hpp"
#include "record_log.hpp"
#include "recovery.hpp"
#include "strobe/detail/thread_state.hpp"
#include "strobe/detail/utf8.hpp"

namespace strobe::detail {
namespace {

// A file mapped read-only (private); empty when it cannot be.
class Mapped {
 public:
  explicit Mapped(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        data_ = static_cast<const unsigned char*>(p);
        size_ = static_cast<std::size_t>(st.st_size);
      }
    }
    opened_ = true;
    ::close(fd);
  }
  ~Mapped() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  [[nodiscard]] bool opened() const noexcept { return opened_; }
  [[nodiscard]] const unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
  bool opened_ = false;
};

template <class T>
T load(const unsigned char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

bool power_of_two(std::uint64_t v) noexcept { return v >= 2 && (v & (v - 1)) == 0; }

std::string text_of(const char* p, std::uint32_t size, std::size_t room) {
  std::string s(p, std::min<std::size_t>(size, room));
  repair_utf8(s);
  return s;
}

// A journal's clock anchor beyond this (a damaged or hostile file) would overflow the
// conversions of a replay (see replay_batch).
constexpr std::int64_t kMaxWallNs = std::int64_t{1} << 62;

}  // namespace

RecoveredRun read_recovery(const std::string& dir) {
  RecoveredRun run;
  const std::string journal_path = dir + "/journal";
  Mapped journal(journal_path);
  if (!journal.opened()) throw RecoveryError(journal_path + ": cannot open (not a recovery directory?)");
  if (journal.size() < kRecoveryPage) throw RecoveryError(journal_path + ": too short for a journal header");
  JournalHeader h;
  std::memcpy(&h, journal.data(), sizeof h);
  if (std::memcmp(h.magic, "STRBJRNL", 8) != 0) throw RecoveryError(journal_path + ": not a strobe journal");
  if (h.version != kRecoveryVersion)
    throw RecoveryError(journal_path + ": journal version " + std::to_string(h.version) + ", this strobe reads " +
                        std::to_string(kRecoveryVersion));
  if (h.record_bytes != sizeof(Record)) throw RecoveryError(journal_path + ": records of another size");
  if (!power_of_two(h.capacity) || h.capacity > (std::uint64_t{1} << 32))
    throw RecoveryError(journal_path + ": bad capacity " + std::to_string(h.capacity));
  if ((journal.size() - kRecoveryPage) / sizeof(Record) < h.capacity)
    throw RecoveryError(journal_path + ": truncated (" + std::to_string(journal.size()) + " bytes for " +
                        std::to_string(h.capacity) + " cells)");
  run.clock.tsc = h.clock_tsc != 0;
  run.clock.ns_per_tick = h.ns_per_tick;
  run.clock.anchor_ticks = h.anchor_ticks;
  run.clock.anchor_wall = h.anchor_wall;
  if (!std::isfinite(h.ns_per_tick) || h.ns_per_tick <= 0 || h.ns_per_tick > 1e6) {
    run.warnings.push_back(journal_path + ": bad clock rate; times are taken as nanoseconds");
    run.clock.ns_per_tick = 1.0;
  }
  if (h.anchor_wall > kMaxWallNs || h.anchor_wall < -kMaxWallNs) {
    run.warnings.push_back(journal_path + ": bad clock anchor; times are taken from the tick count alone");
    run.clock.anchor_wall = 0;
  }
  run.process_id = h.process_id;
  run.generation = h.generation;
  run.start_ns = h.start_ns;
  run.service_name = text_of(h.service, h.service_size, sizeof h.service);
  run.host_name = text_of(h.host, h.host_size, sizeof h.host);
  if (h.partial_trace_spans >= 1 && h.partial_trace_spans <= (std::uint64_t{1} << 32))
    run.partial_trace_spans = h.partial_trace_spans;
  if (h.partial_trace_age_ns > 0) run.partial_trace_age_ns = h.partial_trace_age_ns;

  // The journal: the last `capacity` cells before `written`, batch by batch. A batch whose
  // header scrolled out (or is damaged) is skipped up to the next valid header.
  const unsigned char* cells = journal.data() + kRecoveryPage;
  const std::uint64_t cap = h.capacity, mask = cap - 1, end = h.written;
  const std::uint64_t first = end > cap ? end - cap : 0;
  auto cell = [&](std::uint64_t pos) { return cells + (pos & mask) * sizeof(Record); };
  auto batch_at = [&](std::uint64_t pos, JournalBatch& b) {
    std::memcpy(&b, cell(pos), sizeof b);
    return b.magic == kBatchMagic && b.position == pos && b.check == batch_check(b) && b.count <= end - pos - 1;
  };
  std::map<std::uint64_t, std::uint64_t> consumed;  // ring file -> read position after its last batch
  std::uint64_t skipped = 0;
  bool synced = true;
  for (std::uint64_t pos = first; pos < end;) {
    JournalBatch b{};
    if (!batch_at(pos, b)) {
      if (synced && pos != first) run.warnings.push_back(journal_path + ": damaged batch at cell " + std::to_string(pos));
      synced = false;
      ++skipped;
      ++pos;
      continue;
    }
    synced = true;
    RecoveredRun::Batch out;
    out.thread = b.thread;
    out.pass = b.pass;
    out.records.resize(b.count);
    for (std::uint32_t i = 0; i < b.count; ++i) std::memcpy(static_cast<void*>(&out.records[i]), cell(pos + 1 + i), sizeof(Record));
    run.journal_records += b.count;
    if (b.ring_seq != 0) consumed[b.ring_seq] = b.ring_tail + b.count;
    run.batches.push_back(std::move(out));
    pos += 1 + std::uint64_t{b.count};
  }

  // The names log: (id, size, text) after a 16-byte header, ids ascending.
  const std::string names_path = dir + "/names";
  Mapped names(names_path);
  if (!names.opened() || names.size() < 16 || std::memcmp(names.data(), "STRBNAME", 8) != 0) {
    run.warnings.push_back(names_path + ": missing or damaged; names are shown empty");
  } else {
    std::size_t at = 16;
    std::int64_t last = -1;
    while (at < names.size()) {
      if (names.size() - at < 8) {
        run.warnings.push_back(names_path + ": ends in a torn entry");
        break;
      }
      const auto id = load<std::uint32_t>(names.data() + at);
      const auto size = load<std::uint32_t>(names.data() + at + 4);
      if (size > names.size() - at - 8 || static_cast<std::int64_t>(id) <= last || id >= kMaxNames) {
        run.warnings.push_back(names_path + ": damaged at byte " + std::to_string(at) + "; later names are shown empty");
        break;
      }
      run.names.emplace_back(id, std::string(reinterpret_cast<const char*>(names.data() + at + 8), size));
      last = id;
      at += 8 + std::size_t{size};
    }
  }

  // The rings: what their threads wrote and the drainer had not taken (or had taken but
  // not yet journaled when the process died: its read position there is not past it).
  namespace fs = std::filesystem;
  std::vector<std::pair<std::uint64_t, std::string>> ring_files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ring-", 0) == 0) ring_files.emplace_back(0, entry.path().string());
  }
  std::sort(ring_files.begin(), ring_files.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::uint64_t last_pass = run.batches.empty() ? 0 : run.batches.back().pass + 1;
  for (const auto& [unused, path] : ring_files) {
    Mapped f(path);
    if (f.size() < 2 * kRecoveryPage) {
      run.warnings.push_back(path + ": too short for a ring; skipped");
      continue;
    }
    RingFileHeader r;
    std::memcpy(&r, f.data(), sizeof r);
    if (std::memcmp(r.magic, "STRBRING", 8) != 0 || r.version != kRecoveryVersion || r.record_bytes != sizeof(Record) ||
        !power_of_two(r.capacity) || r.capacity > (std::uint64_t{1} << 32) || r.ring_offset != kRecoveryPage ||
        r.slots_offset != 2 * kRecoveryPage || r.head_offset > kRecoveryPage - 8 || r.tail_offset > kRecoveryPage - 8 ||
        (f.size() - 2 * kRecoveryPage) / sizeof(Record) < r.capacity) {
      run.warnings.push_back(path + ": damaged ring header; skipped");
      continue;
    }
    const auto head = load<std::uint64_t>(f.data() + r.ring_offset + r.head_offset);
    const auto tail = load<std::uint64_t>(f.data() + r.ring_offset + r.tail_offset);
    std::uint64_t from = tail;
    if (auto it = consumed.find(r.seq); it != consumed.end()) from = std::max(from, it->second);
    if (head < tail) {
      run.warnings.push_back(path + ": read position past the write position; skipped");
      continue;
    }
    if (head <= from) {
      if (r.name_size != 0) run.thread_names[r.owner_thread] = text_of(r.name, r.name_size, sizeof r.name);
      continue;
    }
    if (head - from > r.capacity) {
      run.warnings.push_back(path + ": more unread records than the ring holds; the oldest are skipped");
      from = head - r.capacity;
    }
    RecoveredRun::Batch out;
    out.thread = r.owner_thread;
    out.pass = last_pass;
    const unsigned char* slots = f.data() + r.slots_offset;
    out.records.resize(static_cast<std::size_t>(head - from));
    for (std::uint64_t p = from, i = 0; p < head; ++p, ++i)
      std::memcpy(static_cast<void*>(&out.records[i]), slots + (p & (r.capacity - 1)) * sizeof(Record), sizeof(Record));
    run.ring_records += out.records.size();
    if (r.name_size != 0) run.thread_names[r.owner_thread] = text_of(r.name, r.name_size, sizeof r.name);
    run.batches.push_back(std::move(out));
  }
  if (skipped != 0 && first != 0 && run.batches.empty())
    run.warnings.push_back(journal_path + ": no whole batch in the journal");
  return run;
}

std::vector<AssembledTrace> replay_recovery(const RecoveredRun& run, std::vector<std::string>& warnings) {
  // The names, at the ids the dead process gave them.
  for (const auto& [id, text] : run.names) {
    const std::uint32_t have = intern_count();
    if (id < have) continue;  // the table's own first names
    if (id > have || intern(text.data(), text.size()) != id) {
      warnings.push_back("names log: id " + std::to_string(id) + " out of sequence; later names are shown empty");
      break;
    }
  }
  const Clock clock(run.clock);
  Assembler assembler({run.service_name, run.process_id, run.partial_trace_spans, run.partial_trace_age_ns, 0}, clock);
  std::vector<CompactTrace> compact;
  std::vector<AssembledTrace> out;
  std::int64_t now_ns = run.start_ns;
  auto take = [&] {
    for (CompactTrace& t : compact) {
      AssembledTrace a = t.to_assembled();
      a.thread_names.clear();  // named here, from the ring files, as the drainer names them
      std::unordered_set<std::uint64_t> seen;
      for (const SpanData& s : a.spans)
        for (std::uint64_t thread : {s.thread_id, s.end_thread_id})
          if (thread != 0 && seen.insert(thread).second)
            if (auto it = run.thread_names.find(thread); it != run.thread_names.end() && !it->second.empty())
              a.thread_names.push_back({thread, it->second});
      std::sort(a.thread_names.begin(), a.thread_names.end(),
                [](const ThreadName& x, const ThreadName& y) { return x.thread_id < y.thread_id; });
      out.push_back(std::move(a));
    }
    compact.clear();
  };
  std::uint64_t pass = run.batches.empty() ? 0 : run.batches.front().pass;
  for (const RecoveredRun::Batch& b : run.batches) {
    if (b.pass != pass) {
      pass = b.pass;
      assembler.end_of_pass(compact, now_ns);
      take();
    }
    now_ns = replay_batch(assembler, clock, run.clock, b.records.data(), b.records.size(), b.thread, run.generation,
                          nullptr, now_ns);
  }
  assembler.end_of_pass(compact, now_ns);
  assembler.end_of_pass(compact, now_ns);
  assembler.flush(compact, now_ns, true);
  take();
  return out;
}

}  // namespace strobe::detail
