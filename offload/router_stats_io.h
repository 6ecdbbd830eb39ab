// Saving and loading router statistics, next to the model: DIR/.ossrun/router_stats.json, or, when DIR
// is read-only, <cache>/router_stats/<dir name>-<hash of its absolute path>.json (cache as in
// ossrun_cache_dir()). Loading never fails the program: a missing file gives fresh statistics; a file
// that is unreadable, corrupted or shaped for another model gives fresh statistics and a warning.
//
// File format (JSON, version 1):
//   {"format": "ossrun router statistics", "version": 1, "layers": L, "experts": E,
//    "half_life_tokens": h (null = no decay), "tokens": step,
//    "counts": [[E numbers] x L],          decayed counts as of `tokens`
//    "routed_tokens": [L numbers],         decayed token counts as of `tokens`
//    "last_use": [[E integers] x L]}       step of last use, -1 = never
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "offload/router_stats.h"

namespace ossrun::offload {

nlohmann::json router_stats_to_json(const RouterStats& s);
// Throws InputError saying what is wrong (a missing field, a wrong shape, a negative or non-finite count).
// `layers`/`experts`: the model's shape; a file for another shape is an error.
RouterStats router_stats_from_json(const nlohmann::json& j, int layers, int experts);

// Writes atomically (a temporary file renamed over the target). Throws InputError when it cannot write.
void save_router_stats(const std::filesystem::path& file, const RouterStats& s);

struct LoadedRouterStats {
  std::optional<RouterStats> stats;  // nullopt when there was nothing usable: start fresh
  std::filesystem::path path;        // where they were looked for (the first existing file)
  std::string warning;               // non-empty when a file existed but could not be used
};
// Never throws for file problems (missing, unreadable, corrupted, wrong shape).
LoadedRouterStats load_router_stats(const std::filesystem::path& file, int layers, int experts);

// DIR/.ossrun/router_stats.json.
std::filesystem::path model_dir_stats_path(const std::filesystem::path& model_dir);
// <cache>/router_stats/<name>-<hash>.json for the model directory.
std::filesystem::path cache_stats_path(const std::filesystem::path& model_dir, const std::filesystem::path& cache_dir);

// Loads from the model directory's file, else from the cache's.
LoadedRouterStats load_router_stats_for_model(const std::filesystem::path& model_dir, int layers, int experts,
                                              const std::filesystem::path& cache_dir);
// Saves into the model directory when it is writable, else into the cache; returns the path written.
std::filesystem::path save_router_stats_for_model(const std::filesystem::path& model_dir, const RouterStats& s,
                                                  const std::filesystem::path& cache_dir);

}  // namespace ossrun::offload
