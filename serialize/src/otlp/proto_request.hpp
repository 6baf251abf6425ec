#pragma once
// An ExportTraceServiceRequest in two parts, for OtlpSink: its head (request,
// ResourceSpans, Resource, ScopeSpans, scope), and its spans, sized first (to put the
// lengths in the head) and written when libcurl asks for the body, straight into its
// upload buffer: no request body in between for libcurl to copy from. The bytes are those
// RequestWriter makes of the same spans (request_writer.cpp).

#include <strobe/serialize/otlp.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strobe::serialize::otlp::detail {

struct SpanTemplate;

// The spans of one request. Not thread-safe. A CompactTrace's plain spans are copies of
// templates kept across batches, the others encoded when sized (kept until written).
class ProtoBatch {
 public:
  ProtoBatch();
  ~ProtoBatch();
  ProtoBatch(const ProtoBatch&) = delete;
  ProtoBatch& operator=(const ProtoBatch&) = delete;

  // Empties the batch (the current trace stays current).
  void clear();
  // The spans measured next are this trace's; it must outlive the batch's writing.
  void begin_trace(const CompactTrace& trace);
  void begin_trace(const AssembledTrace& trace);
  // The bytes span `index` of the current trace takes in the request (its
  // ScopeSpans.spans field); add() then puts it in the batch. A span measured and not
  // added must be measured again after clear().
  [[nodiscard]] std::size_t measure(std::size_t index);
  void add() {
    if (parts_.empty() || parts_.back().compact != compact_ || parts_.back().assembled != assembled_ ||
        parts_.back().first + parts_.back().count != index_) {
      parts_.push_back(Part{compact_, assembled_, index_, 0});
    }
    ++parts_.back().count;
    plan_.push_back(measured_);
    bytes_ += measured_bytes_;
  }
  [[nodiscard]] std::size_t spans() const noexcept { return plan_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

  // The batch's spans' bytes in order: rewind(), then write() until it gives 0.
  void rewind();
  [[nodiscard]] std::size_t write(char* out, std::size_t room);

 private:
  struct Part {  // consecutive spans of one trace
    const CompactTrace* compact;
    const AssembledTrace* assembled;
    std::size_t first, count;
  };
  RequestWriter w_{Protocol::protobuf};
  const CompactTrace* compact_ = nullptr;
  const AssembledTrace* assembled_ = nullptr;
  std::vector<Part> parts_;
  std::vector<const SpanTemplate*> plan_;  // a span's template, or nullptr: its bytes in other_
  std::string other_;                      // the spans without a template, in order
  std::size_t bytes_ = 0;
  std::size_t index_ = 0;                  // measured
  const SpanTemplate* measured_ = nullptr;
  std::size_t measured_bytes_ = 0;
  // Writing: the next span is parts_[part_].first + row_, plan_[span_]; other_ from other_at_.
  std::size_t part_ = 0, row_ = 0, span_ = 0, other_at_ = 0;
  std::string stage_;  // a span cut by the end of a write()'s room: its rest from stage_at_
  std::size_t stage_at_ = 0;
};

// The Resource message's fields, appended to `out`.
void put_resource(const Resource& resource, std::string& out);
// At least the head's size for a resource of `resource_size` bytes: a request of
// head_bound() + the spans' bytes is within the limit it is checked against.
[[nodiscard]] std::size_t head_bound(std::size_t resource_size) noexcept;
// The head of a request whose ScopeSpans.spans fields take `spans_bytes` bytes, into `out`
// (replaced).
void put_request_head(std::string_view resource_fields, std::size_t spans_bytes, std::string& out);


}  // namespace strobe::serialize::otlp::detail
