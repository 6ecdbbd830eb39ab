#include "offload/router_stats_io.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "src/model/error.h"

namespace ossrun::offload {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kFormat = "ossrun router statistics";
constexpr int kVersion = 1;

[[noreturn]] void fail(const std::string& what) { throw InputError("router statistics: " + what); }

const json& field(const json& j, const char* key) {
  if (!j.contains(key)) fail(std::string("\"") + key + "\" is missing");
  return j[key];
}

int64_t integer(const json& j, const char* key, int64_t lo, int64_t hi) {
  const json& v = field(j, key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(std::string("\"") + key + "\" must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
         "], found " + v.dump());
  return v.get<int64_t>();
}

// A finite non-negative number.
double count_value(const json& v, const std::string& where) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    fail(where + " must be a finite number >= 0, found " + v.dump());
  return v.get<double>();
}

const json& array_of(const json& v, size_t n, const std::string& where) {
  if (!v.is_array() || v.size() != n) fail(where + " must be an array of " + std::to_string(n) + " entries");
  return v;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

json router_stats_to_json(const RouterStats& s) {
  json counts = json::array(), last = json::array(), routed = json::array();
  for (int l = 0; l < s.layers(); ++l) {
    json c = json::array(), u = json::array();
    for (int e = 0; e < s.experts(); ++e) {
      c.push_back(s.count(l, e));
      u.push_back(s.last_use(l, e));
    }
    counts.push_back(std::move(c));
    last.push_back(std::move(u));
    routed.push_back(s.routed_tokens(l));
  }
  json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["layers"] = s.layers();
  j["experts"] = s.experts();
  j["half_life_tokens"] = std::isinf(s.half_life()) ? json(nullptr) : json(s.half_life());
  j["tokens"] = s.tokens();
  j["counts"] = std::move(counts);
  j["routed_tokens"] = std::move(routed);
  j["last_use"] = std::move(last);
  return j;
}

RouterStats router_stats_from_json(const json& j, int layers, int experts) {
  if (!j.is_object()) fail("not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat) fail("not an ossrun router statistics file (no \"format\": \"" + std::string(kFormat) + "\")");
  const int64_t version = integer(j, "version", 0, INT32_MAX);
  if (version != kVersion) fail("version " + std::to_string(version) + " is not the supported version " + std::to_string(kVersion));
  const int64_t file_layers = integer(j, "layers", 1, 1 << 20), file_experts = integer(j, "experts", 1, 1 << 20);
  if (file_layers != layers || file_experts != experts)
    fail("saved for " + std::to_string(file_layers) + " layers x " + std::to_string(file_experts) +
         " experts, but this model has " + std::to_string(layers) + " x " + std::to_string(experts));
  const json& h = field(j, "half_life_tokens");
  double half_life = RouterStats::kNoDecay;
  if (!h.is_null()) {
    if (!h.is_number() || !std::isfinite(h.get<double>()) || h.get<double>() <= 0)
      fail("\"half_life_tokens\" must be a number above 0 or null, found " + h.dump());
    half_life = h.get<double>();
  }
  const int64_t tokens = integer(j, "tokens", 0, INT64_MAX / 2);
  const json& counts = array_of(field(j, "counts"), layers, "\"counts\"");
  const json& routed = array_of(field(j, "routed_tokens"), layers, "\"routed_tokens\"");
  const json& last = array_of(field(j, "last_use"), layers, "\"last_use\"");

  RouterStats s(layers, experts, half_life);
  s.restore_step(tokens);
  for (int l = 0; l < layers; ++l) {
    const std::string at = "[" + std::to_string(l) + "]";
    const json& cl = array_of(counts[l], experts, "\"counts\"" + at);
    const json& ul = array_of(last[l], experts, "\"last_use\"" + at);
    const double routed_l = count_value(routed[l], "\"routed_tokens\"" + at);
    s.restore_routed_tokens(l, routed_l);
    for (int e = 0; e < experts; ++e) {
      const std::string at_e = at + "[" + std::to_string(e) + "]";
      const double c = count_value(cl[e], "\"counts\"" + at_e);
      // A token routes each expert at most once, so no expert can have been counted more than the layer's tokens.
      if (c > routed_l * (1 + 1e-9) + 1e-9)
        fail("\"counts\"" + at_e + " (" + std::to_string(c) + ") exceeds the layer's routed tokens (" + std::to_string(routed_l) + ")");
      const json& u = ul[e];
      if (!u.is_number_integer() || u.get<int64_t>() < -1 || u.get<int64_t>() > tokens)
        fail("\"last_use\"" + at_e + " must be -1 or a step up to \"tokens\" (" + std::to_string(tokens) + "), found " + u.dump());
      s.restore(l, e, c, u.get<int64_t>());
    }
  }
  return s;
}

void save_router_stats(const fs::path& file, const RouterStats& s) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) throw InputError("cannot create " + file.parent_path().string() + " for router statistics: " + ec.message());
  const fs::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError("cannot write router statistics to " + tmp.string());
    out << router_stats_to_json(s).dump() << '\n';
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw InputError("cannot write router statistics to " + tmp.string() + " (disk full?)");
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw InputError("cannot move router statistics into " + file.string() + ": " + ec.message());
  }
}

LoadedRouterStats load_router_stats(const fs::path& file, int layers, int experts) {
  LoadedRouterStats out;
  out.path = file;
  std::error_code ec;
  if (!fs::exists(file, ec)) return out;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    out.warning = file.string() + ": cannot be read; starting with fresh router statistics";
    return out;
  }
  try {
    const json j = json::parse(in);
    out.stats = router_stats_from_json(j, layers, experts);
  } catch (const json::exception& e) {
    out.warning = file.string() + ": not valid JSON (" + e.what() + "); starting with fresh router statistics";
  } catch (const InputError& e) {
    out.warning = file.string() + ": " + e.what() + "; starting with fresh router statistics";
  }
  return out;
}

fs::path model_dir_stats_path(const fs::path& model_dir) { return model_dir / ".ossrun" / "router_stats.json"; }

fs::path cache_stats_path(const fs::path& model_dir, const fs::path& cache_dir) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(model_dir, ec), ec);
  if (ec) abs = model_dir;
  std::string name = abs.filename().string();
  if (name.empty()) name = "model";
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(abs.string())));
  return cache_dir / "router_stats" / (name + "-" + hash + ".json");
}

LoadedRouterStats load_router_stats_for_model(const fs::path& model_dir, int layers, int experts, const fs::path& cache_dir) {
  // The cache's file is the one saved last when the model directory is read-only, even if a stale file lies there.
  LoadedRouterStats in_dir = load_router_stats(model_dir_stats_path(model_dir), layers, experts);
  if (in_dir.stats) return in_dir;
  LoadedRouterStats in_cache = load_router_stats(cache_stats_path(model_dir, cache_dir), layers, experts);
  if (in_cache.stats || in_dir.warning.empty()) return in_cache;
  if (!in_cache.warning.empty()) in_dir.warning += "; " + in_cache.warning;
  return in_dir;
}

fs::path save_router_stats_for_model(const fs::path& model_dir, const RouterStats& s, const fs::path& cache_dir) {
  const fs::path primary = model_dir_stats_path(model_dir);
  try {
    save_router_stats(primary, s);
    return primary;
  } catch (const InputError& first) {
    const fs::path fallback = cache_stats_path(model_dir, cache_dir);
    try {
      save_router_stats(fallback, s);
    } catch (const InputError& second) {
      throw InputError(std::string(first.what()) + "; and in the cache: " + second.what());
    }
    return fallback;
  }
}

}  // namespace ossrun::offload
