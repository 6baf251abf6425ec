// The recovery mode's writing side: ring files, the journal, the names log.

#include "recovery.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <emmintrin.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <system_error>

#include "intern.hpp"

namespace strobe::detail {
namespace {

[[noreturn]] void fail(const std::string& path, const char* what) {
  throw std::system_error(errno, std::generic_category(), std::string("strobe: recovery: ") + what + " " + path);
}

// A file of `bytes` mapped shared for reading and writing; the descriptor is not kept.
void* map_file(const std::string& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create");
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    fail(path, "cannot size");
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (p == MAP_FAILED) fail(path, "cannot map");
  return p;
}

RingFileHeader* header_of(Ring* ring) noexcept {
  return reinterpret_cast<RingFileHeader*>(reinterpret_cast<unsigned char*>(ring) - kRecoveryPage);
}

void copy_text(char* to, std::uint32_t& size, std::size_t room, const std::string& text) {
  size = static_cast<std::uint32_t>(std::min(room, text.size()));
  std::memcpy(to, text.data(), size);
}

// One journal cell, written around the caches: this process never reads the journal, and
// plain stores would pull 64 bytes a record into the cache the recording thread's ring
// shares (on the 2-vCPU VM, the last-level cache). Both 16-byte aligned.
void stream_cell(unsigned char* to, const void* from) noexcept {
  const auto* in = static_cast<const __m128i*>(from);
  auto* out = reinterpret_cast<__m128i*>(to);
  for (int k = 0; k < 4; ++k) _mm_stream_si128(out + k, _mm_load_si128(in + k));
}

// write() until done or an error (EINTR retried). Async-signal-safe.
void write_all(int fd, const iovec* iov, int count) noexcept {
  iovec local[3];
  int n = std::min(count, 3);
  std::copy(iov, iov + n, local);
  iovec* at = local;
  while (n > 0) {
    const ssize_t w = ::writev(fd, at, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // the log stops growing; recovery then lacks these names (shown empty)
    }
    auto left = static_cast<std::size_t>(w);
    while (n > 0 && left >= at->iov_len) {
      left -= at->iov_len;
      ++at;
      --n;
    }
    if (n > 0) {
      at->iov_base = static_cast<char*>(at->iov_base) + left;
      at->iov_len -= left;
    }
  }
}

}  // namespace

RecoveryStore::RecoveryStore(const Options& options) : options_(options), pid_(static_cast<std::uint32_t>(::getpid())) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (!fs::is_directory(options_.dir, ec)) {
    errno = ENOTDIR;
    fail(options_.dir, "cannot create the directory");
  }
  // What an earlier run left here describes a file that this run's sink replaces.
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "journal" || name == "names" || name.rfind("ring-", 0) == 0) fs::remove(entry.path(), ec);
  }

  journal_bytes_ = kRecoveryPage + options_.journal_records * sizeof(Record);
  const std::string journal_path = options_.dir + "/journal";
  auto* base = static_cast<unsigned char*>(map_file(journal_path, journal_bytes_));
  journal_ = reinterpret_cast<JournalHeader*>(base);
  cells_ = base + kRecoveryPage;
  // Every page now: a first touch costs microseconds a page on some machines (see
  // Config::expected_trace_spans), and a drainer faulting its way through the journal's
  // first lap fell behind a ring at 1 M spans/s (159-200 ns a span instead of 72-76, 9-14%
  // of the spans dropped). MADV_POPULATE_WRITE (Linux 5.14) does it without a write per
  // page; older kernels fault it in as the drainer goes.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  (void)::madvise(base, journal_bytes_, MADV_POPULATE_WRITE);
  JournalHeader& h = *journal_;
  std::memcpy(h.magic, "STRBJRNL", 8);
  h.version = kRecoveryVersion;
  h.record_bytes = sizeof(Record);
  h.capacity = options_.journal_records;
  h.process_id = pid_;
  h.generation = options_.generation;
  h.start_ns = realtime_ns();
  h.partial_trace_spans = options_.partial_trace_spans;
  h.partial_trace_age_ns = options_.partial_trace_age_ns;
  copy_text(h.service, h.service_size, sizeof h.service, options_.service_name);
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) copy_text(h.host, h.host_size, sizeof h.host, host);

  const std::string names_path = options_.dir + "/names";
  names_fd_ = ::open(names_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (names_fd_ < 0) {
    const int saved = errno;
    ::munmap(base, journal_bytes_);
    journal_ = nullptr;
    errno = saved;
    fail(names_path, "cannot create");
  }
  char magic[16] = "STRBNAME";
  std::memcpy(magic + 8, &kRecoveryVersion, 4);
  const iovec head{magic, sizeof magic};
  write_all(names_fd_, &head, 1);
  observe_interned(&RecoveryStore::log_name, this);
}

RecoveryStore::~RecoveryStore() { close(); }

// Under the intern table's lock, on the interning thread (a new name is a slow path).
void RecoveryStore::log_name(void* self, std::uint32_t id, const char* text, std::size_t size) noexcept {
  auto* store = static_cast<RecoveryStore*>(self);
  // A forked child shares the descriptor: its names are not the parent's ids.
  if (static_cast<std::uint32_t>(::getpid()) != store->pid_ || store->names_fd_ < 0) return;
  const std::uint32_t head[2] = {id, static_cast<std::uint32_t>(size)};
  const iovec iov[2] = {{const_cast<std::uint32_t*>(head), sizeof head}, {const_cast<char*>(text), size}};
  write_all(store->names_fd_, iov, 2);
}

// Named by generation too: a ring of an earlier recorder's store, freed late, must never
// remove a file of a later one in the same directory.
std::string RecoveryStore::path_of(std::uint64_t seq) const {
  return options_.dir + "/ring-" + std::to_string(options_.generation) + "-" + std::to_string(seq);
}

Ring* RecoveryStore::make(std::size_t capacity, std::uint32_t slot) {
  if (capacity < 2 || (capacity & (capacity - 1)) != 0) throw std::invalid_argument("strobe: bad ring capacity");
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    seq = ++seq_;
  }
  const std::size_t bytes = 2 * kRecoveryPage + capacity * sizeof(Record);
  auto* base = static_cast<unsigned char*>(map_file(path_of(seq), bytes));
  auto* h = reinterpret_cast<RingFileHeader*>(base);
  std::memcpy(h->magic, "STRBRING", 8);
  h->version = kRecoveryVersion;
  h->record_bytes = sizeof(Record);
  h->capacity = capacity;
  h->seq = seq;
  h->ring_offset = kRecoveryPage;
  h->head_offset = Ring::head_offset();
  h->tail_offset = Ring::tail_offset();
  h->slots_offset = 2 * kRecoveryPage;
  h->slot = slot;
  auto* slots = reinterpret_cast<Record*>(base + 2 * kRecoveryPage);
  std::memset(static_cast<void*>(slots), 0, capacity * sizeof(Record));  // every page now, off the hot path
  static_assert(sizeof(Ring) <= kRecoveryPage);
  return new (base + kRecoveryPage) Ring(capacity, slots);
}

void RecoveryStore::owned(Ring* ring, std::uint64_t owner_thread) noexcept {
  RingFileHeader* h = header_of(ring);
  h->owner_thread = owner_thread;
  h->name_size = 0;
  h->name_seen = 0;
}

void RecoveryStore::destroy(Ring* ring) noexcept {
  RingFileHeader* h = header_of(ring);
  const std::uint64_t seq = h->seq;
  const std::size_t bytes = 2 * kRecoveryPage + ring->capacity() * sizeof(Record);
  ring->~Ring();
  ::munmap(h, bytes);
  std::string path;
  try {
    path = path_of(seq);
  } catch (...) {
    return;
  }
  ::unlink(path.c_str());
}

void RecoveryStore::drained(RingEntry& e, std::size_t n, const Clock& clock) noexcept {
  if (journal_ == nullptr) return;
  Ring& ring = e.ring;
  std::uint64_t seq = 0;
  if (e.storage == this) {
    RingFileHeader* h = header_of(&ring);
    seq = h->seq;
    // relaxed: as refresh_thread_name; the lock orders the copy.
    if (const std::uint32_t v = e.extra.name_version.load(std::memory_order_relaxed); v != h->name_seen) {
      std::lock_guard lock(e.extra.name_mutex);
      h->name_size = std::min<std::uint32_t>(e.extra.name_size, kMaxThreadNameBytes);
      std::memcpy(h->name, e.extra.name, h->name_size);
      h->name_seen = e.extra.name_version.load(std::memory_order_relaxed);
    }
  }
  if (n == 0) return;
  if (std::find(pass_rings_.begin(), pass_rings_.end(), &ring) != pass_rings_.end()) {
    ++pass_;
    pass_rings_.clear();
  }
  if (pass_rings_.size() < 4096) pass_rings_.push_back(&ring);

  JournalHeader& j = *journal_;
  const std::uint64_t mask = j.capacity - 1;
  std::uint64_t at = j.written;
  JournalBatch b{};
  b.magic = kBatchMagic;
  b.position = at;
  b.thread = e.owner_thread.load(std::memory_order_relaxed);
  b.ring_seq = seq;
  b.ring_tail = ring.read_position();
  b.pass = pass_;
  b.count = static_cast<std::uint32_t>(n);
  b.slot = e.slot;
  b.check = batch_check(b);
  alignas(16) JournalBatch cell = b;
  stream_cell(cells_ + (at & mask) * sizeof(Record), &cell);
  ++at;
  for (std::size_t i = 0; i < n; ++i, ++at) stream_cell(cells_ + (at & mask) * sizeof(Record), &ring.peek(i));
  _mm_sfence();  // the streamed cells are ordered before the header's position below
  const Clock::Map m = clock.map();
  j.clock_tsc = m.tsc ? 1 : 0;
  j.ns_per_tick = m.ns_per_tick;
  j.anchor_ticks = m.anchor_ticks;
  j.anchor_wall = m.anchor_wall;
  j.written = at;
  j.wraps = at / j.capacity;
}

void RecoveryStore::close() noexcept {
  if (journal_ == nullptr) return;
  observe_interned(nullptr, nullptr);
  ::munmap(journal_, journal_bytes_);
  journal_ = nullptr;
  cells_ = nullptr;
  if (names_fd_ >= 0) ::close(names_fd_);
  names_fd_ = -1;
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "journal" || name == "names" || name.rfind("ring-", 0) == 0) fs::remove(entry.path(), ec);
  }
  fs::remove(options_.dir, ec);  // only when empty: nothing of anyone else's goes
}

}  // namespace strobe::detail
