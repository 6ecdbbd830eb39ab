#include "src/model/json_file.h"

#include <fstream>

#include "src/model/error.h"

namespace ossrun {

nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& hint) {
  std::ifstream in(path);
  if (!in) throw InputError(path.string() + ": cannot open" + (hint.empty() ? "" : " (" + hint + ")"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace ossrun
