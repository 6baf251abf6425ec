// strobe html FILE -o OUT.html  (the viewer page is completed separately)
#include "commands.hpp"
#include "common.hpp"

namespace strobe::tool {
void add_html(CLI::App& app, int& status) {
  auto* cmd = app.add_subcommand("html", "Write a self-contained HTML timeline and graph view");
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("strobe.html");
  cmd->add_option("FILE", *file, "strobe file")->required();
  cmd->add_option("-o,--output", *out, "output HTML file");
  cmd->callback([&status] { status = kExitUsage; throw ToolError(kExitUsage, "html: not available in this build"); });
}
}  // namespace strobe::tool
