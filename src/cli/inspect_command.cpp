// `ossrun inspect DIR`: validate a checkpoint and print its shape, parameter count and bytes per component.
#include <cstdio>
#include <string>

#include "src/cli/commands.h"
#include "src/model/checkpoint.h"
#include "src/model/inspect.h"

namespace ossrun::cli {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Validate a checkpoint directory and print its shape and sizes");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("model", *dir, "Checkpoint directory (config.json, *.safetensors)")->required();
  cmd->footer("Example:\n  ossrun inspect ~/models/gpt-oss-20b");
  cmd->callback([dir] {
    auto ck = Checkpoint::open(*dir);
    std::fputs(format_summary(*ck, summarize(ck->config())).c_str(), stdout);
  });
}

}  // namespace ossrun::cli
