// Writes the reader fuzzer's seed corpus: small valid strobe files of various shapes.
// Usage: strobe_fuzz_corpus <dir>

#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "random_trace.hpp"

namespace fs = std::filesystem;
using namespace strobe;
using namespace strobe::serialize;

namespace {

RecorderInfo info() {
  RecorderInfo i;
  i.service_name = "fuzz-seed";
  i.host_name = "host";
  i.process_id = 1;
  i.start_ns = 1'700'000'000'000'000'000;
  i.clock = "steady";
  return i;
}

void random_file(const fs::path& path, std::uint64_t seed, std::size_t traces, std::size_t max_spans,
                 std::size_t batch_spans) {
  strobe::test::RandomTraces gen(seed, {.max_spans = max_spans, .long_string_share = 0});
  FileSink sink({.path = path.string(), .batch_spans = batch_spans});
  sink.open(info());
  for (std::size_t i = 0; i < traces; ++i) sink.consume(gen.next());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  try {
    fs::create_directories(dir);
    {  // header and end frame only
      FileSink sink({.path = (dir / "seed-empty.strobe").string()});
      sink.open(info());
    }
    {  // one plain span
      FileSink sink({.path = (dir / "seed-one-span.strobe").string()});
      sink.open(info());
      AssembledTrace t;
      t.trace_id = TraceId{1, 2};
      t.root_name = "root";
      t.spans.push_back(strobe::test::RandomTraces::plain_span(7, 0, "root", Kind::agent, 100, 200, 42));
      sink.consume(t);
    }
    // Every field kind, one batch and several.
    random_file(dir / "seed-rich-one-batch.strobe", 1, 3, 8, 1000);
    random_file(dir / "seed-rich-batches.strobe", 2, 8, 5, 6);
    random_file(dir / "seed-rich-large-traces.strobe", 3, 2, 30, 1000);
    {  // written and flushed but never closed: no end frame
      const fs::path open_path = dir / "open.tmp";
      strobe::test::RandomTraces gen(4, {.max_spans = 6, .long_string_share = 0});
      FileSink sink({.path = open_path.string()});
      sink.open(info());
      for (int i = 0; i < 3; ++i) sink.consume(gen.next());
      sink.flush();
      fs::copy_file(open_path, dir / "seed-no-end-frame.strobe", fs::copy_options::overwrite_existing);
      sink.close();
      fs::remove(open_path);
    }
    {  // the record log of a recorder that defers assembly (format 1.5): assembled on read
      auto sink = std::make_shared<FileSink>(FileSinkOptions{.path = (dir / "seed-record-log.strobe").string()});
      strobe::Recorder rec(strobe::Config{.partial_trace_spans = 8, .sinks = {sink}, .assembly = strobe::Assembly::deferred});
      {
        auto root = strobe::trace("request", {{"user", "u-1"}});
        for (int i = 0; i < 12; ++i) {
          auto step = strobe::span("step", Kind::step);
          step.attr("i", i).attr("p", 0.5).event("token", {{"text", "a string longer than one record's inline bytes"}});
          step.next(STROBE_NAME("attention"));
        }
        rec.flush();
      }
      rec.flush();
    }
    {  // a record log whose writer lost a chunk: the recorder's resync follows it
      // Stores the log in a FileSink but for the second chunk, which it refuses (as a
      // full disk would): the recorder restates the log before the third.
      class LosesOneChunk final : public strobe::Sink {
       public:
        explicit LosesOneChunk(std::shared_ptr<FileSink> file) : file_(std::move(file)) {}
        void open(const strobe::RecorderInfo& info) override { file_->open(info); }
        void consume(const strobe::AssembledTrace&) override {}
        bool takes_records() const noexcept override { return true; }
        void consume_records(const void* data, std::size_t bytes, std::uint64_t records, std::uint64_t spans) override {
          if (++chunks_ == 2) throw std::runtime_error("lost");
          file_->consume_records(data, bytes, records, spans);
        }
        void flush() override { file_->flush(); }

       private:
        std::shared_ptr<FileSink> file_;
        int chunks_ = 0;
      };
      auto file = std::make_shared<FileSink>(FileSinkOptions{.path = (dir / "seed-record-log-resync.strobe").string()});
      strobe::Recorder rec(strobe::Config{.sinks = {std::make_shared<LosesOneChunk>(file)}});
      for (const char* name : {"first", "lost", "after"}) {
        {
          auto root = strobe::trace(name);
          strobe::span(std::string(name) + "-step", Kind::step).attr("n", 1);
        }
        rec.flush();
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strobe_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
