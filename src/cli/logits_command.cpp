// `ossrun logits --model DIR --ids 1,2,3 [--top K] [--json]`: runs the ids through the model and prints, for
// every position, the K largest logits with their token ids and the log-sum-exp of the whole row. This is
// what tests and outside checks (transformers goldens) compare against.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/cli/session_flags.h"
#include "src/model/error.h"

namespace ossrun::cli {
namespace {

// "1, 2,3" -> {1, 2, 3}; anything else is an InputError naming the offending item.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    std::string item = text.substr(at, comma - at);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    char* end = nullptr;
    errno = 0;
    const long long v = item.empty() ? 0 : std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > INT32_MAX)
      throw InputError("--ids: item " + std::to_string(ids.size()) + " is \"" + item +
                       "\", not a token id (expected non-negative integers separated by commas)");
    ids.push_back(static_cast<int32_t>(v));
    at = comma + 1;
  }
  return ids;
}

struct RowSummary {
  std::vector<int32_t> top_ids;  // descending logit, lower id first on ties
  std::vector<float> top_logits;
  double lse = 0;
};

RowSummary summarize(std::span<const float> row, int64_t top, std::vector<int32_t>& order) {
  std::iota(order.begin(), order.end(), 0);
  const auto k = static_cast<ptrdiff_t>(std::min<int64_t>(top, static_cast<int64_t>(row.size())));
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  RowSummary s;
  for (ptrdiff_t i = 0; i < k; ++i) {
    s.top_ids.push_back(order[i]);
    s.top_logits.push_back(row[order[i]]);
  }
  const double m = row[order[0]];
  double z = 0;
  for (float v : row) z += std::exp(static_cast<double>(v) - m);
  s.lse = m + std::log(z);
  return s;
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "Print the top logits and the log-sum-exp at every position of a list of token ids");
  struct Flags {
    SessionFlags session;
    std::string ids;
    int64_t top = 5;
    bool json = false;
  };
  auto f = std::make_shared<Flags>();
  add_session_flags(*cmd, f->session, "Context size (default: the number of ids)");
  cmd->add_option("--ids", f->ids, "Token ids, comma-separated (e.g. 1,2,3)")->required();
  cmd->add_option("--top", f->top, "Logits to print per position (default 5)")->check(CLI::PositiveNumber);
  cmd->add_flag("--json", f->json, "Print JSON: {ids, vocab_size, positions: [{position, id, top_ids, top_logits, lse}]}");
  cmd->footer("Examples:\n  ossrun logits --model models/tiny --ids 1,2,3 --top 3 --json\n"
              "  ossrun logits --model models/tiny --ids 1,2,3 --backend cpu --threads 1 -q");
  cmd->callback([f] {
    const std::vector<int32_t> ids = parse_ids(f->ids);
    OpenModel m = open_model(f->session, static_cast<int64_t>(ids.size()));
    std::vector<int32_t> order(static_cast<size_t>(m.session->vocab_size()));
    nlohmann::json positions = nlohmann::json::array();
    m.session->prefill(ids, [&](int64_t pos, std::span<const float> row) {
      const RowSummary s = summarize(row, f->top, order);
      if (f->json) {
        positions.push_back({{"position", pos}, {"id", ids[pos]}, {"top_ids", s.top_ids}, {"top_logits", s.top_logits}, {"lse", s.lse}});
        return;
      }
      std::printf("%5lld  id %-7d lse %-11.6g top:", static_cast<long long>(pos), ids[pos], s.lse);
      for (size_t i = 0; i < s.top_ids.size(); ++i) std::printf(" %d (%.6g)", s.top_ids[i], s.top_logits[i]);
      std::printf("\n");
    });
    if (f->json) {
      const nlohmann::json out = {{"ids", ids}, {"vocab_size", m.session->vocab_size()}, {"positions", positions}};
      std::printf("%s\n", out.dump().c_str());
    }
  });
}

}  // namespace ossrun::cli
