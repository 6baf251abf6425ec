#pragma once
// Post-mortem recovery (Config::recovery_dir): what a process killed without warning
// (SIGKILL, the OOM killer) had recorded but not yet written survives in files, and
// `strobe recover` rebuilds the traces from them. Internal.
//
//   recording thread ──> ring-<n> (the ring itself, positions and slots, in a MAP_SHARED file)
//   drainer: ring ──> journal (every record it takes, before the ring's space is released)
//                 ──> assembler ──> sink queue ──> file
//   intern(): each new name ──> names (an append-only log, written before the id is used)
//
// The journal is circular (Config::recovery_journal_records): it must hold what the
// assembler, the sink queue and the FileSink's batch hold at any time; `strobe recover`
// replays it and what the rings hold through an Assembler and drops the spans the output
// file already has. Files are raw memory of this build (64-byte records, little endian):
// read back by the same version of strobe.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "globals.hpp"
#include "strobe/detail/record.hpp"
#include "strobe/model.hpp"

namespace strobe::detail {

using Ring = ringbuf::SpscRing<Record>;

inline constexpr std::uint32_t kRecoveryVersion = 1;
inline constexpr std::size_t kRecoveryPage = 4096;

// Page 0 of the journal file; the cells (64 bytes each) follow from kRecoveryPage.
struct JournalHeader {
  char magic[8];               // "STRBJRNL"
  std::uint32_t version;
  std::uint32_t record_bytes;  // sizeof(Record)
  std::uint64_t capacity;      // cells, a power of two
  std::uint64_t written;       // cells written since the start (the next cell is written % capacity)
  std::uint64_t wraps;         // written / capacity, kept for readers
  std::uint32_t process_id;
  std::uint32_t generation;    // the recorder's: begins of another are skipped, as the drainer does
  std::int64_t start_ns;       // wall clock when the recorder started
  // The drainer's clock map as of its latest pass (Clock::Map).
  std::uint32_t clock_tsc;
  std::uint32_t reserved0;
  double ns_per_tick;
  std::uint64_t anchor_ticks;
  std::int64_t anchor_wall;
  std::uint64_t partial_trace_spans;
  std::int64_t partial_trace_age_ns;
  std::uint32_t service_size;
  char service[256];
  std::uint32_t host_size;
  char host[256];
};
static_assert(sizeof(JournalHeader) <= kRecoveryPage);

// One cell of the journal before the records of one ring read in one pass.
struct JournalBatch {
  std::uint64_t magic;      // kBatchMagic
  std::uint64_t position;   // this cell's index since the start (written when it was written)
  std::uint64_t thread;     // the ring's owner (OS thread id)
  std::uint64_t ring_seq;   // the ring file's number (0: a ring not in a file)
  std::uint64_t ring_tail;  // the ring's read position before these records
  std::uint64_t pass;       // the drainer's pass (batches of one pass are read together)
  std::uint32_t count;      // records that follow
  std::uint32_t slot;       // the ring's registry slot
  std::uint64_t check;      // batch_check() of the fields above
};
static_assert(sizeof(JournalBatch) == sizeof(Record));
inline constexpr std::uint64_t kBatchMagic = 0x4843544142425453ull;  // "STBBATCH"

[[nodiscard]] inline std::uint64_t batch_check(const JournalBatch& b) noexcept {
  std::uint64_t h = b.magic ^ 0x9e3779b97f4a7c15ull;
  for (std::uint64_t v : {b.position, b.thread, b.ring_seq, b.ring_tail, b.pass,
                          std::uint64_t{b.count} << 32 | b.slot})
    h = (h ^ v) * 0xff51afd7ed558ccdull, h ^= h >> 29;
  return h;
}

// Page 0 of a ring file; the ring object is at page 1, its slots from page 2.
struct RingFileHeader {
  char magic[8];  // "STRBRING"
  std::uint32_t version;
  std::uint32_t record_bytes;
  std::uint64_t capacity;  // slots
  std::uint64_t seq;       // the file's number, as journal batches name it
  std::uint64_t ring_offset;
  std::uint64_t head_offset;  // of the ring's positions, within the ring object
  std::uint64_t tail_offset;
  std::uint64_t slots_offset;
  std::uint32_t slot;
  std::uint32_t name_seen;  // drainer-owned: RingExtra::name_version last copied
  std::uint64_t owner_thread;
  std::uint32_t name_size;
  char name[kMaxThreadNameBytes];
};
static_assert(sizeof(RingFileHeader) <= kRecoveryPage);

// The writing side: ring files, the journal and the names log of one recorder.
class RecoveryStore final : public Registry::RingStorage {
 public:
  struct Options {
    std::string dir;
    std::size_t journal_records = 0;
    std::uint32_t generation = 0;
    std::string service_name;
    std::size_t partial_trace_spans = 0;
    std::int64_t partial_trace_age_ns = 0;
  };
  // Creates dir (or empties what an earlier run left in it), the journal and the names
  // log, and starts logging every interned name. Throws std::system_error naming the path.
  explicit RecoveryStore(const Options& options);
  // Never destroyed while rings it made exist (they may outlive the recorder): the
  // recorder closes it and leaves it.
  ~RecoveryStore() override;
  RecoveryStore(const RecoveryStore&) = delete;
  RecoveryStore& operator=(const RecoveryStore&) = delete;

  // Any thread (Registry::acquire). Maps a new ring file and builds the ring in it.
  Ring* make(std::size_t capacity, std::uint32_t slot) override;
  void owned(Ring* ring, std::uint64_t owner_thread) noexcept override;
  // Any thread. Unmaps the ring's file and removes it.
  void destroy(Ring* ring) noexcept override;

  // Drainer, for each ring of a pass, before it releases the n records it read: appends
  // them to the journal (with the clock's map, and the owner's name when it changed).
  void drained(RingEntry& e, std::size_t n, const Clock& clock) noexcept;

  // After the recorder's sinks flushed everything (its end): nothing is left to recover.
  // Stops the names log and removes the directory (rings still mapped by running threads
  // go when their threads let go of them). Later drained() calls do nothing.
  void close() noexcept;

 private:
  std::string path_of(std::uint64_t seq) const;

  Options options_;
  std::mutex mutex_;  // make/destroy: seq_ and the file names
  std::uint64_t seq_ = 0;
  JournalHeader* journal_ = nullptr;
  unsigned char* cells_ = nullptr;
  std::size_t journal_bytes_ = 0;
  int names_fd_ = -1;
  std::uint32_t pid_ = 0;
  // The rings read in the current pass (a ring seen again starts the next pass).
  std::vector<const Ring*> pass_rings_;
  std::uint64_t pass_ = 0;
  static void log_name(void* self, std::uint32_t id, const char* text, std::size_t size) noexcept;
};

// ---- the reading side (strobe recover) ----

class RecoveryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a recovery directory holds, checked: hostile or torn files give warnings (what was
// skipped) or a RecoveryError, never undefined behaviour.
struct RecoveredRun {
  Clock::Map clock;
  std::uint32_t process_id = 0;
  std::uint32_t generation = 0;
  std::int64_t start_ns = 0;
  std::string service_name;
  std::string host_name;
  std::size_t partial_trace_spans = 16384;
  std::int64_t partial_trace_age_ns = 10'000'000'000;
  std::vector<std::pair<std::uint32_t, std::string>> names;  // (id, text as interned), in id order
  struct Batch {
    std::uint64_t thread = 0;
    std::uint64_t pass = 0;
    std::vector<Record> records;
  };
  std::vector<Batch> batches;  // the journal's, oldest first, then each ring's unread records
  std::unordered_map<std::uint64_t, std::string> thread_names;
  std::uint64_t journal_records = 0;  // records replayed from the journal
  std::uint64_t ring_records = 0;     // and from the rings
  std::vector<std::string> warnings;
};

// Reads dir. Throws RecoveryError (one line naming the file) when the journal is missing
// or its header is damaged; damage further in is skipped with a warning.
RecoveredRun read_recovery(const std::string& dir);

// The traces the run's records make, through an Assembler as the drainer would have built
// them; spans still open at the end are handed over incomplete. Interns the run's names
// first: call once per process, before anything else interns.
std::vector<AssembledTrace> replay_recovery(const RecoveredRun& run, std::vector<std::string>& warnings);

}  // namespace strobe::detail
