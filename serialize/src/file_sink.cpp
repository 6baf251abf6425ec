#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <flatbuffers/flatbuffers.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>

#include "frame.hpp"
#include "strobe/serialize/writer.hpp"
#include "strobe_generated.h"

namespace strobe::serialize {

struct FileSink::Impl {
  FileSinkOptions options;
  std::string path;  // current file
  int fd = -1;
  std::uint64_t good_offset = 0;  // end of the last whole frame
  std::uint32_t file_index = 0;
  bool header_written = false;
  bool closed = false;
  RecorderInfo info;
  bool have_info = false;
  Encoder encoder;
  std::uint64_t file_traces = 0, file_spans = 0, file_batches = 0;
  Encoder::Lost file_lost;  // of the current file
  DropCounts file_drops;    // the recorder's drops reported by the traces given to this file
  CrashInfo crash;          // signal != 0: the process is crashing; the next flush closes the file

  mutable std::mutex counters_mutex;
  Counters counters;

  std::string path_for(std::uint32_t index) const {
    if (index == 0) return options.path;
    const std::string& p = options.path;
    const auto slash = p.find_last_of('/');
    const auto dot = p.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0)
      return p + "." + std::to_string(index);
    return p.substr(0, dot) + "." + std::to_string(index) + p.substr(dot);
  }

  void open_file() {
    path = path_for(file_index);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "strobe: cannot open " + path);
    good_offset = 0;
    header_written = false;
    file_traces = file_spans = file_batches = 0;
    file_lost = {};
    file_drops = {};
    std::lock_guard lock(counters_mutex);
    ++counters.files;
  }

  [[noreturn]] void fail(const std::string& what, int err) {
    const std::string msg = "strobe: " + path + ": " + what + ": " + std::strerror(err);
    {
      std::lock_guard lock(counters_mutex);
      ++counters.io_errors;
    }
    // Cut the file back to its last whole frame so it stays readable.
    if (fd >= 0) {
      if (::ftruncate(fd, static_cast<off_t>(good_offset)) == 0) ::lseek(fd, static_cast<off_t>(good_offset), SEEK_SET);
    }
    if (options.on_error) {
      try {
        options.on_error(msg);
      } catch (...) {
      }
    }
    throw std::system_error(err, std::generic_category(), msg);
  }

  // Every byte of parts[0, count), however the kernel splits the writes.
  void write_all(iovec* parts, int count) {
    while (count > 0) {
      if (parts[0].iov_len == 0) {
        ++parts;
        --count;
        continue;
      }
      const ssize_t w = ::writev(fd, parts, count);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write failed", errno);
      }
      auto done = static_cast<std::size_t>(w);
      while (count > 0 && done >= parts[0].iov_len) {
        done -= parts[0].iov_len;
        ++parts;
        --count;
      }
      if (count > 0) {
        parts[0].iov_base = static_cast<unsigned char*>(parts[0].iov_base) + done;
        parts[0].iov_len -= done;
      }
    }
  }

  // Header, payload and padding in one writev: the payload (a batch can be megabytes)
  // goes from the encoder's buffer to the file without a copy.
  void write_frame(FrameType type, std::span<const std::uint8_t> payload) {
    if (fd < 0) open_file();
    if (payload.size() > kMaxFrameBytes) fail("batch too large for one frame", EFBIG);
    const auto len = static_cast<std::uint32_t>(payload.size());
    const detail::FrameHeader h = detail::make_frame_header(type, payload.data(), len);
    static constexpr unsigned char kZeros[8] = {};
    static_assert(sizeof h == kFrameHeaderSize);
    iovec parts[3] = {{const_cast<detail::FrameHeader*>(&h), kFrameHeaderSize},
                      {const_cast<std::uint8_t*>(payload.data()), len},
                      {const_cast<unsigned char*>(kZeros), detail::padded(len) - len}};
    write_all(parts, 3);
    const std::size_t size = kFrameHeaderSize + detail::padded(len);
    good_offset += size;
    std::lock_guard lock(counters_mutex);
    counters.bytes += size;
  }

  void ensure_header() {
    if (header_written) return;
    if (fd < 0) open_file();
    // The preamble once: a header frame that failed (a full disk) is retried after it,
    // never behind a second preamble.
    if (good_offset < kPreambleSize) {
      unsigned char pre[kPreambleSize];
      detail::make_preamble(pre);
      good_offset = 0;
      iovec part{pre, sizeof pre};
      write_all(&part, 1);
      good_offset = kPreambleSize;
      std::lock_guard lock(counters_mutex);
      counters.bytes += sizeof pre;
    }
    flatbuffers::FlatBufferBuilder fbb(1024);
    fbb.Finish(fb::CreateFileHeader(fbb, fbb.CreateString(info.service_name), fbb.CreateString(info.host_name),
                                    info.process_id, info.start_ns, fbb.CreateString(info.clock),
                                    info.ns_per_tick, fbb.CreateString("strobe 0.1.0"), info.records));
    write_frame(FrameType::header, {fbb.GetBufferPointer(), fbb.GetSize()});
    header_written = true;
  }

  // A batch that could not be written: its traces are lost, counted, and said in the next
  // frame that can be written (the next batch, the end frame).
  void count_lost(std::size_t traces, std::size_t spans) {
    ++file_lost.frames;
    file_lost.traces += traces;
    file_lost.spans += spans;
    std::lock_guard lock(counters_mutex);
    ++counters.lost_frames;
    counters.lost_traces += traces;
    counters.lost_spans += spans;
  }

  void write_batch() {
    if (encoder.trace_count() == 0) return;
    const std::size_t traces = encoder.trace_count(), spans = encoder.span_count();
    try {
      ensure_header();
      encoder.set_lost(file_lost);
      write_frame(FrameType::batch, encoder.finish());
    } catch (...) {
      if (encoder.trace_count() != 0) (void)encoder.finish();  // the batch is gone: start the next afresh
      count_lost(traces, spans);
      throw;
    }
    file_traces += traces;
    file_spans += spans;
    ++file_batches;
    {
      std::lock_guard lock(counters_mutex);
      counters.traces += traces;
      counters.spans += spans;
      ++counters.batches;
    }
    if (options.rotate_bytes != 0 && good_offset >= options.rotate_bytes) {
      end_file();
      ++file_index;
      open_file();
    }
  }

  void end_file() {
    if (fd < 0) return;
    ensure_header();
    flatbuffers::FlatBufferBuilder fbb(128);
    fbb.Finish(fb::CreateFileEnd(fbb, file_traces, file_spans, file_batches, file_lost.frames, file_lost.traces,
                                 file_lost.spans, file_drops.spans, file_drops.records, file_drops.sink_spans,
                                 crash.signal, crash.address, options.recovered));
    write_frame(FrameType::end, {fbb.GetBufferPointer(), fbb.GetSize()});
    ::close(fd);
    fd = -1;
  }

  // A file removed or replaced under us: say so and start a new one at the path.
  void check_still_linked() {
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_nlink > 0) return;
    ::close(fd);
    fd = -1;
    open_file();
    errno = ENOENT;
    fail("file was removed while being written; a new one was started", ENOENT);
  }
};

FileSink::FileSink(FileSinkOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.path.empty()) throw std::invalid_argument("strobe: FileSinkOptions::path is empty");
  if (options.batch_spans == 0) throw std::invalid_argument("strobe: FileSinkOptions::batch_spans must be > 0");
  impl_->options = std::move(options);
  impl_->info.service_name = "strobe";
  impl_->info.process_id = static_cast<std::uint32_t>(::getpid());
  impl_->open_file();
}

FileSink::~FileSink() {
  try {
    close();
  } catch (...) {  // reported through on_error already
  }
}

void FileSink::open(const RecorderInfo& info) {
  if (impl_->header_written) return;
  impl_->info = info;
  impl_->have_info = true;
  impl_->ensure_header();
}

void FileSink::consume(const AssembledTrace& trace) {
  if (impl_->closed) return;
  if (!impl_->have_info && !impl_->header_written) {
    impl_->info.service_name = trace.service_name;
    impl_->info.process_id = trace.process_id;
  }
  impl_->file_drops += trace.drops_since_previous;
  impl_->encoder.add(trace);
  if (impl_->encoder.span_count() >= impl_->options.batch_spans) impl_->write_batch();
}

void FileSink::consume_compact(const CompactTrace& trace) {
  if (impl_->closed) return;
  if (!impl_->have_info && !impl_->header_written) {
    impl_->info.service_name = std::string(trace.service_name);
    impl_->info.process_id = trace.process_id;
  }
  impl_->file_drops += trace.drops_since_previous;
  impl_->encoder.add(trace);
  if (impl_->encoder.span_count() >= impl_->options.batch_spans) impl_->write_batch();
}

bool FileSink::takes_records() const noexcept { return impl_->options.rotate_bytes == 0; }

void FileSink::consume_records(const void* data, std::size_t bytes, std::uint64_t records, std::uint64_t spans) {
  (void)records;
  if (impl_->closed) return;
  try {
    // Not into a removed file: the chunk is lost then (counted in the new file), and the
    // recorder restates the log in the new file before its next chunk (a resync).
    impl_->check_still_linked();
    impl_->ensure_header();
    impl_->write_frame(FrameType::records, {static_cast<const std::uint8_t*>(data), bytes});
  } catch (...) {
    impl_->count_lost(0, spans);
    throw;
  }
  ++impl_->file_batches;
  std::lock_guard lock(impl_->counters_mutex);
  ++impl_->counters.batches;
}

void FileSink::lost(const DropCounts& drops) {
  if (!impl_->closed) impl_->file_drops += drops;
}

void FileSink::crashed(const CrashInfo& crash) {
  if (!impl_->closed) impl_->crash = crash;
}

void FileSink::carry_end(const Encoder::Lost& lost, bool recovered) {
  if (impl_->closed) return;
  impl_->file_lost.frames += lost.frames;
  impl_->file_lost.traces += lost.traces;
  impl_->file_lost.spans += lost.spans;
  impl_->options.recovered = impl_->options.recovered || recovered;
}

void FileSink::flush() {
  if (impl_->closed) return;
  if (impl_->crash.signal != 0) {  // the last flush of a crashing process: end the file now
    close();
    return;
  }
  impl_->check_still_linked();  // before writing: a batch must not go into a removed file
  impl_->write_batch();
  impl_->ensure_header();
  if (impl_->options.fsync_on_flush && impl_->fd >= 0 && ::fdatasync(impl_->fd) != 0)
    impl_->fail("fdatasync failed", errno);
}

void FileSink::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->write_batch();
  impl_->end_file();
}

FileSink::Counters FileSink::counters() const {
  std::lock_guard lock(impl_->counters_mutex);
  return impl_->counters;
}

std::string FileSink::current_path() const { return impl_->path; }

}  // namespace strobe::serialize
