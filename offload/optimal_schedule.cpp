#include "offload/optimal_schedule.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string>

namespace ossrun::offload {
namespace {

// A residual graph in edge-pair form: edge e and its reverse e ^ 1.
struct FlowGraph {
  std::vector<int64_t> head;  // (V) first edge out of each node, -1 for none
  std::vector<int64_t> next, to;
  std::vector<int32_t> cap;
  std::vector<int64_t> cost;

  explicit FlowGraph(int64_t nodes) : head(nodes, -1) {}
  int64_t add(int64_t from, int64_t dest, int32_t capacity, int64_t c) {
    const int64_t e = static_cast<int64_t>(to.size());
    push(from, dest, capacity, c);
    push(dest, from, 0, -c);
    return e;
  }
  void push(int64_t from, int64_t dest, int32_t capacity, int64_t c) {
    next.push_back(head[from]);
    head[from] = static_cast<int64_t>(to.size());
    to.push_back(dest);
    cap.push_back(capacity);
    cost.push_back(c);
  }
  bool used(int64_t e) const { return cap[e ^ 1] > 0; }
};

}  // namespace

Schedule optimal_schedule(const Trace& trace, int layer, int slots, int uploads_per_step) {
  const TraceShape& s = trace.shape();
  if (layer < 0 || layer >= s.layers) throw std::invalid_argument("optimal schedule: layer " + std::to_string(layer) + " is outside the trace");
  if (slots < 0 || slots > s.experts) throw std::invalid_argument("optimal schedule: slots outside 0..experts");
  if (uploads_per_step < 0) throw std::invalid_argument("optimal schedule: negative upload budget");
  const int64_t T = trace.tokens();
  const int k = s.k;
  const int64_t per_step = 3 + 2 * k;  // c, in[k], a, g, out[k]: numbered in topological order
  auto c_node = [&](int64_t t) { return t * per_step; };
  auto in_node = [&](int64_t t, int i) { return t * per_step + 1 + i; };
  auto a_node = [&](int64_t t) { return t * per_step + 1 + k; };
  auto g_node = [&](int64_t t) { return t * per_step + 2 + k; };
  auto out_node = [&](int64_t t, int i) { return t * per_step + 3 + k + i; };
  const int64_t V = T * per_step + 1, source = 0, sink = c_node(T);
  const int64_t hit_cost = -(T * k + 1);  // outweighs every possible upload

  // Where each routed expert is used next: (step, position) or step -1.
  std::vector<std::pair<int64_t, int>> next_use(static_cast<size_t>(T) * k, {-1, 0});
  {
    std::vector<std::pair<int64_t, int>> seen(s.experts, {-1, 0});
    for (int64_t t = T - 1; t >= 0; --t) {
      auto ids = trace.ids(t, layer);
      for (int i = 0; i < k; ++i) {
        next_use[t * k + i] = seen[ids[i]];
        seen[ids[i]] = {t, i};
      }
    }
  }

  FlowGraph g(V);
  // Edge ids per (step, position); -1 where the expert is never used again (no upload, no hold).
  std::vector<int64_t> upload_edge(static_cast<size_t>(T) * k, -1), hold_edge(upload_edge), evict_edge(upload_edge);
  const int32_t budget = std::min(uploads_per_step, k);
  for (int64_t t = 0; t < T; ++t) {
    g.add(c_node(t), a_node(t), slots, 0);
    g.add(a_node(t), c_node(t + 1), slots, 0);
    g.add(a_node(t), g_node(t), budget, 0);
    for (int i = 0; i < k; ++i) {
      g.add(in_node(t, i), out_node(t, i), 1, 0);
      evict_edge[t * k + i] = g.add(in_node(t, i), a_node(t), 1, 0);
      const auto [u, j] = next_use[t * k + i];
      if (u < 0) continue;  // never used again: holding it gains nothing, so no upload either
      upload_edge[t * k + i] = g.add(g_node(t), out_node(t, i), 1, 1);
      hold_edge[t * k + i] = g.add(out_node(t, i), in_node(u, j), 1, hit_cost);
    }
  }

  // Potentials: shortest distances from the source, computed in topological (index) order.
  constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;
  std::vector<int64_t> potential(V, kInf);
  potential[source] = 0;
  for (int64_t v = 0; v < V; ++v) {
    if (potential[v] == kInf) continue;
    for (int64_t e = g.head[v]; e >= 0; e = g.next[e])
      if (g.cap[e] > 0 && potential[v] + g.cost[e] < potential[g.to[e]]) potential[g.to[e]] = potential[v] + g.cost[e];
  }

  // Successive shortest paths, one slot at a time, while a path still gains something.
  std::vector<int64_t> dist(V), via(V);
  using Item = std::pair<int64_t, int64_t>;  // reduced distance, node
  for (int unit = 0; unit < slots; ++unit) {
    std::fill(dist.begin(), dist.end(), kInf);
    std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
    dist[source] = 0;
    queue.emplace(0, source);
    while (!queue.empty()) {
      const auto [d, v] = queue.top();
      queue.pop();
      if (d > dist[v]) continue;
      for (int64_t e = g.head[v]; e >= 0; e = g.next[e]) {
        if (g.cap[e] <= 0) continue;
        const int64_t w = g.to[e];
        const int64_t nd = d + g.cost[e] + potential[v] - potential[w];
        if (nd < dist[w]) {
          dist[w] = nd;
          via[w] = e;
          queue.emplace(nd, w);
        }
      }
    }
    if (dist[sink] == kInf) break;
    // Nodes Dijkstra did not reach move by the sink's distance, which keeps every reduced cost >= 0.
    for (int64_t v = 0; v < V; ++v) potential[v] += std::min(dist[v], dist[sink]);
    if (potential[sink] - potential[source] >= 0) break;  // an idle slot is as good as anything left
    for (int64_t v = sink; v != source; v = g.to[via[v] ^ 1]) {
      --g.cap[via[v]];
      ++g.cap[via[v] ^ 1];
    }
  }

  Schedule out;
  out.evicted_at_.push_back(0);
  out.admitted_at_.push_back(0);
  for (int64_t t = 0; t < T; ++t) {
    auto ids = trace.ids(t, layer);
    for (int i = 0; i < k; ++i) {
      if (g.used(evict_edge[t * k + i])) out.evicted_.push_back(ids[i]);
      if (upload_edge[t * k + i] >= 0 && g.used(upload_edge[t * k + i])) out.admitted_.push_back(ids[i]);
    }
    out.evicted_at_.push_back(static_cast<int64_t>(out.evicted_.size()));
    out.admitted_at_.push_back(static_cast<int64_t>(out.admitted_.size()));
  }
  out.uploads = static_cast<int64_t>(out.admitted_.size());
  for (int64_t e : hold_edge) out.hits += e >= 0 && g.used(e);  // each held interval ends in a hit
  return out;
}

}  // namespace ossrun::offload
