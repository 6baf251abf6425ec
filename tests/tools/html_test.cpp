// strobe html: the page embeds every span of the file, draws them all in headless
// Chromium, and shows a span's details when the URL fragment selects it
// (#select=<span id>); a 100,000-span file loads within the virtual time budget; a run
// that lost data gets a banner, its spans that lost records are drawn marked and the
// time axis marks where spans were dropped; a damaged file says so; the timeline's lanes
// are labelled with their threads; the graph view draws a trace's execution flow (a box
// per span, an edge per child, a parallel group side by side, a resume edge between
// segments), and its boxes answer clicks (details, opening, folded runs).
//
// Interactions run in the page itself: the test appends a script to a copy of the page
// (with_script) that clicks where strobeViewer.graphBox() says a box is and writes what
// it saw into body data-* attributes, which --dump-dom returns.
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
#include <map>
#include <memory>
#include <regex>
#include <set>
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

// A copy of the page with `script` run once the page has loaded (a timer, not an animation
// frame: under --virtual-time-budget timers run, frames may not).
fs::path with_script(const fs::path& html, const fs::path& out, const std::string& script) {
  std::string page = read_text(html);
  const std::size_t at = page.rfind("</body>");
  page.insert(at, "<script>window.addEventListener('load', () => setTimeout(() => {\n" + script + "\n}, 0));</script>\n");
  std::ofstream(out, std::ios::binary) << page;
  return out;
}

// The value of data-NAME on the page's body ("<none>" when it has none).
std::string body_data(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("<body[^>]*\\sdata-" + name + "=\"([^\"]*)\""))) return "<none>";
  std::string v = m[1].str();
  for (auto [from, to] : {std::pair{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}})
    for (std::size_t p; (p = v.find(from)) != std::string::npos;) v.replace(p, std::string(from).size(), to);
  return v;
}

// A click the way a mouse makes one, at client coordinates of the page's graph canvas.
constexpr const char* kClickJs = R"js(
  function click(x, y) {
    const c = document.getElementById('graph');
    const o = { clientX: x, clientY: y, bubbles: true, button: 0 };
    c.dispatchEvent(new MouseEvent('mousedown', o));
    c.dispatchEvent(new MouseEvent('mouseup', o));
  }
)js";

struct SpanRef {
  std::string trace_id, span_id;
};
// The spans of a file with this name, in file order, with their trace ids.
std::vector<SpanRef> spans_named(const fs::path& file, const std::string& name) {
  std::vector<SpanRef> out;
  for (const AssembledTrace& t : serialize::read_all(file.string()))
    for (const SpanData& s : t.spans)
      if (s.name == name) {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(s.span_id));
        out.push_back({t.trace_id.to_hex(), buf});
      }
  return out;
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
        if (w != 1) strobe::set_thread_name(w == 0 ? "kb-worker" : "policy-worker");  // lookup_user's keeps the OS's name
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
  EXPECT_TRUE(std::regex_search(banner, std::regex("\\b1\\s+trace affected"))) << banner;
  EXPECT_EQ(body_data(loaded.dom, "drop-marks"), "1") << "the time axis marks where the spans were dropped";
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
  EXPECT_EQ(body_data(quiet.dom, "drop-marks"), "0");
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

  // A trace of 10,000 spans opens a few hundred boxes at first; a closed worker, once
  // selected (which scrolls to it), opens its 249 batches on its toggle; the 16 decode
  // steps of the suspended LLM call are one box until clicked.
  const std::string trace = spans_named(file, "worker")[0].trace_id;
  std::string workers, decode;
  for (const SpanRef& s : spans_named(file, "worker"))
    if (s.trace_id == trace) workers += "'" + s.span_id + "', ";
  for (const SpanRef& s : spans_named(file, "decode"))
    if (s.trace_id == trace && decode.empty()) decode = s.span_id;
  const std::string script = std::string(kClickJs) + "const v = strobeViewer, workers = [" + workers +
                             "], decode = '" + decode + R"js(';
    const out = [v.graph().nodes];
    const closed = workers.find((id) => !v.graphBox(id).open);
    v.select(closed);  // scrolls the graph to it
    v.redraw();
    const w = v.graphBox(closed);
    out.push(w.open, w.hidden);
    click(w.toggleX, w.toggleY);
    out.push(v.graph().nodes);
    const d = v.graphBox(decode);
    out.push(d.run);
    click(d.clientX, d.clientY);
    out.push(v.graph().nodes, v.graphBox(decode).run);
    document.body.dataset.steps = out.join(' ');
  )js";
  const Page opened = load_page(with_script(html, dir / "open.html", script), "view=graph&trace=" + trace, dir);
  EXPECT_EQ(element_text(opened.dom, "error"), "");
  std::istringstream steps(body_data(opened.dom, "steps"));
  int before = 0, hidden = 0, after_worker = 0, run = 0, after_run = 0, run_after = -1;
  std::string was_open;
  steps >> before >> was_open >> hidden >> after_worker >> run >> after_run >> run_after;
  EXPECT_LT(before, 300) << "a big trace opens a few hundred boxes at most";
  EXPECT_EQ(was_open, "false");
  EXPECT_EQ(hidden, 249 * 10) << "a closed box says how many spans it holds";
  EXPECT_EQ(after_worker, before + 249) << body_data(opened.dom, "steps");
  EXPECT_EQ(run, 16) << "the decode steps are one folded box";
  EXPECT_EQ(after_run, after_worker + 15) << body_data(opened.dom, "steps");
  EXPECT_EQ(run_after, 0);
  fs::remove_all(dir);
}

// The graph view of the support agent's trace: a box per span, an edge per child, the
// three tools side by side in one parallel group, the children top to bottom in time
// order, one resume edge from the suspended approval to its resumed segment. A click on
// a box shows its details; its toggle closes and reopens it.
TEST(Html, GraphViewDrawsTheExecutionFlowOfATrace) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path file = artifact_dir() / "html_flow.strobe", html = artifact_dir() / "html_flow.html";
  record_small(file);
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  const std::vector<SpanRef> root = spans_named(file, "support-agent");
  ASSERT_EQ(root.size(), 1u);
  const std::vector<std::string> names = {"support-agent", "plan_answer", "lookup_user", "search_kb", "fetch_policy",
                                          "generate_reply", "await_approval", "rerank"};
  std::string ids = "{";
  for (const std::string& n : names) {
    const std::vector<SpanRef> found = spans_named(file, n);
    ASSERT_EQ(found.size(), n == "await_approval" ? 2u : 1u) << n;
    for (std::size_t k = 0; k < found.size(); ++k)
      ids += "'" + n + (found.size() > 1 ? std::to_string(k) : "") + "': '" + found[k].span_id + "', ";
  }
  ids += "}";
  const std::string script = std::string(kClickJs) + "const v = strobeViewer, ids = " + ids + R"js(;
    const out = document.body.dataset;
    out.boxes = Object.entries(ids).map(([k, id]) => {
      const b = v.graphBox(id);
      return k + '=' + (b ? b.x + ',' + b.y : 'none');
    }).join(' ');
    const tool = v.graphBox(ids.fetch_policy);
    click(tool.clientX, tool.clientY);
    out.clicked = document.getElementById('details').dataset.spanId || '';
    const top = v.graphBox(ids['support-agent']);
    click(top.toggleX, top.toggleY);
    out.closed = v.graph().nodes;
    click(top.toggleX, top.toggleY);
    out.reopened = v.graph().nodes;
  )js";
  const fs::path clicked = with_script(html, dir / "flow-click.html", script);
  const Page page = load_page(clicked, "view=graph&trace=" + root[0].trace_id.substr(0, 12), dir);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  EXPECT_EQ(body_data(page.dom, "graph-trace"), root[0].trace_id);
  EXPECT_EQ(body_data(page.dom, "graph-nodes"), "9") << "a box per span of the trace";
  EXPECT_EQ(body_data(page.dom, "graph-edges"), "8") << "an edge from the parent to each child";
  EXPECT_EQ(body_data(page.dom, "graph-groups"), "1");
  EXPECT_EQ(body_data(page.dom, "graph-group-members"), "3");
  EXPECT_EQ(body_data(page.dom, "graph-resume-edges"), "1") << "suspended segment -> resumed segment";

  // Where the boxes are: name=x,y.
  std::map<std::string, std::pair<double, double>> at;
  const std::string boxes = body_data(page.dom, "boxes");
  const std::regex box("([a-z_-]+[0-9]?)=([-0-9.]+),([-0-9.]+)");
  for (auto it = std::sregex_iterator(boxes.begin(), boxes.end(), box); it != std::sregex_iterator(); ++it)
    at[(*it)[1].str()] = {std::stod((*it)[2].str()), std::stod((*it)[3].str())};
  ASSERT_EQ(at.size(), 9u) << boxes;
  const auto x = [&](const char* n) { return at[n].first; };
  const auto y = [&](const char* n) { return at[n].second; };
  // The parallel tools side by side: one row, three columns.
  EXPECT_EQ(y("lookup_user"), y("search_kb")) << boxes;
  EXPECT_EQ(y("search_kb"), y("fetch_policy")) << boxes;
  EXPECT_EQ(std::set<double>({x("lookup_user"), x("search_kb"), x("fetch_policy")}).size(), 3u) << boxes;
  // The parent above its children; the children top to bottom in time order.
  const std::vector<const char*> order = {"support-agent", "plan_answer", "search_kb", "generate_reply",
                                          "await_approval0", "await_approval1", "rerank"};
  for (std::size_t k = 1; k < order.size(); ++k) EXPECT_LT(y(order[k - 1]), y(order[k])) << order[k] << ": " << boxes;
  EXPECT_LT(x("support-agent"), x("plan_answer")) << boxes;

  EXPECT_EQ(body_data(page.dom, "clicked"), spans_named(file, "fetch_policy")[0].span_id)
      << "a click shows the box's span";
  const std::string details = element_text(page.dom, "details");
  EXPECT_NE(details.find("upstream returned 502"), std::string::npos) << details;
  EXPECT_EQ(body_data(page.dom, "closed"), "1") << "the root's toggle closes it";
  EXPECT_EQ(body_data(page.dom, "reopened"), "9");

  const fs::path shot = artifact_dir() / "html_flow_graph.png";
  load_page(html, "view=graph&trace=" + root[0].trace_id.substr(0, 12), dir, shot);
  std::printf("[ screenshot ] %s\n", shot.string().c_str());
  EXPECT_TRUE(fs::exists(shot) && fs::file_size(shot) > 10'000) << shot;
  fs::remove_all(dir);
}

// One lane per thread that began spans, labelled with the thread's name where the file
// has one (set_thread_name, else the OS's) and its id: the lane list and the file
// summary name every thread.
TEST(Html, TimelineLanesAreLabelledWithTheirThreads) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path file = dir / "small.strobe", html = dir / "small.html";
  record_small(file);
  ASSERT_EQ(strobe_html(file, html, dir / "err.txt"), 0) << read_text(dir / "err.txt");
  std::set<std::string> threads;
  std::map<std::string, std::string> names;  // thread id -> name, where the file has one
  for (const AssembledTrace& t : serialize::read_all(file.string()))
    for (const SpanData& s : t.spans) {
      threads.insert(std::to_string(s.thread_id));
      if (const std::string_view name = t.thread_name(s.thread_id); !name.empty())
        names[std::to_string(s.thread_id)] = std::string(name);
    }
  ASSERT_GE(threads.size(), 4u) << "the agent's thread, three tools' threads, the resuming thread";
  std::set<std::string> chosen;
  for (const auto& [id, name] : names) chosen.insert(name);
  ASSERT_TRUE(chosen.count("kb-worker") && chosen.count("policy-worker")) << "the file keeps the names set";

  const Page page = load_page(html, "", dir);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  std::set<std::string> lanes;
  const std::size_t from = page.dom.find("<ol id=\"lanes\"");
  const std::string list = page.dom.substr(from, page.dom.find("</ol>", from) - from);
  const std::regex lane("data-thread=\"([0-9]+)\"");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), lane); it != std::sregex_iterator(); ++it)
    lanes.insert((*it)[1].str());
  EXPECT_EQ(lanes, threads);
  const std::string text = element_text(page.dom, "lanes"), summary = element_text(page.dom, "thread-list");
  for (const std::string& t : threads) {
    const auto named = names.find(t);
    const std::string label = named == names.end() ? "thread " + t : named->second + " (thread " + t + ")";
    EXPECT_NE(text.find(label + ": "), std::string::npos) << text;
    EXPECT_NE(summary.find(label), std::string::npos) << summary;
  }
  fs::remove_all(dir);
}

// A file cut in the middle of a batch: the page shows the traces before the cut and says
// that the file is damaged.
TEST(Html, ADamagedFileSaysSoAboveTheViews) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is missing (scripts/setup.sh installs it)";
  const fs::path dir = temp_dir();
  const fs::path whole = dir / "whole.strobe", cut = dir / "cut.strobe", html = dir / "cut.html";
  constexpr std::int64_t t0 = 1'767'225'601'000'000'000, us = 1000;
  std::vector<AssembledTrace> traces;
  for (std::uint64_t t = 1; t <= 2; ++t) {
    std::vector<SpanData> spans{strobe::test::make_span(t << 8, 0, "job", t0, t0 + 900 * us, Kind::agent)};
    for (std::uint64_t k = 1; k <= 40; ++k)
      spans.push_back(strobe::test::make_span((t << 8) + k, t << 8, "step " + std::to_string(k), t0 + 20 * k * us,
                                              t0 + 20 * k * us + 10 * us));
    traces.push_back(strobe::test::make_trace(0xd0d0, t, "job", std::move(spans)));
  }
  strobe::test::write_strobe(whole.string(), traces);
  const std::string bytes = read_text(whole);
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() * 3 / 4);
  ASSERT_EQ(strobe_html(cut, html, dir / "err.txt"), 4) << read_text(dir / "err.txt");
  const Page page = load_page(html, "", dir);
  ASSERT_EQ(page.exit_status, 0);
  EXPECT_EQ(element_text(page.dom, "error"), "");
  EXPECT_NE(element_text(page.dom, "loss-banner").find("The file is damaged"), std::string::npos)
      << element_text(page.dom, "loss-banner");
  EXPECT_EQ(element_text(page.dom, "span-count"), "41") << "the trace before the cut";
  fs::remove_all(dir);
}
