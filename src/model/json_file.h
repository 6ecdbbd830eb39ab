// Reading a whole JSON file, with errors that name the file.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace ossrun {

// Parses `path`. Throws InputError "PATH: cannot open (HINT)" or "PATH: not valid JSON: ...".
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& hint = "");

}  // namespace ossrun
