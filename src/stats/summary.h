// The text summary of `ossrun stats`: per layer its most popular experts and their shares, how concentrated
// the routing is, and the hit rate a cache of `slots` experts per layer would get.
#pragma once
#include <string>

#include "src/stats/expert_popularity.h"

namespace ossrun::stats {

struct SummaryOptions {
  int slots = 4;  // GPU slots per layer for the hit-rate column
  int top = 4;    // experts listed per layer
};

// source: where the statistics came from (a file, a trace), printed in the header.
std::string format_summary(const ExpertPopularity& p, const std::string& source, const SummaryOptions& options);

}  // namespace ossrun::stats
