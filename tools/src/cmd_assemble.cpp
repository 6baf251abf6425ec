// strobe assemble FILE -o OUT [--force]: assembles a file of the record log
// (Assembly::deferred) once, into an ordinary strobe file that every reader then reads
// without assembling it again. OUT holds what the tool shows for FILE; it is written as
// OUT.tmp and renamed, so OUT is never left half-written.

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "commands.hpp"
#include "common.hpp"
#include "strobe/serialize/reader.hpp"

namespace strobe::tool {
namespace {

// The same file, by name or by inode (a link, another spelling of the path).
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || std::filesystem::equivalent(a, b, ec);
}

}  // namespace

void add_assemble(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand(
      "assemble",
      "Assemble a file of the record log (a recorder with Assembly::deferred, the default for a FileSink alone) once, into an ordinary "
      "strobe file that reads without assembling it again; an assembled FILE is refused");
  struct Opts {
    std::string file;
    std::string out;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("FILE", o->file, "a file of the record log")->required();
  cmd->add_option("-o,--output", o->out, "the assembled file to write")->required();
  cmd->add_flag("--force", o->force, "overwrite the output if it exists");
  cmd->callback([o, &status] {
    namespace fs = std::filesystem;
    const std::string tmp = o->out + ".tmp";
    if (same_file(o->out, o->file) || same_file(tmp, o->file))
      throw ToolError(kExitUsage, "the output must not be the input: " + o->out);
    std::error_code ec;
    if (!o->force && fs::symlink_status(o->out, ec).type() != fs::file_type::not_found)
      throw ToolError(kExitUsage, o->out + " exists (--force to overwrite it)");

    struct RemoveUnlessKept {
      const std::string& path;
      bool keep = false;
      ~RemoveUnlessKept() {
        std::error_code ignored;
        if (!keep) fs::remove(path, ignored);
      }
    } partial{tmp};
    serialize::AssembleResult result;
    try {
      result = serialize::assemble(o->file, tmp);
    } catch (const serialize::ReadError& e) {
      throw ToolError(kExitUnreadable, e.what());
    } catch (const std::invalid_argument& e) {
      throw ToolError(kExitUsage, std::string(e.what()) + ": nothing to do");
    } catch (const std::system_error& e) {  // "strobe: OUT.tmp: write failed: No space left on device"
      std::string what = e.what();
      if (what.rfind("strobe: ", 0) == 0) what.erase(0, 8);
      throw ToolError(kExitOutput, "cannot write " + o->out + ": " + what);
    }
    fs::rename(tmp, o->out, ec);
    if (ec) throw ToolError(kExitOutput, "cannot rename " + tmp + " to " + o->out + ": " + ec.message());
    partial.keep = true;

    std::printf("%s: %llu spans in %llu traces (%llu batches), assembled from %s\n", o->out.c_str(),
                static_cast<unsigned long long>(result.spans), static_cast<unsigned long long>(result.traces),
                static_cast<unsigned long long>(result.batches), o->file.c_str());
    status = kExitOk;
    if (result.error) {
      std::fflush(stdout);
      std::fprintf(stderr, "strobe: warning: %s (%s holds what precedes it)\n", result.error->what(),
                   o->out.c_str());
      status = kExitDamaged;
    }
  });
}

}  // namespace strobe::tool
