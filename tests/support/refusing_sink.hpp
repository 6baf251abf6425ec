#pragma once
// A sink that stores the record log in a FileSink but refuses the second chunk that holds
// spans, as a full disk would, and remembers what that chunk held: the recorder's resync
// and the loss counts after it can then be checked without filling a disk.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

#include "strobe/serialize/writer.hpp"
#include "strobe/sink.hpp"

namespace strobe::test {

class RefusesOneChunk final : public Sink {
 public:
  explicit RefusesOneChunk(std::shared_ptr<serialize::FileSink> file) : file_(std::move(file)) {}
  void open(const RecorderInfo& info) override { file_->open(info); }
  void consume(const AssembledTrace&) override {}
  [[nodiscard]] bool takes_records() const noexcept override { return true; }
  void consume_records(const void* data, std::size_t bytes, std::uint64_t records, std::uint64_t spans) override {
    if (spans != 0 && ++with_spans_ == 2) {
      refused_spans_ = spans;
      throw std::runtime_error("refused");
    }
    file_->consume_records(data, bytes, records, spans);
  }
  void flush() override { file_->flush(); }
  // The spans of the chunk refused (sink thread; read it after a flush).
  [[nodiscard]] std::uint64_t refused_spans() const { return refused_spans_; }

 private:
  std::shared_ptr<serialize::FileSink> file_;
  int with_spans_ = 0;
  std::uint64_t refused_spans_ = 0;
};

}  // namespace strobe::test
