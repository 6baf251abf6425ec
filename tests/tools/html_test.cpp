// strobe html: the page embeds every span of the file, draws them all in headless
// Chromium, and shows a span's details when the URL fragment selects it
// (#select=<span id>); a 100,000-span file loads within the virtual time budget; a run
// that lost data gets a banner, and its spans that lost records are drawn marked.
//
// The pages, their strobe files and screenshots are kept under <build>/tests/artifacts/
// (the paths are printed) to look at in a browser.

#include <gtest/gtest.h>
#include <strobe/serialize/reader.hpp>
#include <strobe/serialize/writer.hpp>
#include <strobe/strobe.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "random_trace.hpp"
#include "trace_file.hpp"

#ifndef STROBE_TOOL_PATH
#error "STROBE_TOOL_PATH must name the built strobe tool"
#endif
#ifndef STROBE_TEST_ARTIFACT_DIR
#error "STROBE_TEST_ARTIFACT_DIR must name a directory for screenshots"
#endif

namespace fs = std::filesystem;
using namespace strobe;
using namespace std::chrono_literals;

namespace {

const fs::path kChromium = "/usr/bin/chromium";
constexpr int kVirtualTimeBudgetMs = 5000;

fs::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::temp_directory_path() /
                 ("strobe-html-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

fs::path artifact_dir() {
  fs::path dir = STROBE_TEST_ARTIFACT_DIR;
  fs::create_directories(dir);
  return dir;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs a shell command; returns its exit status (-1 when it did not exit normally).
int shell(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int strobe_html(const fs::path& in, const fs::path& out, const fs::path& err) {
  return shell("'" + std::string(STROBE_TOOL_PATH) + "' html '" + in.string() + "' -o '" + out.string() + "' 2>'" +
               err.string() + "'");
}

std::size_t span_count(const fs::path& file) {
  serialize::Reader r(file.string());
  serialize::BatchView b;
  std::size_t n = 0;
  while (r.next(b))
    for (std::size_t i = 0; i < b.trace_count(); ++i) n += b.trace(i).span_count();
  return n;
}

std::string span_id_of(const fs::path& file, const std::string& name) {
  for (const AssembledTrace& t : serialize::read_all(file.string()))
    for (const SpanData& s : t.spans)
      if (s.name == name) {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(s.span_id));
        return buf;
      }
  return "";
}

struct Page {
  int exit_status = -1;
  std::string dom;
  double wall_s = 0;
};

// Loads the page in headless Chromium (no network, fresh profile) and returns the DOM
// after the virtual time budget; with `screenshot`, also saves a 1400x900 screenshot.
Page load_page(const fs::path& html, const std::string& fragment, const fs::path& work,
               const fs::path& screenshot = {}) {
  static int run = 0;
  const fs::path profile = work / ("chromium-profile-" + std::to_string(++run));
  fs::create_directories(profile);
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
      "--disable-component-update --disable-sync --hide-scrollbars --window-size=1400,900 --user-data-dir='" +
      profile.string() + "' --virtual-time-budget=" + std::to_string(kVirtualTimeBudgetMs);
  const std::string url = "'file://" + html.string() + (fragment.empty() ? "" : "#" + fragment) + "'";
  const fs::path dom = work / ("dom-" + std::to_string(run) + ".html");
  const fs::path log = work / ("chromium-" + std::to_string(run) + ".log");
  Page page;
  const auto t0 = std::chrono::steady_clock::now();
  page.exit_status = shell("timeout 120 " + kChromium.string() + " " + flags + " --dump-dom " + url + " >'" +
                           dom.string() + "' 2>'" + log.string() + "'");
  page.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  page.dom = read_text(dom);
  if (!screenshot.empty()) {
    fs::remove_all(profile);
    fs::create_directories(profile);
    shell("timeout 120 " + kChromium.string() + " " + flags + " --screenshot='" + screenshot.string() + "' " + url +
          " >>'" + log.string() + "' 2>&1");
  }
  return page;
}

// The text of the element with this id (tags stripped, entities of & < > " decoded).
std::string element_text(const std::string& dom, const std::string& id) {
  const std::size_t at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "<no #" + id + ">";
  const std::size_t open = dom.rfind('<', at);
  std::size_t name_end = dom.find_first_of(" >", open + 1);
  const std::string tag = dom.substr(open + 1, name_end - open - 1);
  // Balance nested elements of the same tag.
  std::size_t pos = dom.find('>', at) + 1, depth = 1;
  std::size_t end = pos;
  while (depth > 0) {
    const std::size_t next_open = dom.find("<" + tag, pos), next_close = dom.find("</" + tag + ">", pos);
    if (next_close == std::string::npos) return "<unclosed #" + id + ">";
    if (next_open != std::string::npos && next_open < next_close) {
      ++depth;
      pos = next_open + 1;
    } else {
      --depth;
      end = next_close;
      pos = next_close + 1;
    }
  }
  std::string inner = dom.substr(dom.find('>', at) + 1, end - dom.find('>', at) - 1);
  inner = std::regex_replace(inner, std::regex("<[^>]*>"), " ");
  for (auto [from, to] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}})
    for (std::size_t p; (p = inner.find(from)) != std::string::npos;) inner.replace(p, std::string(from).size(), to);
  return inner;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// A support agent: attributes of every type, an event, a log, input/output, tags; a
// parallel group of tools on three threads (one failing with error data); an LLM with
// model and tokens; an operation suspended on one thread and resumed on another; a custom
// kind; and a second trace.
void record_small(const fs::path& path) {
  auto file = std::make_shared<serialize::FileSink>(serialize::FileSinkOptions{.path = path.string()});
  Recorder rec(Config{.service_name = "html-test", .sinks = {file}});
  {
    auto run = strobe::trace("support-agent", {{"user", "u-42"}});
    run.tag("nightly");
    {
      STROBE_SPAN(plan, "plan_answer", Kind::plan);
      plan.input("how do I reset my password?").output("search the knowledge base, then answer");
      plan.attr("strategy", "kb-first").attr("max_steps", 4).attr("temperature", 0.5).attr("stream", true);
      plan.attr("note", "</script><script>window.injected = 1</script><!-- x");
      plan.event("retrieved", {{"docs", 3}, {"source", "kb"}});
      plan.log("planning done");
      std::this_thread::sleep_for(2ms);
    }
    const Context ctx = strobe::current();
    std::barrier all_started(3);  // the three overlap however late their threads start
    std::vector<std::thread> tools;
    for (int w = 0; w < 3; ++w) {
      tools.emplace_back([ctx, w, &all_started] {
        ContextScope scope(ctx);
        auto s = strobe::span(w == 0 ? "search_kb" : w == 1 ? "lookup_user" : "fetch_policy", Kind::tool);
        s.attr("attempt", w + 1);
        if (w == 2) s.error("upstream returned 502", "{\"status\": 502}");
        all_started.arrive_and_wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(10 + 5 * w));
      });
    }
    for (auto& t : tools) t.join();
    {
      STROBE_SPAN(gen, "generate_reply", Kind::llm);
      gen.model("tiny-llm").tokens({.input = 120, .output = 48, .cached_input = 16}).output("Open Settings > Account.");
      std::this_thread::sleep_for(3ms);
    }
    SuspendToken token;
    {
      auto op = strobe::span("await_approval", Kind::action);
      op.attr("ticket", 7);
      std::this_thread::sleep_for(2ms);
      token = op.suspend();
    }
    std::this_thread::sleep_for(8ms);
    std::thread([token] {
      auto again = strobe::resume(token);
      again.attr("approved", true);
      std::this_thread::sleep_for(2ms);
    }).join();
    {
      auto custom = strobe::span("rerank", "reranker");
      std::this_thread::sleep_for(1ms);
    }
  }
  {
    auto second = strobe::trace("nightly-eval");
    STROBE_SPAN(score, "score_answers", Kind::step);
    std::this_thread::sleep_for(1ms);
  }
  rec.flush();
}

// 10 traces of exactly 10,000 spans: per trace a root, a plan, an LLM call suspended and
// resumed (2 segments of 16 decode steps), and 4 pooled workers in parallel, each with 249
// batches of 9 items (every 50th batch's first item fails).
constexpr std::size_t kLargeSpans = 100'000;
void record_large(const fs::path& path) {
  auto file = std::make_shared<serialize::FileSink>(serialize::FileSinkOptions{.path = path.string()});
  Recorder rec(Config{.ring_capacity = 1u << 14, .overflow = OverflowPolicy::wait, .service_name = "html-large",
                      .sinks = {file}});
  constexpr int kTraces = 10, kWorkers = 4;
  std::barrier sync(kWorkers + 1);
  Context ctx;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int t = 0; t < kTraces; ++t) {
        sync.arrive_and_wait();  // ctx holds this trace's root
        {
          ContextScope scope(ctx);
          auto worker = strobe::span("worker", Kind::tool, {{"worker", w}});
          for (int b = 0; b < 249; ++b) {
            STROBE_SPAN(batch, "batch", Kind::step);
            batch.attr("index", b);
            for (int i = 0; i < 9; ++i) {
              auto item = strobe::span(i % 3 == 0 ? "tokenize" : i % 3 == 1 ? "embed" : "score",
                                       i % 3 == 1 ? Kind::retrieval : Kind::span);
              if (i == 0 && b % 50 == 0) item.fail("bad input");
            }
          }
        }
        sync.arrive_and_wait();  // this trace's work is done
      }
    });
  }
  for (int t = 0; t < kTraces; ++t) {
    auto root = strobe::trace("batch-agent", {{"run", t}});
    { STROBE_SPAN(plan, "plan", Kind::plan); }
    SuspendToken token;
    {
      auto llm = strobe::span("summarize", Kind::llm);
      llm.model("tiny-llm");
      for (int i = 0; i < 16; ++i) {
        STROBE_SPAN(step, "decode", Kind::step);
      }
      token = llm.suspend();
    }
    ctx = strobe::current();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    auto again = strobe::resume(token);
    for (int i = 0; i < 16; ++i) {
      STROBE_SPAN(step, "decode", Kind::step);
    }
  }
  for (auto& w : workers) w.join();
  rec.flush();
}

}  // namespace

TEST(Html, UnreadableFileFailsBeforeWritingOutput) {
  const fs::path dir = temp_dir();
  const fs::path out = dir / "missing.html";
  EXPECT_EQ(strobe_html(dir / "missing.strobe", out, dir / "err.txt"), 3);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(read_text(dir / "err.txt").find("strobe: "), std::string::npos);
  fs::remove_all(dir);
}

TEST(Html, PageIsSelfContainedAndDataCannotCloseItsScript) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "small.strobe", html = dir / "small.html";
  record_small(file);
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const std::string page = read_text(html);
  // The data's "</script>" is escaped, so the page has its own two closing tags only.
  EXPECT_EQ(count(page, "</script"), 2u);
  EXPECT_EQ(count(page, "<!--"), 1u) << "only the page's own leading comment";
  EXPECT_NE(page.find("<\\/script><script>window.injected = 1<\\/script>\\u003c!-- x"), std::string::npos);
  // Nothing is fetched: no external scripts, styles, fonts or images.
  for (const char* ref : {"src=", "href=", "@import", "url(", "http://", "https://"})
    EXPECT_EQ(page.find(ref), std::string::npos) << ref;
  fs::remove_all(dir);
}

TEST(Html, EverySpanIsDrawnAndSelectingOneShowsItsDetails) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path file = artifact_dir() / "html_small.strobe", html = artifact_dir() / "html_small.html";
  record_small(file);
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  std::printf("[ page       ] %s\n", html.string().c_str());
  const std::size_t spans = span_count(file);
  ASSERT_EQ(spans, 11u);

  const std::string plan_id = span_id_of(file, "plan_answer");
  const fs::path shot = artifact_dir() / "html_small_timeline.png";
  const Page page = load_page(html, "select=" + plan_id, dir, shot);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  EXPECT_EQ(element_text(page.dom, "span-count"), std::to_string(spans));
  EXPECT_EQ(element_text(page.dom, "rendered-count"), std::to_string(spans)) << "every span drawn in the full view";
  EXPECT_EQ(page.dom.find("window.injected = 1</script>"), std::string::npos);

  const std::string details = element_text(page.dom, "details");
  for (const char* want : {"plan_answer", "plan", "strategy", "kb-first", "max_steps", "4", "temperature", "0.5",
                           "stream", "true", "retrieved", "docs", "source", "planning done",
                           "how do I reset my password?", "search the knowledge base, then answer"})
    EXPECT_NE(details.find(want), std::string::npos) << "#details lacks \"" << want << "\":\n" << details;
  EXPECT_NE(details.find(plan_id), std::string::npos);
  std::printf("[ screenshot ] %s\n", shot.string().c_str());
  EXPECT_TRUE(fs::exists(shot) && fs::file_size(shot) > 10'000) << shot;

  // A failed tool: status, error message and data; its parallel group.
  const Page failed = load_page(html, "select=" + span_id_of(file, "fetch_policy"), dir);
  const std::string fd = element_text(failed.dom, "details");
  for (const char* want : {"fetch_policy", "failed", "upstream returned 502", "{\"status\": 502}", "Parallel group", "3 spans"})
    EXPECT_NE(fd.find(want), std::string::npos) << "#details lacks \"" << want << "\":\n" << fd;

  // The graph view: the resumed segment of the suspended operation, with its wait.
  const fs::path graph_shot = artifact_dir() / "html_small_graph.png";
  const std::vector<AssembledTrace> traces = serialize::read_all(file.string());
  std::string resumed_id;
  for (const AssembledTrace& t : traces)
    for (const SpanData& s : t.spans)
      if (s.name == "await_approval" && s.segment_index == 1) {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(s.span_id));
        resumed_id = buf;
      }
  ASSERT_FALSE(resumed_id.empty());
  const Page graph = load_page(html, "view=graph&select=" + resumed_id, dir, graph_shot);
  const std::string gd = element_text(graph.dom, "details");
  for (const char* want : {"await_approval", "approved", "Suspended op", "2 of 2", "waited"})
    EXPECT_NE(gd.find(want), std::string::npos) << "#details lacks \"" << want << "\":\n" << gd;
  std::printf("[ screenshot ] %s\n", graph_shot.string().c_str());
  fs::remove_all(dir);
}

// Every field kind the model has: 64-bit ids and threads, extreme integers, infinities,
// NULs and multi-byte text, long strings, parts whose parents lie in earlier parts, chains
// split over parts. The page must load all of it without a script error.
TEST(Html, RandomTracesOfEveryFieldKindLoadWithoutErrors) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path file = dir / "random.strobe", html = dir / "random.html";
  std::size_t spans = 0;
  std::string some_id;
  {
    serialize::FileSink sink({.path = file.string(), .batch_spans = 64});
    strobe::test::RandomTraces gen(11);
    for (int i = 0; i < 60; ++i) {
      const AssembledTrace t = gen.next();
      spans += t.spans.size();
      if (some_id.empty() && !t.spans.empty()) {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(t.spans.back().span_id));
        some_id = buf;
      }
      sink.consume(t);
    }
  }
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const Page page = load_page(html, "select=" + some_id, dir);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  EXPECT_NE(page.dom.find("data-ready=\"1\""), std::string::npos);
  EXPECT_EQ(element_text(page.dom, "span-count"), std::to_string(spans));
  EXPECT_NE(element_text(page.dom, "details").find(some_id), std::string::npos);
  fs::remove_all(dir);
}

// A run that dropped spans and records, with a span that lost records and a placeholder
// for a span whose begin was lost: the page's data says so, a banner says so, and both
// spans are drawn marked. A run that lost nothing has no banner.
TEST(Html, ALossyRunGetsABannerAndItsDamagedSpansAreMarked) {
  const fs::path dir = temp_dir();
  const fs::path file = artifact_dir() / "html_loss.strobe", html = artifact_dir() / "html_loss.html";
  constexpr std::int64_t t0 = 1'767'225'601'000'000'000, ms = 1'000'000;
  AssembledTrace t = strobe::test::make_trace(0xeeee, 1, "ingest",
                                              {strobe::test::make_span(1, 0, "ingest", t0, t0 + 50 * ms, Kind::agent),
                                               strobe::test::make_span(2, 1, "parse", t0 + ms, t0 + 20 * ms),
                                               strobe::test::make_span(3, 1, "<lost span>", t0 + 21 * ms, t0 + 40 * ms),
                                               strobe::test::make_span(4, 3, "decode", t0 + 22 * ms, t0 + 39 * ms),
                                               strobe::test::make_span(5, 1, "store", t0 + 41 * ms, t0 + 49 * ms)});
  t.drops_since_previous = DropCounts{3, 8};
  t.spans[1].flags = kSpanLostRecords;
  t.spans[2].flags = kSpanPlaceholder;
  strobe::test::write_strobe(file.string(), {t});
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const std::string page = read_text(html);
  EXPECT_NE(page.find(R"x("loss":{"lost_data":true,"summary":"3 spans dropped (37.50% of the run's spans), )x"
                      R"x(8 records dropped, 1 span lost records, 1 placeholder (begin lost)","spans_dropped":3,)x"
                      R"x("sink_spans_dropped":0,"records_dropped":8,"spans_lost_records":1,"placeholders":1,"orphans":0,)x"
                      R"x("names_lost":0,"unwritten_batches":0,)x"),
            std::string::npos);
  std::printf("[ page       ] %s\n", html.string().c_str());

  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path shot = artifact_dir() / "html_loss_timeline.png";
  const Page loaded = load_page(html, "", dir, shot);
  ASSERT_EQ(loaded.exit_status, 0);
  EXPECT_EQ(element_text(loaded.dom, "error"), "");
  const std::string banner = element_text(loaded.dom, "loss-banner");
  for (const char* want : {"This run lost data", "3 spans dropped", "8 records dropped", "1 span lost records",
                           "1 placeholder (begin lost)", "ingest 000000000000eeee0000000000000001"})
    EXPECT_NE(banner.find(want), std::string::npos) << "#loss-banner lacks \"" << want << "\": " << banner;
  EXPECT_EQ(element_text(loaded.dom, "loss-marked"), "2");
  EXPECT_NE(loaded.dom.find("data-lost-drawn=\"2\""), std::string::npos) << "both spans drawn marked";
  EXPECT_EQ(element_text(loaded.dom, "rendered-count"), "5");
  std::printf("[ screenshot ] %s\n", shot.string().c_str());

  const Page selected = load_page(html, "select=0000000000000002", dir);
  EXPECT_NE(element_text(selected.dom, "details").find("records lost"), std::string::npos)
      << element_text(selected.dom, "details");

  // Nothing lost: no banner.
  const fs::path clean = dir / "clean.strobe", clean_html = dir / "clean.html";
  t.drops_since_previous = DropCounts{};
  t.spans[1].flags = 0;
  t.spans[2].flags = 0;
  strobe::test::write_strobe(clean.string(), {t});
  ASSERT_EQ(strobe_html(clean, clean_html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const Page quiet = load_page(clean_html, "", dir);
  EXPECT_NE(quiet.dom.find("id=\"loss-banner\" role=\"status\" hidden"), std::string::npos)
      << "the banner stays hidden";
  EXPECT_NE(quiet.dom.find("data-lost-drawn=\"0\""), std::string::npos);
  fs::remove_all(dir);
}

TEST(Html, HundredThousandSpansLoadWithinTheBudget) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path file = artifact_dir() / "html_100k.strobe", html = artifact_dir() / "html_100k.html";
  record_large(file);
  ASSERT_EQ(span_count(file), kLargeSpans);

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto bytes = fs::file_size(html);
  const double per_span = static_cast<double>(bytes) / kLargeSpans;
  std::printf("[ html size  ] %ju bytes for %zu spans: %.1f bytes/span (written in %.2f s; the .strobe file: %.1f bytes/span)\n",
              static_cast<std::uintmax_t>(bytes), kLargeSpans, per_span, write_s,
              static_cast<double>(fs::file_size(file)) / kLargeSpans);
  EXPECT_LT(per_span, 60.0) << "the embedded data should stay compact";

  const fs::path shot = artifact_dir() / "html_100k_timeline.png";
  const Page page = load_page(html, "", dir, shot);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  EXPECT_NE(page.dom.find("data-ready=\"1\""), std::string::npos) << "the page did not finish within the budget";
  EXPECT_EQ(element_text(page.dom, "span-count"), std::to_string(kLargeSpans));
  EXPECT_EQ(element_text(page.dom, "rendered-count"), std::to_string(kLargeSpans));
  std::smatch timings;
  std::regex_search(page.dom, timings, std::regex("data-timings=\"([^\"]*)\""));
  std::printf("[ load time  ] page ready %s ms after navigation (%s); headless run %.2f s wall\n",
              element_text(page.dom, "load-ms").c_str(), timings.size() > 1 ? timings[1].str().c_str() : "?",
              page.wall_s);
  std::printf("[ page       ] %s\n", html.string().c_str());
  std::printf("[ screenshot ] %s\n", shot.string().c_str());

  // Selecting a deep span still finds it and reveals it in the capped graph.
  const Page graph = load_page(html, "view=graph&select=" + span_id_of(file, "score"), dir,
                               artifact_dir() / "html_100k_graph.png");
  EXPECT_NE(element_text(graph.dom, "details").find("score"), std::string::npos);
  EXPECT_NE(graph.dom.find("data-ready=\"1\""), std::string::npos);
  fs::remove_all(dir);
}
