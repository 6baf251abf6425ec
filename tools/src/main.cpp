// strobe: reads strobe files — trees, statistics, run-to-run diffs, exports, an HTML
// timeline, and OTLP/HTTP push; recovers killed runs and assembles record logs once.

#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  using namespace strobe::tool;
  CLI::App app{
      "strobe: read, compare and export strobe trace files.\n\n"
      "A file can be intact (every frame verified, end frame present) and still record a run\n"
      "that lost data (spans or records dropped, spans that lost records, placeholders for\n"
      "spans whose begin was lost, orphans): info, validate, tree, stats, diff and html say so,\n"
      "apart from damage.\n\n"
      "A file of the record log (what a recorder with a FileSink alone writes by default,\n"
      "Assembly::deferred) is assembled each time it is read;\n"
      "assemble does it once, into a file that reads without assembling.\n\n"
      "Exit status: 0 ok; 1 diff found a significant slowdown / validate found damage\n"
      "(validate --strict: also when the run lost data);\n"
      "2 bad arguments; 3 unreadable file (missing, not a strobe file, newer format, bad header);\n"
      "4 damaged file (output covers what precedes the damage); 5 cannot write output / push failed or the\n"
      "collector rejected spans.",
      "strobe"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "strobe 0.1.0");
  int status = kExitOk;
  add_info(app, status);
  add_tree(app, status);
  add_stats(app, status);
  add_diff(app, status);
  add_export(app, status);
  add_push(app, status);
  add_html(app, status);
  add_validate(app, status);
  add_recover(app, status);
  add_assemble(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  } catch (const ToolError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "strobe: %s\n", e.what());
    return e.code();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "strobe: %s\n", e.what());
    return kExitOutput;
  }
  return status;
}
