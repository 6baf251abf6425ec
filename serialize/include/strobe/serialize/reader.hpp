#pragma once
// Reading strobe files: a streaming, verified, zero-copy reader.
//
//   strobe::serialize::Reader r("run.strobe");     // throws ReadError on a bad header
//   strobe::serialize::BatchView b;
//   while (r.next(b))                                // each frame checked, then verified
//     for (std::size_t i = 0; i < b.trace_count(); ++i)
//       for (auto s : b.trace(i).spans()) use(s.name(), s.duration_ns());
//   if (r.error()) warn(r.error()->what());          // damage: what came before is kept
//
// Views point into the file's mapping and stay valid while the Reader lives.

#include <strobe/model.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strobe/serialize/format.hpp"

namespace strobe::serialize {

class TraceView;

class SpanView {
 public:
  [[nodiscard]] std::uint64_t span_id() const noexcept;
  [[nodiscard]] std::uint64_t parent_id() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept;
  [[nodiscard]] Kind kind() const noexcept;
  [[nodiscard]] Status status() const noexcept;
  [[nodiscard]] std::int64_t start_ns() const noexcept;
  [[nodiscard]] std::int64_t duration_ns() const noexcept;
  // Wraps like the encoder's end - start, so any pair of times reads back exactly (and a
  // hostile duration cannot overflow).
  [[nodiscard]] std::int64_t end_ns() const noexcept {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(start_ns()) +
                                     static_cast<std::uint64_t>(duration_ns()));
  }
  [[nodiscard]] std::uint64_t thread_id() const noexcept;
  // The name of the thread that began it (format 1.2); "" when it has none or the file
  // is older.
  [[nodiscard]] std::string_view thread_name() const noexcept;
  // From the span's detail entry, when it has one.
  [[nodiscard]] bool has_tokens() const noexcept;
  [[nodiscard]] TokenUsage tokens() const noexcept;
  [[nodiscard]] std::string_view model() const noexcept;
  [[nodiscard]] std::uint32_t flags() const noexcept;
  // Everything, copied out.
  [[nodiscard]] SpanData to_span_data() const;

 private:
  friend class TraceView;
  SpanView(const TraceView* t, std::uint32_t i) : trace_(t), index_(i) {}
  const void* detail() const noexcept;
  const TraceView* trace_;
  std::uint32_t index_;
};

class TraceView {
 public:
  [[nodiscard]] TraceId trace_id() const noexcept;
  [[nodiscard]] std::string_view root_name() const noexcept;
  [[nodiscard]] std::uint32_t part() const noexcept;
  [[nodiscard]] bool partial() const noexcept;
  [[nodiscard]] DropCounts drops() const noexcept;
  [[nodiscard]] std::size_t span_count() const noexcept;
  [[nodiscard]] SpanView span(std::size_t i) const noexcept { return SpanView(this, static_cast<std::uint32_t>(i)); }
  // The whole trace as a model value (service and process from the file header).
  [[nodiscard]] AssembledTrace materialize() const;

  class Spans {
   public:
    struct Iterator {
      const TraceView* t;
      std::uint32_t i;
      SpanView operator*() const noexcept { return t->span(i); }
      Iterator& operator++() noexcept {
        ++i;
        return *this;
      }
      bool operator!=(const Iterator& o) const noexcept { return i != o.i; }
    };
    [[nodiscard]] Iterator begin() const noexcept { return {t_, 0}; }
    [[nodiscard]] Iterator end() const noexcept { return {t_, static_cast<std::uint32_t>(t_->span_count())}; }
    const TraceView* t_;
  };
  [[nodiscard]] Spans spans() const noexcept { return Spans{this}; }

 private:
  friend class BatchView;
  friend class SpanView;
  friend class Reader;
  const void* trace_ = nullptr;
  const class BatchView* batch_ = nullptr;
};

class BatchView {
 public:
  BatchView() = default;
  BatchView(const BatchView&) = delete;
  BatchView& operator=(const BatchView&) = delete;
  [[nodiscard]] std::size_t trace_count() const noexcept;
  [[nodiscard]] const TraceView& trace(std::size_t i) const noexcept { return traces_[i]; }
  [[nodiscard]] std::string_view string(std::uint32_t index) const noexcept;
  [[nodiscard]] std::uint64_t thread(std::uint32_t index) const noexcept;
  // The name of thread `index` (format 1.2; one a thread per batch); "" when it has none
  // or the file is older.
  [[nodiscard]] std::string_view thread_name(std::uint32_t index) const noexcept;
  // Of its frame (a file of the record log, FileInfo::records: in the assembled form).
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  [[nodiscard]] const FileInfo& info() const noexcept { return *info_; }
  // Strings of the batch that were not valid UTF-8 (a damaged or foreign file): string()
  // gives them repaired, U+FFFD for each bad sequence, so every output stays valid UTF-8.
  [[nodiscard]] std::size_t repaired_strings() const noexcept { return repaired_.size(); }

 private:
  friend class Reader;
  friend class TraceView;
  std::vector<std::pair<std::uint32_t, std::string>> repaired_;  // by index, ascending
  const void* batch_ = nullptr;
  const FileInfo* info_ = nullptr;
  std::uint64_t offset_ = 0;
  std::unique_ptr<TraceView[]> traces_;
  std::size_t trace_capacity_ = 0;
};

struct FileEndInfo {
  std::uint64_t traces = 0;
  std::uint64_t spans = 0;
  std::uint64_t batches = 0;
  // Format 1.1 (0 in older files): frames the writer could not write and what they held,
  // and the run's drops as the writer summed them.
  std::uint64_t lost_frames = 0;
  std::uint64_t lost_traces = 0;
  std::uint64_t lost_spans = 0;
  std::uint64_t spans_dropped = 0;
  std::uint64_t records_dropped = 0;
  std::uint64_t sink_dropped_spans = 0;
  // Format 1.3: the process crashed, and the crash flush wrote this end frame (0: it did not).
  int crash_signal = 0;
  std::uint64_t crash_address = 0;
  // Format 1.4: strobe recover rebuilt the file after its process died unannounced.
  bool recovered = false;
};

// What the writer said it failed to write, as of the latest frame read.
struct WriteLoss {
  std::uint64_t frames = 0;
  std::uint64_t traces = 0;
  std::uint64_t spans = 0;
};

// What assemble() wrote, and what it met in the record log.
struct AssembleResult {
  std::uint64_t traces = 0;
  std::uint64_t spans = 0;
  std::uint64_t batches = 0;
  // Damage in the log (a flipped bit, a file cut short): the assembly ended there, as a
  // Reader's does, and `out` holds the traces before it (their open spans incomplete).
  std::optional<ReadError> error;
};

class Reader {
 public:
  // Maps the file and reads its header. Throws ReadError (naming the file and offset) if
  // it cannot be opened, is a directory, is empty, is not a strobe file, was written by a
  // newer major version, or has a damaged header.
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  [[nodiscard]] const FileInfo& info() const noexcept;
  // The next verified batch. False at the end of the file or at the first damaged frame;
  // then error() says what and where. Batches before the damage were returned.
  bool next(BatchView& out);
  [[nodiscard]] const std::optional<ReadError>& error() const noexcept;
  // The file's end frame was read: the writer closed it cleanly.
  [[nodiscard]] bool ended_cleanly() const noexcept;
  [[nodiscard]] const FileEndInfo& end_info() const noexcept;
  // Batch frames the writer failed to write, as the latest batch (or the end frame) read
  // says: a file can be intact and still miss data its run produced.
  [[nodiscard]] WriteLoss write_loss() const noexcept;
  // Strings not valid UTF-8 in the batches read so far (see BatchView::repaired_strings).
  [[nodiscard]] std::uint64_t repaired_strings() const noexcept;
  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] const std::string& path() const noexcept;

 private:
  Reader(const std::string& path, bool assemble_log);  // false: a record log is left as it is
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend AssembleResult assemble(const std::string& log, const std::string& out);
};

// Assembles a file of the record log (Assembly::deferred, FileInfo::records) once:
// writes `out` (created or truncated), an assembled strobe file holding what a Reader of
// `log` shows: the same batches, traces, drops and end (a crash, recovered, the frames
// the log's writer failed to write). A Reader of `out` reads it without assembling.
// `out` always ends with an end frame; damage in the log is in the result's error.
// Throws ReadError when `log` cannot be read (as Reader's constructor does),
// std::invalid_argument when it is not a record log (already assembled), and
// std::system_error when `out` cannot be written (what was written stays, cut back to its
// last whole frame).
AssembleResult assemble(const std::string& log, const std::string& out);

// Reads every trace of a file into memory (small files, tests). A bad header throws
// ReadError; later damage goes to *error when given (the traces before it are returned),
// else it is thrown.
std::vector<AssembledTrace> read_all(const std::string& path, std::optional<ReadError>* error = nullptr);

}  // namespace strobe::serialize
