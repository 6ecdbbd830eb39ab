#include "offload/prefill_cost_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "src/model/error.h"

namespace ossrun::offload {
namespace {

constexpr const char* kFormat = "ossrun hybrid throughput";
constexpr int kVersion = 1;

double cpu_cost(const HybridThroughput& t, int64_t m) { return t.cpu_fixed_s + static_cast<double>(m) * t.cpu_token_s; }
double gpu_cost(const HybridThroughput& t, int64_t m) { return t.gpu_fixed_s + static_cast<double>(m) * t.gpu_token_s; }

bool valid(double v) { return v >= 0 && std::isfinite(v); }

}  // namespace

double PrefillAssignment::makespan_s() const { return std::max(cpu_s, std::max(gpu_s, upload_s)); }

PrefillAssignment assign_prefill(std::span<const PrefillExpert> experts, const HybridThroughput& t, int max_uploads) {
  if (!valid(t.upload_s) || !valid(t.cpu_fixed_s) || !valid(t.cpu_token_s) || !valid(t.gpu_fixed_s) ||
      !valid(t.gpu_token_s))
    throw std::invalid_argument("prefill cost model: throughputs must be finite and >= 0");
  PrefillAssignment a;
  a.side.resize(experts.size(), PrefillSide::Cpu);
  std::vector<size_t> candidates;
  for (size_t i = 0; i < experts.size(); ++i) {
    const PrefillExpert& e = experts[i];
    if (e.tokens <= 0) throw std::invalid_argument("prefill cost model: an expert with no tokens");
    if (e.resident) {
      a.side[i] = PrefillSide::GpuResident;
      a.gpu_s += gpu_cost(t, e.tokens);
    } else {
      a.cpu_s += cpu_cost(t, e.tokens);
      candidates.push_back(i);
    }
  }
  // CPU time saved per second the move adds to the GPU side (compute and upload), best first.
  auto gain = [&](size_t i) {
    const int64_t m = experts[i].tokens;
    return cpu_cost(t, m) / std::max(gpu_cost(t, m) + t.upload_s, 1e-30);
  };
  std::stable_sort(candidates.begin(), candidates.end(), [&](size_t x, size_t y) { return gain(x) > gain(y); });
  int uploads = 0;
  for (size_t i : candidates) {
    if (uploads >= max_uploads) break;
    const int64_t m = experts[i].tokens;
    PrefillAssignment moved = a;
    moved.cpu_s -= cpu_cost(t, m);
    moved.gpu_s += gpu_cost(t, m);
    moved.upload_s += t.upload_s;
    if (!(moved.makespan_s() < a.makespan_s())) break;  // later candidates gain less still
    a.cpu_s = moved.cpu_s, a.gpu_s = moved.gpu_s, a.upload_s = moved.upload_s;
    a.side[i] = PrefillSide::GpuUpload;
    ++uploads;
  }
  return a;
}

std::optional<HybridThroughput> load_throughput(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("format") != kFormat || j.at("version") != kVersion) return std::nullopt;
    HybridThroughput t;
    t.upload_s = j.at("upload_s").get<double>();
    t.cpu_fixed_s = j.at("cpu_fixed_s").get<double>();
    t.cpu_token_s = j.at("cpu_token_s").get<double>();
    t.gpu_fixed_s = j.at("gpu_fixed_s").get<double>();
    t.gpu_token_s = j.at("gpu_token_s").get<double>();
    t.pcie_bytes_per_s = j.at("pcie_bytes_per_s").get<double>();
    for (double v : {t.upload_s, t.cpu_fixed_s, t.cpu_token_s, t.gpu_fixed_s, t.gpu_token_s})
      if (!valid(v)) return std::nullopt;
    if (!(t.pcie_bytes_per_s > 0) || !std::isfinite(t.pcie_bytes_per_s)) return std::nullopt;
    return t;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

void save_throughput(const std::filesystem::path& file, const HybridThroughput& t) {
  const nlohmann::json j = {{"format", kFormat},          {"version", kVersion},         {"upload_s", t.upload_s},
                            {"cpu_fixed_s", t.cpu_fixed_s}, {"cpu_token_s", t.cpu_token_s}, {"gpu_fixed_s", t.gpu_fixed_s},
                            {"gpu_token_s", t.gpu_token_s}, {"pcie_bytes_per_s", t.pcie_bytes_per_s}};
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) throw InputError("cannot write the hybrid throughput cache " + tmp.string());
  }
  std::filesystem::rename(tmp, file, ec);
  if (ec) throw InputError("cannot write the hybrid throughput cache " + file.string() + ": " + ec.message());
}

std::filesystem::path throughput_cache_path(const std::filesystem::path& cache_dir, const std::string& key) {
  std::string name = key;
  for (char& c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return cache_dir / "hybrid_probe" / (name + ".json");
}

}  // namespace ossrun::offload
