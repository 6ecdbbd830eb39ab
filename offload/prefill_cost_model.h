// Prefill placement in the hybrid offload (architecture.md "Data flow"): for each expert that a batch routes
// tokens to, compute it on the CPU from the mmap, or upload it for the batch (into a scratch slot) and run it
// on the GPU. Experts resident on the GPU always run there.
//
// The cost model, from throughputs measured at start-up (src/gpu/hybrid_probe.cpp, cached as JSON under
// <cache>/hybrid_probe/):
//   CPU  (m tokens):  cpu_fixed_s + m * cpu_token_s        (fixed: reading/dequantizing the slice once)
//   GPU  (m tokens):  gpu_fixed_s + m * gpu_token_s        (+ upload_s when not resident)
// The CPU and the GPU work concurrently and uploads overlap GPU compute on the copy stream, so the batch takes
//   max(CPU total, max(GPU compute total, upload total)),
// which a greedy minimises: every non-resident expert starts on the CPU; they move to the GPU, the ones
// that save the most CPU time per second of upload and GPU time first, while the makespan falls.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ossrun::offload {

struct HybridThroughput {
  double upload_s = 0;     // one expert slice, host (pinned staging) -> device
  double cpu_fixed_s = 0;  // per expert run on the CPU, independent of its tokens
  double cpu_token_s = 0;  // per token of an expert on the CPU
  double gpu_fixed_s = 0;  // per expert run on the GPU
  double gpu_token_s = 0;  // per token of an expert on the GPU
  double pcie_bytes_per_s = 0;  // the link's measured host->device bandwidth (for the decode upload credit)
  bool operator==(const HybridThroughput&) const = default;
};

struct PrefillExpert {
  int expert = 0;
  int64_t tokens = 0;  // tokens of the batch routed to it (> 0)
  bool resident = false;
};

enum class PrefillSide : uint8_t { Cpu, GpuResident, GpuUpload };

struct PrefillAssignment {
  std::vector<PrefillSide> side;  // parallel to the input
  double cpu_s = 0, gpu_s = 0, upload_s = 0;  // predicted totals
  double makespan_s() const;
};

// max_uploads: how many experts may be uploaded for the batch (0 when there is no scratch slot).
// Throws std::invalid_argument for negative throughputs or an expert with no tokens.
PrefillAssignment assign_prefill(std::span<const PrefillExpert> experts, const HybridThroughput& t, int max_uploads);

// The probe cache: one JSON file per (GPU, CPU threads, expert shape) key. Loading returns nullopt for a
// missing, unreadable or malformed file (the caller probes again); saving throws InputError when it cannot write.
std::optional<HybridThroughput> load_throughput(const std::filesystem::path& file);
void save_throughput(const std::filesystem::path& file, const HybridThroughput& t);
// <cache>/hybrid_probe/<key with every character outside [A-Za-z0-9._-] replaced by '_'>.json
std::filesystem::path throughput_cache_path(const std::filesystem::path& cache_dir, const std::string& key);

}  // namespace ossrun::offload
