#include "src/synth/checkpoint_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "src/model/error.h"
#include "src/tokenizer/special_tokens.h"
#include "src/tokenizer/tokenizer_json_writer.h"

namespace ossrun::synth {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSegmentBytes = 8u << 20;
constexpr uint64_t kDirectAlign = 4096;  // O_DIRECT buffer, offset and length alignment

[[noreturn]] void io_fail(const fs::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what + ": " + std::strerror(errno));
}

class OutputFile {
 public:
  OutputFile(fs::path path, uint64_t size, bool sparse, bool try_direct) : path_(std::move(path)), size_(size) {
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    if (try_direct) fd_ = ::open(path_.c_str(), flags | O_DIRECT, 0644);
    direct_ = fd_ >= 0;
    if (!direct_) fd_ = ::open(path_.c_str(), flags, 0644);  // e.g. a file system without O_DIRECT
    if (fd_ < 0) io_fail(path_, "cannot create");
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) io_fail(path_, "cannot set the size");
    // Reserve the blocks up front (no ENOSPC half way, less fragmentation); sparse files keep their holes.
    if (!sparse && size > 0 && ::fallocate(fd_, 0, 0, static_cast<off_t>(size)) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
      io_fail(path_, "cannot allocate " + std::to_string(size) + " bytes");
  }
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  bool direct() const { return direct_; }

  // `data` is aligned to kDirectAlign and has room for n rounded up to it: O_DIRECT writes whole blocks (buffered
  // writes do the same, for simplicity), and the file is cut back to its size when closed.
  void write_at(const std::byte* data, uint64_t n, uint64_t offset) {
    n = (n + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EINVAL && direct_) {  // the device wants larger alignment: go through the page cache
        std::lock_guard<std::mutex> lock(mode_mutex_);
        if (direct_ && ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_DIRECT) != 0) io_fail(path_, "cannot leave O_DIRECT");
        direct_ = false;
        continue;
      }
      if (w <= 0) io_fail(path_, "write of " + std::to_string(n) + " bytes at offset " + std::to_string(offset) + " failed");
      data += w;
      n -= uint64_t(w);
      offset += uint64_t(w);
    }
  }
  void close() {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) io_fail(path_, "cannot set the size");
    if (::close(fd_) != 0) io_fail(path_, "close failed");
    fd_ = -1;
  }

 private:
  fs::path path_;
  uint64_t size_;
  int fd_ = -1;
  std::atomic<bool> direct_{false};
  std::mutex mode_mutex_;
};

struct AlignedBuffer {
  explicit AlignedBuffer(uint64_t n) : data(static_cast<std::byte*>(std::aligned_alloc(kDirectAlign, n))) {
    if (!data) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::byte* data;
};

struct Segment {
  size_t file;
  uint64_t begin, end;  // file offsets
};

// Bytes [begin, end) of shard file `f`: the length prefix and header, then the tensors' bytes.
void assemble_segment(const ShardFile& f, const SyntheticWeights& w, uint64_t begin, uint64_t end, std::byte* out,
                      std::vector<std::byte>& scratch) {
  if (begin < f.data_offset()) {
    std::byte prefix[8];
    for (int b = 0; b < 8; ++b) prefix[b] = static_cast<std::byte>(uint64_t(f.header.size()) >> (8 * b));
    for (uint64_t p = begin; p < std::min(end, f.data_offset()); ++p)
      out[p - begin] = p < 8 ? prefix[p] : static_cast<std::byte>(f.header[p - 8]);
  }
  for (const ShardTensor& t : f.tensors) {
    const uint64_t lo = std::max(begin, f.data_offset() + t.begin), hi = std::min(end, f.data_offset() + t.end);
    if (lo >= hi) continue;
    // The piece [s, e) of the tensor; generate the whole units covering it, in place when it is unit-aligned.
    const uint64_t s = lo - f.data_offset() - t.begin, e = hi - f.data_offset() - t.begin, unit = w.unit_bytes(t.spec);
    const int64_t u0 = int64_t(s / unit), u1 = int64_t((e + unit - 1) / unit);
    std::byte* dst = out + (lo - begin);
    if (s % unit == 0 && e % unit == 0) {
      w.fill(t.spec, u0, u1 - u0, dst);
    } else {
      scratch.resize(uint64_t(u1 - u0) * unit);
      w.fill(t.spec, u0, u1 - u0, scratch.data());
      std::memcpy(dst, scratch.data() + (s - uint64_t(u0) * unit), e - s);
    }
  }
}

// True when [begin, end) lies wholly inside tensors left as holes (nothing to write).
bool segment_is_hole(const ShardFile& f, const SyntheticWeights& w, uint64_t begin, uint64_t end) {
  if (begin < f.data_offset()) return false;
  for (const ShardTensor& t : f.tensors)
    if (begin < f.data_offset() + t.end && end > f.data_offset() + t.begin && !w.is_hole(t.spec)) return false;
  return true;
}

bool is_checkpoint_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return p.extension() == ".safetensors" || name == "model.safetensors.index.json" || name == "config.json" ||
         name == "generation_config.json" || name == "tokenizer.json" || name == "tokenizer_config.json" ||
         name == "special_tokens_map.json";
}

// Creates `dir`, or checks that it is empty (or, with overwrite, removes the checkpoint files in it).
void prepare_directory(const fs::path& dir, bool overwrite) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw InputError(dir.string() + ": exists and is not a directory");
    std::vector<fs::path> present;
    for (const auto& e : fs::directory_iterator(dir)) present.push_back(e.path());
    if (!present.empty() && !overwrite)
      throw InputError(dir.string() + ": is not empty (" + std::to_string(present.size()) +
                       " entries); pass --force to replace the checkpoint files in it");
    for (const fs::path& p : present)
      if (is_checkpoint_file(p)) fs::remove(p);
  } else {
    fs::create_directories(dir, ec);
    if (ec) throw InputError(dir.string() + ": cannot create the directory: " + ec.message());
  }
}

void write_json(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text << '\n';
  out.close();
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

}  // namespace

WriteReport write_synthetic_checkpoint(const fs::path& dir, const SynthConfig& config, const SynthOptions& synth,
                                       const WriteOptions& write) {
  const auto start = std::chrono::steady_clock::now();
  const SyntheticWeights weights(config.config, synth);
  const ShardPlan plan = plan_shards(weights.specs(), write.max_shard_bytes);

  std::vector<Segment> segments;
  WriteReport report;
  report.shards = plan.files.size();
  report.tensors = weights.specs().size();
  for (size_t i = 0; i < plan.files.size(); ++i) {
    const ShardFile& f = plan.files[i];
    report.file_bytes += f.file_size();
    for (uint64_t b = 0; b < f.file_size(); b += kSegmentBytes) {
      const uint64_t e = std::min(f.file_size(), b + kSegmentBytes);
      if (segment_is_hole(f, weights, b, e)) continue;
      segments.push_back({i, b, e});
      report.written_bytes += e - b;
    }
  }

  prepare_directory(dir, write.overwrite);
  const uint64_t available = fs::space(dir).available;
  if (report.written_bytes > available)
    throw InputError(dir.string() + ": the checkpoint needs " + std::to_string(report.written_bytes) + " bytes but only " +
                     std::to_string(available) + " are free" +
                     (synth.sparse_experts ? "" : " (--sparse-experts leaves the experts as holes)"));

  std::vector<std::unique_ptr<OutputFile>> files;
  for (const ShardFile& f : plan.files)
    files.push_back(std::make_unique<OutputFile>(dir / f.name, f.file_size(), synth.sparse_experts, write.direct_io));
  report.direct_io = std::all_of(files.begin(), files.end(), [](const auto& f) { return f->direct(); });

  // Two per hardware thread by default: a thread in a (synchronous, O_DIRECT) write is not generating.
  const int automatic = 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  report.threads = static_cast<int>(std::min<size_t>(write.threads > 0 ? write.threads : automatic, std::max<size_t>(1, segments.size())));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    try {
      AlignedBuffer buffer(kSegmentBytes);
      std::vector<std::byte> scratch;
      for (size_t i = next++; i < segments.size() && !failed; i = next++) {
        const Segment& s = segments[i];
        const uint64_t n = s.end - s.begin;
        std::memset(buffer.data + n, 0, (kDirectAlign - n % kDirectAlign) % kDirectAlign);  // O_DIRECT tail padding
        assemble_segment(plan.files[s.file], weights, s.begin, s.end, buffer.data, scratch);
        files[s.file]->write_at(buffer.data, n, s.begin);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < report.threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  for (auto& f : files) f->close();

  write_json(dir / "model.safetensors.index.json", plan.index_json(weights.specs()).dump(2));
  write_json(dir / "generation_config.json", generation_config_json(config.config).dump(2));
  if (!write.tiktoken_file.empty() && config.config.vocab_size > harmony_token::kEndOfPrompt) {
    write_tokenizer_json(write.tiktoken_file, dir / "tokenizer.json");
    report.tokenizer = true;
  }
  write_json(dir / "config.json", config.document.dump(2));  // last: an interrupted run leaves no config.json
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ossrun::synth
