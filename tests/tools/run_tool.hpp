#pragma once
// Runs the built `strobe` tool (STROBE_TOOL_PATH), or another program, as a child process
// and captures what it says, for the tool tests:
//
//   strobe::test::Run r = strobe::test::run_tool({"tree", golden("golden.strobe")});
//   EXPECT_EQ(r.exit_status, 0) << r.err;
//   EXPECT_EQ(r.out, read_text(golden("golden.tree.txt")));
//
// Also: the golden data directory (STROBE_TEST_DATA), file helpers, a per-test scratch
// directory (TempDir), and a line diff that makes a golden mismatch readable.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

// Tests that crash or kill a child: sanitizers install their own crash handlers.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STROBE_SKIP_CRASH GTEST_SKIP() << "sanitizers install their own crash handlers"
#else
#define STROBE_SKIP_CRASH (void)0
#endif

namespace strobe::test {

#ifndef STROBE_TOOL_PATH
#error "STROBE_TOOL_PATH must name the built strobe tool"
#endif
#ifndef STROBE_TEST_DATA
#error "STROBE_TEST_DATA must name tests/tools/data"
#endif

inline std::string tool_path() { return STROBE_TOOL_PATH; }
inline std::string golden(const std::string& name) { return std::string(STROBE_TEST_DATA) + "/" + name; }

struct Run {
  int exit_status = -1;  // -1 when it did not exit normally
  int signal = 0;        // the signal that ended it, 0 when it exited
  bool timed_out = false;
  std::string out, err;

  [[nodiscard]] std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // For assertion messages.
  [[nodiscard]] std::string describe() const {
    std::string d = "exit " + std::to_string(exit_status);
    if (signal) d += ", killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    if (timed_out) d += ", timed out";
    d += "\n--- stderr ---\n" + err + "--- stdout (first 2000 bytes) ---\n" + out.substr(0, 2000);
    return d;
  }
};

// Runs `program` (a path, or a name looked up in PATH) with `args`, stdin from
// /dev/null; kills it after `timeout_s` seconds.
inline Run run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s = 60) {
  Run r;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  const std::string& path = program;
  std::vector<std::string> argv_store{program.substr(program.rfind('/') + 1)};
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ADD_FAILURE() << "cannot run " << path << ": " << std::strerror(rc);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[1 << 16];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000))) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) r.exit_status = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) r.signal = WTERMSIG(wstatus);
  return r;
}

// Runs the tool with `args`, stdin from /dev/null; kills it after `timeout_s` seconds.
inline Run run_tool(const std::vector<std::string>& args, int timeout_s = 60) {
  return run_program(tool_path(), args, timeout_s);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

// A fresh directory for the running test under the system temp dir, removed with it.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("strobe-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t nl = text.find('\n', at);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(at));
      break;
    }
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

// "" when equal; else a unified-diff-like excerpt around the first differing line
// ("-" expected, "+" actual), with line numbers.
inline std::string line_diff(const std::string& want, const std::string& got) {
  if (want == got) return "";
  const std::vector<std::string> a = split_lines(want), b = split_lines(got);
  std::size_t first = 0;
  while (first < a.size() && first < b.size() && a[first] == b[first]) ++first;
  std::size_t tail = 0;
  while (tail < a.size() - first && tail < b.size() - first && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) ++tail;
  std::ostringstream d;
  d << "first difference at line " << first + 1 << " (expected " << a.size() << " lines, got " << b.size() << ")\n";
  const std::size_t from = first >= 2 ? first - 2 : 0;
  d << "@@ line " << from + 1 << " @@\n";
  for (std::size_t i = from; i < first; ++i) d << "  " << a[i] << "\n";
  const std::size_t a_end = a.size() - tail, b_end = b.size() - tail;
  constexpr std::size_t kMaxShown = 30;
  for (std::size_t i = first; i < a_end && i < first + kMaxShown; ++i) d << "- " << a[i] << "\n";
  for (std::size_t i = first; i < b_end && i < first + kMaxShown; ++i) d << "+ " << b[i] << "\n";
  for (std::size_t i = b_end; i < b.size() && i < b_end + 2; ++i) d << "  " << b[i] << "\n";
  if (want.size() && got.size() && (want.back() == '\n') != (got.back() == '\n')) d << "(trailing newline differs)\n";
  return d.str();
}

}  // namespace strobe::test
