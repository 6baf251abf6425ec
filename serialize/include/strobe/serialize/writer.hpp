#pragma once
// Writing strobe files: the FileSink (plug it into a Recorder) and the Encoder beneath it.

#include <strobe/sink.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "strobe/serialize/format.hpp"

namespace strobe::serialize {

// Turns assembled traces into one Batch buffer (FlatBuffers). Not thread-safe.
class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // What the file's writer could not write before this batch (running totals); stored in
  // the batch, so a reader sees a loss at the next frame that could be written.
  struct Lost {
    std::uint64_t frames = 0, traces = 0, spans = 0;
  };
  void set_lost(const Lost& lost) noexcept;
  void add(const AssembledTrace& trace);
  // The same trace in the drainer's form: names are mapped to the batch's strings once per
  // batch, no string is built per span. Both forms of one trace encode identically.
  void add(const CompactTrace& trace);
  [[nodiscard]] std::size_t trace_count() const noexcept;
  [[nodiscard]] std::size_t span_count() const noexcept;
  // Finishes the batch; the bytes stay valid until the next add() or finish().
  [[nodiscard]] std::span<const std::uint8_t> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct FileSinkOptions {
  std::string path;
  // Spans buffered before a batch frame is written. Larger batches compress strings
  // better (one table per batch); smaller ones lose less in a crash.
  std::size_t batch_spans = 16384;
  // flush() also calls fdatasync: durable across power loss, costs a disk round trip.
  bool fsync_on_flush = false;
  // Start a new file once this many bytes are written (0: never): run.strobe, then
  // run.1.strobe, run.2.strobe, ... Each file is complete and readable on its own.
  std::uint64_t rotate_bytes = 0;
  // Called (sink thread) with a one-line message for every I/O error.
  std::function<void(const std::string&)> on_error;
  // The end frame says the file was rebuilt by strobe recover (FileEnd.recovered).
  bool recovered = false;
};

// A Sink that writes a strobe file. Runs on the recorder's sink thread; neither the
// drainer nor the recording threads wait for it (unless OverflowPolicy::wait and a full
// sink queue). An I/O error (disk full, permission, file removed) is reported to
// on_error, counted, and thrown to the recorder (which counts it in Stats::sink_errors);
// the file is cut back to its last whole frame, so it stays readable. The end frame is
// written by close() or the destructor.
class FileSink final : public Sink {
 public:
  // Opens (creates or truncates) the file; throws std::system_error naming the path if
  // it cannot be opened, before any recording starts.
  explicit FileSink(FileSinkOptions options);
  ~FileSink() override;  // writes what is buffered and the end frame

  void open(const RecorderInfo& info) override;
  void consume(const AssembledTrace& trace) override;
  void consume_compact(const CompactTrace& trace) override;
  // Assembly::deferred: each chunk of the record log becomes a records frame (format
  // 1.5), and the Reader assembles the file. Not with rotate_bytes: a file of the log is
  // readable only whole.
  [[nodiscard]] bool takes_records() const noexcept override;
  void consume_records(const void* data, std::size_t bytes, std::uint64_t records, std::uint64_t spans) override;
  // Drops no trace carries: counted in the end frame's totals (FileEnd::spans_dropped, ...),
  // where the tool finds them beyond what the traces say.
  void lost(const DropCounts& drops) override;
  // The process is crashing: the flush that follows writes the last batch and the end
  // frame, which records the crash (FileEnd.crash_signal), and closes the file.
  void crashed(const CrashInfo& crash) override;
  void flush() override;
  // A file rewritten from another strobe file (a record log assembled: serialize::assemble,
  // the Reader): its end frame also says what that file's end said, the frames its writer
  // failed to write (with the traces and spans in them, added to this sink's own) and that
  // strobe recover rebuilt it. A crash it recorded goes to crashed(). Before close().
  void carry_end(const Encoder::Lost& lost, bool recovered);
  // Writes what is buffered and the end frame; later calls do nothing.
  void close();

  struct Counters {
    std::uint64_t traces = 0;
    std::uint64_t spans = 0;
    std::uint64_t batches = 0;
    std::uint64_t bytes = 0;
    std::uint64_t io_errors = 0;
    std::uint64_t files = 0;  // files opened (rotation)
    // Batch frames that could not be written, and the traces and spans they held: also
    // recorded in the file (the next batch, and the end frame).
    std::uint64_t lost_frames = 0;
    std::uint64_t lost_traces = 0;
    std::uint64_t lost_spans = 0;
  };
  // Any thread.
  [[nodiscard]] Counters counters() const;
  // The file being written now.
  [[nodiscard]] std::string current_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strobe::serialize
