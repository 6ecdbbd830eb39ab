// `ossrun perplexity --model DIR --file TEXT [--ctx N]`: perplexity of the model over a text file.
//
// The file is tokenized as plain text (special-token strings stay text) and cut into consecutive,
// non-overlapping chunks of ctx tokens; each chunk is a fresh sequence, and every token but the first of
// its chunk is scored: NLL = lse(logits) - logit[next id]. Perplexity = exp(mean NLL over scored tokens).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "src/cli/commands.h"
#include "src/cli/session_flags.h"
#include "src/model/error.h"
#include "src/tokenizer/tokenizer.h"

namespace ossrun::cli {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// log(sum(exp(row))) in double.
double log_sum_exp(std::span<const float> row) {
  double m = -INFINITY, z = 0;
  for (float v : row) m = std::max(m, static_cast<double>(v));
  for (float v : row) z += std::exp(v - m);
  return m + std::log(z);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of the model over a text file (chunks of --ctx tokens)");
  struct Flags {
    SessionFlags session;
    std::string file;
  };
  auto f = std::make_shared<Flags>();
  add_session_flags(*cmd, f->session, "Tokens per chunk (default 1024)");
  cmd->add_option("--file", f->file, "UTF-8 text file")->required();
  cmd->footer("Examples:\n  ossrun perplexity --model ~/models/gpt-oss-20b --file wiki.test.raw --ctx 512\n"
              "  ossrun perplexity --model ~/models/gpt-oss-120b --file wiki.test.raw --profile workstation-24gb --ctx 1024");
  cmd->callback([f] {
    const std::string text = read_file(f->file);
    OpenModel m = open_model(f->session, 1024);
    const Tokenizer tok = Tokenizer::from_model_dir(f->session.model);
    std::vector<int32_t> ids;
    for (TokenId id : tok.encode(text)) ids.push_back(static_cast<int32_t>(id));
    if (ids.size() < 2)
      throw InputError(f->file + ": " + std::to_string(ids.size()) + " token(s); perplexity needs at least 2");

    engine::Session& s = *m.session;
    const size_t ctx = static_cast<size_t>(s.ctx());
    if (ctx < 2) throw InputError("--ctx must be at least 2 for perplexity (each chunk scores tokens 2..ctx)");
    double nll = 0;
    int64_t scored = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t at = 0; at + 1 < ids.size(); at += ctx) {
      const std::span<const int32_t> chunk = std::span(ids).subspan(at, std::min(ctx, ids.size() - at));
      if (chunk.size() < 2) break;  // a lone last token has nothing to be scored against
      s.reset();
      // Row i predicts chunk[i + 1]; the last row predicts past the chunk and is not scored.
      s.prefill(chunk, [&](int64_t pos, std::span<const float> row) {
        if (static_cast<size_t>(pos) + 1 >= chunk.size()) return;
        nll += log_sum_exp(row) - row[chunk[pos + 1]];
        ++scored;
      });
      if (!f->session.quiet)
        std::fprintf(stderr, "\r%lld / %zu tokens scored, running perplexity %.4f", static_cast<long long>(scored), ids.size(),
                     std::exp(nll / static_cast<double>(scored)));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!f->session.quiet) std::fprintf(stderr, "\n");
    std::printf("tokens     %zu (%lld scored in chunks of %zu)\n", ids.size(), static_cast<long long>(scored), ctx);
    std::printf("mean NLL   %.6f nats/token\n", nll / static_cast<double>(scored));
    std::printf("perplexity %.4f\n", std::exp(nll / static_cast<double>(scored)));
    if (!f->session.quiet) std::fprintf(stderr, "%.1f s, %.2f tok/s\n", secs, static_cast<double>(scored) / secs);
  });
}

}  // namespace ossrun::cli
