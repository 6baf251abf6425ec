#pragma once
// Each subcommand registers itself on the app; its callback returns an exit status
// through `status`.

#include <CLI/CLI.hpp>

namespace strobe::tool {

void add_info(CLI::App& app, int& status);
void add_validate(CLI::App& app, int& status);
void add_tree(CLI::App& app, int& status);
void add_stats(CLI::App& app, int& status);
void add_diff(CLI::App& app, int& status);
void add_export(CLI::App& app, int& status);
void add_push(CLI::App& app, int& status);
void add_html(CLI::App& app, int& status);
void add_recover(CLI::App& app, int& status);
void add_assemble(CLI::App& app, int& status);

}  // namespace strobe::tool
